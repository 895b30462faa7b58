"""Passwords, sessions and the limit on guessing, with a real store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.auth import (
    MAX_FAILURES,
    TooManyAttempts,
    check_new_password,
    check_password,
    csrf_ok,
    hash_password,
    log_in,
    session_for,
    token_hash,
)
from bot.errors import HoldingReplyError
from bot.store import Store
from tests.conftest import london

NOW = london("2026-11-26 09:00:00")
PASSWORD = "correct horse battery staple"


def test_a_password_is_stored_only_as_a_salted_scrypt_hash() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two  # salted
    assert PASSWORD not in one and one.startswith("scrypt$16384$8$1$")
    assert check_password(PASSWORD, one) and check_password(PASSWORD, two)
    assert not check_password(PASSWORD + "!", one)
    assert not check_password(PASSWORD, "plain-text")
    assert not check_password(PASSWORD, "scrypt$1$2$3$!!$!!")


@pytest.mark.parametrize(
    ("password", "says"),
    [("short one", "at least 12"), ("jo-is-my-password", "must not contain the username")],
)
def test_weak_passwords_are_refused(password: str, says: str) -> None:
    with pytest.raises(HoldingReplyError, match=says):
        check_new_password(password, "jo")


async def test_logging_in_makes_a_session_whose_token_is_stored_only_hashed(store: Store) -> None:
    jo = await store.add_user("jo", "Jo", "agent", hash_password(PASSWORD), ["waste"], NOW)
    session = await log_in(store, "jo", PASSWORD, "10.0.0.1", NOW)
    assert session is not None and session.user == jo
    assert await store.session(session.token, NOW) is None  # the raw token is not a key
    assert await store.session(token_hash(session.token), NOW) == (jo, session.csrf)
    again = await session_for(store, session.token, NOW + timedelta(hours=11))
    assert again is not None and again.user == jo
    assert await session_for(store, session.token, NOW + timedelta(hours=12)) is None
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, session.csrf[:-1])


async def test_wrong_passwords_unknown_users_and_disabled_users_get_nothing(store: Store) -> None:
    jo = await store.add_user("jo", "Jo", "agent", hash_password(PASSWORD), [], NOW)
    assert await log_in(store, "jo", "wrong password", "10.0.0.1", NOW) is None
    assert await log_in(store, "nobody", PASSWORD, "10.0.0.2", NOW) is None
    await store.disable_user(jo.id, NOW)
    assert await log_in(store, "jo", PASSWORD, "10.0.0.3", NOW) is None


async def test_guessing_is_stopped_per_username_and_per_address(store: Store) -> None:
    await store.add_user("jo", "Jo", "agent", hash_password(PASSWORD), [], NOW)
    for i in range(MAX_FAILURES):
        assert await log_in(store, "jo", f"guess {i}", f"10.0.0.{i}", NOW) is None
    with pytest.raises(TooManyAttempts):  # even the right password, from a new address
        await log_in(store, "jo", PASSWORD, "10.9.9.9", NOW + timedelta(minutes=1))
    assert await log_in(store, "jo", PASSWORD, "10.9.9.9", NOW + timedelta(minutes=16))

    for i in range(MAX_FAILURES):  # one address trying many usernames
        await log_in(store, f"user{i}", "guess", "10.6.6.6", NOW + timedelta(minutes=20))
    with pytest.raises(TooManyAttempts):
        await log_in(store, "jo", PASSWORD, "10.6.6.6", NOW + timedelta(minutes=21))
