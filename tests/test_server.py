"""The real server as a subprocess: it starts, answers, reloads its rules, and stops cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, copy_rules


class Server:
    """`python -m bot` as a real process, its JSON log lines collected as they come."""

    def __init__(
        self,
        tmp: Path,
        rules: Path,
        database: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.rules = rules
        self.database = database or f"sqlite:///{tmp}/server.sqlite3"
        self.lines: list[dict[str, Any]] = []
        env = {
            **os.environ,
            "DATABASE_URL": self.database,
            "RULES_FILE": str(rules),
            "PORT": "0",
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = int(self.wait_for("listening")["port"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                self.lines.append({"event": "unparsed", "line": line})

    def wait_for(self, event: str, timeout: float = 20, after: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if line.get("event") == event:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} in the server's log: {self.lines}")

    def request(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> float:
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)
        return time.monotonic() - began


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return copy_rules(tmp_path)


@pytest.fixture
def server(tmp_path: Path, rules: Path) -> Iterator[Server]:
    running = Server(tmp_path, rules)
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def test_serves_messages_and_stops_on_sigterm_within_ten_seconds(
    server: Server, tmp_path: Path
) -> None:
    status, body = server.request("/api/messages", {"sender": "a", "text": "hello", "id": "s1"})
    assert status == 202 and body["reference"]
    assert server.request("/healthz")[1]["queue"]["open"] == 1
    assert server.stop() < 10
    assert server.proc.returncode == 0
    assert any(line.get("event") == "stopped" for line in server.lines)
    # Nothing in the log carries the message's text.
    assert not any("hello" in json.dumps(line) for line in server.lines)
    # After a restart the message is still there, and a redelivery is recognised.
    again = Server(tmp_path, server.rules)
    try:
        assert again.request("/api/messages", {"sender": "a", "text": "hello", "id": "s1"}) == (
            status,
            body,
        )
        assert again.request("/healthz")[1]["queue"]["open"] == 1
    finally:
        again.stop()


def test_sighup_reloads_valid_rules_and_keeps_the_old_ones_when_invalid(server: Server) -> None:
    text = server.rules.read_text(encoding="utf-8")
    mark = len(server.lines)
    server.rules.write_text(
        text.replace("Anytown Borough Council", "Newtown Council"), encoding="utf-8"
    )
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for("rules reloaded", after=mark)
    assert server.request("/healthz")[1]["organisation"] == "Newtown Council"

    mark = len(server.lines)
    server.rules.write_text(
        text.replace('monday = "09:00-17:00"', 'monday = "nine to five"'), encoding="utf-8"
    )
    server.proc.send_signal(signal.SIGHUP)
    problem = server.wait_for("rules not reloaded", after=mark)
    assert "hours.monday" in problem["problem"]
    assert server.request("/healthz")[1]["organisation"] == "Newtown Council"
    status, _ = server.request("/api/messages", {"sender": "b", "text": "still working?"})
    assert status == 202


def test_an_edited_rules_file_is_picked_up_without_a_signal(server: Server) -> None:
    mark = len(server.lines)
    text = server.rules.read_text(encoding="utf-8")
    server.rules.write_text(
        text.replace("Anytown Borough Council", "Edited Council"), encoding="utf-8"
    )
    server.wait_for("rules reloaded", after=mark, timeout=15)
    assert server.request("/healthz")[1]["organisation"] == "Edited Council"


def test_invalid_rules_at_start_up_exit_with_the_problems_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    shutil.copy(ROOT / "rules.toml", bad)
    bad.write_text(
        bad.read_text(encoding="utf-8").replace('"Europe/London"', '"Mars/Olympus"'),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--rules", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "organisation.timezone: 'Mars/Olympus' is not a timezone" in result.stderr
    assert "Traceback" not in result.stderr
