"""What Facebook, Instagram and WhatsApp share: one Meta app, its webhooks and the Graph API.

Webhooks. Meta verifies a callback URL with a GET (hub.mode=subscribe, hub.verify_token,
hub.challenge): we answer the challenge as the body when the token is META_VERIFY_TOKEN, 403
otherwise. Every POST carries X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the raw
body keyed with the app secret (META_APP_SECRET), compared in constant time: a missing or wrong
one gets 403 and nothing is stored. We answer 200 only once what the body carries is stored;
Meta redelivers anything else (for up to 36 hours), and the store's idempotency on the message id
makes a redelivery a no-op.
https://developers.facebook.com/docs/graph-api/webhooks/getting-started

The Graph API. Every call goes to META_GRAPH_URL (https://graph.facebook.com unless a test points
it at a local server), at the version pinned in GRAPH_VERSION, with the token in an
Authorization header rather than the URL, so it never reaches a log. We call it with aiohttp,
one session per channel, rather than through a client library: the three channels need four
endpoints between them, Meta's error body is the same for all three, and pywa (the maintained
WhatsApp library, httpx-based, whose base URL is fixed to graph.facebook.com) would add httpx and
its own models to the server's memory for one endpoint. pywa is used in the tests instead, where
it parses our fake's webhook deliveries and talks to the fake, so Meta's formats are checked by
someone else's code (tests/test_fake_meta.py).

Errors (https://developers.facebook.com/docs/graph-api/guides/error-handling, the Messenger
Platform's and WhatsApp's error code lists) map to the outbox's three outcomes:
- try later: rate limits (4, 17, 32, 613, 80001-80009, WhatsApp 130429, 131048, 131056), the
  temporary errors 1 and 2, anything marked is_transient, a 5xx, a network error;
- a dead letter: the person cannot be reached or the window has closed (551, 10/2018278,
  2534022, 131047, 131026 and any other refusal of this one message);
- a fix the team must make: the token has expired or been revoked (190, 102) or lacks a
  permission (10, 200-299, 3): retried every 15 minutes, so that replies go once the token is
  fixed, and the team is alerted once (bot.channels.meta.Alarm).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.channels import MaybePosted, SendFailed, TryLater, Undeliverable
from bot.errors import HoldingReplyError, StoreError
from bot.models import Delivery, Outgoing, QueueItem
from bot.web import State
from bot.windows import is_comment

log = logging.getLogger("bot.meta")

GRAPH_VERSION = "v23.0"  # the one place the Graph API version is pinned
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY = 1024 * 1024  # Meta batches up to 1,000 updates; far below this in practice
REQUEST_SECONDS = 20.0
FIX_RETRY_SECONDS = 15 * 60.0  # a token to renew or a permission to grant: not a blip
RATE_LIMITED_SECONDS = 60.0  # when Meta does not say how long

RATE_LIMITS = {4, 17, 32, 613, 130429, 131048, 131056, *range(80001, 80010)}
TEMPORARY = {1, 2, 131000, 131016, 133004}
TOKEN = {190, 102}
PERMISSION = {3, 10, *range(200, 300)}
# 10 is "permission denied" in general but, with this subcode, "outside the allowed window".
OUTSIDE_WINDOW_SUBCODES = {2018278, 2534022, 2018108}


class MetaSettings:
    """META_* and the channels' variables from the environment, checked before anything starts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.app_secret = env.get("META_APP_SECRET", "").strip()
        self.verify_token = env.get("META_VERIFY_TOKEN", "").strip()
        self.graph_url = (env.get("META_GRAPH_URL") or DEFAULT_GRAPH_URL).strip().rstrip("/")
        self.page_id = env.get("FACEBOOK_PAGE_ID", "").strip()
        self.page_token = env.get("FACEBOOK_PAGE_ACCESS_TOKEN", "").strip()
        self.instagram_id = env.get("INSTAGRAM_ACCOUNT_ID", "").strip()
        self.phone_number_id = env.get("WHATSAPP_PHONE_NUMBER_ID", "").strip()
        self.whatsapp_token = env.get("WHATSAPP_ACCESS_TOKEN", "").strip()

    def problems(self, channel: str) -> list[str]:
        """What keeps `channel` from running; names variables, never their values."""
        needed = {
            "facebook": ["FACEBOOK_PAGE_ID", "FACEBOOK_PAGE_ACCESS_TOKEN"],
            "instagram": ["INSTAGRAM_ACCOUNT_ID", "FACEBOOK_PAGE_ACCESS_TOKEN"],
            "whatsapp": ["WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_ACCESS_TOKEN"],
        }[channel]
        values = {
            "FACEBOOK_PAGE_ID": self.page_id,
            "FACEBOOK_PAGE_ACCESS_TOKEN": self.page_token,
            "INSTAGRAM_ACCOUNT_ID": self.instagram_id,
            "WHATSAPP_PHONE_NUMBER_ID": self.phone_number_id,
            "WHATSAPP_ACCESS_TOKEN": self.whatsapp_token,
            "META_APP_SECRET": self.app_secret,
            "META_VERIFY_TOKEN": self.verify_token,
        }
        missing = [n for n in [*needed, "META_APP_SECRET", "META_VERIFY_TOKEN"] if not values[n]]
        return [f"{name} is not set" for name in missing]

    def check(self, channel: str) -> None:
        problems = self.problems(channel)
        if problems:
            raise HoldingReplyError(
                f"{channel.capitalize()} is not set up: " + "; ".join(problems) + ". See the "
                f"README's section on {channel.capitalize()}."
            )

    def redact(self, text: str) -> str:
        for name, secret in (
            ("FACEBOOK_PAGE_ACCESS_TOKEN", self.page_token),
            ("WHATSAPP_ACCESS_TOKEN", self.whatsapp_token),
            ("META_APP_SECRET", self.app_secret),
        ):
            if secret:
                text = text.replace(secret, f"<{name}>")
        return text


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends with `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, given: str | None) -> bool:
    if not secret or not given:
        return False
    return hmac.compare_digest(given.strip().lower().encode(), signature(secret, body).encode())


def handshake(request: web.Request, verify_token: str) -> web.Response:
    """Meta's verification request: the challenge back as the body, or 403."""
    query = request.query
    given = query.get("hub.verify_token", "")
    if (
        query.get("hub.mode") == "subscribe"
        and verify_token
        and hmac.compare_digest(given.encode(), verify_token.encode())
    ):
        return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")
    log.warning("meta webhook verification refused", extra={"route": request.path})
    return web.Response(status=403, text="verification failed")


async def receive_webhook(
    request: web.Request,
    app_secret: str,
    expected_object: str,
    process: Callable[[dict[str, Any]], Awaitable[int]],
) -> web.Response:
    """A signed POST: 403 unless the signature matches, 200 once `process` has stored it all."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return web.json_response({"error": "too large"}, status=413)
    body = await request.read()
    if not signature_ok(app_secret, body, request.headers.get(SIGNATURE_HEADER)):
        log.warning("meta webhook refused: bad signature", extra={"route": request.path})
        return web.json_response({"error": "bad signature"}, status=403)
    try:
        data = json.loads(body)
    except ValueError:
        return web.json_response({"error": "the body is not JSON"}, status=400)
    if not isinstance(data, dict) or data.get("object") != expected_object:
        return web.json_response({"error": f"expected object {expected_object!r}"}, status=400)
    try:
        stored = await process(data)
    except StoreError:
        return web.json_response(
            {"error": "not stored; please try again"}, status=503, headers={"Retry-After": "5"}
        )
    return web.json_response({"ok": True, "stored": stored})


class NeedsFix(TryLater):
    """The token expired or lacks a permission: the team must fix a setting; retried meanwhile."""


def failure(status: int, body: Any, headers: Mapping[str, str]) -> SendFailed:
    """What a Graph API error answer means for the outbox."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        if status >= 500 or status == 429:
            return TryLater(f"Graph API answered {status}", _regain(headers))
        return Undeliverable(f"Graph API answered {status}")
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    said = str(error.get("message") or error.get("error_user_msg") or "no message")[:300]
    details = error.get("error_data", {}).get("details") if isinstance(error, dict) else None
    if isinstance(details, str):
        said += f" ({details[:200]})"
    what = f"Meta error {code}" + (f"/{subcode}" if subcode else "") + f": {said}"
    if code in RATE_LIMITS:
        return TryLater(f"{what} (a rate limit)", _regain(headers) or RATE_LIMITED_SECONDS)
    if subcode in OUTSIDE_WINDOW_SUBCODES or code in (551, 131047, 131026):
        return Undeliverable(what)
    if code in TOKEN or code in (463, 467):  # 463/467: an expired or invalid session
        return NeedsFix(
            f"{what}. The access token has expired or been revoked: make a new one",
            FIX_RETRY_SECONDS,
        )
    if code in PERMISSION:
        return NeedsFix(
            f"{what}. The app lacks a permission it needs: check it in the Meta app",
            FIX_RETRY_SECONDS,
        )
    if code in TEMPORARY or error.get("is_transient") is True or status >= 500:
        return TryLater(what)
    return Undeliverable(what)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _regain(headers: Mapping[str, str]) -> float | None:
    """Seconds until the rate limit lifts: Retry-After, or X-Business-Use-Case-Usage's
    estimated_time_to_regain_access (minutes), whichever Meta sent."""
    if headers.get("Retry-After", "").isdigit():
        return float(headers["Retry-After"])
    for header in ("X-Business-Use-Case-Usage", "X-Page-Usage", "X-App-Usage"):
        raw = headers.get(header)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except ValueError:
            continue
        minutes = [
            _int(entry.get("estimated_time_to_regain_access"))
            for entries in (usage.values() if header == "X-Business-Use-Case-Usage" else [[usage]])
            if isinstance(entries, list)
            for entry in entries
            if isinstance(entry, dict)
        ]
        found = [m for m in minutes if m]
        if found:
            return 60.0 * max(found)
    return None


async def _answer(response: aiohttp.ClientResponse) -> Any:
    """The Graph API's JSON answer; TryLater / Undeliverable / NeedsFix if it is an error."""
    try:
        answer = await response.json(content_type=None)
    except ValueError:
        answer = None
    if response.status >= 400 or (isinstance(answer, dict) and "error" in answer):
        raise failure(response.status, answer, response.headers)
    return answer


class Graph:
    """The Graph API at one base URL, with one token, on one aiohttp session."""

    def __init__(self, settings: MetaSettings, token: str) -> None:
        self.settings = settings
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_SECONDS),
                headers={"Authorization": f"Bearer {self.token}"},
            )

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def get(self, path: str, fields: str, seconds: float) -> dict[str, Any] | None:
        """GET /<version>/<path>?fields=...: the answer, or None on any failure (best effort)."""
        await self.start()
        assert self._session is not None
        url = f"{self.settings.graph_url}/{GRAPH_VERSION}/{path}"
        try:
            async with asyncio.timeout(seconds):
                async with self._session.get(url, params={"fields": fields}) as response:
                    answer = await response.json(content_type=None)
                    return answer if response.status == 200 and isinstance(answer, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def read(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET /<version>/<path>: the answer, or TryLater / Undeliverable / NeedsFix as for a
        post (unlike `get`, a failure is not hidden: the caller must know it could not look)."""
        await self.start()
        assert self._session is not None
        url = f"{self.settings.graph_url}/{GRAPH_VERSION}/{path}"
        try:
            async with self._session.get(url, params=params) as response:
                answer = await _answer(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TryLater(self.settings.redact(f"Graph API unreachable: {exc!r}")) from None
        return answer if isinstance(answer, dict) else {}

    async def post(self, path: str, body: dict[str, Any], *, once: bool = False) -> dict[str, Any]:
        """POST /<version>/<path> with a JSON body; the answer, or TryLater / Undeliverable.

        `once`: a call that must not be repeated blindly (a post on the Page's feed): no answer
        in time, or a connection dropped after sending, raises MaybePosted instead of TryLater.
        """
        await self.start()
        assert self._session is not None
        url = f"{self.settings.graph_url}/{GRAPH_VERSION}/{path}"
        try:
            async with self._session.post(url, json=body) as response:
                answer = await _answer(response)
        except (TimeoutError, aiohttp.ServerDisconnectedError) as exc:
            if once:
                raise MaybePosted(
                    "Facebook did not answer in time: the post may be on the Page"
                ) from None
            raise TryLater(self.settings.redact(f"Graph API unreachable: {exc!r}")) from None
        except aiohttp.ClientError as exc:
            raise TryLater(self.settings.redact(f"Graph API unreachable: {exc!r}")) from None
        return answer if isinstance(answer, dict) else {}


class Alarm:
    """Tells the team, once, that a channel needs a fix only they can make (a token, a
    permission); says it again only after a send has worked since."""

    def __init__(self, state: State, channel: str) -> None:
        self.state = state
        self.channel = channel
        self._maybe_raised = True  # until a send has worked and the flag is known to be clear

    async def raise_once(self, problem: NeedsFix) -> None:
        extra = {"channel": self.channel, "error": str(problem)}
        log.error("meta channel needs a fix", extra=extra)
        store = self.state.store
        self._maybe_raised = True
        try:
            if await store.get_state(self.channel, "needs_fix"):
                return
            await store.set_state(self.channel, "needs_fix", "1")
            rules = self.state.triage.rules
            routes = rules.alerts.default or rules.alerts.emergency
            text = (
                f"{self.channel.capitalize()}: replies cannot be sent until the team fixes a "
                f"setting. {problem} They will go out once it works (we try every 15 minutes)."
            )
            now = self.state.clock()
            for route in routes:
                await store.enqueue(Outgoing(route.kind, route.target, "alert", text), now)
            if routes:
                self.state.wake()
        except StoreError:
            log.warning("meta alarm not stored", extra={"channel": self.channel})

    async def clear(self) -> None:
        """A send worked: the next problem is news again. One read per process, not per send."""
        if not self._maybe_raised:
            return
        try:
            if await self.state.store.get_state(self.channel, "needs_fix"):
                await self.state.store.set_state(self.channel, "needs_fix", "")
                log.info("meta channel works again", extra={"channel": self.channel})
            self._maybe_raised = False
        except StoreError:
            pass


async def last_message(state: State, delivery: Delivery) -> tuple[QueueItem, datetime] | None:
    """The item a reply answers, and when its sender last wrote to us on its channel (comments
    do not count: they open no messaging window). None when the item is gone (erased)."""
    if delivery.reference is None:
        return None
    item = await state.store.get(delivery.reference)
    if item is None:
        return None
    times = [
        other.received_at
        for other in [item, *await state.store.history(item)]
        if not is_comment(other.platform_id)
    ]
    return item, max(times, default=item.received_at)


def unix_time(value: Any, *, milliseconds: bool = False) -> datetime | None:
    """A Unix time in a webhook (WhatsApp's in seconds, as text; Messenger's in milliseconds)
    as an aware UTC datetime, or None when it is missing or no time at all."""
    try:
        seconds = float(value) / (1000.0 if milliseconds else 1.0)
        return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def attachment_notes(kinds: list[str]) -> str:
    """ "[photo] [voice note]" for the attachments' types, as the team reads them."""
    names = {
        "image": "photo",
        "audio": "voice note",
        "video": "video",
        "file": "file",
        "document": "file",
        "sticker": "sticker",
        "location": "location",
        "fallback": "link",
        "share": "shared post",
        "story_mention": "story mention",
        "ig_reel": "reel",
        "reel": "reel",
        "contacts": "contact",
        "template": "card",
    }
    return " ".join(f"[{names.get(k, k.replace('_', ' '))}]" for k in kinds)
