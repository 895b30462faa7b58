"""The store fixtures, one parameter per database: the contract suite runs on each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.store import Store, open_store
from tests.postgres import fresh_database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    backend: str = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
    elif backend == "postgresql":
        yield from fresh_database()
    else:
        raise AssertionError(f"No test database for the backend {backend!r}")


@pytest.fixture
def make_store(store_url: str) -> Callable[[], Store]:
    """A new, unopened store on the same database each call, to test closing and reopening."""
    return lambda: open_store(store_url)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    async with make_store() as opened:
        yield opened
