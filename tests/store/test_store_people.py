"""People, sessions and failed logins, on every database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.errors import HoldingReplyError
from bot.store import Store

from .test_store_contract import NOW

HOUR = timedelta(hours=1)


async def test_users_are_added_with_their_teams_and_found_by_name(store: Store) -> None:
    sam = await store.add_user("sam", "Sam Jones", "admin", "scrypt$hash-1", [], NOW)
    jo = await store.add_user(
        "jo", "Jo Bloggs", "agent", "scrypt$hash-2", ["waste", "parking"], NOW
    )

    assert (sam.username, sam.display_name, sam.role, sam.teams) == (
        "sam",
        "Sam Jones",
        "admin",
        (),
    )
    assert jo.teams == ("parking", "waste") and jo.active and jo.created_at == NOW
    assert [u.username for u in await store.users()] == ["jo", "sam"]
    assert await store.user("jo") == (jo, "scrypt$hash-2")
    assert await store.user_by_id(sam.id) == sam
    assert await store.user("nobody") is None
    with pytest.raises(HoldingReplyError, match="already a user called 'jo'"):
        await store.add_user("jo", "Another Jo", "agent", "x", [], NOW)

    await store.set_teams(jo.id, ["housing"])
    assert (await store.user_by_id(jo.id)).teams == ("housing",)  # type: ignore[union-attr]


async def test_a_session_lasts_until_it_expires_ends_or_the_user_is_disabled(
    store: Store,
) -> None:
    jo = await store.add_user("jo", "Jo", "agent", "h", ["waste"], NOW)
    await store.start_session("token-a", jo.id, "csrf-a", NOW, NOW + 12 * HOUR)
    await store.start_session("token-b", jo.id, "csrf-b", NOW, NOW + 12 * HOUR)

    assert await store.session("token-a", NOW + HOUR) == (jo, "csrf-a")
    assert await store.session("token-a", NOW + 12 * HOUR) is None  # expired
    assert await store.session("unknown", NOW) is None
    await store.end_session("token-a")
    assert await store.session("token-a", NOW + HOUR) is None
    assert await store.session("token-b", NOW + HOUR) is not None

    await store.set_password(jo.id, "new-hash")  # a reset ends every session
    assert await store.session("token-b", NOW + HOUR) is None
    await store.start_session("token-c", jo.id, "csrf-c", NOW, NOW + 12 * HOUR)
    assert await store.disable_user(jo.id, NOW + HOUR)
    assert not await store.disable_user(jo.id, NOW + HOUR)
    assert await store.session("token-c", NOW + HOUR) is None
    assert (await store.user("jo"))[0].disabled_at == NOW + HOUR  # type: ignore[index]


async def test_failed_logins_are_counted_in_a_window_and_forgotten(store: Store) -> None:
    for minutes in (0, 5, 10):
        await store.record_login_failure("user:jo", NOW + timedelta(minutes=minutes))
    await store.record_login_failure("address:10.0.0.1", NOW)

    assert await store.login_failures("user:jo", NOW - HOUR) == 3
    assert await store.login_failures("user:jo", NOW + timedelta(minutes=1)) == 2
    await store.clear_login_failures("user:jo", NOW - HOUR)
    assert await store.login_failures("user:jo", NOW - HOUR) == 0
    assert await store.login_failures("address:10.0.0.1", NOW - HOUR) == 1
