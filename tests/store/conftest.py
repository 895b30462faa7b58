"""The store fixtures, one parameter per database: the contract suite runs on each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bot.store import Store, open_store


@pytest.fixture
def store_url(database: str) -> str:
    """Every test here runs once on SQLite and once on PostgreSQL (see tests/conftest.py)."""
    return database


@pytest.fixture
def make_store(store_url: str) -> Callable[[], Store]:
    """A new, unopened store on the same database each call, to test closing and reopening."""
    return lambda: open_store(store_url)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    async with make_store() as opened:
        yield opened
