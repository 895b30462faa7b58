"""The Mastodon channel: the real Mastodon.py client against the fake instance, a real store,
the real rules, and the real sender loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.channels import Limits
from bot.channels.mastodon import (
    CURSOR,
    MastodonChannel,
    MastodonConfigError,
    MastodonSettings,
    plain_text,
)
from bot.models import Delivery, QueueItem
from bot.outbox import Pace, Sender
from bot.web import State, make_app
from tests.conftest import Clock, eventually
from tests.fakes.mastodon import FakeMastodon, account
from tests.test_channel_optout import opted_out, until_opted_out
from tests.test_inbox import act, add_people, log_in


def environment(fake: FakeMastodon, **extra: str) -> dict[str, str]:
    return {
        "MASTODON_API_BASE_URL": fake.url,
        "MASTODON_ACCESS_TOKEN": fake.token,
        "MASTODON_POLL_SECONDS": "0.1",
        **extra,
    }


@dataclass
class Harness:
    fake: FakeMastodon
    state: State
    clock: Clock
    channel: MastodonChannel
    sender: Sender

    async def items(self) -> list[QueueItem]:
        return await self.state.store.open_items(include_done=True)

    async def wait_for_items(self, count: int) -> list[QueueItem]:
        async def enough() -> bool:
            return len(await self.items()) >= count

        await eventually(enough)
        return await self.items()

    async def polls(self, more: int = 2) -> None:
        target = len(self.fake.requests_to("notifications")) + more

        async def done() -> bool:
            return len(self.fake.requests_to("notifications")) >= target

        await eventually(done)

    async def pending(self) -> list[Delivery]:
        return await self.state.store.deliveries("pending")

    async def start(self) -> None:
        await self.channel.start()
        await asyncio.wait_for(self.channel.ready.wait(), 10)


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    async with FakeMastodon(max_characters=200) as running:
        yield running


@pytest.fixture
async def mastodon(fake: FakeMastodon, state: State, clock: Clock) -> AsyncIterator[Harness]:
    channel = MastodonChannel(state, environment(fake))
    sender = Sender(state.store, {"mastodon": channel}, "test-process", clock=clock)
    sender.paces["mastodon"] = Pace(Limits(per_second=1000.0, per_recipient_seconds=0.0))
    yield Harness(fake, state, clock, channel, sender)
    await channel.stop()


async def test_a_mention_is_answered_in_its_thread_as_no_more_public_than_it(
    mastodon: Harness,
) -> None:
    fake = mastodon.fake
    public = fake.add_mention("@council my bin wasn't collected on Tuesday")
    await mastodon.start()
    [item] = await mastodon.wait_for_items(1)
    assert (item.channel, item.platform_id, item.sender) == (
        "mastodon",
        f"status:{public['id']}",
        fake.person["id"],
    )
    assert item.text == "@council my bin wasn't collected on Tuesday"
    assert item.sender_name == "Jo Bloggs (@jobloggs@example.org)"
    assert await mastodon.sender.once() == 1

    [posted] = fake.posted
    assert posted["in_reply_to_id"] == public["id"]
    assert posted["visibility"] == "unlisted"  # in the thread, off the public timelines
    assert posted["text"].startswith("@jobloggs@example.org ")
    assert item.reference in posted["text"]
    assert len(posted["text"]) <= 200  # the instance's own limit, read from /api/v2/instance
    assert mastodon.channel.capabilities.max_length == 200
    [request] = fake.requests_to("statuses")
    assert request.headers["Idempotency-Key"].startswith("holding-reply-")
    [sent] = await mastodon.state.store.deliveries("sent")
    assert sent.platform_message_id == posted["id"]


@pytest.mark.parametrize(
    ("visibility", "answered"),
    [("direct", "direct"), ("private", "private"), ("unlisted", "unlisted")],
)
async def test_a_private_mention_gets_an_answer_just_as_private(
    mastodon: Harness, visibility: str, answered: str
) -> None:
    mastodon.fake.add_mention("@council where is my nearest tip?", visibility=visibility)
    await mastodon.start()
    await mastodon.wait_for_items(1)
    await mastodon.sender.once()
    [posted] = mastodon.fake.posted
    assert posted["visibility"] == answered


async def test_stop_turns_automatic_replies_off_and_start_turns_them_back_on(
    mastodon: Harness,
) -> None:
    fake, store, person = mastodon.fake, mastodon.state.store, mastodon.fake.person["id"]
    fake.add_mention("@council STOP", visibility="direct")
    await mastodon.start()
    await until_opted_out(store, "mastodon", person, True)
    assert await mastodon.items() == []  # a command is not a message for the team

    fake.add_mention("@council my bin wasn't collected")
    [item] = await mastodon.wait_for_items(1)
    assert (item.auto_reply, item.held_back) == (None, "opted-out")
    assert await mastodon.pending() == []
    assert await mastodon.sender.once() == 0

    fake.add_mention("@council start.")
    await until_opted_out(store, "mastodon", person, False)
    assert len(await mastodon.items()) == 1
    assert fake.posted == []  # nothing said in answer to either, publicly or directly

    roadworks = "@council stop the roadworks outside my house please"  # not a command
    fake.add_mention(roadworks)
    [item] = [i for i in await mastodon.wait_for_items(2) if i.text == roadworks]
    assert item.auto_reply is not None
    assert await mastodon.sender.once() == 1
    [posted] = fake.posted
    assert item.reference in posted["text"]
    assert not await opted_out(store, "mastodon", person)


async def test_the_team_replies_from_the_inbox_in_the_same_thread(
    mastodon: Harness, aiohttp_client: Any
) -> None:
    mention = mastodon.fake.add_mention("@council my bin wasn't emptied", visibility="direct")
    await mastodon.start()
    [item] = await mastodon.wait_for_items(1)
    await mastodon.sender.once()
    await add_people(mastodon.state.store, mastodon.clock)
    client = await aiohttp_client(make_app(mastodon.state))
    await log_in(client, "wes")
    page = await (await client.get(f"/inbox/{item.reference}")).text()
    assert "Sent to them on mastodon." in page
    response = await act(client, item.reference, "reply", text="A crew will come on Tuesday.")
    assert response.headers["Location"] == f"/inbox/{item.reference}?done=replied"
    await mastodon.sender.once()
    _, human = mastodon.fake.posted
    assert human["in_reply_to_id"] == mention["id"]
    assert human["visibility"] == "direct"
    assert human["text"] == "@jobloggs@example.org A crew will come on Tuesday."


async def test_each_mention_is_stored_and_answered_once_across_polls_and_restarts(
    mastodon: Harness, state: State
) -> None:
    mastodon.fake.add_mention("@council first")
    await mastodon.start()
    await mastodon.wait_for_items(1)
    await mastodon.polls(3)
    await mastodon.channel.stop()
    mastodon.fake.add_mention("@council second")
    mastodon.fake.add_other("favourite")
    await mastodon.start()
    await mastodon.wait_for_items(2)
    await mastodon.polls(3)
    assert len(await mastodon.items()) == 2
    cursor = await state.store.get_state("mastodon", CURSOR)
    assert cursor == mastodon.fake.notifications[-2]["id"]  # the last mention read
    # After the first poll every request reads forward from the cursor, mentions only.
    later = mastodon.fake.requests_to("notifications")[1:]
    assert all(any(key == "min_id" for key, _ in r.query) for r in later)
    assert all(("types[]", "mention") in r.query for r in later)
    await mastodon.sender.once()
    assert len(mastodon.fake.posted) == 1  # the second is within the sender's cooldown


async def test_a_burst_larger_than_a_page_is_read_without_a_gap(mastodon: Harness) -> None:
    mastodon.fake.add_mention("@council before we started")
    await mastodon.start()
    await mastodon.wait_for_items(1)
    for i in range(45):  # more than a page of 40
        sender = account(str(2000 + i), f"person{i}", f"Person {i}")
        mastodon.fake.add_mention(f"@council question {i}", sender=sender)
    items = await mastodon.wait_for_items(46)
    assert len({i.platform_id for i in items}) == 46


async def test_never_our_own_posts_bots_or_threads_we_are_only_copied_into(
    mastodon: Harness,
) -> None:
    fake = mastodon.fake
    fake.add_mention("@council a note to ourselves", sender=fake.me)
    fake.add_mention("@council beep", sender=account("300", "binbot", "Bin bot", bot=True))
    other = fake.add_mention("@council hello", sender=account("301", "sam", "Sam"))
    fake.add_mention("@sam @council I agree with Sam", in_reply_to=other)
    fake.add_mention("@sam @council and what does @council say?", in_reply_to=other)
    await mastodon.start()
    items = await mastodon.wait_for_items(4)
    held = sorted((i.text, i.held_back) for i in items)
    assert held == [
        ("@council beep", "automated account"),
        ("@council hello", None),
        ("@sam @council I agree with Sam", "copied in"),
        ("@sam @council and what does @council say?", None),
    ]


async def test_a_mention_older_than_a_day_is_queued_without_an_automatic_reply(
    mastodon: Harness,
) -> None:
    mastodon.fake.add_mention("@council old news", created_at=mastodon.clock() - timedelta(days=2))
    await mastodon.start()
    [item] = await mastodon.wait_for_items(1)
    assert item.held_back == "older than 24 hours"
    assert await mastodon.pending() == []


async def test_a_rate_limit_reschedules_the_reply_for_the_reset_time(mastodon: Harness) -> None:
    mastodon.fake.add_mention("@council hello")
    mastodon.fake.fail_next("statuses", "429")
    await mastodon.start()
    await mastodon.wait_for_items(1)
    await mastodon.sender.once()
    assert mastodon.fake.posted == []
    [delivery] = await mastodon.pending()
    wait = (delivery.next_attempt_at - mastodon.clock()).total_seconds()
    assert 1 <= wait <= 4  # the fake's X-RateLimit-Reset is 3 s ahead
    assert "rate limit" in (delivery.last_error or "")


async def test_a_reply_to_a_deleted_post_is_a_dead_letter(mastodon: Harness) -> None:
    mastodon.fake.add_mention("@council hello")
    mastodon.fake.fail_next("statuses", "404")
    await mastodon.start()
    await mastodon.wait_for_items(1)
    await mastodon.sender.once()
    [dead] = await mastodon.state.store.deliveries("dead")
    assert "gone" in (dead.last_error or "")


async def test_a_refused_token_never_dead_letters_replies(mastodon: Harness) -> None:
    mastodon.fake.add_mention("@council hello")
    await mastodon.start()
    await mastodon.wait_for_items(1)
    mastodon.fake.fail_next("statuses", "401")
    await mastodon.sender.once()
    [delivery] = await mastodon.pending()
    assert mastodon.fake.token not in (delivery.last_error or "")
    assert await mastodon.state.store.deliveries("dead") == []


async def test_an_older_instance_gives_its_limit_through_v1(state: State) -> None:
    async with FakeMastodon(max_characters=1000, v2=False) as fake:
        channel = MastodonChannel(state, environment(fake))
        await channel.start()
        try:
            await asyncio.wait_for(channel.ready.wait(), 10)
            assert channel.capabilities.max_length == 1000
        finally:
            await channel.stop()


async def test_an_instance_that_does_not_say_is_taken_as_500(state: State) -> None:
    async with FakeMastodon(max_characters=None) as fake:
        channel = MastodonChannel(state, environment(fake))
        await channel.start()
        try:
            await asyncio.wait_for(channel.ready.wait(), 10)
            assert channel.capabilities.max_length == 500
        finally:
            await channel.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "missing environment variable MASTODON_API_BASE_URL, MASTODON_ACCESS_TOKEN"),
        (
            {"MASTODON_API_BASE_URL": "mastodon.social", "MASTODON_ACCESS_TOKEN": "t"},
            "MASTODON_API_BASE_URL has value 'mastodon.social'",
        ),
        (
            {
                "MASTODON_API_BASE_URL": "https://mastodon.social",
                "MASTODON_ACCESS_TOKEN": "t",
                "MASTODON_POLL_SECONDS": "often",
            },
            "MASTODON_POLL_SECONDS has value 'often'",
        ),
    ],
)
def test_settings_name_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(MastodonConfigError, match=message):
        MastodonSettings(env)


def test_plain_text_keeps_paragraphs_and_drops_markup() -> None:
    html = (
        '<p><span class="h-card"><a href="https://x/@council" class="u-url mention">'
        "@<span>council</span></a></span> fish &amp; chips</p><p>line one<br />line two</p>"
    )
    assert plain_text(html) == "@council fish & chips\n\nline one\nline two"
