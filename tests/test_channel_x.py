"""The X channel: the real tweepy client against the fake X API, a real store, the real rules.

The fake (tests/fakes/x.py) speaks the X API v2 wire format; the channel polls it every 0.1 s
(DMs every 0.3 s), and replies go through the outbox and the real sender loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.channels import Limits, TryLater
from bot.channels.x import MENTIONS_CURSOR, XChannel, fit_reply, weighted_length
from bot.errors import StoreError
from bot.models import Delivery, QueueItem
from bot.outbox import Pace, Sender
from bot.web import State
from bot.xapi import XConfigError
from tests.conftest import Clock, eventually, london
from tests.fakes.x import DUPLICATE, FakeX
from tests.test_fake_x import SECRETS


def environment(fake: FakeX, **extra: str) -> dict[str, str]:
    return {**SECRETS, "X_API_URL": fake.url, "X_POLL_SECONDS": "0.1", **extra}


@dataclass
class Harness:
    fake: FakeX
    state: State
    clock: Clock
    channel: XChannel
    sender: Sender

    async def items(self) -> list[QueueItem]:
        return await self.state.store.open_items(include_done=True)

    async def wait_for_items(self, count: int) -> list[QueueItem]:
        async def enough() -> bool:
            return len(await self.items()) >= count

        await eventually(enough)
        return await self.items()

    async def polls(self, endpoint: str, more: int = 3) -> None:
        """Wait until the channel has asked `endpoint` `more` more times."""
        target = len(self.fake.requests_to(endpoint)) + more

        async def done() -> bool:
            return len(self.fake.requests_to(endpoint)) >= target

        await eventually(done)

    async def pending(self) -> list[Delivery]:
        return await self.state.store.deliveries("pending")

    async def start(self, channel: XChannel | None = None) -> XChannel:
        channel = channel or self.channel
        await channel.start()
        await asyncio.wait_for(channel.ready.wait(), 10)
        return channel


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeX]:
    async with FakeX(now=clock) as running:  # tweets carry the test's time, so none is stale
        yield running


@pytest.fixture
async def x(fake: FakeX, state: State, clock: Clock) -> AsyncIterator[Harness]:
    channel = XChannel(state, environment(fake, X_IGNORE_USERS="@BinDayBot, 42"))
    sender = Sender(state.store, {"x": channel}, "test-process", clock=clock)
    sender.paces["x"] = Pace(Limits(per_second=1000.0, per_recipient_seconds=0.0))  # no waiting
    yield Harness(fake, state, clock, channel, sender)
    await channel.stop()


# Receiving and replying.


async def test_a_mention_out_of_hours_is_answered_in_its_thread(x: Harness) -> None:
    mention = x.fake.add_mention("@AnytownCouncil my bin wasn't collected on Tuesday")
    await x.start()
    [item] = await x.wait_for_items(1)
    assert (item.channel, item.platform_id, item.sender) == (
        "x",
        f"tweet:{mention['id']}",
        x.fake.citizen.id,
    )
    assert item.sender_name == "Jo Bloggs (@jobloggs)"
    assert item.template == "out-of-hours"
    assert item.reply_by == london("2026-12-02 17:00:00")
    [delivery] = await x.pending()
    assert (delivery.recipient, delivery.reply_to) == (x.fake.citizen.id, mention["id"])

    assert await x.sender.once() == 1
    [posted] = x.fake.posted
    text = posted["text"]
    assert text == f"@jobloggs {item.auto_reply}"
    assert weighted_length(text) <= 280
    assert f"Ref {item.reference}" in text
    assert "We're closed now, back 9am on Monday 30 November" in text
    assert "We aim to reply by 5pm on Wednesday 2 December" in text
    assert posted["in_reply_to_user_id"] == x.fake.citizen.id
    assert posted["conversation_id"] == mention["id"]
    [request] = x.fake.requests_to("create_tweet")
    assert request.json["reply"] == {"in_reply_to_tweet_id": mention["id"]}
    assert request.auth_scheme == "OAuth"
    [sent] = await x.state.store.deliveries("sent")
    assert sent.platform_message_id == posted["id"]


async def test_the_mentions_request_asks_for_what_the_channel_needs(x: Harness) -> None:
    await x.start()
    await x.polls("mentions", 1)
    request = x.fake.requests_to("mentions")[0]
    assert request.path == f"/2/users/{x.fake.me.id}/mentions"
    assert request.query["expansions"] == "author_id"
    assert set(request.query["tweet.fields"].split(",")) == {
        "author_id",
        "conversation_id",
        "created_at",
        "referenced_tweets",
        "in_reply_to_user_id",
    }
    assert "since_id" not in request.query  # nothing seen yet

    async def asked_for_dms() -> bool:  # mentions and DMs are polled one after the other
        return bool(x.fake.requests_to("dm_events"))

    await eventually(asked_for_dms)
    [dms] = x.fake.requests_to("dm_events")[:1]
    assert dms.query["event_types"] == "MessageCreate"
    assert dms.auth_scheme == "OAuth"


async def test_a_direct_message_is_answered_by_direct_message(x: Harness) -> None:
    dm = x.fake.add_dm("Hello, my bin wasn't collected")
    await x.start()
    [item] = await x.wait_for_items(1)
    assert (item.platform_id, item.sender, item.text) == (
        f"dm:{dm['id']}",
        x.fake.citizen.id,
        "Hello, my bin wasn't collected",
    )
    [delivery] = await x.pending()
    assert delivery.reply_to is None
    assert await x.sender.once() == 1
    [sent] = x.fake.dms_sent
    assert sent["text"] == item.auto_reply
    assert sent["dm_conversation_id"] == f"{x.fake.me.id}-{x.fake.citizen.id}"
    assert x.fake.posted == []
    # Our own reply now comes back from GET /2/dm_events: it is not a message to answer.
    await x.polls("dm_events", 2)
    assert len(await x.items()) == 1


async def test_polling_again_stores_and_answers_once_and_a_new_channel_continues(
    x: Harness,
) -> None:
    first = x.fake.add_mention("@AnytownCouncil the streetlight on Elm Road is out")
    x.fake.add_dm("Is the tip open on Sunday?", sender=x.fake.add_user("Ann Other", "annother"))
    await x.start()
    await x.wait_for_items(2)
    await x.polls("mentions", 3)
    await x.polls("dm_events", 2)
    assert len(await x.items()) == 2
    assert await x.sender.once() == 2
    assert await x.sender.once() == 0
    assert await x.state.store.get_state("x", MENTIONS_CURSOR) == first["id"]
    await x.channel.stop()

    again = XChannel(x.state, environment(x.fake))
    try:
        x.clock.now += timedelta(hours=13)  # past the cooldown, so the new mention is answered
        second = x.fake.add_mention("@AnytownCouncil and the one on Oak Road")
        seen = len(x.fake.requests_to("mentions"))
        await x.start(again)
        await x.wait_for_items(3)
        assert x.fake.requests_to("mentions")[seen].query["since_id"] == first["id"]
        await x.polls("dm_events", 2)
        assert [i.text for i in await x.items() if i.platform_id.startswith("dm:")] == [
            "Is the tip open on Sunday?"
        ]
        [delivery] = await x.pending()
        assert delivery.reply_to == second["id"]
        x.sender.channels["x"] = again
        assert await x.sender.once() == 1
        assert [p["in_reply_to_user_id"] for p in x.fake.posted] == [x.fake.citizen.id] * 2
    finally:
        await again.stop()


async def test_two_processes_share_the_polling_instead_of_each_doing_it(
    fake: FakeX, state: State, clock: Clock
) -> None:
    """Two dynos on one database read X about as often as one would: X's read quota (about 450
    mention requests in 15 minutes) is not spent twice, and each mention is stored once."""
    env = environment(fake, X_POLL_SECONDS="0.25")
    first, second = XChannel(state, env, "dyno-1"), XChannel(state, env, "dyno-2")
    fake.add_mention("@AnytownCouncil the streetlight on Elm Road is out")
    try:
        for channel in (first, second):
            await channel.start()
        async with asyncio.timeout(10):
            while len(fake.requests_to("mentions")) < 8:
                await asyncio.sleep(0.02)
    finally:
        await first.stop()
        await second.stop()
    times = [r.at for r in fake.requests_to("mentions")]
    # One poll every 0.25 s between them, not one each: two pollers would make twice as many.
    assert len(times) - 1 <= (times[-1] - times[0]) / 0.25 + 1, times
    assert len(await state.store.open_items()) == 1


async def test_own_posts_and_retweets_are_not_stored(x: Harness) -> None:
    x.fake.add_mention("@AnytownCouncil we are hiring", author=x.fake.me)
    x.fake.add_mention("RT @someone: @AnytownCouncil bins", retweet_of="99")
    last = x.fake.add_mention("@AnytownCouncil pothole on Mill Lane &amp; Elm Road")
    await x.start()
    [item] = await x.wait_for_items(1)
    assert item.platform_id == f"tweet:{last['id']}"
    assert item.text == "@AnytownCouncil pothole on Mill Lane & Elm Road"  # X's &amp; undone
    await x.polls("mentions", 2)
    assert len(await x.items()) == 1
    assert await x.state.store.get_state("x", MENTIONS_CURSOR) == last["id"]


async def test_bots_quotes_copied_in_replies_and_old_posts_are_queued_without_a_reply(
    x: Harness,
) -> None:
    fake = x.fake
    neighbour = fake.add_user("Ann Other", "annother")
    talbot = fake.add_user("Sam Talbot", "SamTalbot")  # a person, whatever the name ends with
    bot = fake.add_mention("@AnytownCouncil bin day is Tuesday", author=fake.bot)
    quote = fake.add_mention("@AnytownCouncil look at this", author=neighbour)
    quote["referenced_tweets"] = [{"type": "quoted", "id": "77"}]
    parent = fake.add_mention("@AnytownCouncil the bins are late again", author=talbot)
    copied = fake.add_mention("@SamTalbot @AnytownCouncil same here", in_reply_to=parent["id"])
    old = fake.add_mention(
        "@AnytownCouncil from last week",
        author=neighbour,
        created_at=x.clock.now - timedelta(days=2),
    )
    await x.start()
    items = await x.wait_for_items(5)
    assert {i.platform_id for i in items} == {
        f"tweet:{t['id']}" for t in (bot, quote, parent, copied, old)
    }
    [delivery] = await x.pending()  # only the person who wrote to us gets a reply
    assert (delivery.recipient, delivery.reply_to) == (talbot.id, parent["id"])
    await x.sender.once()
    [posted] = fake.posted
    assert posted["text"].startswith("@SamTalbot Thanks for your message.")
    # A reply that was not sent is not recorded as one (reports count automatic replies)...
    replied = {i.platform_id for i in await x.items() if i.auto_reply is not None}
    assert replied == {f"tweet:{parent['id']}"}
    # ...and starts no cooldown: the neighbour writing to us directly is answered.
    direct = fake.add_mention("@AnytownCouncil are the bins late?", author=neighbour)
    await x.wait_for_items(6)
    [delivery] = await x.pending()
    assert (delivery.recipient, delivery.reply_to) == (neighbour.id, direct["id"])


async def test_stop_opts_out_and_start_opts_back_in(x: Harness) -> None:
    x.fake.add_dm("STOP.")
    await x.start()
    await x.polls("dm_events", 2)
    assert await x.items() == []
    data = await x.state.store.export("x", x.fake.citizen.id)
    assert data.state is not None and data.state.opted_out

    x.fake.add_mention("@AnytownCouncil my bin wasn't collected")
    [item] = await x.wait_for_items(1)
    assert item.auto_reply is None
    assert await x.pending() == []

    x.fake.add_mention("@AnytownCouncil start")
    await x.polls("mentions", 2)
    data = await x.state.store.export("x", x.fake.citizen.id)
    assert data.state is not None and not data.state.opted_out
    assert len(await x.items()) == 1
    assert x.fake.posted == [] and x.fake.dms_sent == []


# Sending failures.


async def queued_mention(x: Harness) -> Delivery:
    x.fake.add_mention()
    await x.start()
    await x.wait_for_items(1)
    [delivery] = await x.pending()
    return delivery


async def test_a_429_on_a_reply_is_retried_after_the_reset(x: Harness) -> None:
    await queued_mention(x)
    x.fake.fail_next("create_tweet", "429")
    before = x.clock.now
    await x.sender.once()
    [delivery] = await x.pending()
    assert delivery.last_error is not None and "rate limit" in delivery.last_error
    assert timedelta(seconds=1) <= delivery.next_attempt_at - before <= timedelta(seconds=4)
    assert await x.sender.once() == 0  # not due yet
    x.clock.now += timedelta(seconds=4)
    assert await x.sender.once() == 1
    assert len(x.fake.posted) == 1


async def test_send_raises_try_later_with_the_reset_time(x: Harness) -> None:
    delivery = await queued_mention(x)
    x.fake.fail_next("create_tweet", "429")
    with pytest.raises(TryLater) as caught:
        await x.channel.send(delivery)
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 4


@pytest.mark.parametrize(
    ("kind", "detail", "reason"),
    [
        ("403", DUPLICATE, "X refused a duplicate post: 403 " + DUPLICATE),
        ("403", None, "X refused it: 403 You are not permitted to perform this action."),
        ("400", "Your Tweet text is too long.", "X refused it: 400 Your Tweet text is too long."),
    ],
)
async def test_a_refusal_is_a_dead_letter(
    x: Harness, kind: str, detail: str | None, reason: str
) -> None:
    await queued_mention(x)
    x.fake.fail_next("create_tweet", kind, detail=detail)
    await x.sender.once()
    [dead] = await x.state.store.deliveries("dead")
    assert dead.last_error == reason
    assert await x.pending() == []


@pytest.mark.parametrize("kind", ["401", "500", "503", "503-text"])
async def test_bad_credentials_and_server_errors_are_tried_again(
    x: Harness, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = await queued_mention(x)
    x.fake.fail_next("create_tweet", kind)
    with caplog.at_level(logging.DEBUG), pytest.raises(TryLater) as caught:
        await x.channel.send(delivery)
    assert caught.value.retry_after is None
    assert "SECRET" not in str(caught.value)
    # oauthlib logs the consumer key and access token at DEBUG: outside the channel's reach.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("bot", "tweepy"))]
    assert not any("SECRET" in line for line in ours)
    assert await x.channel.send(delivery) is not None


async def test_a_dm_refused_is_a_dead_letter(x: Harness) -> None:
    x.fake.add_dm()
    await x.start()
    await x.wait_for_items(1)
    x.fake.fail_next("create_dm", "403", detail="You cannot send messages to this user.")
    await x.sender.once()
    [dead] = await x.state.store.deliveries("dead")
    assert dead.last_error == "X refused it: 403 You cannot send messages to this user."


async def test_a_channel_that_did_not_see_the_mention_still_replies_in_the_thread(
    x: Harness,
) -> None:
    delivery = await queued_mention(x)
    await x.channel.stop()
    other = XChannel(x.state, environment(x.fake))
    try:
        await other.start()
        await other.send(delivery)  # the fake has no user lookup: no @name, still threaded
        [posted] = x.fake.posted
        assert posted["text"] == delivery.text
        assert posted["in_reply_to_user_id"] == x.fake.citizen.id
    finally:
        await other.stop()


# Polling failures.


async def test_a_429_while_polling_mentions_waits_for_the_reset(x: Harness) -> None:
    x.fake.fail_next("mentions", "429")
    mention = x.fake.add_mention()
    await x.start()
    await x.polls("dm_events", 3)  # DMs are still read meanwhile
    assert [r.status for r in x.fake.requests_to("mentions")] == [429]
    assert await x.items() == []
    [item] = await _wait_one(x)
    assert item.platform_id == f"tweet:{mention['id']}"
    assert [r.status for r in x.fake.requests_to("mentions")][:2] == [429, 200]


async def _wait_one(x: Harness) -> list[QueueItem]:
    async def stored() -> bool:
        return len(await x.items()) == 1

    await eventually(stored, seconds=8)
    return await x.items()


async def test_the_cursor_waits_until_the_mention_is_stored(
    x: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = x.state.store
    real = store.ingest
    broken = True

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if broken:
            raise StoreError("database is locked")
        return await real(*args, **kwargs)

    monkeypatch.setattr(store, "ingest", flaky)
    mention = x.fake.add_mention()
    await x.start()
    await x.polls("mentions", 3)
    assert await store.get_state("x", MENTIONS_CURSOR) is None
    assert all("since_id" not in r.query for r in x.fake.requests_to("mentions"))
    broken = False
    [item] = await _wait_one(x)
    assert item.platform_id == f"tweet:{mention['id']}"
    await x.polls("mentions", 1)
    assert await store.get_state("x", MENTIONS_CURSOR) == mention["id"]


async def test_get_me_is_retried_until_x_answers(x: Harness) -> None:
    x.fake.fail_next("me", "503-text")
    await x.start()
    assert x.channel.me == x.fake.me.id
    assert x.channel.username == "AnytownCouncil"
    assert [r.status for r in x.fake.requests_to("me")] == [503, 200]


async def test_start_and_stop_are_idempotent(x: Harness) -> None:
    await x.start()
    await x.channel.start()
    assert x.channel.routes() == []
    await x.channel.stop()
    await x.channel.stop()
    with pytest.raises(TryLater):
        await x.channel.send(
            Delivery(
                1,
                None,
                "x",
                "1",
                "auto",
                "hi",
                0,
                "pending",
                1,
                x.clock.now,
                None,
                None,
                x.clock.now,
                None,
            )
        )


def test_poll_seconds_default_and_override(state: State) -> None:
    assert XChannel(state, SECRETS).settings.poll_seconds == 60
    assert XChannel(state, {**SECRETS, "X_POLL_SECONDS": "900"}).settings.poll_seconds == 900


def test_poll_seconds_must_be_a_number(state: State) -> None:
    with pytest.raises(XConfigError) as caught:
        XChannel(state, {**SECRETS, "X_POLL_SECONDS": "soon"})
    assert "X_POLL_SECONDS has value 'soon'" in str(caught.value)


# Fitting a reply into 280 characters.

REF = "7K3F-9QXA"


def test_a_reply_that_fits_gets_the_name_once() -> None:
    assert fit_reply(f"Thanks. Ref {REF}", "jobloggs") == f"@jobloggs Thanks. Ref {REF}"
    assert fit_reply(f"@JoBloggs Thanks. Ref {REF}", "jobloggs") == f"@JoBloggs Thanks. Ref {REF}"
    assert fit_reply("Thanks.", None) == "Thanks."


def test_a_long_reply_is_cut_at_a_word_and_keeps_the_reference() -> None:
    body = " ".join(["Thanks for your message, we are closed now."] * 6)
    text = f"{body} In an emergency call 999. Ref {REF}"
    fitted = fit_reply(text, "a_fifteen_chars")
    assert weighted_length(fitted) <= 280
    assert fitted.startswith("@a_fifteen_chars Thanks for your message")
    assert fitted.endswith(f"… Ref {REF}")
    head = fitted.removeprefix("@a_fifteen_chars ").removesuffix(f"… Ref {REF}")
    assert text.startswith(head) and text[len(head)] in " ,."  # a whole word, not half of one


def test_a_long_reply_without_a_reference_is_cut_with_an_ellipsis() -> None:
    fitted = fit_reply("word " * 100, "jobloggs")
    assert fitted.endswith("word…") and weighted_length(fitted) <= 280


def test_x_counts_urls_as_23_and_the_ellipsis_as_2() -> None:
    assert weighted_length("…") == 2
    assert weighted_length("’") == 1
    assert weighted_length("see anytown.gov.uk/bins") == 4 + 23
    assert weighted_length("https://example.com/" + "a" * 100) == 23
