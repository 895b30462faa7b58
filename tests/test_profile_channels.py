"""The server keeps Bluesky's description and Mastodon's note current (bot.profile.keep_current):
at start, again when the rules change, and a channel that fails does not hold up the other; and
it publishes announcements on both."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path

import pytest

from bot import profile
from bot.channels.bluesky import BlueskyChannel
from bot.channels.mastodon import MastodonChannel
from bot.channels.posting import Poster
from bot.check import load
from bot.server import build_channels
from bot.store import Store
from bot.web import State
from tests.conftest import Clock, copy_rules, eventually, london
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.test_channel_bluesky import environment as bluesky_env
from tests.test_channel_mastodon import environment as mastodon_env


def texts(state: State, now: datetime) -> tuple[str, str]:
    return profile.bluesky_text(state.triage, now), profile.mastodon_text(state.triage, now)


AVATAR = {"$type": "blob", "ref": {"$link": "bafkreiavatar"}, "mimeType": "image/png", "size": 9}


async def test_the_server_keeps_both_profiles_current_and_follows_the_rules(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile, "CHECK_SECONDS", 0.05)
    state = State(load(copy_rules(tmp_path)), store, clock=Clock(london("2026-11-27 20:00")))
    async with FakeBluesky() as bluesky_fake, FakeMastodon() as mastodon_fake:
        bluesky_fake.set_profile({"displayName": "Anytown Council", "avatar": AVATAR})
        bluesky = BlueskyChannel(state, bluesky_env(bluesky_fake, BLUESKY_POLL_SECONDS="3600"))
        mastodon = MastodonChannel(state, mastodon_env(mastodon_fake, MASTODON_POLL_SECONDS="3600"))
        starts: list[Awaitable[None]] = [bluesky.start(), mastodon.start()]
        await asyncio.gather(*starts)
        await asyncio.wait_for(mastodon.ready.wait(), 10)
        mastodon_fake.fail_next("update_credentials", "503")  # the first try fails
        setters = profile.setters({"bluesky": bluesky, "mastodon": mastodon})
        assert sorted(setters) == ["bluesky", "mastodon"]
        keeping = asyncio.create_task(profile.keep_current(state, setters))
        try:

            def described() -> str:
                return str((bluesky_fake.profile_record or {}).get("description", ""))

            now = state.clock()
            before = (
                profile.bluesky_text(state.triage, now),
                profile.mastodon_text(state.triage, now),
            )
            assert all(text.startswith("Anytown Borough Council. Staffed") for text in before)
            await eventually(lambda: described() == before[0])
            await eventually(lambda: mastodon_fake.note == before[1])  # tried again after a 503
            assert bluesky_fake.profile_record is not None
            assert bluesky_fake.profile_record["avatar"] == AVATAR
            writes = len(bluesky_fake.profile_writes)
            assert writes == 1  # not written again while nothing changed

            (tmp_path / "b").mkdir()
            later = copy_rules(
                tmp_path / "b", replace={'monday = "09:00-17:00"': 'monday = "10:00-17:00"'}
            )
            state.triage = load(later)  # what a rules change does
            after = (
                profile.bluesky_text(state.triage, now),
                profile.mastodon_text(state.triage, now),
            )
            assert after[0] != before[0] and after[1] != before[1]
            await eventually(lambda: described() == after[0])
            await eventually(lambda: mastodon_fake.note == after[1])
            assert all(set(update) == {"note"} for update in mastodon_fake.credential_updates)
            assert bluesky_fake.profile_record["displayName"] == "Anytown Council"
        finally:
            keeping.cancel()
            await asyncio.gather(keeping, return_exceptions=True)
            await bluesky.stop()
            await mastodon.stop()


def test_profile_show_says_bluesky_and_mastodon_are_set_by_sync(tmp_path: Path) -> None:
    lines = profile.show(load(copy_rules(tmp_path)), london("2026-11-27 20:00"))
    text = "\n".join(lines)
    assert "bluesky: set by `profile sync` (the profile's description)" in text
    assert "mastodon: set by `profile sync` (the profile's note)" in text
    at = lines.index("bluesky: set by `profile sync` (the profile's description)")
    assert lines[at + 1].strip().startswith("Anytown Borough Council. Staffed")


def test_the_server_publishes_and_keeps_profiles_on_both(state: State) -> None:
    env = {
        "BLUESKY_HANDLE": "anytown.gov.uk",
        "BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop",
        "MASTODON_API_BASE_URL": "https://social.example.gov.uk",
        "MASTODON_ACCESS_TOKEN": "token",
    }
    channels = build_channels(state, env)
    posters = {n for n, c in channels.items() if c.capabilities.posts and isinstance(c, Poster)}
    assert posters == {"bluesky", "mastodon"}
    assert all(callable(getattr(channels[n], "find", None)) for n in posters)
    assert sorted(profile.setters(channels)) == ["bluesky", "mastodon"]
