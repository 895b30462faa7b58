"""Bluesky's own account: announcements posted, found again after a crash, and the profile's
description kept current, through the real atproto SDK against the fake PDS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.announcements import compose
from bot.channels import MaybePosted, TryLater, Undeliverable
from bot.channels import bluesky as bluesky_module
from bot.channels.bluesky import BlueskyChannel
from bot.check import load
from bot.profile import bluesky_text
from bot.publisher import Publisher
from bot.store import open_store
from bot.web import State
from tests.conftest import Clock, copy_rules, london
from tests.fakes.bluesky import ME, FakeBluesky
from tests.test_channel_bluesky import environment
from tests.test_cli import run

AVATAR = {
    "$type": "blob",
    "ref": {"$link": "bafkreiavatar0000000000000000000000000000000000000000000"},
    "mimeType": "image/jpeg",
    "size": 48213,
}
NEW_AVATAR = {**AVATAR, "ref": {"$link": "bafkreinewavatar00000000000000000000000000000000000000"}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky() as running:
        yield running


@pytest.fixture
async def channel(fake: FakeBluesky, state: State) -> AsyncIterator[BlueskyChannel]:
    channel = BlueskyChannel(state, environment(fake, BLUESKY_POLL_SECONDS="3600"))
    await channel.start()
    await asyncio.wait_for(channel.ready.wait(), 10)
    yield channel
    await channel.stop()


def rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


async def test_an_announcement_is_a_post_with_clickable_links_and_its_bsky_app_link(
    fake: FakeBluesky, channel: BlueskyChannel
) -> None:
    text = "The tip is closed on Monday 🏴󠁧󠁢󠁷󠁬󠁳󠁿. Opening times: https://anytown.gov.uk/tip"
    posted = await channel.post(text)
    [record] = fake.posted
    assert record["text"] == text and "reply" not in record
    assert record["$type"] == "app.bsky.feed.post" and record["langs"] == ["en"]
    [facet] = record["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert text.encode()[start:end] == b"https://anytown.gov.uk/tip"
    assert facet["features"] == [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://anytown.gov.uk/tip"}
    ]
    assert posted.platform_id == record["uri"]
    assert posted.link == f"https://bsky.app/profile/anytown.gov.uk/post/{rkey(record['uri'])}"


async def test_a_refusal_says_why_in_plain_words(
    fake: FakeBluesky, channel: BlueskyChannel
) -> None:
    with pytest.raises(Undeliverable) as refused:
        await channel.post("Road closures this week. " * 15)  # 375 characters
    assert "longer than Bluesky's 300 characters" in str(refused.value)
    assert fake.posted == []


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_a_rate_limit_or_a_server_error_is_tried_later(
    fake: FakeBluesky, channel: BlueskyChannel, kind: str
) -> None:
    fake.fail_next("com.atproto.repo.createRecord", kind)
    with pytest.raises(TryLater) as later:
        await channel.post("Closed on Monday.")
    if kind == "429":
        assert later.value.retry_after is not None and 1 <= later.value.retry_after <= 5
    assert fake.posted == []
    await channel.post("Closed on Monday.")  # and it then goes
    assert [r["text"] for r in fake.posted] == ["Closed on Monday."]


async def test_no_answer_after_the_post_was_sent_is_maybe_posted(
    fake: FakeBluesky, channel: BlueskyChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bluesky_module, "REQUEST_SECONDS", 0.5)
    fake.hang_after("com.atproto.repo.createRecord")
    with pytest.raises(MaybePosted, match="may be on the account"):
        await channel.post("Closed on Monday.")
    assert [r["text"] for r in fake.posted] == ["Closed on Monday."]  # it was posted


async def test_find_returns_the_post_made_since_or_none(
    fake: FakeBluesky, channel: BlueskyChannel
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await channel.post("Closed on Monday.")
    posted = await channel.post("Bins are collected a day late this week.")
    await channel.post("Closed on Tuesday.")
    found = await channel.find("Bins are collected a day late this week.", before)
    assert found == posted
    assert await channel.find("Bins are collected a day late", before) is None  # not the same
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await channel.find("Bins are collected a day late this week.", later) is None
    [call, *_] = fake.requests_to("com.atproto.repo.listRecords")
    assert ("repo", ME) in call.query and ("collection", "app.bsky.feed.post") in call.query


async def test_find_looks_past_the_first_page(fake: FakeBluesky, channel: BlueskyChannel) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = await channel.post("The first one.")
    for i in range(120):
        fake.add_post(f"filler {i}", author=fake.me, reason="")
    assert await channel.find("The first one.", before) == first
    assert len(fake.requests_to("com.atproto.repo.listRecords")) == 2


async def test_the_description_changes_and_an_avatar_changed_meanwhile_is_kept(
    fake: FakeBluesky, channel: BlueskyChannel
) -> None:
    fake.set_profile(
        {
            "displayName": "Anytown Council",
            "description": "Old hours.",
            "avatar": AVATAR,
            "pinnedPost": {"uri": f"at://{ME}/app.bsky.feed.post/3l0", "cid": "bafyreipin"},
            "someFieldFromTheFuture": {"kept": True},
        }
    )
    fake.edit_after_next_read(avatar=NEW_AVATAR)  # someone changes the avatar in the app
    assert await channel.set_description("Staffed Mon–Fri 9am–5pm. Emergencies: 999.") is True
    assert fake.profile_record == {
        "$type": "app.bsky.actor.profile",
        "displayName": "Anytown Council",
        "description": "Staffed Mon–Fri 9am–5pm. Emergencies: 999.",
        "avatar": NEW_AVATAR,
        "pinnedPost": {"uri": f"at://{ME}/app.bsky.feed.post/3l0", "cid": "bafyreipin"},
        "someFieldFromTheFuture": {"kept": True},
    }
    puts = fake.requests_to("com.atproto.repo.putRecord")
    assert [p.status for p in puts] == [400, 200]  # the stale write was refused, not forced
    [applied] = fake.profile_writes
    assert applied["swapRecord"] and applied["rkey"] == "self"
    # Already current: read, nothing written.
    assert await channel.set_description("Staffed Mon–Fri 9am–5pm. Emergencies: 999.") is False
    assert len(fake.requests_to("com.atproto.repo.putRecord")) == 2


async def test_an_account_without_a_profile_gets_one_with_only_a_description(
    fake: FakeBluesky, channel: BlueskyChannel
) -> None:
    assert await channel.set_description("Staffed Mon–Fri.") is True
    assert fake.profile_record == {
        "$type": "app.bsky.actor.profile",
        "description": "Staffed Mon–Fri.",
    }
    [applied] = fake.profile_writes
    assert "swapRecord" in applied and applied["swapRecord"] is None  # must not exist yet


async def test_profile_sync_sets_blueskys_description_from_the_command_line(
    tmp_path: Path, fake: FakeBluesky
) -> None:
    fake.set_profile({"displayName": "Anytown Council", "avatar": AVATAR})
    rules = copy_rules(tmp_path)
    env = {**environment(fake), "TELEGRAM_BOT_TOKEN": ""}
    result = await asyncio.to_thread(run, "profile", "sync", "--rules", str(rules), env=env)
    assert result.returncode == 0, result.stderr
    assert "Bluesky: profile description set." in result.stdout
    assert fake.profile_record is not None
    expected = bluesky_text(load(rules), datetime.now(UTC))
    assert fake.profile_record["description"] == expected
    assert expected.startswith("Anytown Borough Council. Staffed")
    assert fake.profile_record["avatar"] == AVATAR
    assert fake.profile_record["displayName"] == "Anytown Council"
    assert fake.password not in result.stdout + result.stderr


async def test_an_announcement_to_bluesky_is_published_once_with_its_link(
    tmp_path: Path, database: str, fake: FakeBluesky
) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    async with open_store(database) as store:
        state = State(load(copy_rules(tmp_path)), store, clock=clock)
        new = compose(
            state.triage.rules, when="2026-11-02T09:00", channels="bluesky",
            text="Closed on Monday.", by="amy", now=london("2026-10-20 10:00"),
        )  # fmt: skip
        aid = await store.add_announcement(new, london("2026-10-20 10:00"))
        channel = BlueskyChannel(state, environment(fake, BLUESKY_POLL_SECONDS="3600"))
        await channel.start()
        try:
            publisher = Publisher(state, {"bluesky": channel}, "a")
            assert await publisher.once() == 1
            assert await publisher.once() == 0
        finally:
            await channel.stop()
        found = await store.announcement(aid)
    assert found is not None
    [record] = fake.posted
    [post] = found.posts
    assert (post.state, post.platform_id) == ("published", record["uri"])
    assert post.link == f"https://bsky.app/profile/anytown.gov.uk/post/{rkey(record['uri'])}"
