"""Logging as one JSON object a line on stdout, which is what PaaS log drains expect.

Records never carry message text or tokens: callers pass references and categories in `extra`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else was passed in `extra` and is worth printing.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

# Made once: json.dumps with these options builds an encoder for every call, a line a message.
_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False).encode


# The last second _stamp formatted, and its text: one slot, replaced whole, so two threads
# logging at once at worst format the same second twice.
_LATEST: list[tuple[int, str]] = [(-1, "")]


def _stamp(created: float) -> str:
    """datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"), the second's
    part worked out once a second (a server logs a line a message). The microseconds are
    rounded half to even as fromtimestamp rounds them, then cut to milliseconds."""
    fraction, whole = math.modf(created)
    second, micro = int(whole), round(fraction * 1e6)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    seen, text = _LATEST[0]
    if seen != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _LATEST[0] = second, text
    return f"{text}.{micro // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "at": _stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and value is not None:
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return _ENCODE(out)


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
    # What JsonFormatter never prints, not gathered for every record either: the caller's file
    # and line (a walk up the stack), the thread and the process (the logging HOWTO's
    # "Optimization" section names these switches).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Libraries that would log secrets: httpx logs each request's URL, and Telegram's URLs
    # carry the bot token; oauthlib logs X's consumer key and access token when signing.
    # Their warnings and errors still come through; nothing they say below that is needed.
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
