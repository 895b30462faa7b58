"""The benchmark's floors still run and do what their names say: a figure measured against a floor
that no longer decides (or no longer stores) would be a ratio of nothing."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import fresh_database, run, sql

ROOT = Path(__file__).resolve().parent.parent
EMERGENCY = "my neighbour has collapsed and is not breathing"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def started(*args: str) -> Iterator[int]:
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "floor.py"), str(port), *args]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _, err = proc.communicate(timeout=5)
                    pytest.fail(f"the floor did not start: {err.decode()[-2000:]}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def post(port: int, text: str, number: int) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"sender": f"bench-{number}", "text": text, "id": f"b-{number}"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/messages",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read())


@pytest.mark.parametrize("mode", ["", "decide", "reply"])
def test_the_sqlite_floor_stores_each_message_and_answers_as_its_mode_says(
    tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "floor.sqlite3"
    for port in started(str(path), "NORMAL", *([mode] if mode else [])):
        answers = [post(port, text, n) for n, text in enumerate(["hello", EMERGENCY])]
    assert [status for status, _ in answers] == [202, 202]
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT platform_id, text FROM messages ORDER BY id").fetchall()
    assert stored == [("b-0", "hello"), ("b-1", EMERGENCY)]
    replies = [body.get("reply") for _, body in answers]
    if mode == "":
        assert replies == [None, None]
    elif mode == "decide":  # each message decided: the emergency gets a reply of its own
        assert all(replies) and replies[0] != replies[1]
    else:  # one reply decided at the start, for every message
        assert replies[0] and replies[0] == replies[1]  # the emergency too: nothing decided


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from fresh_database()


@pytest.mark.parametrize("mode", ["", "decide"])
def test_the_postgres_floor_stores_each_message_and_decides_if_asked(
    postgres_url: str, mode: str
) -> None:
    for port in started(postgres_url, *([mode] if mode else [])):
        answers = [post(port, text, n) for n, text in enumerate(["hello", EMERGENCY])]
    assert [status for status, _ in answers] == [202, 202]
    rows = run(sql("SELECT platform_id FROM messages ORDER BY id", postgres_url))
    assert [r["platform_id"] for r in rows] == ["b-0", "b-1"]
    replies = [body.get("reply") for _, body in answers]
    if mode:
        assert all(replies) and replies[0] != replies[1]
    else:
        assert replies == [None, None]
