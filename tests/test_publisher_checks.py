"""A post whose process died after the platform took it: looked for on the account (X, the
Facebook Page) and published once, never posted a second time; unknown where the channel cannot
tell (Telegram, in tests/test_publisher.py). Real channels against the fake platforms, on every
database, the process's death being the publishing task cancelled mid-call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.channels.messenger import MessengerChannel
from bot.channels.meta import MetaSettings
from bot.channels.posting import same_text
from bot.channels.x import XChannel
from bot.publisher import ATTEMPTS, LEASE, RETRY, Publisher
from bot.store import Store, open_store
from bot.web import State
from tests.conftest import Clock, london
from tests.fakes.meta import FakeMeta
from tests.fakes.x import FakeX
from tests.test_fake_x import SECRETS
from tests.test_publisher import make_state, schedule, states

TEXT = "Closed on Monday."


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    async with open_store(database) as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock(london("2026-11-02 09:00"))


@pytest.fixture
async def x(clock: Clock) -> AsyncIterator[FakeX]:
    async with FakeX(now=clock) as fake:
        yield fake


@pytest.fixture
async def meta(clock: Clock) -> AsyncIterator[FakeMeta]:
    async with FakeMeta(now=clock) as fake:
        yield fake


async def x_channel(fake: FakeX, state: State) -> XChannel:
    channel = XChannel(state, {**SECRETS, "X_API_URL": fake.url, "X_POLL_SECONDS": "60"})
    await channel.start()
    await asyncio.wait_for(channel.ready.wait(), 10)
    return channel


async def facebook_channel(fake: FakeMeta, state: State) -> MessengerChannel:
    channel = MessengerChannel(state, MetaSettings(fake.env("facebook")), "facebook")
    await channel.start()
    return channel


async def die_after_the_platform_took_it(publisher: Publisher, posted: Callable[[], int]) -> None:
    """Publish until the platform has the post, then kill the process before it records it."""
    dying = asyncio.create_task(publisher.once())
    async with asyncio.timeout(10):
        while not posted():
            await asyncio.sleep(0.01)
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)


async def test_x_a_crash_after_x_took_the_post_is_found_there_not_posted_again(
    tmp_path: Path, store: Store, clock: Clock, x: FakeX
) -> None:
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00", "x")
    x.hang_after("create_tweet")
    channel = await x_channel(x, state)
    try:
        await die_after_the_platform_took_it(Publisher(state, {"x": channel}, "a"),
                                             lambda: len(x.posted))  # fmt: skip
        assert await states(store, aid) == ["publishing"]
        survivor = Publisher(state, {"x": channel}, "b")
        assert await survivor.once() == 0  # its lease still runs: nobody looks yet
        assert x.requests_to("user_tweets") == []
        clock.now += LEASE
        assert await survivor.once() == 0
        clock.now += LEASE
        assert await survivor.once() == 0
    finally:
        await channel.stop()
    [tweet] = x.posted  # once
    assert tweet["text"] == TEXT
    found = await store.announcement(aid)
    assert found is not None
    [post] = found.posts
    assert (post.state, post.platform_id, post.found_by_check) == ("published", tweet["id"], True)
    assert post.link == f"https://x.com/{channel.username}/status/{tweet['id']}"
    log = [(e.action, e.detail or "") for e in await store.announcement_log(aid)]
    assert ("published", f"found on the account by a check after the server stopped: "
            f"{post.link}") in log  # fmt: skip
    assert await store.deliveries("pending") == []  # nobody needs to look
    [asked] = x.requests_to("user_tweets")
    assert asked.query["exclude"] == "replies,retweets" and "start_time" in asked.query


async def test_facebook_a_crash_after_meta_took_the_post_is_found_there_not_posted_again(
    tmp_path: Path, store: Store, clock: Clock, meta: FakeMeta
) -> None:
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00", "facebook")
    meta.hang_after_post()
    channel = await facebook_channel(meta, state)
    try:
        await die_after_the_platform_took_it(Publisher(state, {"facebook": channel}, "a"),
                                             lambda: len(meta.page_posts))  # fmt: skip
        clock.now += LEASE
        assert await Publisher(state, {"facebook": channel}, "b").once() == 0
    finally:
        await channel.stop()
    [on_page] = meta.page_posts  # once
    assert on_page["message"] == TEXT
    found = await store.announcement(aid)
    assert found is not None
    [post] = found.posts
    assert (post.state, post.platform_id, post.link) == (
        "published", on_page["id"], on_page["permalink_url"]
    )  # fmt: skip


async def test_a_post_the_platform_never_took_is_published_once_after_the_check(
    tmp_path: Path, store: Store, clock: Clock, x: FakeX, meta: FakeMeta
) -> None:
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00", "x,facebook")
    # Another post with the same text, from before this one was taken: not this one.
    meta.page_posts.append({"id": "old_1", "message": TEXT, "permalink_url": "https://fb/old",
                            "created_time": "2026-11-01T09:00:00+0000"})  # fmt: skip
    # A process takes both posts and dies before calling either platform.
    taken = await store.claim_posts("dead", clock.now, LEASE, timedelta(hours=2))
    assert len(taken) == 2
    posters: dict[str, XChannel | MessengerChannel] = {
        "x": await x_channel(x, state),
        "facebook": await facebook_channel(meta, state),
    }
    try:
        clock.now += LEASE
        assert await Publisher(state, posters, "b").once() == 2  # looked, not there: published
        clock.now += LEASE
        assert await Publisher(state, posters, "b").once() == 0
    finally:
        for channel in posters.values():
            await channel.stop()
    assert [t["text"] for t in x.posted] == [TEXT]
    assert [p["message"] for p in meta.page_posts] == [TEXT, TEXT]  # the old one, and this one
    found = await store.announcement(aid)
    assert found is not None
    assert [(p.channel, p.state, p.attempts, p.found_by_check) for p in found.posts] == [
        ("facebook", "published", 2, False), ("x", "published", 2, False),
    ]  # fmt: skip
    log = [(e.action, e.channel) for e in await store.announcement_log(aid)]
    assert log.count(("checking the account", "x")) == 1
    assert log.count(("will retry", "x")) == 1


async def test_when_the_account_cannot_be_read_it_is_asked_again_then_unknown(
    tmp_path: Path, store: Store, clock: Clock, x: FakeX
) -> None:
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00", "x")
    await store.claim_posts("dead", clock.now, LEASE, timedelta(hours=2))
    x.fail_next("user_tweets", "503", count=ATTEMPTS)
    channel = await x_channel(x, state)
    publisher = Publisher(state, {"x": channel}, "b")
    seen: list[str] = []
    try:
        clock.now += LEASE
        for _ in range(ATTEMPTS):
            assert await publisher.once() == 0
            seen += await states(store, aid)
            assert await publisher.once() == 0  # asked again only a minute later
            clock.now += RETRY
    finally:
        await channel.stop()
    assert seen == ["publishing"] * (ATTEMPTS - 1) + ["unknown"]
    assert len(x.requests_to("user_tweets")) == ATTEMPTS
    assert x.posted == []  # never posted blindly
    [alert] = await store.deliveries("pending")
    assert f"announcement {aid}: unknown" in alert.text
    found = await store.announcement(aid)
    assert found is not None and found.posts[0].error
    assert "could not be checked" in found.posts[0].error


@pytest.mark.parametrize(
    ("ours", "theirs", "same"),
    [
        ("Closed on Monday.", "Closed on Monday.", True),
        # X hands links back shortened, and & escaped.
        ("Bins & recycling: https://anytown.gov.uk/bins/christmas-2026 for dates",
         "Bins &amp; recycling: https://t.co/AbC123xYz for dates", True),
        ("Closed on Monday.", " Closed on Monday.\n", True),
        ("Closed on Monday.", "Closed on Tuesday.", False),
        ("Closed on Monday.", "Closed on Monday. Back Tuesday.", False),
    ],
)  # fmt: skip
def test_a_post_is_known_by_its_text_as_the_platform_shows_it(
    ours: str, theirs: str, same: bool
) -> None:
    assert same_text(ours, theirs) is same


async def test_facebook_no_answer_after_meta_took_the_post_is_found_there_later(
    tmp_path: Path, store: Store, clock: Clock, meta: FakeMeta
) -> None:
    state = make_state(tmp_path, store, clock)
    aid = await schedule(state, "2026-11-02T09:00", "facebook")
    meta.drop_after_post()  # Meta posts it and the connection drops: MaybePosted
    channel = await facebook_channel(meta, state)
    publisher = Publisher(state, {"facebook": channel}, "a")
    try:
        assert await publisher.once() == 0
        assert await states(store, aid) == ["publishing"]  # not posted again meanwhile
        clock.now += LEASE / 2
        assert await publisher.once() == 0
        clock.now += LEASE
        assert await publisher.once() == 0
    finally:
        await channel.stop()
    [on_page] = meta.page_posts
    found = await store.announcement(aid)
    assert found is not None
    assert [(p.state, p.platform_id, p.found_by_check) for p in found.posts] == [
        ("published", on_page["id"], True)
    ]
