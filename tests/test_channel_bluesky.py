"""The Bluesky channel: the real atproto SDK against the fake PDS and chat service, a real store,
the real rules, and the real sender loop.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.channels import Limits
from bot.channels.bluesky import (
    CHAT_CURSOR,
    SESSION,
    BlueskyChannel,
    BlueskyConfigError,
    BlueskySettings,
    link_spans,
)
from bot.models import Delivery, QueueItem
from bot.outbox import Pace, Sender
from bot.web import State, make_app
from tests.conftest import Clock, eventually
from tests.fakes.bluesky import CHAT_PROXY, ME, FakeBluesky, profile
from tests.test_channel_optout import opted_out, until_opted_out
from tests.test_inbox import act, add_people, log_in


def refs(reply: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A reply's root and parent strong refs, without the SDK's $type."""
    return {end: {"uri": reply[end]["uri"], "cid": reply[end]["cid"]} for end in ("root", "parent")}


def environment(fake: FakeBluesky, **extra: str) -> dict[str, str]:
    return {
        "BLUESKY_HANDLE": fake.handle,
        "BLUESKY_APP_PASSWORD": fake.password,
        "BLUESKY_SERVICE_URL": fake.url,
        "BLUESKY_POLL_SECONDS": "0.1",
        **extra,
    }


@dataclass
class Harness:
    fake: FakeBluesky
    state: State
    clock: Clock
    channel: BlueskyChannel
    sender: Sender

    async def items(self) -> list[QueueItem]:
        return await self.state.store.open_items(include_done=True)

    async def wait_for_items(self, count: int) -> list[QueueItem]:
        async def enough() -> bool:
            return len(await self.items()) >= count

        await eventually(enough)
        return await self.items()

    async def polls(
        self, nsid: str = "app.bsky.notification.listNotifications", more: int = 2
    ) -> None:
        target = len(self.fake.requests_to(nsid)) + more

        async def done() -> bool:
            return len(self.fake.requests_to(nsid)) >= target

        await eventually(done)

    async def pending(self) -> list[Delivery]:
        return await self.state.store.deliveries("pending")

    async def start(self, channel: BlueskyChannel | None = None) -> BlueskyChannel:
        channel = channel or self.channel
        await channel.start()
        await asyncio.wait_for(channel.ready.wait(), 10)
        return channel

    def new_channel(self, **extra: str) -> BlueskyChannel:
        channel = BlueskyChannel(self.state, environment(self.fake, **extra))
        self.sender.channels["bluesky"] = channel
        return channel


@pytest.fixture
async def fake() -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky() as running:
        yield running


@pytest.fixture
async def bluesky(fake: FakeBluesky, state: State, clock: Clock) -> AsyncIterator[Harness]:
    channel = BlueskyChannel(state, environment(fake))
    sender = Sender(state.store, {"bluesky": channel}, "test-process", clock=clock)
    sender.paces["bluesky"] = Pace(Limits(per_second=1000.0, per_recipient_seconds=0.0))
    harness = Harness(fake, state, clock, channel, sender)
    yield harness
    await harness.sender.channels["bluesky"].stop()
    await channel.stop()


async def test_a_mention_is_answered_in_its_thread_with_root_and_parent(bluesky: Harness) -> None:
    fake = bluesky.fake
    mention = fake.add_post("@anytown.gov.uk my bin wasn't collected on Tuesday")
    await bluesky.start()
    [item] = await bluesky.wait_for_items(1)
    assert (item.channel, item.platform_id, item.sender) == (
        "bluesky",
        f"post:{mention['uri']}",
        fake.person["did"],
    )
    assert item.sender_name == "Jo Bloggs (@jobloggs.bsky.social)"
    assert await bluesky.sender.once() == 1
    [posted] = fake.posted
    top = {"uri": mention["uri"], "cid": mention["cid"]}
    assert refs(posted["reply"]) == {"root": top, "parent": top}
    assert item.reference in posted["text"] and len(posted["text"]) <= 300
    [sent] = await bluesky.state.store.deliveries("sent")
    assert sent.platform_message_id == posted["uri"]


async def test_a_mention_deep_in_a_thread_keeps_the_threads_root(bluesky: Harness) -> None:
    fake = bluesky.fake
    sam = profile("did:plc:sam0000000000000000000000", "sam.bsky.social", "Sam")
    opening = fake.add_post("Roadworks on the high street again", author=sam, reason="")
    fake.notifications.clear()
    mention = fake.add_post("@anytown.gov.uk how long will they take?", reply_to=opening)
    await bluesky.start()
    await bluesky.wait_for_items(1)
    await bluesky.sender.once()
    [posted] = fake.posted
    assert refs(posted["reply"]) == {
        "root": {"uri": opening["uri"], "cid": opening["cid"]},
        "parent": {"uri": mention["uri"], "cid": mention["cid"]},
    }


async def test_a_reply_to_our_post_is_answered_but_not_one_to_someone_else_under_it(
    bluesky: Harness,
) -> None:
    fake = bluesky.fake
    ours = fake.add_post("Bin collections change next week", author=fake.me, reason="")
    fake.notifications.clear()
    reply = fake.add_post("Does that include garden waste?", reply_to=ours, reason="reply")
    sam = profile("did:plc:sam0000000000000000000000", "sam.bsky.social", "Sam")
    fake.add_post("Yes it does, I asked", author=sam, reply_to=reply, reason="reply")
    await bluesky.start()
    items = await bluesky.wait_for_items(2)
    held = sorted((i.text, i.held_back) for i in items)
    assert held == [
        ("Does that include garden waste?", None),
        ("Yes it does, I asked", "a reply to someone else in our thread"),
    ]


async def test_never_our_own_posts_and_no_automatic_reply_to_bots_quotes_or_old_posts(
    bluesky: Harness,
) -> None:
    fake = bluesky.fake
    fake.add_post("@anytown.gov.uk a note to ourselves", author=fake.me)
    bot = profile("did:plc:binbot00000000000000000000", "binbot.bsky.social", "Bin bot", bot=True)
    fake.add_post("@anytown.gov.uk beep", author=bot)
    fake.add_post("Look at what the council said", reason="quote")
    old = bluesky.clock() - timedelta(days=2)
    fake.add_post("@anytown.gov.uk old news", created_at=old)
    await bluesky.start()
    items = await bluesky.wait_for_items(3)
    await bluesky.polls()
    held = sorted((i.text, i.held_back) for i in await bluesky.items())
    assert held == [
        ("@anytown.gov.uk beep", "automated account"),
        ("@anytown.gov.uk old news", "older than 24 hours"),
        ("Look at what the council said", "quote post"),
    ]
    assert len(items) == 3 and await bluesky.pending() == []


async def test_a_direct_message_is_answered_in_its_conversation_through_the_chat_proxy(
    bluesky: Harness,
) -> None:
    fake = bluesky.fake
    await bluesky.start()
    await bluesky.polls("chat.bsky.convo.getLog", 1)  # the first read finds where the log is
    message = fake.add_dm("Hello, I have a question about my council tax")
    [item] = await bluesky.wait_for_items(1)
    assert (item.platform_id, item.sender) == (f"dm:{message['id']}", fake.person["did"])
    assert item.sender_name == "Jo Bloggs (@jobloggs.bsky.social)"
    await bluesky.sender.once()
    [dm] = fake.dms_sent
    assert dm["convoId"] == "convo-1" and item.reference in dm["text"]
    await bluesky.polls("chat.bsky.convo.getLog", 3)  # our own reply in the log is not stored
    assert len(await bluesky.items()) == 1
    assert await bluesky.state.store.get_state("bluesky", CHAT_CURSOR) == dm["rev"]
    chat = [r for r in fake.requests if r.nsid.startswith("chat.")]
    assert chat and all(r.headers.get("atproto-proxy") == CHAT_PROXY for r in chat)
    others = [r for r in fake.requests if not r.nsid.startswith("chat.")]
    assert all("atproto-proxy" not in r.headers for r in others)


async def test_stop_turns_automatic_replies_off_and_start_turns_them_back_on(
    bluesky: Harness,
) -> None:
    fake, store, did = bluesky.fake, bluesky.state.store, bluesky.fake.person["did"]
    await bluesky.start()
    await bluesky.polls("chat.bsky.convo.getLog", 1)  # the first read finds where the log is
    fake.add_dm("Stop.")
    await until_opted_out(store, "bluesky", did, True)
    assert await bluesky.items() == []  # a command is not a message for the team

    fake.add_post("@anytown.gov.uk my bin wasn't collected")
    [item] = await bluesky.wait_for_items(1)
    assert (item.auto_reply, item.held_back) == (None, "opted-out")
    assert await bluesky.pending() == []
    assert await bluesky.sender.once() == 0

    fake.add_post("@anytown.gov.uk START")
    await until_opted_out(store, "bluesky", did, False)
    assert len(await bluesky.items()) == 1
    assert fake.posted == [] and fake.dms_sent == []  # nothing said in answer to either

    roadworks = "stop the roadworks outside my house please"  # a message, not a command
    fake.add_dm(roadworks)
    [item] = [i for i in await bluesky.wait_for_items(2) if i.text == roadworks]
    assert item.auto_reply is not None
    assert await bluesky.sender.once() == 1
    [dm] = fake.dms_sent
    assert item.reference in dm["text"]
    assert not await opted_out(store, "bluesky", did)


async def test_the_team_replies_from_the_inbox_in_the_same_thread(
    bluesky: Harness, aiohttp_client: Any
) -> None:
    mention = bluesky.fake.add_post("@anytown.gov.uk my bin wasn't emptied")
    await bluesky.start()
    [item] = await bluesky.wait_for_items(1)
    await bluesky.sender.once()
    await add_people(bluesky.state.store, bluesky.clock)
    client = await aiohttp_client(make_app(bluesky.state))
    await log_in(client, "wes")
    response = await act(client, item.reference, "reply", text="A crew will come on Tuesday.")
    assert response.headers["Location"] == f"/inbox/{item.reference}?done=replied"
    await bluesky.sender.once()
    _, human = bluesky.fake.posted
    assert human["text"] == "A crew will come on Tuesday."
    top = {"uri": mention["uri"], "cid": mention["cid"]}
    assert refs(human["reply"]) == {"root": top, "parent": top}


async def test_one_login_kept_across_polls_refreshes_and_restarts(
    state: State, clock: Clock
) -> None:
    # An access token that is due for renewal a second after it is issued (the SDK renews 15
    # minutes before expiry): every poll after the first second finds it due.
    async with FakeBluesky(access_seconds=15 * 60 + 1) as fake:
        channel = BlueskyChannel(state, environment(fake))
        await channel.start()
        await asyncio.wait_for(channel.ready.wait(), 10)
        async with asyncio.timeout(15):
            while fake.refreshes < 2:
                await asyncio.sleep(0.05)
        await channel.stop()
        await channel.start()  # a restart: the stored session, not a new login
        fake.add_post("@anytown.gov.uk still there?")
        async with asyncio.timeout(10):
            while not await state.store.open_items():
                await asyncio.sleep(0.05)
        await channel.stop()
    assert fake.sessions == 1
    assert len(fake.requests_to("com.atproto.server.createSession")) == 1
    stored = await state.store.get_state("bluesky", SESSION)
    assert stored is not None and "eyJ" not in stored and ME not in stored  # encrypted


async def test_a_stop_during_a_refresh_keeps_the_renewed_session(
    state: State, clock: Clock
) -> None:
    # The server has taken the single-use refresh token and not yet answered when the server
    # stops: the stop waits for the new session to be stored, so the next start needs no login.
    async with FakeBluesky(access_seconds=15 * 60 + 1) as fake:
        channel = BlueskyChannel(state, environment(fake))
        await channel.start()
        await asyncio.wait_for(channel.ready.wait(), 10)
        fake.answer_late("com.atproto.server.refreshSession", 1.0)
        async with asyncio.timeout(15):
            while fake.refreshes < 1:
                await asyncio.sleep(0.01)
        await channel.stop()  # while the answer is on its way
        await channel.start()
        fake.add_post("@anytown.gov.uk still there?")
        async with asyncio.timeout(10):
            while not await state.store.open_items():
                await asyncio.sleep(0.05)
        await channel.stop()
    assert fake.sessions == 1 and fake.refreshes >= 2


async def test_a_refused_access_token_is_renewed_not_logged_in_again(bluesky: Harness) -> None:
    await bluesky.start()
    await bluesky.polls()
    bluesky.fake.fail_next("app.bsky.notification.listNotifications", "expired")
    bluesky.fake.add_post("@anytown.gov.uk hello")
    await bluesky.wait_for_items(1)
    assert bluesky.fake.sessions == 1 and bluesky.fake.refreshes == 1


async def test_another_app_password_does_not_use_the_stored_session(bluesky: Harness) -> None:
    await bluesky.start()
    await bluesky.channel.stop()
    bluesky.fake.password = "wxyz-wxyz-wxyz-wxyz"
    channel = await bluesky.start(bluesky.new_channel(BLUESKY_APP_PASSWORD="wxyz-wxyz-wxyz-wxyz"))
    assert channel.ready.is_set() and bluesky.fake.sessions == 2


async def test_a_wrong_password_is_not_tried_again_at_every_poll(
    bluesky: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    channel = bluesky.new_channel(BLUESKY_APP_PASSWORD="not-the-password")
    with caplog.at_level(logging.WARNING, "bot.bluesky"):
        await channel.start()
        await asyncio.sleep(1.0)  # ten polls' time
    assert len(bluesky.fake.requests_to("com.atproto.server.createSession")) == 1
    assert "check BLUESKY_HANDLE and BLUESKY_APP_PASSWORD" in caplog.text
    assert "not-the-password" not in caplog.text


async def test_without_direct_message_access_mentions_are_still_answered(
    state: State, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeBluesky(chat=False) as fake:
        channel = BlueskyChannel(state, environment(fake))
        with caplog.at_level(logging.ERROR, "bot.bluesky"):
            await channel.start()
            fake.add_post("@anytown.gov.uk hello")
            async with asyncio.timeout(10):
                while not await state.store.open_items():
                    await asyncio.sleep(0.05)
                target = len(fake.requests_to("app.bsky.notification.listNotifications")) + 3
                while len(fake.requests_to("app.bsky.notification.listNotifications")) < target:
                    await asyncio.sleep(0.05)
            await channel.stop()
    assert "Allow access to your direct messages" in caplog.text
    assert len(fake.requests_to("chat.bsky.convo.getLog")) == 1  # not again at every poll


async def test_a_rate_limit_reschedules_the_reply_for_the_reset_time(bluesky: Harness) -> None:
    bluesky.fake.add_post("@anytown.gov.uk hello")
    bluesky.fake.fail_next("com.atproto.repo.createRecord", "429")
    await bluesky.start()
    await bluesky.wait_for_items(1)
    await bluesky.sender.once()
    assert bluesky.fake.posted == []
    [delivery] = await bluesky.pending()
    wait = (delivery.next_attempt_at - bluesky.clock()).total_seconds()
    assert 1 <= wait <= 4
    assert "rate limit" in (delivery.last_error or "")


async def test_a_refused_post_is_a_dead_letter(bluesky: Harness) -> None:
    bluesky.fake.add_post("@anytown.gov.uk hello")
    bluesky.fake.fail_next("com.atproto.repo.createRecord", "400")
    await bluesky.start()
    await bluesky.wait_for_items(1)
    await bluesky.sender.once()
    [dead] = await bluesky.state.store.deliveries("dead")
    assert "Bluesky refused it" in (dead.last_error or "")


async def test_links_in_a_reply_are_clickable(bluesky: Harness) -> None:
    fake = bluesky.fake
    mention = fake.add_post("@anytown.gov.uk hello")
    await bluesky.start()
    [item] = await bluesky.wait_for_items(1)
    text = "Café hours: see https://anytown.gov.uk/opening-times."
    await bluesky.state.store.send_human_reply(item.reference, text, "sam", bluesky.clock())
    await bluesky.sender.once()
    human = fake.posted[-1]
    [facet] = human["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert text.encode()[start:end] == b"https://anytown.gov.uk/opening-times"
    assert facet["features"] == [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://anytown.gov.uk/opening-times"}
    ]
    assert mention["uri"] in human["reply"]["parent"]["uri"]


def test_link_spans_count_utf8_bytes() -> None:
    assert link_spans("é http://a.b/c.") == [(3, 15, "http://a.b/c")]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "missing environment variable BLUESKY_HANDLE, BLUESKY_APP_PASSWORD"),
        (
            {"BLUESKY_HANDLE": "a", "BLUESKY_APP_PASSWORD": "b", "BLUESKY_SERVICE_URL": "bsky"},
            "BLUESKY_SERVICE_URL has value 'bsky'",
        ),
        (
            {"BLUESKY_HANDLE": "a", "BLUESKY_APP_PASSWORD": "b", "BLUESKY_POLL_SECONDS": "-1"},
            "BLUESKY_POLL_SECONDS has value '-1'",
        ),
    ],
)
def test_settings_name_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(BlueskyConfigError, match=message):
        BlueskySettings(env)


def test_the_sdk_is_imported_only_when_the_channel_starts() -> None:
    """atproto's models cost about 32 MB: a server without Bluesky never loads them."""
    code = (
        "import sys, bot.server, bot.cli, bot.channels.bluesky, bot.channels.mastodon\n"
        "heavy = {'atproto', 'atproto_client', 'mastodon', 'requests'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
