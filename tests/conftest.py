"""Shared fixtures, and a guard: no test may open a connection to anything but this machine."""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.check import load
from bot.store import Store, open_store
from bot.triage import Triage
from bot.web import State
from tests.postgres import fresh_database

ROOT = Path(__file__).resolve().parent.parent
LONDON = ZoneInfo("Europe/London")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # a Unix socket path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded(real: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise OSError(f"test tried to reach {address!r}: tests may only use loopback")
        return real(self, address)

    return connect


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and not _is_local((name, 0)):
        raise socket.gaierror(
            socket.EAI_NONAME, f"test tried to resolve {name!r}: tests may only use loopback"
        )
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly, at once, on any connection (or name lookup) that leaves this machine."""
    monkeypatch.setattr(socket.socket, "connect", _guarded(_real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded(_real_connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


def london(text: str) -> datetime:
    """A London wall time as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A DATABASE_URL for an empty database: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    else:
        yield from fresh_database()


@pytest.fixture(scope="session")
def triage() -> Triage:
    return load(ROOT / "rules.toml")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path}/test.sqlite3") as opened:
        yield opened


class Clock:
    """A settable clock for the server, so tests choose what time it is."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(london("2026-11-27 20:00:00"))  # a Friday evening, out of hours


@pytest.fixture
def state(triage: Triage, store: Store, clock: Clock) -> State:
    return State(triage, store, clock=clock)


def copy_rules(tmp_path: Path, extra: str = "", replace: dict[str, str] | None = None) -> Path:
    """The shipped rules.toml in tmp_path, still using the shipped templates, with edits."""
    text = (ROOT / "rules.toml").read_text(encoding="utf-8")
    text = text.replace(
        'languages = ["en"]', f'languages = ["en"]\nresponses = "{ROOT / "responses"}"'
    )
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    path = tmp_path / "rules.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


async def eventually(check: Callable[[], bool | Awaitable[bool]], seconds: float = 10.0) -> None:
    """Wait until `check` (plain or async) is true; a TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            done = check()
            if await done if inspect.isawaitable(done) else done:
                return
            await asyncio.sleep(0.02)
