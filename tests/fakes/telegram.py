"""A fake Telegram Bot API server on a loopback port the OS picks, for channel tests.

It speaks the documented wire format (https://core.telegram.org/bots/api), records every
request, builds realistic updates, serves them by long polling or posts them to a webhook,
and fails on demand the way the real API does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self, get_args

from aiohttp import ClientSession, ClientTimeout, web

Json = dict[str, Any]
Failure = Literal["429", "500", "502", "400-chat-not-found", "403-blocked", "403-kicked"]

BOT_ID = 7412580963
TOKEN = f"{BOT_ID}:AAHfakeTokenForTests_only-0123456789"
BOT_USERNAME = "AnytownCouncilBot"

CITIZEN: Json = {
    "id": 5123456789,
    "is_bot": False,
    "first_name": "Priya",
    "last_name": "Shah",
    "username": "priya_s",
    "language_code": "en",
}
NEIGHBOUR: Json = {
    "id": 5234567890,
    "is_bot": False,
    "first_name": "Rhys",
    "username": "rhys_anytown",
    "language_code": "cy",
}
GROUP: Json = {"id": -4123456789, "type": "group", "title": "Anytown Residents"}
SUPERGROUP: Json = {
    "id": -1001234567890,
    "type": "supergroup",
    "title": "Anytown Community Forum",
    "username": "anytown_forum",
}

# Each failure: HTTP status (always equal to error_code, as the real API does) and description.
_FAILURES: dict[str, tuple[int, str]] = {
    "500": (500, "Internal Server Error"),
    "400-chat-not-found": (400, "Bad Request: chat not found"),
    "403-blocked": (403, "Forbidden: bot was blocked by the user"),
    "403-kicked": (403, "Forbidden: bot was kicked from the group chat"),
}
# What the real API's nginx front answers when the backend is down: HTML, not JSON.
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)

# How form values (always strings on the wire) are read; other names stay strings.
_INTS = {"message_id", "reply_to_message_id", "message_thread_id", "offset", "limit"}
_INTS |= {"max_connections"}
_BOOLS = {"disable_notification", "protect_content", "allow_sending_without_reply"}
_BOOLS |= {"disable_web_page_preview", "drop_pending_updates", "allow_paid_broadcast"}
_JSONS = {"reply_parameters", "reply_markup", "entities", "link_preview_options"}
_JSONS |= {"allowed_updates", "caption_entities"}

_ENTITY_PATTERNS = (
    ("url", re.compile(r"https?://\S+")),
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")),
    ("hashtag", re.compile(r"(?<![\w#])#\w+")),
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


def entities(text: str) -> list[Json]:
    """The entities Telegram's servers detect in a user's text: urls, commands, mentions, tags."""
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append((start, end, kind))
    return [
        {"offset": utf16_len(text[:start]), "length": utf16_len(text[start:end]), "type": kind}
        for start, end, kind in sorted(found)
    ]


def private_chat(user: Json) -> Json:
    """The private chat between the bot and a user."""
    chat: Json = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    for key in ("last_name", "username"):
        if key in user:
            chat[key] = user[key]
    return chat


class ApiError(Exception):
    """An error answer: {"ok": false, "error_code": ..., "description": ..., "parameters": ...}."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class Call:
    """One request the fake received, and what it answered."""

    method: str  # canonical spelling, e.g. "sendMessage", however the client spelt it
    params: Json  # query, form, multipart or JSON body, with form strings read as typed values
    http_method: str
    content_type: str
    status: int = 0
    response: Json | None = None


@dataclass
class Delivery:
    """One POST of an update to a webhook."""

    update_id: int
    url: str
    secret: str | None
    status: int


@dataclass
class _Webhook:
    url: str = ""
    secret: str | None = None
    allowed_updates: list[str] = field(default_factory=list)
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


class FakeTelegram:
    """The Bot API at http://127.0.0.1:PORT/bot<TOKEN>/<method>, on a port the OS picks."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        username: str = BOT_USERNAME,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.token = token
        self.username = username
        self._now = now or (lambda: datetime.now(UTC))
        prefix = token.partition(":")[0]
        bot_id = int(prefix) if prefix.isdigit() else BOT_ID  # a real token starts with the id
        self.bot_user: Json = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Anytown Council",
            "username": username,
        }
        self.requests: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.webhook = _Webhook()
        self._updates: list[Json] = []
        self._arrived = asyncio.Event()
        self._closing = False
        self._failures: dict[str, deque[tuple[Failure, int]]] = {}
        # The bot's profile texts, by language code ("" for the default), as Telegram keeps them.
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self._hang: dict[str, int] = {}  # method -> calls to accept and then never answer
        self._hung = asyncio.Event()  # set when stopping: hung calls end with the server
        self._messages: dict[tuple[int, int], Json] = {}
        self._chats: dict[int, Json] = {}
        self._next_update_id = 650000001
        self._next_message_id = 101
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._port = 0
        self._methods: dict[str, Callable[[Json], Awaitable[tuple[Any, str | None]]]] = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyDescription": self._set_my_description,
            "setMyShortDescription": self._set_my_short_description,
            "getMyDescription": self._get_my_description,
            "getUpdates": self._get_updates,
        }
        self._canonical = {name.lower(): name for name in self._methods}

    # Lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port; open the session that posts to webhooks."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown_timeout, so stop() never waits a minute for a lingering connection.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        self._session = ClientSession(timeout=ClientTimeout(total=10))

    async def stop(self) -> None:
        """Answer any waiting long poll with no updates, then close the server and session."""
        self._closing = True
        self._hung.set()
        self._wake()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FakeTelegram is not started: call start() or use 'async with'")
        return self._port

    @property
    def base_url(self) -> str:
        """What python-telegram-bot's base_url takes; it appends the token itself."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def api_url(self) -> str:
        """The URL before a method name: base_url with the token."""
        return f"{self.base_url}{self.token}"

    # What the client sent

    def calls(self, method: str) -> list[Json]:
        """The params of every request to `method`, answered or failed, in order."""
        wanted = self._canonical.get(method.lower(), method)
        return [call.params for call in self.requests if call.method == wanted]

    @property
    def sent(self) -> list[Json]:
        """The params of each sendMessage the fake accepted (failed attempts are in .requests)."""
        return [c.params for c in self.requests if c.method == "sendMessage" and c.status == 200]

    @property
    def sent_messages(self) -> list[Json]:
        """The Message objects the fake returned for accepted sendMessage requests."""
        return [
            c.response["result"]
            for c in self.requests
            if c.method == "sendMessage" and c.status == 200 and c.response is not None
        ]

    @property
    def pending_updates(self) -> list[Json]:
        """Queued updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    # Failures

    def fail_next(
        self, method: str, kind: Failure, count: int = 1, *, retry_after: int = 5
    ) -> None:
        """Answer the next `count` calls of `method` with this failure instead of the result."""
        if kind not in get_args(Failure):
            raise ValueError(f"fail_next kind {kind!r} is not one of {get_args(Failure)}")
        name = self._canonical.get(method.lower(), method)
        self._failures.setdefault(name, deque()).extend([(kind, retry_after)] * count)

    def hang_after(self, method: str, count: int = 1) -> None:
        """Carry out the next `count` calls of `method` (a message is sent) but never answer:
        what a client sees when the platform accepted and the connection then dropped."""
        name = self._canonical.get(method.lower(), method)
        self._hang[name] = self._hang.get(name, 0) + count

    def add_channel(self, chat_id: int, username: str | None, title: str) -> Json:
        """A channel the bot administers, to post announcements in."""
        chat: Json = {"id": chat_id, "type": "channel", "title": title}
        if username:
            chat["username"] = username
        self._chats[chat_id] = chat
        return chat

    # Updates in

    def queue_update(self, update: Json) -> None:
        """Queue an update for getUpdates, waking any long poll."""
        self._remember(update)
        self._updates.append(copy.deepcopy(update))
        self._wake()

    async def deliver(self, update: Json, url: str | None = None, secret: str | None = None) -> int:
        """POST an update to a webhook as Telegram does; return the HTTP status it answered.

        With no url, the registered webhook's url and secret_token are used. With a url, only
        the given secret is sent (None: no X-Telegram-Bot-Api-Secret-Token header at all).
        Call it again with the same update to redeliver it.
        """
        if self._session is None:
            raise RuntimeError("FakeTelegram is not started: call start() or use 'async with'")
        if url is None:
            if not self.webhook.url:
                raise RuntimeError("no webhook is set: call setWebhook first, or pass a url")
            url, secret = self.webhook.url, secret if secret is not None else self.webhook.secret
        self._remember(update)
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with self._session.post(url, data=json.dumps(update), headers=headers) as response:
            await response.read()
            status, reason = response.status, response.reason
        self.deliveries.append(Delivery(update["update_id"], url, secret, status))
        if not 200 <= status <= 299:
            self.webhook.last_error_date = self._date()
            self.webhook.last_error_message = f"Wrong response from the webhook: {status} {reason}"
        return status

    # Update builders: each returns a fresh Update dict with the next update_id.

    def text_message(
        self,
        text: str,
        *,
        sender: Json | None = None,
        chat: Json | None = None,
        reply_to: Json | None = None,
    ) -> Json:
        """A text message; by default from CITIZEN in their private chat with the bot."""
        return self._message_update(sender, chat, reply_to, {"text": text, **_entities(text)})

    def photo_message(
        self, caption: str | None = None, *, sender: Json | None = None, chat: Json | None = None
    ) -> Json:
        """A photo (four PhotoSizes, smallest first), with an optional caption."""
        file_number = self._next_message_id
        sizes = [(90, 67, 1254), (320, 240, 17482), (800, 600, 71300), (1280, 960, 152911)]
        content: Json = {
            "photo": [
                {
                    "file_id": f"AgACAgQAAxkBAAIB{file_number:06d}x{width}",
                    "file_unique_id": f"AQADrb{file_number:06d}{width}",
                    "file_size": size,
                    "width": width,
                    "height": height,
                }
                for width, height, size in sizes
            ]
        }
        if caption is not None:
            content["caption"] = caption
            if found := entities(caption):
                content["caption_entities"] = found
        return self._message_update(sender, chat, None, content)

    def voice_message(
        self, duration: int = 7, *, sender: Json | None = None, chat: Json | None = None
    ) -> Json:
        """A voice note (OGG/Opus)."""
        number = self._next_message_id
        voice = {
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_id": f"AwACAgQAAxkBAAIB{number:06d}voice",
            "file_unique_id": f"AgADvo{number:06d}",
            "file_size": 2300 * duration,
        }
        return self._message_update(sender, chat, None, {"voice": voice})

    def sticker_message(
        self, emoji: str = "👍", *, sender: Json | None = None, chat: Json | None = None
    ) -> Json:
        """A regular static sticker from a set."""
        number = self._next_message_id
        thumbnail = {
            "file_id": f"AAMCAgADGQEAAIB{number:06d}thumb",
            "file_unique_id": f"AQADst{number:06d}",
            "file_size": 5416,
            "width": 128,
            "height": 128,
        }
        sticker = {
            "width": 512,
            "height": 512,
            "emoji": emoji,
            "set_name": "AnimalsPack",
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            "thumbnail": thumbnail,
            "file_id": f"CAACAgIAAxkBAAIB{number:06d}sticker",
            "file_unique_id": f"AgADsk{number:06d}",
            "file_size": 24880,
        }
        return self._message_update(sender, chat, None, {"sticker": sticker})

    def edited_message(self, original: Json, text: str) -> Json:
        """An edited_message update: the original message with new text (or caption)."""
        message = copy.deepcopy(original.get("message") or original.get("edited_message"))
        if message is None:
            raise ValueError("edited_message needs an update holding a message or edited_message")
        captioned = "caption" in message or "photo" in message
        key, entities_key = ("caption", "caption_entities") if captioned else ("text", "entities")
        message.pop(entities_key, None)
        message[key] = text
        if found := entities(text):
            message[entities_key] = found
        message["edit_date"] = self._date()
        update = {"update_id": self._take_update_id(), "edited_message": message}
        self._remember(update)
        return update

    def group_message(
        self,
        text: str,
        *,
        mention_bot: bool = False,
        sender: Json | None = None,
        chat: Json | None = None,
        reply_to: Json | None = None,
    ) -> Json:
        """A message in GROUP (or `chat`); mention_bot puts @username first if absent."""
        mention = f"@{self.username}"
        if mention_bot and mention not in text:
            text = f"{mention} {text}"
        return self.text_message(text, sender=sender, chat=chat or GROUP, reply_to=reply_to)

    def reply_to_bot(
        self,
        text: str,
        *,
        to: Json | None = None,
        sender: Json | None = None,
        chat: Json | None = None,
    ) -> Json:
        """A group message replying to a bot message: `to`, else the bot's last one there."""
        chat = chat or GROUP
        if to is None:
            mine = [m for m in self.sent_messages if m["chat"]["id"] == chat["id"]]
            to = mine[-1] if mine else self._bot_message(chat, "Thank you for your message.")
        return self.text_message(text, sender=sender, chat=chat, reply_to=to)

    def command(
        self,
        name: str,
        args: str = "",
        *,
        sender: Json | None = None,
        chat: Json | None = None,
    ) -> Json:
        """A /command, e.g. command("start"); in a group it is addressed: /start@username."""
        private = chat is None or chat["type"] == "private"
        text = f"/{name}" if private else f"/{name}@{self.username}"
        if args:
            text = f"{text} {args}"
        return self.text_message(text, sender=sender, chat=chat)

    # Server

    async def _handle(self, request: web.Request) -> web.Response:
        match = re.fullmatch(r"bot([^/]*)/(\w+)", request.match_info["tail"])
        content_type = request.headers.get("Content-Type", "")
        if match is None:
            return _answer(None, ApiError(404, "Not Found"))
        token, name = match.groups()
        call = Call(self._canonical.get(name.lower(), name), {}, request.method, content_type)
        self.requests.append(call)
        try:
            call.params = await _read_params(request)
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if call.method not in self._methods:
                raise ApiError(404, "Not Found")
            failures = self._failures.get(call.method)
            if failures:
                kind, retry_after = failures.popleft()
                if kind == "502":
                    call.status = 502
                    return web.Response(
                        status=502, text=_BAD_GATEWAY_HTML, content_type="text/html"
                    )
                _fail(kind, retry_after)
            result, description = await self._methods[call.method](call.params)
            if self._hang.get(call.method):
                self._hang[call.method] -= 1
                _answer(call, None, result, description)  # recorded as done, never answered
                await self._hung.wait()
        except ApiError as error:
            response = _answer(call, error)
        else:
            response = _answer(call, None, result, description)
        return response

    async def _get_me(self, params: Json) -> tuple[Any, str | None]:
        me = dict(self.bot_user)
        me.update(
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=False,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        return me, None

    async def _send_message(self, params: Json) -> tuple[Any, str | None]:
        if params.get("chat_id") in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chat(params["chat_id"])
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        reply = params.get("reply_parameters")
        if reply is None and "reply_to_message_id" in params:
            reply = {"message_id": params["reply_to_message_id"]}
        replied: Json | None = None
        if reply is not None:
            replied = self._messages.get(
                (int(reply.get("chat_id", chat["id"])), reply["message_id"])
            )
            lenient = reply.get(
                "allow_sending_without_reply", params.get("allow_sending_without_reply")
            )
            if replied is None and not lenient:
                raise ApiError(400, "Bad Request: message to be replied not found")
        message = self._bot_message(chat, text, replied)
        if params.get("entities"):
            message["entities"] = params["entities"]
        return message, None

    async def _set_webhook(self, params: Json) -> tuple[Any, str | None]:
        url = params.get("url", "")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if not url:
            return await self._delete_webhook(params)
        if params.get("drop_pending_updates"):
            self._updates.clear()
        already = url == self.webhook.url
        self.webhook.url, self.webhook.secret = url, secret
        if "allowed_updates" in params:
            self.webhook.allowed_updates = list(params["allowed_updates"])
        self.webhook.max_connections = params.get("max_connections", 40)
        return True, "Webhook is already set" if already else "Webhook was set"

    async def _delete_webhook(self, params: Json) -> tuple[Any, str | None]:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        had = bool(self.webhook.url)
        self.webhook = _Webhook(allowed_updates=self.webhook.allowed_updates)
        return True, "Webhook was deleted" if had else "Webhook is already deleted"

    async def _set_my_description(self, params: Json) -> tuple[Any, str | None]:
        return self._describe(params, "description", 512, self.descriptions)

    async def _set_my_short_description(self, params: Json) -> tuple[Any, str | None]:
        return self._describe(params, "short_description", 120, self.short_descriptions)

    def _describe(
        self, params: Json, field: str, most: int, kept: dict[str, str]
    ) -> tuple[Any, str | None]:
        text = params.get(field) or ""
        language = params.get("language_code") or ""
        if len(text) > most:
            raise ApiError(400, f"Bad Request: {field.upper()}_TOO_LONG")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError(400, "Bad Request: LANGUAGE_CODE_INVALID")
        if text:
            kept[language] = text
        else:  # an empty text removes the one for that language
            kept.pop(language, None)
        return True, None

    async def _get_my_description(self, params: Json) -> tuple[Any, str | None]:
        language = params.get("language_code") or ""
        return {"description": self.descriptions.get(language, "")}, None

    async def _get_webhook_info(self, params: Json) -> tuple[Any, str | None]:
        info: Json = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            info["ip_address"] = "127.0.0.1"
        if self.webhook.allowed_updates:
            info["allowed_updates"] = self.webhook.allowed_updates
        if self.webhook.last_error_date is not None:
            info["last_error_date"] = self.webhook.last_error_date
            info["last_error_message"] = self.webhook.last_error_message
        return info, None

    async def _get_updates(self, params: Json) -> tuple[Any, str | None]:
        if self.webhook.url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = min(max(params.get("limit") or 100, 1), 100)
        if "allowed_updates" in params:
            self.webhook.allowed_updates = list(params["allowed_updates"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get("timeout") or 0)
        while True:
            self._confirm(offset)
            batch = self._updates[:limit]
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return copy.deepcopy(batch), None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    # State

    def _confirm(self, offset: int | None) -> None:
        if offset is not None and offset < 0:
            self._updates = self._updates[offset:]
        elif offset is not None:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        allowed = self.webhook.allowed_updates
        if allowed:
            self._updates = [u for u in self._updates if _kind(u) in allowed]

    def _wake(self) -> None:
        # Waiters hold the old event: set it, and give later waiters a fresh one.
        self._arrived.set()
        self._arrived = asyncio.Event()

    def _chat(self, chat_id: int | str) -> Json:
        if isinstance(chat_id, int):
            if chat_id in self._chats:
                return self._chats[chat_id]
            if chat_id > 0:  # someone the bot never met: a private chat with an unknown user
                return {"id": chat_id, "type": "private", "first_name": "Unknown"}
        raise ApiError(400, "Bad Request: chat not found")

    def _remember(self, update: Json) -> None:
        for key in ("message", "edited_message"):
            if key in update:
                message = update[key]
                self._chats.setdefault(message["chat"]["id"], message["chat"])
                self._messages[(message["chat"]["id"], message["message_id"])] = message
                self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
                self._next_message_id = max(self._next_message_id, message["message_id"] + 1)

    def _bot_message(self, chat: Json, text: str, replied: Json | None = None) -> Json:
        message: Json = {
            "message_id": self._take_message_id(),
            "from": dict(self.bot_user),
            "chat": dict(chat),
            "date": self._date(),
            "text": text,
        }
        if replied is not None:
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        self._chats.setdefault(chat["id"], dict(chat))
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _message_update(
        self, sender: Json | None, chat: Json | None, reply_to: Json | None, content: Json
    ) -> Json:
        sender = sender or CITIZEN
        message: Json = {
            "message_id": self._take_message_id(),
            "from": dict(sender),
            "chat": dict(chat or private_chat(sender)),
            "date": self._date(),
        }
        if reply_to is not None:
            message["reply_to_message"] = {
                k: copy.deepcopy(v) for k, v in reply_to.items() if k != "reply_to_message"
            }
        message.update(copy.deepcopy(content))
        update = {"update_id": self._take_update_id(), "message": message}
        self._remember(update)
        return update

    def _take_update_id(self) -> int:
        self._next_update_id += 1
        return self._next_update_id - 1

    def _take_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1

    def _date(self) -> int:
        return int(self._now().timestamp())


def _entities(text: str) -> Json:
    found = entities(text)
    return {"entities": found} if found else {}


def _kind(update: Json) -> str:
    return next(key for key in update if key != "update_id")


def _fail(kind: Failure, retry_after: int) -> None:
    if kind == "429":
        raise ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )
    raise ApiError(*_FAILURES[kind])


def _answer(
    call: Call | None, error: ApiError | None, result: Any = None, description: str | None = None
) -> web.Response:
    body: Json
    if error is None:
        body = {"ok": True, "result": result}
        if description is not None:
            body["description"] = description
        status = 200
    else:
        body = {"ok": False, "error_code": error.code, "description": error.description}
        if error.parameters:
            body["parameters"] = error.parameters
        status = error.code
    if call is not None:
        call.status, call.response = status, body
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> Json:
    """Query string, then the body: JSON, URL-encoded form or multipart, as the real API takes."""
    raw: Json = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as error:
            raise ApiError(400, "Bad Request: can't parse JSON body") from error
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON body must be an object")
        raw.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                raw[name] = {"filename": value.filename, "size": len(data)}
            else:
                raw[name] = value
    return {name: _typed(name, value) for name, value in raw.items()}


def _typed(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if name == "chat_id":
            return int(value) if re.fullmatch(r"-?\d+", value) else value
        if name in _INTS:
            return int(value)
        if name == "timeout":
            return float(value)
        if name in _BOOLS:
            return value.lower() in ("true", "1")
        if name in _JSONS:
            return json.loads(value)
    except ValueError as error:
        raise ApiError(400, f"Bad Request: can't parse {name}") from error
    return value
