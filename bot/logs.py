"""Logging as one JSON object a line on stdout, which is what PaaS log drains expect.

Records never carry message text or tokens: callers pass references and categories in `extra`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else was passed in `extra` and is worth printing.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and value is not None:
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(out, default=str, ensure_ascii=False)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes one line per record to stdout, flushing at most every FLUSH_SECONDS (and at once
    for warnings and errors), so a burst of messages is not a burst of system calls.
    The server calls `flush_logs` every few seconds, so nothing waits long when it is quiet.
    """

    FLUSH_SECONDS = 0.25

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self._flushed = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            if (
                record.levelno >= logging.WARNING
                or record.created - self._flushed > self.FLUSH_SECONDS
            ):
                self.flush()
                self._flushed = record.created
        except Exception:
            self.handleError(record)


QUIET = ("httpx", "httpcore", "oauthlib", "requests_oauthlib", "telegram", "tweepy")


def flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def setup(level: str | None = None) -> None:
    """Configure the root logger once; LOG_LEVEL (default INFO) sets the level."""
    handler = LineHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "INFO").upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Libraries that would log secrets: httpx logs each request's URL, and Telegram's URLs
    # carry the bot token; oauthlib logs X's consumer key and access token when signing.
    # Their warnings and errors still come through; nothing they say below that is needed.
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
