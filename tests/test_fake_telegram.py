"""The fake Telegram Bot API, checked against the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import telegram
from aiohttp import web
from aiohttp.test_utils import TestServer
from telegram import MessageEntity, ReplyParameters, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes, filters
from telegram.ext import MessageHandler as PTBMessageHandler
from telegram.request import HTTPXRequest

from tests.fakes.telegram import (
    BOT_ID,
    BOT_USERNAME,
    CITIZEN,
    GROUP,
    NEIGHBOUR,
    SUPERGROUP,
    Failure,
    FakeTelegram,
    entities,
    utf16_len,
)

# PTB's defaults are 5 s (read, write, connect) and 1 s (pool); a hung fake must fail a test fast.
SHORT = 2.0


def short_request() -> HTTPXRequest:
    return HTTPXRequest(
        connect_timeout=SHORT, read_timeout=SHORT, write_timeout=SHORT, pool_timeout=SHORT
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    client = telegram.Bot(
        fake.token,
        base_url=fake.base_url,
        request=short_request(),
        get_updates_request=short_request(),
    )
    async with client:  # initialize() calls getMe
        yield client


@pytest.fixture(autouse=True)
def timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to PTB's future types: time periods are timedeltas, with no deprecation warning."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def parse(update: dict[str, Any], bot: telegram.Bot) -> Update:
    parsed = Update.de_json(update, bot)
    assert parsed is not None
    return parsed


# The server


async def test_base_url_is_loopback_with_a_port_the_os_picked(fake: FakeTelegram) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/bot"
    assert fake.port > 0
    async with FakeTelegram() as other:
        assert other.port != fake.port


async def test_the_client_uses_short_timeouts(bot: telegram.Bot) -> None:
    assert bot.request.read_timeout == SHORT


async def test_get_me(fake: FakeTelegram, bot: telegram.Bot) -> None:
    me = await bot.get_me()

    assert me.is_bot
    assert me.id == BOT_ID
    assert me.username == BOT_USERNAME == bot.username
    assert [call.method for call in fake.requests] == ["getMe", "getMe"]  # initialize, then ours


async def test_a_wrong_token_is_unauthorized(fake: FakeTelegram) -> None:
    with pytest.raises(InvalidToken, match="was rejected by the server"):
        async with telegram.Bot(f"{BOT_ID}:AAHwrong", base_url=fake.base_url):
            pass

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}{BOT_ID}:AAHwrong/getMe") as response,
    ):
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }


async def test_method_names_are_case_insensitive_and_json_bodies_work(fake: FakeTelegram) -> None:
    update = fake.text_message("Hello")
    chat_id = update["message"]["chat"]["id"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.api_url}/SENDMESSAGE", json={"chat_id": chat_id, "text": "Hi"}
        ) as sent,
        session.get(f"{fake.api_url}/noSuchMethod") as unknown,
    ):
        body = await sent.json()
        assert body["ok"] is True
        assert body["result"]["text"] == "Hi"
        assert unknown.status == 404
        assert (await unknown.json())["description"] == "Not Found"
    assert fake.sent == [{"chat_id": chat_id, "text": "Hi"}]
    assert fake.requests[0].content_type == "application/json"


# Sending


async def test_send_message_reaches_the_fake_and_returns_a_message(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    update = fake.text_message("My bins were not collected")
    incoming = update["message"]

    first = await bot.send_message(
        incoming["chat"]["id"],
        "Thanks, we have your message.",
        reply_parameters=ReplyParameters(incoming["message_id"]),
    )
    second = await bot.send_message(incoming["chat"]["id"], "A second reply.")

    assert fake.sent == [
        {
            "chat_id": CITIZEN["id"],
            "text": "Thanks, we have your message.",
            "reply_parameters": {"message_id": incoming["message_id"]},
        },
        {"chat_id": CITIZEN["id"], "text": "A second reply."},
    ]
    # PTB 22 sends form-encoded bodies, with non-string values JSON-encoded.
    assert fake.requests[-1].content_type == "application/x-www-form-urlencoded"
    assert isinstance(first, telegram.Message)
    assert first.text == "Thanks, we have your message."
    assert first.chat.id == CITIZEN["id"]
    assert first.from_user is not None
    assert first.from_user.id == BOT_ID
    assert first.reply_to_message is not None
    assert first.reply_to_message.text == "My bins were not collected"
    assert second.message_id == first.message_id + 1
    assert first.date.tzinfo is not None
    assert fake.sent_messages[0]["message_id"] == first.message_id


async def test_reply_to_message_id_is_sent_as_reply_parameters(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    incoming = fake.text_message("Hello")["message"]

    await bot.send_message(incoming["chat"]["id"], "Hi", reply_to_message_id=incoming["message_id"])

    assert fake.sent[0]["reply_parameters"] == {"message_id": incoming["message_id"]}


async def test_replying_to_an_unknown_message_is_a_bad_request(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(CITIZEN["id"], "Hi", reply_parameters=ReplyParameters(99999))

    message = await bot.send_message(
        CITIZEN["id"],
        "Hi",
        reply_parameters=ReplyParameters(99999, allow_sending_without_reply=True),
    )
    assert message.reply_to_message is None


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("   ", "Bad Request: message text is empty"),
        ("x" * 4097, "Bad Request: message is too long"),
    ],
)
async def test_bad_text_is_refused(
    fake: FakeTelegram, bot: telegram.Bot, text: str, description: str
) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(CITIZEN["id"], text)

    assert fake.requests[-1].response is not None
    assert fake.requests[-1].response["description"] == description


async def test_a_group_the_bot_never_saw_is_not_found(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-1009999999999, "Hello")


# Failures on demand


async def test_429_raises_retry_after(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_next("sendMessage", "429", retry_after=7)

    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(CITIZEN["id"], "Hello")

    assert raised.value.retry_after == timedelta(seconds=7)
    call = fake.requests[-1]
    assert call.status == 429
    assert call.response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert fake.sent == []  # a refused attempt is in fake.requests, not in fake.sent


@pytest.mark.parametrize(
    ("kind", "error", "status", "message"),
    [
        ("403-blocked", Forbidden, 403, "Forbidden: bot was blocked by the user"),
        ("403-kicked", Forbidden, 403, "Forbidden: bot was kicked from the group chat"),
        # PTB drops a leading "Bad Request: " and capitalizes what is left.
        ("400-chat-not-found", BadRequest, 400, "Chat not found"),
        ("500", NetworkError, 500, "Internal Server Error"),
        # The real API's nginx answers 502 with HTML; PTB cannot parse it.
        ("502", NetworkError, 502, "Bad Gateway (502). Parsing the server response"),
    ],
)
async def test_failures_raise_ptb_errors(
    fake: FakeTelegram,
    bot: telegram.Bot,
    kind: Failure,
    error: type[TelegramError],
    status: int,
    message: str,
) -> None:
    fake.fail_next("sendMessage", kind)

    with pytest.raises(TelegramError) as raised:
        await bot.send_message(CITIZEN["id"], "Hello")

    # Exactly this class: BadRequest, and TimedOut, are themselves subclasses of NetworkError.
    assert type(raised.value) is error
    assert raised.value.message.startswith(message)
    assert fake.requests[-1].status == status
    if fake.requests[-1].response is not None:
        assert fake.requests[-1].response["error_code"] == status


async def test_failures_are_used_up_in_order_then_calls_succeed(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    fake.fail_next("sendmessage", "500", count=2)  # method names are case-insensitive

    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(CITIZEN["id"], "Hello")
    await bot.send_message(CITIZEN["id"], "Hello")
    await bot.get_me()  # failures are per method

    assert [call.status for call in fake.requests[-4:]] == [500, 500, 200, 200]
    assert len(fake.calls("sendMessage")) == 3
    assert len(fake.sent) == 1


def test_an_unknown_failure_is_refused() -> None:
    with pytest.raises(ValueError, match="'418'"):
        FakeTelegram().fail_next("sendMessage", "418")  # type: ignore[arg-type]


# Webhooks


async def test_set_webhook_is_recorded_and_reported(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.queue_update(fake.text_message("old"))

    assert await bot.set_webhook(
        "https://holding-reply.example/telegram",
        secret_token="s3cret_Token-1",
        allowed_updates=["message", "edited_message"],
        drop_pending_updates=True,
    )

    assert fake.calls("setWebhook") == [
        {
            "url": "https://holding-reply.example/telegram",
            "secret_token": "s3cret_Token-1",
            "allowed_updates": ["message", "edited_message"],
            "drop_pending_updates": True,
        }
    ]
    assert fake.requests[-1].response == {
        "ok": True,
        "result": True,
        "description": "Webhook was set",
    }
    info = await bot.get_webhook_info()
    assert info.url == "https://holding-reply.example/telegram"
    assert info.allowed_updates == ("message", "edited_message")
    assert info.pending_update_count == 0
    assert fake.webhook.secret == "s3cret_Token-1"

    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_a_secret_token_with_a_colon_is_refused(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
        await bot.set_webhook("https://example.org/hook", secret_token=f"{BOT_ID}:AAH")


async def test_get_updates_conflicts_with_an_active_webhook(bot: telegram.Bot) -> None:
    await bot.set_webhook("https://holding-reply.example/telegram")

    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()


class Receiver:
    """A webhook endpoint that checks the secret as our server will."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[str | None, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        self.received.append((header, await request.json()))
        return web.Response(status=200 if header == self.secret else 403)


async def test_deliver_posts_the_update_to_the_webhook_with_the_secret(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    receiver = Receiver("hook-secret")
    app = web.Application()
    app.router.add_post("/telegram", receiver.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/telegram"))
        await bot.set_webhook(url, secret_token="hook-secret")
        update = fake.text_message("Is the tip open on Sunday?")

        assert await fake.deliver(update) == 200
        assert await fake.deliver(update) == 200  # a redelivery of the same update
        assert await fake.deliver(update, url, secret=None) == 403

    assert [header for header, _ in receiver.received] == ["hook-secret", "hook-secret", None]
    assert all(body == update for _, body in receiver.received)
    delivered = parse(receiver.received[0][1], bot).message
    assert delivered is not None
    assert delivered.text == "Is the tip open on Sunday?"
    assert [d.status for d in fake.deliveries] == [200, 200, 403]
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 403 Forbidden"
    assert info.last_error_date is not None


async def test_deliver_needs_a_webhook_or_a_url(fake: FakeTelegram) -> None:
    with pytest.raises(RuntimeError, match="no webhook is set"):
        await fake.deliver(fake.text_message("Hello"))


# Long polling


async def test_get_updates_waits_for_a_queued_update(fake: FakeTelegram, bot: telegram.Bot) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=5))
    while not fake.calls("getUpdates"):  # the long poll has reached the fake
        await asyncio.sleep(0.01)
    update = fake.photo_message("Fly-tipping on Mill Lane #flytipping")
    started = time.monotonic()
    fake.queue_update(update)

    updates = await asyncio.wait_for(polling, SHORT)

    assert time.monotonic() - started < 1
    assert len(updates) == 1
    got = updates[0]
    assert got.update_id == update["update_id"]
    assert got.message is not None
    assert got.message.caption == "Fly-tipping on Mill Lane #flytipping"
    assert got.message.photo[-1].width == 1280
    assert got.message.parse_caption_entities() == {
        MessageEntity(MessageEntity.HASHTAG, 25, 11): "#flytipping"
    }
    assert fake.calls("getUpdates")[0] == {"timeout": 5}


async def test_an_offset_confirms_earlier_updates(fake: FakeTelegram, bot: telegram.Bot) -> None:
    first, second = fake.text_message("one"), fake.text_message("two")
    fake.queue_update(first)
    fake.queue_update(second)

    assert [u.update_id for u in await bot.get_updates()] == [
        first["update_id"],
        second["update_id"],
    ]
    assert [u.update_id for u in await bot.get_updates(offset=second["update_id"], limit=5)] == [
        second["update_id"]
    ]
    assert await bot.get_updates(offset=second["update_id"] + 1) == ()
    assert fake.pending_updates == []


async def test_an_empty_long_poll_returns_after_its_timeout(bot: telegram.Bot) -> None:
    started = time.monotonic()

    assert await bot.get_updates(timeout=1) == ()

    assert 0.9 < time.monotonic() - started < SHORT


async def test_stopping_the_fake_ends_a_long_poll(fake: FakeTelegram, bot: telegram.Bot) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=30))
    while not fake.calls("getUpdates"):
        await asyncio.sleep(0.01)

    await fake.stop()

    assert await asyncio.wait_for(polling, SHORT) == ()


# Update builders


async def test_a_private_text_message(fake: FakeTelegram, bot: telegram.Bot) -> None:
    update = fake.text_message("Pothole on the High Street, see https://example.org/p/1")
    message = parse(update, bot).message

    assert message is not None
    assert message.chat.type == "private"
    assert message.chat.id == CITIZEN["id"]
    assert message.from_user is not None
    assert message.from_user.language_code == "en"
    assert message.date.timestamp() == update["message"]["date"]
    assert list(message.parse_entities().values()) == ["https://example.org/p/1"]


async def test_a_group_mention_counts_in_utf16_units(fake: FakeTelegram, bot: telegram.Bot) -> None:
    update = fake.group_message("🗑️ not collected again", mention_bot=True, sender=NEIGHBOUR)
    assert update["message"]["text"] == "@AnytownCouncilBot 🗑️ not collected again"
    update = fake.group_message("Bins 🗑️ @AnytownCouncilBot not collected", chat=SUPERGROUP)
    message = parse(update, bot).message

    assert message is not None
    assert message.chat.type == "supergroup"
    assert message.chat.title == "Anytown Community Forum"
    (entity,) = message.entities
    assert (entity.type, entity.offset, entity.length) == ("mention", 9, 18)
    assert message.parse_entity(entity) == "@AnytownCouncilBot"
    assert utf16_len("Bins 🗑️ ") == 9 != len("Bins 🗑️ ") == 8


async def test_a_group_reply_to_the_bot(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.queue_update(fake.group_message("Hello", mention_bot=True))
    ours = await bot.send_message(GROUP["id"], "Thank you, we reply within two working days.")

    message = parse(fake.reply_to_bot("When exactly?"), bot).message

    assert message is not None
    assert message.chat.type == "group"
    assert message.reply_to_message is not None
    assert message.reply_to_message.message_id == ours.message_id
    assert message.reply_to_message.from_user is not None
    assert message.reply_to_message.from_user.is_bot


async def test_media_messages(fake: FakeTelegram, bot: telegram.Bot) -> None:
    voice = parse(fake.voice_message(12), bot).message
    sticker = parse(fake.sticker_message("😡"), bot).message
    photo = parse(fake.photo_message(), bot).message

    assert voice is not None
    assert voice.voice is not None
    assert (voice.voice.duration, voice.voice.mime_type) == (timedelta(seconds=12), "audio/ogg")
    assert voice.text is None
    assert sticker is not None
    assert sticker.sticker is not None
    assert sticker.sticker.emoji == "😡"
    assert photo is not None
    assert photo.caption is None
    assert [size.width for size in photo.photo] == [90, 320, 800, 1280]


async def test_an_edited_message(fake: FakeTelegram, bot: telegram.Bot) -> None:
    original = fake.text_message("Bin colection")
    edited = parse(fake.edited_message(original, "Bin collection #bins"), bot)

    assert edited.update_id == original["update_id"] + 1
    assert edited.message is None
    assert edited.edited_message is not None
    assert edited.edited_message.message_id == original["message"]["message_id"]
    assert edited.edited_message.text == "Bin collection #bins"
    assert edited.edited_message.edit_date is not None
    assert edited.edited_message.entities[0].type == "hashtag"


@pytest.mark.parametrize(
    ("chat", "text"),
    [(None, "/start"), (GROUP, "/start@AnytownCouncilBot")],
)
async def test_commands(
    fake: FakeTelegram, bot: telegram.Bot, chat: dict[str, Any] | None, text: str
) -> None:
    message = parse(fake.command("start", chat=chat), bot).message
    stop = parse(fake.command("stop", "please", chat=chat), bot).message

    assert message is not None
    assert message.text == text
    assert message.entities == (MessageEntity("bot_command", 0, len(text)),)
    assert stop is not None
    assert stop.text is not None
    assert stop.text.endswith(" please")


def test_update_ids_and_message_ids_increase(fake: FakeTelegram) -> None:
    updates = [fake.text_message("a"), fake.voice_message(), fake.command("start")]

    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids) == list(range(ids[0], ids[0] + 3))
    message_ids = [u["message"]["message_id"] for u in updates]
    assert message_ids == sorted(set(message_ids))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/stop@AnytownCouncilBot", [(0, 23, "bot_command")]),
        ("mail @AnytownCouncilBot", [(5, 18, "mention")]),
        ("see https://example.org/a/b now", [(4, 23, "url")]),
        ("me@example.org is not a mention", []),
        ("👋🏽 #Anytown", [(5, 8, "hashtag")]),
    ],
)
def test_entities(text: str, expected: list[tuple[int, int, str]]) -> None:
    assert [(e["offset"], e["length"], e["type"]) for e in entities(text)] == expected


# python-telegram-bot's Application


async def test_an_application_answers_a_command_through_the_fake(fake: FakeTelegram) -> None:
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .connect_timeout(SHORT)
        .read_timeout(SHORT)
        .write_timeout(SHORT)
        .pool_timeout(SHORT)
        .updater(None)
        .build()
    )

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Hello from Anytown Council")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"Got: {update.effective_message.text}")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(PTBMessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with app:  # initialize() ... shutdown(); no start() needed for process_update
        await app.process_update(parse(fake.command("start"), app.bot))
        await app.process_update(parse(fake.text_message("Hello?"), app.bot))

    assert [(sent["chat_id"], sent["text"]) for sent in fake.sent] == [
        (CITIZEN["id"], "Hello from Anytown Council"),
        (CITIZEN["id"], "Got: Hello?"),
    ]
    # reply_text() does not quote the message unless do_quote is set.
    assert "reply_parameters" not in fake.sent[0]


async def test_an_application_polls_the_fake(fake: FakeTelegram) -> None:
    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .connect_timeout(SHORT)
        .read_timeout(SHORT)
        .get_updates_read_timeout(SHORT)
        .build()
    )
    answered = asyncio.Event()

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Thanks")
        answered.set()

    app.add_handler(PTBMessageHandler(filters.TEXT, echo))
    update = fake.text_message("Is anyone there?")
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        fake.queue_update(update)
        await asyncio.wait_for(answered.wait(), SHORT)
        await app.updater.stop()
        await app.stop()

    assert fake.sent == [{"chat_id": CITIZEN["id"], "text": "Thanks"}]
    polls = fake.calls("getUpdates")
    assert polls[-1]["offset"] == update["update_id"] + 1  # the last poll confirms the update
    assert fake.pending_updates == []
    # start_polling() deletes any webhook first.
    assert fake.calls("deleteWebhook") == [{}]
