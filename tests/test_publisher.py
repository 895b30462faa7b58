"""Publishing announcements on every database: real channels (python-telegram-bot, tweepy)
against the local fake platforms, two publishers as two processes would be, a settable clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.announcement import AnnouncementError
from bot.announcements import NotWritten, approve, compose
from bot.channels.messenger import MessengerChannel
from bot.channels.meta import MetaSettings
from bot.channels.telegram import TelegramChannel, TelegramSettings
from bot.channels.x import XChannel
from bot.check import load
from bot.publisher import LEASE, Publisher
from bot.store import Store, open_store
from bot.web import State
from tests.conftest import Clock, copy_rules, london
from tests.fakes.meta import PAGE_ID, FakeMeta
from tests.fakes.telegram import FakeTelegram
from tests.fakes.x import FakeX
from tests.test_fake_x import SECRETS

NEWS = -1001234567890
RULES = """
[alerts]
default = ["email:comms@anytown.gov.uk"]
"""
WRITTEN = london("2026-10-20 10:00")


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    async with open_store(database) as opened:
        yield opened


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        fake.add_channel(NEWS, "anytown_news", "Anytown Council news")
        yield fake


def make_state(tmp_path: Path, store: Store, clock: Clock, extra: str = "") -> State:
    return State(load(copy_rules(tmp_path, RULES + extra)), store, clock=clock)


async def telegram_channel(fake: FakeTelegram, state: State) -> TelegramChannel:
    env = {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_WEBHOOK_SECRET": "s3cret",
        "TELEGRAM_API_URL": fake.base_url,
        "TELEGRAM_ANNOUNCE_CHAT": str(NEWS),
    }
    channel = TelegramChannel(state, TelegramSettings(env))
    await channel.start()
    await asyncio.wait_for(channel.ready.wait(), 10)
    return channel


async def schedule(state: State, when: str, channels: str = "telegram", by: str = "amy") -> int:
    new = compose(
        state.triage.rules, when=when, channels=channels, text="Closed on Monday.", by=by,
        now=WRITTEN,
    )  # fmt: skip
    return await state.store.add_announcement(new, WRITTEN)


def posted(fake: FakeTelegram) -> list[str]:
    return [m["text"] for m in fake.sent_messages if m["chat"]["id"] == NEWS]


async def states(store: Store, aid: int) -> list[str]:
    found = await store.announcement(aid)
    assert found is not None
    return [p.state for p in found.posts]


async def test_two_publishers_publish_each_once(
    tmp_path: Path, database: str, store: Store, telegram: FakeTelegram
) -> None:
    clock = Clock(london("2026-10-26 09:00"))
    state = make_state(tmp_path, store, clock)
    aids = [await schedule(state, "2026-10-26T09:00") for _ in range(3)]
    async with open_store(database) as second_store:  # another process, its own connections
        other = State(state.triage, second_store, clock=clock)
        first, second = (
            await telegram_channel(telegram, state),
            await telegram_channel(telegram, other),
        )
        try:
            counts = await asyncio.gather(
                Publisher(state, {"telegram": first}, "a").once(),
                Publisher(other, {"telegram": second}, "b").once(),
            )
        finally:
            await first.stop()
            await second.stop()
    assert sum(counts) == 3
    assert posted(telegram) == ["Closed on Monday."] * 3
    for aid in aids:
        found = await store.announcement(aid)
        assert found is not None
        [post] = found.posts
        assert post.state == "published"
        assert post.link == f"https://t.me/anytown_news/{post.platform_id}"


async def test_a_post_at_0130_on_the_night_the_clocks_go_back_goes_once_at_that_instant(
    tmp_path: Path, store: Store, telegram: FakeTelegram
) -> None:
    clock = Clock(WRITTEN)
    state = make_state(tmp_path, store, clock)
    # 01:30 happens twice in London on 25 October 2026: the writer must say which.
    with pytest.raises(NotWritten) as refused:
        await schedule(state, "2026-10-25T01:30")
    assert "happens twice" in str(refused.value)
    assert "2026-10-25T01:30+01:00" in str(refused.value)
    assert "2026-10-25T01:30+00:00" in str(refused.value)
    aid = await schedule(state, "2026-10-25T01:30+00:00")  # the second 01:30, after the change
    found = await store.announcement(aid)
    assert found is not None
    assert (found.due_at, found.wall_time) == (datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
                                               "2026-10-25T01:30")  # fmt: skip
    channel = await telegram_channel(telegram, state)
    publisher = Publisher(state, {"telegram": channel}, "a")
    try:
        clock.now = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 01:30
        assert await publisher.once() == 0
        clock.now = datetime(2026, 10, 25, 1, 29, 59, tzinfo=UTC)
        assert await publisher.once() == 0
        clock.now = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
        assert await publisher.once() == 1
        clock.now += timedelta(hours=1)
        assert await publisher.once() == 0
    finally:
        await channel.stop()
    assert posted(telegram) == ["Closed on Monday."]


async def test_suspend_stops_what_is_due_until_a_person_publishes_it(
    tmp_path: Path, store: Store, telegram: FakeTelegram
) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00")
    assert await store.suspend_announcements("National mourning", "amy", london("2026-11-01 20:00"))
    channel = await telegram_channel(telegram, state)
    publisher = Publisher(state, {"telegram": channel}, "a")
    try:
        assert await publisher.once() == 0
        clock.now += timedelta(hours=5)  # longer than the late limit: held, not missed
        assert await publisher.once() == 0
        assert await store.resume_announcements("amy", clock.now) == 1
        assert await publisher.once() == 0
        assert await states(store, aid) == ["held"]
        assert await store.republish_announcement(aid, "bob", clock.now) == ["telegram"]
        assert await publisher.once() == 1
    finally:
        await channel.stop()
    assert posted(telegram) == ["Closed on Monday."]
    assert await states(store, aid) == ["published"]


async def test_a_crash_after_the_platform_accepted_is_unknown_never_a_second_post(
    tmp_path: Path, store: Store, telegram: FakeTelegram
) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00")
    telegram.hang_after("sendMessage")  # Telegram posts it; the answer never arrives
    channel = await telegram_channel(telegram, state)
    try:
        dying = asyncio.create_task(Publisher(state, {"telegram": channel}, "a").once())
        async with asyncio.timeout(10):
            while not posted(telegram):
                await asyncio.sleep(0.01)
        dying.cancel()  # the process dies before it records what Telegram did
        await asyncio.gather(dying, return_exceptions=True)
        assert await states(store, aid) == ["publishing"]

        survivor = Publisher(state, {"telegram": channel}, "b")
        assert await survivor.once() == 0  # its lease still runs: nobody touches it
        clock.now += LEASE
        assert await survivor.once() == 0
        clock.now += LEASE
        assert await survivor.once() == 0
    finally:
        await channel.stop()
    assert posted(telegram) == ["Closed on Monday."]  # once
    assert await states(store, aid) == ["unknown"]
    [alert] = await store.deliveries("pending")
    assert (alert.channel, alert.recipient) == ("email", "comms@anytown.gov.uk")
    assert f"announcement {aid}: unknown" in alert.text


async def test_a_post_later_than_the_late_limit_is_missed_and_the_team_told(
    tmp_path: Path, store: Store, telegram: FakeTelegram
) -> None:
    clock = Clock(london("2026-11-02 11:01"))  # the server was down from before 09:00
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00")
    channel = await telegram_channel(telegram, state)
    try:
        assert await Publisher(state, {"telegram": channel}, "a").once() == 0
    finally:
        await channel.stop()
    assert posted(telegram) == []
    assert await states(store, aid) == ["missed"]
    [alert] = await store.deliveries("pending")
    assert f"announcement {aid}: missed" in alert.text


async def test_an_announcement_on_x_is_a_post_with_its_link(tmp_path: Path, store: Store) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00", "x")
    async with FakeX(now=clock) as fake:
        channel = XChannel(state, {**SECRETS, "X_API_URL": fake.url, "X_POLL_SECONDS": "60"})
        await channel.start()
        await asyncio.wait_for(channel.ready.wait(), 10)
        try:
            assert await Publisher(state, {"x": channel}, "a").once() == 1
        finally:
            await channel.stop()
        [tweet] = fake.posted
    assert tweet["text"] == "Closed on Monday." and "in_reply_to_user_id" not in tweet
    found = await store.announcement(aid)
    assert found is not None
    assert found.posts[0].link == f"https://x.com/{channel.username}/status/{tweet['id']}"


async def test_a_refusal_is_failed_with_the_reason(
    tmp_path: Path, store: Store, telegram: FakeTelegram
) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00")
    telegram.fail_next("sendMessage", "403-kicked")
    channel = await telegram_channel(telegram, state)
    try:
        assert await Publisher(state, {"telegram": channel}, "a").once() == 0
    finally:
        await channel.stop()
    found = await store.announcement(aid)
    assert found is not None
    [post] = found.posts
    assert post.state == "failed" and post.error and "administrator" in post.error


async def test_with_approval_a_second_admin_must_approve(
    tmp_path: Path, store: Store, telegram: FakeTelegram
) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    state = make_state(tmp_path, store, clock, "\n[announcements]\napproval = true\n")
    for name, role in (("amy", "admin"), ("bob", "admin"), ("cal", "agent")):
        await store.add_user(name, name.title(), role, "x", (), WRITTEN)
    aid = await schedule(state, "2026-11-02T09:00", by="amy")
    assert await states(store, aid) == ["approval"]
    channel = await telegram_channel(telegram, state)
    publisher = Publisher(state, {"telegram": channel}, "a")
    try:
        assert await publisher.once() == 0
        with pytest.raises(AnnouncementError, match="a different admin"):
            await approve(store, aid, "amy", clock.now)
        with pytest.raises(AnnouncementError, match="not an admin"):
            await approve(store, aid, "cal", clock.now)
        await approve(store, aid, "bob", clock.now)
        assert await publisher.once() == 1
    finally:
        await channel.stop()
    log = [(e.who, e.action) for e in await store.announcement_log(aid)]
    assert log[:2] == [("amy", "wrote"), ("bob", "approved")]
    assert ("publisher", "published") in log


async def test_an_announcement_on_the_facebook_page_is_a_feed_post(
    tmp_path: Path, store: Store
) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00", "facebook,telegram")
    async with FakeMeta(now=clock) as fake:
        channel = MessengerChannel(state, MetaSettings(fake.env("facebook")), "facebook")
        await channel.start()
        try:
            # Telegram is not set up on this server: that channel fails, saying so.
            assert await Publisher(state, {"facebook": channel}, "a").once() == 1
        finally:
            await channel.stop()
        [sent] = fake.sent
    assert (sent["path"], sent["body"]) == (f"{PAGE_ID}/feed", {"message": "Closed on Monday."})
    found = await store.announcement(aid)
    assert found is not None
    facebook, telegram = found.posts
    assert facebook.state == "published" and facebook.platform_id
    assert facebook.link == f"https://www.facebook.com/{facebook.platform_id}"
    assert telegram.state == "failed" and telegram.error and "not set up" in telegram.error
