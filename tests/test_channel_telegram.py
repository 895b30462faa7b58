"""The Telegram channel: the real python-telegram-bot against a fake Bot API, a real store.

The fake (tests/fakes/telegram.py) speaks Telegram's wire format and posts updates to our
webhook as Telegram does; replies go through the outbox and the real sender loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.channels.telegram import ROUTE, TelegramChannel, TelegramSettings
from bot.outbox import Sender
from bot.web import State, make_app
from tests.conftest import Clock, eventually
from tests.fakes.telegram import CITIZEN, GROUP, NEIGHBOUR, FakeTelegram

SECRET = "s3cret-webhook_token"


@dataclass
class Harness:
    fake: FakeTelegram
    channel: TelegramChannel
    sender: Sender
    client: TestClient[Any, Any]
    state: State
    clock: Clock

    @property
    def url(self) -> str:
        return str(self.client.make_url(ROUTE))

    async def deliver(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        return await self.fake.deliver(update, self.url, secret)

    async def send_all(self) -> int:
        return await self.sender.once()

    async def items(self) -> list[Any]:
        return await self.state.store.open_items(include_done=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as running:
        yield running


def settings(fake: FakeTelegram, **extra: str) -> TelegramSettings:
    env = {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": fake.base_url,
        **extra,
    }
    return TelegramSettings(env)


async def serve_telegram(
    fake: FakeTelegram, state: State, clock: Clock, aiohttp_client: Any
) -> Harness:
    """The web app with the Telegram channel's routes, the channel started, and a sender loop
    (run it with `Harness.send_all`). The caller stops `harness.channel`."""
    channel = TelegramChannel(state, settings(fake))
    sender = Sender(state.store, {"telegram": channel}, "test-process", clock=clock)
    state.wake = sender.wake
    app = make_app(state)
    app.router.add_routes(channel.routes())
    client = await aiohttp_client(app)
    await channel.start()
    await asyncio.wait_for(channel.ready.wait(), 10)
    return Harness(fake, channel, sender, client, state, clock)


@pytest.fixture
async def telegram(
    fake: FakeTelegram, state: State, clock: Clock, aiohttp_client: Any
) -> AsyncIterator[Harness]:
    harness = await serve_telegram(fake, state, clock, aiohttp_client)
    yield harness
    await harness.channel.stop()


async def test_an_out_of_hours_message_is_stored_then_answered_through_the_outbox(
    telegram: Harness,
) -> None:
    status = await telegram.deliver(telegram.fake.text_message("My green bin wasn't emptied"))
    assert status == 200
    [item] = await telegram.items()
    assert (item.channel, item.sender, item.text) == (
        "telegram",
        str(CITIZEN["id"]),
        "My green bin wasn't emptied",
    )
    assert item.sender_name == "Priya Shah"
    assert telegram.fake.sent == []  # nothing is sent inline: the outbox does it

    assert await telegram.send_all() == 1
    [sent] = telegram.fake.sent
    assert sent["chat_id"] == CITIZEN["id"]
    assert "reply_parameters" not in sent  # a private chat needs no quote
    assert sent["text"] == item.auto_reply
    # Friday 27 November, 8pm: closed; the waste team promises 2 working days after Monday.
    assert "We're closed now and back at 9am on Monday 30 November" in sent["text"]
    assert "We aim to reply by 5pm on Wednesday 2 December" in sent["text"]
    assert item.reference in sent["text"]
    [delivered] = await telegram.state.store.deliveries("sent")
    assert delivered.platform_message_id == str(telegram.fake.sent_messages[0]["message_id"])


async def test_a_redelivered_update_is_stored_and_answered_once(telegram: Harness) -> None:
    update = telegram.fake.text_message("Is the tip open on Sunday?")
    assert await telegram.deliver(update) == 200
    assert await telegram.deliver(update) == 200  # Telegram retries when we are slow
    await telegram.send_all()
    await telegram.send_all()

    assert len(await telegram.items()) == 1
    assert len(telegram.fake.sent) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
async def test_a_webhook_without_the_secret_is_refused_and_nothing_stored(
    telegram: Harness, secret: str | None
) -> None:
    assert await telegram.deliver(telegram.fake.text_message("hello"), secret=secret) == 403
    assert await telegram.items() == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"message": {}}'])
async def test_a_body_that_is_not_an_update_gets_400(telegram: Harness, body: bytes) -> None:
    response = await telegram.client.post(
        ROUTE, data=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status == 400
    assert await telegram.items() == []


async def test_photos_voice_notes_and_stickers_are_queued_with_a_note(telegram: Harness) -> None:
    fake = telegram.fake
    for update in (
        fake.photo_message("Fly-tipping on Mill Lane"),
        fake.voice_message(),
        fake.sticker_message("👍"),
    ):
        assert await telegram.deliver(update) == 200
    texts = sorted(item.text for item in await telegram.items())
    assert texts == ["Fly-tipping on Mill Lane [photo]", "[sticker 👍]", "[voice note]"]


async def test_an_edit_updates_the_queue_without_a_second_reply(telegram: Harness) -> None:
    original = telegram.fake.text_message("My bin wasnt emptied")
    await telegram.deliver(original)
    await telegram.send_all()
    await telegram.deliver(telegram.fake.edited_message(original, "My bin wasn't emptied"))
    await telegram.send_all()

    [item] = await telegram.items()
    assert item.text == "My bin wasn't emptied"
    assert len(telegram.fake.sent) == 1


async def test_in_a_group_only_messages_to_the_bot_are_heard(telegram: Harness) -> None:
    fake = telegram.fake
    await telegram.deliver(fake.group_message("Anyone know when the bins go out?"))
    assert await telegram.items() == []

    mention = fake.group_message("is the tip open today?", mention_bot=True, sender=NEIGHBOUR)
    await telegram.deliver(mention)
    await telegram.send_all()
    [sent] = fake.sent
    assert sent["chat_id"] == GROUP["id"]
    assert sent["reply_parameters"]["message_id"] == mention["message"]["message_id"]

    await telegram.deliver(fake.reply_to_bot("and on Sunday?", sender=NEIGHBOUR))
    assert len(await telegram.items()) == 2


async def test_stop_turns_automatic_replies_off_and_start_back_on(telegram: Harness) -> None:
    fake = telegram.fake
    await telegram.deliver(fake.command("start"))
    await telegram.send_all()
    [welcome] = fake.sent
    assert "not monitored 24/7" in welcome["text"] or "999" in welcome["text"]
    assert await telegram.items() == []  # a command is not a message for the team

    await telegram.deliver(fake.command("stop"))
    await telegram.send_all()
    assert "Automatic replies are off" in fake.sent[-1]["text"]
    await telegram.deliver(fake.text_message("Pothole on the High Street"))
    await telegram.send_all()
    [item] = await telegram.items()
    assert item.auto_reply is None  # queued all the same
    assert len(fake.sent) == 2

    await telegram.deliver(fake.command("start"))
    telegram.clock.now += timedelta(days=1)  # beyond the cooldown
    await telegram.deliver(fake.text_message("Another pothole on Mill Lane"))
    await telegram.send_all()
    assert "thank you for your message" in fake.sent[-1]["text"]


async def test_an_emergency_is_sent_before_routine_replies(telegram: Harness) -> None:
    fake = telegram.fake
    await telegram.deliver(fake.text_message("When is the recycling collected?", sender=NEIGHBOUR))
    await telegram.deliver(fake.text_message("my dad has collapsed and isn't breathing"))
    await telegram.send_all()
    assert [s["chat_id"] for s in fake.sent] == [CITIZEN["id"], NEIGHBOUR["id"]]
    assert "999" in fake.sent[0]["text"]


async def test_a_rate_limit_is_honoured_and_the_reply_sent_after_it(telegram: Harness) -> None:
    telegram.fake.fail_next("sendMessage", "429", retry_after=7)
    await telegram.deliver(telegram.fake.text_message("Where do I pay my council tax?"))
    await telegram.send_all()
    assert telegram.fake.sent == []
    [waiting] = await telegram.state.store.claim_deliveries(
        "peek", telegram.clock.now + timedelta(seconds=7), timedelta(seconds=1)
    )
    assert waiting.last_error == "Telegram rate limit: retry after 7 s"
    await telegram.state.store.release_jobs("peek")

    telegram.clock.now += timedelta(seconds=6)
    assert await telegram.send_all() == 0  # not before the time Telegram gave
    telegram.clock.now += timedelta(seconds=1)
    assert await telegram.send_all() == 1
    assert len(telegram.fake.sent) == 1


@pytest.mark.parametrize("failure", ["403-blocked", "400-chat-not-found"])
async def test_a_permanent_refusal_is_a_dead_letter(telegram: Harness, failure: Any) -> None:
    telegram.fake.fail_next("sendMessage", failure)
    await telegram.deliver(telegram.fake.text_message("Hello?"))
    await telegram.send_all()
    telegram.clock.now += timedelta(hours=1)
    assert await telegram.send_all() == 0
    [dead] = await telegram.state.store.deliveries("dead")
    assert "Telegram refused it" in dead.last_error  # type: ignore[operator]
    assert telegram.fake.sent == []


async def test_a_server_error_is_retried_with_backoff(telegram: Harness) -> None:
    telegram.fake.fail_next("sendMessage", "500")
    await telegram.deliver(telegram.fake.text_message("Hello?"))
    await telegram.send_all()
    assert telegram.fake.sent == []
    telegram.clock.now += timedelta(seconds=5)  # the first back-off is about 2 seconds
    assert await telegram.send_all() == 1
    assert len(telegram.fake.sent) == 1


async def test_polling_mode_stores_and_answers_without_a_webhook(
    fake: FakeTelegram, state: State, clock: Clock
) -> None:
    channel = TelegramChannel(state, settings(fake, TELEGRAM_MODE="polling"))
    assert channel.routes() == []
    sender = Sender(state.store, {"telegram": channel}, "poller", clock=clock)
    await channel.start()
    try:
        fake.queue_update(fake.text_message("My bin wasn't emptied"))

        async def stored() -> bool:
            return bool(await state.store.open_items())

        # A wait that fails where it fails: a loop of 100 tries fell through to the send when
        # the message was still on its way, and the test then failed at the count of replies.
        await eventually(stored)
        await sender.once()
    finally:
        await channel.stop()
    assert len(fake.sent) == 1
    assert fake.calls("deleteWebhook")  # getUpdates is refused while a webhook is set


def test_webhook_mode_needs_a_well_formed_secret() -> None:
    from bot.errors import HoldingReplyError

    env = {"TELEGRAM_BOT_TOKEN": "1:x"}
    with pytest.raises(HoldingReplyError, match="TELEGRAM_WEBHOOK_SECRET must be set"):
        TelegramSettings(env)
    with pytest.raises(HoldingReplyError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramSettings({**env, "TELEGRAM_WEBHOOK_SECRET": "has:colon"})
    with pytest.raises(HoldingReplyError, match="TELEGRAM_MODE is 'push'"):
        TelegramSettings({**env, "TELEGRAM_MODE": "push"})
    assert TelegramSettings({**env, "TELEGRAM_MODE": "polling"}).mode == "polling"
