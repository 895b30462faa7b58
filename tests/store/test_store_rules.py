"""Rules versions on every database: numbered, never changed, and one of two saves refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.store import Stale, Store

from .test_store_contract import NOW

FILES = {"rules.toml": '[organisation]\nname = "Anytown"\n', "responses/en/bio.txt": "Hello"}


async def test_versions_are_numbered_from_one_and_read_back_whole(store: Store) -> None:
    assert await store.latest_rules_version() == 0
    assert await store.rules_version() is None
    first = await store.add_rules_version(FILES, "the rules file", "first", "file", 0, NOW)
    edited = {**FILES, "responses/en/bio.txt": "Hello, we're open 9 to 5 — croeso"}
    second = await store.add_rules_version(
        edited, "Jo Smith", "new bio", "browser", 1, NOW + timedelta(minutes=1)
    )

    assert (first.id, second.id) == (1, 2)
    assert await store.latest_rules_version() == 2
    assert await store.rules_version() == second
    assert await store.rules_version(1) == first
    assert await store.rules_version(source="file") == first
    assert await store.rules_version(source="restore") is None
    assert await store.rules_version(9) is None
    assert [v.id for v in await store.rules_versions()] == [2, 1]
    assert [v.id for v in await store.rules_versions(limit=1)] == [2]
    got = await store.rules_version(2)
    assert got is not None and got.files == edited and got.created_at == NOW + timedelta(minutes=1)
    assert (got.author, got.note, got.source) == ("Jo Smith", "new bio", "browser")


async def test_a_save_based_on_an_old_version_is_refused_and_stores_nothing(store: Store) -> None:
    await store.add_rules_version(FILES, "a", "", "file", 0, NOW)
    await store.add_rules_version(FILES, "b", "", "browser", 1, NOW)
    with pytest.raises(Stale, match="changed since you opened them"):
        await store.add_rules_version(FILES, "c", "", "browser", 1, NOW)
    with pytest.raises(Stale):
        await store.add_rules_version(FILES, "c", "", "file", 0, NOW)  # a second first version
    assert await store.latest_rules_version() == 2


async def test_of_two_saves_at_once_from_two_connections_exactly_one_is_stored(
    make_store: Callable[[], Store],
) -> None:
    async with make_store() as one, make_store() as two:
        await one.add_rules_version(FILES, "a", "", "file", 0, NOW)
        results = await asyncio.gather(
            one.add_rules_version({**FILES, "x/en/a.txt": "1"}, "Jo", "", "browser", 1, NOW),
            two.add_rules_version({**FILES, "x/en/a.txt": "2"}, "Sam", "", "browser", 1, NOW),
            return_exceptions=True,
        )
        stale = [r for r in results if isinstance(r, Stale)]
        assert len(stale) == 1, results
        assert await one.latest_rules_version() == await two.latest_rules_version() == 2
