"""Telegram, through python-telegram-bot: webhook (production) or polling (a laptop).

Webhook: Telegram POSTs each update to /webhooks/telegram with the secret we registered in the
X-Telegram-Bot-Api-Secret-Token header (compared in constant time: 403 otherwise, nothing
stored). Our route feeds the update to a python-telegram-bot Application built without an
Updater, and answers 200 only once the message is stored, so Telegram redelivers anything we
could not store. Polling: getUpdates, and the offset only moves past an update once it is stored.

What is heard: every message in a private chat (a caption counts as text; a photo, voice note,
sticker and the like are queued with a note of what they were); in a group, only messages that
mention the bot or reply to it. An edit updates the queue's text and sends nothing. /start sends
the channel's profile text (hours, emergencies) and turns automatic replies back on; /stop turns
them off (messages are still queued). A message is known by (chat, message id), so a redelivered
update, whatever its update_id, is stored and answered once.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aiohttp import web
from telegram import Message as TelegramMessage
from telegram import ReplyParameters, Update
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channels import Capabilities, Limits, MaybePosted, TryLater, Undeliverable
from bot.channels.posting import Posted
from bot.errors import HoldingReplyError, StoreError
from bot.models import Delivery, Message, Outgoing
from bot.web import State, receive

log = logging.getLogger("bot.telegram")

# python-telegram-bot 22 gives durations (RetryAfter.retry_after) as timedeltas with this set,
# as its next major version will always; without it, every rate limit warns of the change.
os.environ.setdefault("PTB_TIMEDELTA", "1")

ROUTE = "/webhooks/telegram"
ALLOWED_UPDATES = ["message", "edited_message"]
POLL_SECONDS = 25
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as a secret_token
_MEDIA = (
    ("photo", "photo"),
    ("voice", "voice note"),
    ("video_note", "video message"),
    ("video", "video"),
    ("audio", "audio"),
    ("animation", "GIF"),
    ("document", "file"),
    ("sticker", "sticker"),
    ("location", "location"),
    ("contact", "contact"),
    ("poll", "poll"),
)
STOPPED = (
    "Automatic replies are off. Your messages still reach the team, who will reply in person. "
    "Send /start to turn automatic replies back on."
)


class TelegramSettings:
    """TELEGRAM_* from the environment, checked before anything starts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
        self.mode = (env.get("TELEGRAM_MODE") or "webhook").strip().lower()
        self.secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip()
        self.api_url = (env.get("TELEGRAM_API_URL") or "https://api.telegram.org/bot").strip()
        self.public_url = (env.get("PUBLIC_URL") or "").strip().rstrip("/")
        # Where announcements go: @channelname or the numeric id of a channel or group.
        announce = env.get("TELEGRAM_ANNOUNCE_CHAT", "").strip()
        self.announce_chat: int | str = (
            int(announce) if re.fullmatch(r"-?\d+", announce) else announce
        )
        problems = []
        if self.mode not in ("webhook", "polling"):
            problems.append(f"TELEGRAM_MODE is {self.mode!r}; expected webhook or polling")
        if self.mode == "webhook" and not _SECRET.fullmatch(self.secret):
            problems.append(
                "TELEGRAM_WEBHOOK_SECRET must be set for webhook mode: 1 to 256 letters, digits, "
                "_ or -, e.g. the output of python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        if problems:
            raise HoldingReplyError("Telegram is not set up: " + "; ".join(problems) + ".")

    def redact(self, text: str) -> str:
        """An error message without the bot token (URLs carry it)."""
        return text.replace(self.token, "<TELEGRAM_BOT_TOKEN>") if self.token else text


def describe(message: TelegramMessage) -> str:
    """The message as the team reads it: its text or caption, and a note of any attachment."""
    text = message.text or message.caption or ""
    notes = []
    for attribute, name in _MEDIA:
        value = getattr(message, attribute, None)
        if value:
            if attribute == "sticker" and getattr(value, "emoji", None):
                name = f"sticker {value.emoji}"
            if attribute == "document" and getattr(value, "file_name", None):
                name = f"file {value.file_name}"
            notes.append(f"[{name}]")
    return " ".join(part for part in (text, " ".join(notes)) if part)


class TelegramChannel:
    name = "telegram"
    limits = Limits(per_second=25.0, per_recipient_seconds=1.0)  # Telegram: ~30/s, ~1/s a chat
    capabilities = Capabilities(max_length=4096, threads=True, groups=True, posts=True)

    def __init__(self, state: State, settings: TelegramSettings) -> None:
        self.state = state
        self.settings = settings
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.token)
            .base_url(settings.api_url)
            .updater(None)
            .connect_timeout(5)
            .read_timeout(10)
            .write_timeout(10)
            .pool_timeout(5)
            .get_updates_read_timeout(POLL_SECONDS + 10)
            .build()
        )
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.app.add_error_handler(self._on_error)
        self._failed: dict[int, BaseException] = {}  # update_id -> what stopped it being stored
        self.ready = asyncio.Event()  # set once getMe has answered: then we can receive
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # Lifecycle.

    def routes(self) -> list[web.RouteDef]:
        return [web.post(ROUTE, self.webhook)] if self.settings.mode == "webhook" else []

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._tasks.append(asyncio.create_task(self._initialise()))
        if self.settings.mode == "polling":
            self._tasks.append(asyncio.create_task(self._poll()))

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.app.running:
            await self.app.stop()
        if self.ready.is_set():
            await self.app.shutdown()
        self.ready.clear()

    async def _initialise(self) -> None:
        """getMe (the bot's own name, to notice mentions), retried until Telegram answers."""
        delay = 1.0
        while True:
            try:
                await self.app.initialize()
                await self.app.start()
                break
            except (InvalidToken, TelegramError) as exc:
                log.warning(
                    "telegram not reachable yet",
                    extra={"error": self.settings.redact(str(exc)), "retry_in_seconds": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        self.ready.set()
        log.info("telegram ready", extra={"bot": self.app.bot.username, "mode": self.settings.mode})

    # Receiving.

    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.settings.secret.encode()):
            log.warning("telegram webhook refused: wrong secret token")
            return web.json_response({"error": "wrong secret token"}, status=403)
        try:
            data = await request.json()
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an Update")
        except ValueError:
            return web.json_response({"error": "the body is not a Telegram Update"}, status=400)
        if not self.ready.is_set():  # getMe has not answered yet: Telegram will redeliver
            return web.json_response({"error": "starting; try again"}, status=503)
        try:
            stored = await self.process(data)
        except StoreError:
            return web.json_response(
                {"error": "the update could not be stored; please try again"},
                status=503,
                headers={"Retry-After": "5"},
            )
        return web.json_response({"ok": True, "stored": stored})

    async def process(self, data: dict[str, Any]) -> bool:
        """Feed one update to the Application; raise StoreError if it could not be stored."""
        update = Update.de_json(data, self.app.bot)
        self._failed.pop(update.update_id, None)
        await self.app.process_update(update)
        failure = self._failed.pop(update.update_id, None)
        if failure is not None:
            if isinstance(failure, StoreError):
                raise failure
            log.error("telegram update not handled", exc_info=failure)
        return failure is None

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update) and context.error is not None:
            self._failed[update.update_id] = context.error

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        edited = update.edited_message
        if edited is not None:
            if self._addressed(edited):
                await self.state.store.edit_text(self.name, _key(edited), describe(edited))
            return
        message = update.message
        if message is None or not self._addressed(message):
            return
        command = _command(message, self.app.bot.username)
        sender = message.from_user or message.sender_chat
        sender_id = str(sender.id) if sender is not None else str(message.chat.id)
        if command in ("start", "stop"):
            await self._command(command, message, sender_id)
            return
        text = describe(message)
        if not text:
            return  # a service message (someone joined, a pin): nothing to answer
        name = message.from_user.full_name if message.from_user is not None else None
        group = message.chat.type != "private"
        await receive(
            self.state,
            Message(
                channel=self.name,
                platform_id=_key(message),
                sender=sender_id,
                text=text,
                received_at=self.state.clock(),
                sender_name=name,
                conversation=str(message.chat.id),
                thread=str(message.message_id) if group else None,
            ),
        )

    async def _command(self, command: str, message: TelegramMessage, sender: str) -> None:
        store = self.state.store
        now = self.state.clock()
        await store.set_opted_out(self.name, sender, command == "stop")
        text = STOPPED if command == "stop" else self.state.triage.bio(self.name, now)
        await store.enqueue(Outgoing(self.name, str(message.chat.id), "auto", text), now)
        self.state.wake()
        log.info("telegram command", extra={"command": command})

    def _addressed(self, message: TelegramMessage) -> bool:
        """Private chats always; groups only when the bot is mentioned or replied to."""
        if message.chat.type == "private":
            return True
        bot = self.app.bot
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
            return True
        username = (bot.username or "").lower()
        entities = message.parse_entities(["mention", "bot_command"])
        entities.update(message.parse_caption_entities(["mention"]))
        for entity, text in entities.items():
            if entity.type == "mention" and text.lower() == f"@{username}":
                return True
            if entity.type == "bot_command" and text.lower().endswith(f"@{username}"):
                return True
        return False

    async def _poll(self) -> None:
        await self.ready.wait()
        bot = self.app.bot
        await bot.delete_webhook()  # getUpdates is refused while a webhook is set
        offset: int | None = None
        delay = 1.0
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=POLL_SECONDS, allowed_updates=ALLOWED_UPDATES
                )
            except (TimedOut, NetworkError, RetryAfter) as exc:
                log.warning(
                    "telegram polling failed", extra={"error": self.settings.redact(str(exc))}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            delay = 1.0
            for update in updates:
                try:
                    await self.process(update.to_dict())
                except StoreError:
                    await asyncio.sleep(5)  # not stored: fetch it again, from this offset
                    break
                offset = update.update_id + 1

    # Sending.

    async def send(self, delivery: Delivery) -> str | None:
        await asyncio.wait_for(self.ready.wait(), 30)
        reply = None
        if delivery.reply_to is not None:
            reply = ReplyParameters(int(delivery.reply_to), allow_sending_without_reply=True)
        try:
            sent = await self.app.bot.send_message(
                chat_id=delivery.recipient, text=delivery.text, reply_parameters=reply
            )
        except RetryAfter as exc:
            after = exc.retry_after
            seconds = after.total_seconds() if isinstance(after, timedelta) else float(after)
            raise TryLater(f"Telegram rate limit: retry after {seconds:g} s", seconds) from None
        except (Forbidden, BadRequest) as exc:  # blocked, chat not found, kicked from the group
            raise Undeliverable(f"Telegram refused it: {self.settings.redact(str(exc))}") from None
        except (TelegramError, OSError) as exc:  # timeouts, network errors, 5xx, a bad token
            raise TryLater(f"Telegram: {self.settings.redact(str(exc))}") from None
        return str(sent.message_id)

    async def post(self, text: str) -> Posted:
        """An announcement in TELEGRAM_ANNOUNCE_CHAT (a channel or group the bot administers)."""
        chat = self.settings.announce_chat
        if not chat:
            raise Undeliverable(
                "TELEGRAM_ANNOUNCE_CHAT is not set: name the channel (@name or its numeric id) "
                "that announcements go to, and make the bot an administrator there"
            )
        await asyncio.wait_for(self.ready.wait(), 30)
        try:
            sent = await self.app.bot.send_message(chat_id=chat, text=text)
        except RetryAfter as exc:
            after = exc.retry_after
            seconds = after.total_seconds() if isinstance(after, timedelta) else float(after)
            raise TryLater(f"Telegram rate limit: retry after {seconds:g} s", seconds) from None
        except (Forbidden, BadRequest) as exc:  # not an admin there, the chat is gone
            why = self.settings.redact(str(exc))
            raise Undeliverable(
                f"Telegram refused it ({why}): is the bot an administrator of {chat}?"
            ) from None
        except TimedOut:
            raise MaybePosted("Telegram did not answer in time: it may be in the chat") from None
        except (TelegramError, OSError) as exc:  # network errors, 5xx, a bad token
            raise TryLater(f"Telegram: {self.settings.redact(str(exc))}") from None
        return Posted(str(sent.message_id), _link(sent))


def _link(message: TelegramMessage) -> str | None:
    """t.me/<name>/<id> in a public channel; t.me/c/<id>/<id> (members only) otherwise."""
    if message.chat.username:
        return f"https://t.me/{message.chat.username}/{message.message_id}"
    chat_id = str(message.chat.id)
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message.message_id}"
    return None


def _key(message: TelegramMessage) -> str:
    """Message ids are per chat: the pair names one message, however often it is delivered."""
    return f"{message.chat.id}:{message.message_id}"


def _command(message: TelegramMessage, username: str | None) -> str | None:
    """ "start" for "/start" or "/start@OurBot" at the start of the text, else None."""
    text = message.text or ""
    match = re.match(r"/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?:\s|$)", text)
    if match is None:
        return None
    if match.group(2) and username and match.group(2).lower() != username.lower():
        return None  # a command for another bot in the group
    return match.group(1).lower()
