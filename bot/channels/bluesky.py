"""Bluesky (AT Protocol): mentions, replies and direct messages, polled with the atproto SDK.

Session. Bluesky limits logins (createSession: 30 every 5 minutes, a few hundred a day), so the
channel logs in once and then keeps the session: the SDK refreshes the access token before it
expires (refreshSession), and every new session is kept in the store, encrypted with a key made
from the app password, handle and service URL, so a restart or another process carries on
with it instead of logging in. A refresh token is single-use: when another process has
refreshed first, this one takes the newer session from the store; only when the stored session
is refused too does it log in again, and then no more often than LOGIN_BACKOFF allows.

Receiving. Every BLUESKY_POLL_SECONDS (default 60) one process (a lease in the store) reads the
account's notifications for mentions, replies and quotes (app.bsky.notification.listNotifications)
newer than the position kept in the store ("notifications_seen_at", the newest indexedAt
handled), and another lease reads direct messages from the chat service's log
(chat.bsky.convo.getLog, its cursor kept as "chat_cursor"). Every call goes to
BLUESKY_SERVICE_URL, or to the host its login names (the SDK follows the session's DID
document, as Bluesky's own apps do: bsky.social names the account's PDS, a self-hosted PDS or a
test server names itself); chat calls go the same way, with the atproto-proxy header naming
Bluesky's chat service. An app
password made without direct message access is refused by the chat service: that is logged,
direct messages are looked at again every 15 minutes, and mentions carry on. Positions move only
past what is stored; the store's idempotency on (channel, platform_id), "post:<at-uri>" and
"dm:<message id>", makes sure each is stored and answered once.

Replying. A post is answered in its thread: the reply's parent is the post (uri and cid) and its
root the thread's root, within 300 characters (Bluesky counts graphemes; counting code points
never counts fewer), with links made clickable (facets). A direct message is answered in its
conversation, within 1,000. The outbox's delivery says which: reply_to holds "parent-uri
parent-cid root-uri root-cid" for a post, None for a direct message (the recipient is then the
conversation id).

Announcements (post), finding one again after a crash (find) and the profile's description
(set_description) are in bot/channels/bluesky_account.py, made with this channel's session.

Who gets no automatic reply (still queued for the team): accounts labelled "bot" by themselves,
quote posts, replies to someone else further down one of our threads, and anything older than
24 hours. Our own posts and messages are not stored at all.

Opt-out, as on X (bot.channels.optout): a post or direct message whose whole text, after any
@handles, is STOP (any case, with or without a full stop) turns automatic replies off for that
person, in posts and direct messages alike (both carry their DID); START turns them back on.
Neither is queued for the team, and nothing is sent in answer, in a thread or by message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.channels import Capabilities, Limits, TryLater, Undeliverable, optout
from bot.channels import bluesky_account as account
from bot.channels.fitting import fit
from bot.channels.polling import leased, poll_seconds
from bot.channels.posting import Posted
from bot.errors import HoldingReplyError, StoreError
from bot.jobs import holder_name
from bot.models import Delivery, Message
from bot.web import State, receive

log = logging.getLogger("bot.bluesky")

DEFAULT_SERVICE_URL = "https://bsky.social"
DEFAULT_POLL_SECONDS = 60.0
POST_LIMIT = 300  # graphemes
DM_LIMIT = 1000
PAGE_SIZE = 50
MAX_PAGES = 8
REQUEST_SECONDS = 30.0
REFUSED_RETRY_SECONDS = 900.0
LOGIN_BACKOFF = (60.0, 3600.0)  # after a failed login: the first wait, and the longest
STALE = timedelta(hours=24)
POLL_LEASE = timedelta(seconds=MAX_PAGES * REQUEST_SECONDS + 60)
REASONS = ["mention", "reply", "quote"]
SEEN = "notifications_seen_at"
CHAT_CURSOR = "chat_cursor"
SESSION = "session"
_CREATE_MESSAGE = "chat.bsky.convo.defs#logCreateMessage"
_MESSAGE_VIEW = "chat.bsky.convo.defs#messageView"
_LINK = re.compile(r"https?://[^\s<>\"]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BlueskyConfigError(HoldingReplyError):
    """BLUESKY_* in the environment are missing or malformed."""


class _SessionLost(Exception):
    """The session was refused: the next call logs in (or takes the stored one) again."""


class BlueskySettings:
    """BLUESKY_* from the environment, checked before anything starts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.handle = (env.get("BLUESKY_HANDLE") or "").strip().lstrip("@")
        self.password = (env.get("BLUESKY_APP_PASSWORD") or "").strip()
        missing = [
            name
            for name, value in (
                ("BLUESKY_HANDLE", self.handle),
                ("BLUESKY_APP_PASSWORD", self.password),
            )
            if not value
        ]
        if missing:
            raise BlueskyConfigError(
                f"Bluesky channel: missing environment variable {', '.join(missing)}. Set "
                "BLUESKY_HANDLE (e.g. anytown.gov.uk) and BLUESKY_APP_PASSWORD (an app password "
                "from Settings > Privacy and security > App passwords)."
            )
        raw = (env.get("BLUESKY_SERVICE_URL") or DEFAULT_SERVICE_URL).strip().rstrip("/")
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            raise BlueskyConfigError(
                f"BLUESKY_SERVICE_URL has value {raw!r}. Expected the address of the account's "
                f"server, e.g. {DEFAULT_SERVICE_URL}."
            )
        self.service_url = raw
        try:
            self.poll_seconds = poll_seconds(
                env.get("BLUESKY_POLL_SECONDS"), "BLUESKY_POLL_SECONDS", DEFAULT_POLL_SECONDS
            )
        except ValueError as exc:
            raise BlueskyConfigError(str(exc)) from None

    def session_key(self) -> bytes:
        """The Fernet key that keeps the stored session unreadable without the app password."""
        seed = "\0".join(("holding-reply bluesky session", self.service_url, self.handle))
        digest = hashlib.sha256(f"{seed}\0{self.password}".encode()).digest()
        return base64.urlsafe_b64encode(digest)

    def redact(self, text: str) -> str:
        return text.replace(self.password, "<BLUESKY_APP_PASSWORD>")


def strong_refs(reply_to: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """(parent uri, cid) and (root uri, cid) from a delivery's reply_to."""
    parent_uri, parent_cid, root_uri, root_cid = reply_to.split(" ")
    return (parent_uri, parent_cid), (root_uri, root_cid)


def link_spans(text: str) -> list[tuple[int, int, str]]:
    """(byte start, byte end, url) of each link, as Bluesky's facets count: UTF-8 bytes."""
    spans = []
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(".,;:!?)'")
        start = len(text[: match.start()].encode())
        spans.append((start, start + len(url.encode()), url))
    return spans


def facets(text: str) -> list[Any]:
    """The link facets that make each link in `text` clickable."""
    from atproto_client import models

    return [
        models.AppBskyRichtextFacet.Main(
            index=models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=end),
            features=[models.AppBskyRichtextFacet.Link(uri=url)],
        )
        for start, end, url in link_spans(text)
    ]


def _when(value: Any) -> datetime | None:
    """An AT Protocol datetime (ISO 8601, "Z" or an offset) as an aware datetime, or None."""
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class BlueskyChannel:
    name = "bluesky"
    # Bluesky allows an account about 5,000 points of writes an hour (a post is 3); its 429
    # reschedules replies beyond that. The spacing keeps bursts gentle, and two replies to one
    # person (the automatic one, then the team's) a few seconds apart.
    limits = Limits(per_second=0.5, per_recipient_seconds=5.0)
    capabilities = Capabilities(max_length=POST_LIMIT, threads=True, groups=False, posts=True)

    def __init__(self, state: State, env: Mapping[str, str], holder: str | None = None) -> None:
        self.state = state
        self.settings = BlueskySettings(env)
        self.holder = holder or holder_name()
        self.me: str | None = None  # our DID, once a session is in hand
        self.ready = asyncio.Event()
        self._client: Any = None  # atproto's AsyncClient, imported when the channel starts
        self._chat: Any = None  # the same session, with the chat service's atproto-proxy header
        self._session_ok = False
        self._session_lock = asyncio.Lock()
        self._login_after = 0.0  # loop time before which no login is tried
        self._login_wait = LOGIN_BACKOFF[0]
        self._task: asyncio.Task[None] | None = None

    # Lifecycle.

    def routes(self) -> list[web.RouteDef]:
        return []  # Bluesky is polled

    async def start(self) -> None:
        if self._task is not None:
            return
        from atproto_client import AsyncClient

        self._client = AsyncClient(base_url=self.settings.service_url)
        self._client.on_session_change(self._keep_session)
        self._chat = None
        self._session_ok = False
        self._task = asyncio.create_task(self._run(), name="bluesky-polling")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            async with self._no_refresh_under_way():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for client in (self._chat, self._client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.request.close()
        self._client = self._chat = None
        self.ready.clear()
        with contextlib.suppress(StoreError):
            await self.state.store.release_jobs(self.holder)

    # The session.

    @contextlib.asynccontextmanager
    async def _no_refresh_under_way(self) -> AsyncIterator[None]:
        """Hold the SDK's refresh lock (waiting, at most REQUEST_SECONDS, for a refresh under
        way to finish and be stored). A refresh token is single-use: a refresh cancelled after
        the server took the old token, before the new session was stored, would leave a stored
        session that no longer works, and the next start would have to log in again."""
        lock = getattr(self._client, "_refresh_lock", None)
        if lock is None:
            yield
            return
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                await lock.acquire()
        except TimeoutError:
            yield
            return
        try:
            yield
        finally:
            lock.release()

    async def _keep_session(self, event: Any, session: Any) -> None:
        """Store each new session (created or refreshed), encrypted; never log it."""
        if getattr(event, "value", event) == "import":
            return  # what was read from the store
        from cryptography.fernet import Fernet

        token = Fernet(self.settings.session_key()).encrypt(session.encode().encode())
        try:
            await self.state.store.set_state(self.name, SESSION, token.decode())
        except StoreError as exc:  # kept in memory; stored with the next refresh
            log.warning("bluesky session not stored", extra={"error": str(exc)})

    async def _stored_session(self) -> str | None:
        from cryptography.fernet import Fernet, InvalidToken

        stored = await self.state.store.get_state(self.name, SESSION)
        if not stored:
            return None
        try:
            return Fernet(self.settings.session_key()).decrypt(stored.encode()).decode()
        except (InvalidToken, ValueError):  # another password, handle or server: log in anew
            return None

    async def _session(self) -> None:
        """Make sure there is a session: the one in hand, the stored one, or a new login."""
        if self._session_ok:
            return
        async with self._session_lock:
            if self._session_ok:
                return
            from atproto_client.exceptions import RateLimitExceededError

            client = self._client
            if client is None:
                raise _SessionLost("the Bluesky channel is not started")
            session = getattr(client, "_session", None)  # the SDK's own, once there is one
            current = session.encode() if session is not None else None
            stored = await self._stored_session()
            try:
                if stored and stored != current:
                    await client.login(session_string=stored, fetch_bsky_profile=False)
                    log.info("bluesky session taken from the store")
                elif not await self._refresh():
                    await self._login()
            except (_SessionLost, RateLimitExceededError):
                raise
            except Exception as exc:
                raise _SessionLost(self._why(exc)) from None
            self.me = str(client._session.did)
            self._chat = client.with_bsky_chat_proxy()
            self._session_ok = True
            self.ready.set()

    async def _refresh(self) -> bool:
        """Renew the session in hand with its refresh token; False if there is none or it is
        refused. (The SDK renews by itself before the access token expires; this is for an
        access token the server refused sooner.)"""
        if getattr(self._client, "_session", None) is None:
            return False
        try:
            async with asyncio.timeout(REQUEST_SECONDS), self._client._refresh_lock:
                await self._client._refresh_and_set_session()
        except Exception as exc:
            log.info("bluesky session not renewed", extra={"error": self._why(exc)})
            return False
        return True

    async def _login(self) -> None:
        from atproto_client.exceptions import UnauthorizedError

        loop = asyncio.get_running_loop()
        if loop.time() < self._login_after:
            raise _SessionLost("waiting before logging in again")
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                await self._client.login(
                    self.settings.handle, self.settings.password, fetch_bsky_profile=False
                )
        except BaseException as exc:
            self._login_after = loop.time() + self._login_wait
            self._login_wait = min(self._login_wait * 2, LOGIN_BACKOFF[1])
            if isinstance(exc, UnauthorizedError):
                log.error(
                    "Bluesky refused the login: check BLUESKY_HANDLE and BLUESKY_APP_PASSWORD"
                )
            raise
        self._login_wait = LOGIN_BACKOFF[0]
        log.info("bluesky logged in", extra={"account": self.settings.handle})

    def _lost(self, exc: BaseException) -> bool:
        """Whether `exc` says the session itself was refused (expired, revoked)."""
        from atproto_client.exceptions import RequestErrorBase

        if not isinstance(exc, RequestErrorBase) or exc.response is None:
            return False
        content = exc.response.content
        error = getattr(content, "error", None) or ""
        if "scope" in (getattr(content, "message", None) or "").lower():
            return False  # the session is good; the app password may not do this (chat)
        return exc.response.status_code == 401 or error in ("ExpiredToken", "InvalidToken")

    async def _call(self, request: Callable[[], Awaitable[Any]]) -> Any:
        """One request with the session, given up after REQUEST_SECONDS. A refused session is
        dropped so that the next request recovers it."""
        await self._session()
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                return await request()
        except Exception as exc:
            if self._lost(exc):
                self._session_ok = False
                raise _SessionLost(self._why(exc)) from None
            raise

    def _why(self, exc: BaseException) -> str:
        text = str(exc) if str(exc) else type(exc).__name__
        return self.settings.redact(f"{type(exc).__name__}: {text}")

    @staticmethod
    def _reset_in(exc: Any) -> float:
        """Seconds until a 429's ratelimit-reset, at least 1 (60 if Bluesky did not say)."""
        reset = getattr(exc, "reset_at", None)
        if isinstance(reset, datetime):
            return max(1.0, (reset - datetime.now(reset.tzinfo)).total_seconds())
        after = getattr(exc, "retry_after", None)
        return max(1.0, float(after)) if after is not None else 60.0

    # Receiving.

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        every = self.settings.poll_seconds
        due = {"notifications": 0.0, "chat": 0.0}
        polls = {"notifications": self._poll_notifications, "chat": self._poll_chat}
        while True:
            for what, poll in polls.items():
                if due[what] <= loop.time():
                    wait = await leased(
                        self.state.store,
                        f"bluesky:{what}",
                        self.holder,
                        every,
                        POLL_LEASE,
                        lambda poll=poll, what=what: self._poll(poll, what),  # type: ignore[misc]
                    )
                    due[what] = loop.time() + wait
            await asyncio.sleep(max(0.0, min(due.values()) - loop.time()))

    async def _poll(self, poll: Callable[[], Awaitable[None]], what: str) -> float:
        """Run one poll; return the seconds until the next, as Bluesky's answer allows."""
        from atproto_client.exceptions import (
            AtProtocolError,
            RateLimitExceededError,
            UnauthorizedError,
        )

        every = self.settings.poll_seconds
        try:
            await poll()
            return every
        except RateLimitExceededError as exc:
            wait = self._reset_in(exc)
            log.warning("bluesky polling rate limited", extra={"endpoint": what, "retry_in": wait})
            return wait
        except _SessionLost as exc:
            log.warning("bluesky session lost; recovering it", extra={"error": str(exc)})
            return every
        except UnauthorizedError as exc:  # the session is fine, the chat service refuses it
            wait = max(every, REFUSED_RETRY_SECONDS)
            log.error(
                "Bluesky refused to let us read %s: for direct messages, make the app password "
                "with 'Allow access to your direct messages' ticked",
                what,
                extra={"error": self._why(exc), "retry_in": wait},
            )
            return wait
        except StoreError as exc:
            log.warning("bluesky position not saved", extra={"endpoint": what, "error": str(exc)})
            return every
        except (AtProtocolError, TimeoutError) as exc:
            log.warning("bluesky polling failed", extra={"endpoint": what, "error": self._why(exc)})
            return every
        except Exception:  # a surprise in the answer must not end polling for good
            log.exception("bluesky polling failed", extra={"endpoint": what})
            return every

    async def _poll_notifications(self) -> None:
        from atproto_client import models

        seen_text = await self.state.store.get_state(self.name, SEEN)
        seen = _when(seen_text) if seen_text else None
        fresh: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES if seen else 1):
            params = models.AppBskyNotificationListNotifications.Params(
                limit=PAGE_SIZE, reasons=REASONS, cursor=cursor
            )
            page = await self._call(partial(self._list_notifications, params))
            older = False
            for notification in page.notifications:
                at = _when(notification.indexed_at)
                if seen is not None and at is not None and at <= seen:
                    older = True
                else:
                    fresh.append(notification)
            cursor = page.cursor
            if older or not cursor:
                break
        done: str | None = None
        for notification in sorted(fresh, key=lambda n: _when(n.indexed_at) or _EPOCH):
            try:
                await self._on_post(notification)
            except StoreError as exc:
                log.warning("bluesky post not stored; reading it again", extra={"error": str(exc)})
                break
            except Exception:  # one post that cannot be handled must not block the rest
                log.exception("bluesky post not handled")
            done = str(notification.indexed_at)
        if done is not None:
            await self.state.store.set_state(self.name, SEEN, done)

    async def _list_notifications(self, params: Any) -> Any:
        return await self._client.app.bsky.notification.list_notifications(params)

    async def _get_log(self, params: Any) -> Any:
        return await self._chat.chat.bsky.convo.get_log(params)

    async def _on_post(self, notification: Any) -> None:
        author = notification.author
        if author.did == self.me:
            return
        record = notification.record
        text = str(getattr(record, "text", "") or "[attachment]")
        if await optout.obey(self.state.store, self.name, author.did, text):
            return
        reply = getattr(record, "reply", None)
        parent = (notification.uri, notification.cid)
        root = (reply.root.uri, reply.root.cid) if reply is not None else parent
        labels = {label.val for label in (author.labels or [])}
        created = _when(getattr(record, "created_at", None))
        no_reply = None
        if "bot" in labels:
            no_reply = "automated account"
        elif notification.reason == "quote":
            no_reply = "quote post"
        elif (
            notification.reason == "reply"
            and reply is not None
            and not reply.parent.uri.startswith(f"at://{self.me}/")
        ):
            no_reply = "a reply to someone else in our thread"
        elif created is not None and self.state.clock() - created > STALE:
            no_reply = "older than 24 hours"
        name = (author.display_name or "").strip()
        await receive(
            self.state,
            Message(
                channel=self.name,
                platform_id=f"post:{notification.uri}",
                sender=author.did,
                text=text,
                received_at=self.state.clock(),
                sender_name=f"{name} (@{author.handle})" if name else f"@{author.handle}",
                conversation=None if no_reply else author.did,  # None: the outbox sends nothing
                thread=" ".join((*parent, *root)),
                no_reply=no_reply,
            ),
        )

    async def _poll_chat(self) -> None:
        from atproto_client import models

        cursor = await self.state.store.get_state(self.name, CHAT_CURSOR)
        for _ in range(MAX_PAGES):
            params = models.ChatBskyConvoGetLog.Params(cursor=cursor)
            page = await self._call(partial(self._get_log, params))
            for entry in page.logs:
                if getattr(entry, "py_type", None) != _CREATE_MESSAGE:
                    continue
                message = entry.message
                if getattr(message, "py_type", None) != _MESSAGE_VIEW:
                    continue  # a deleted message
                await self._on_dm(entry, message)
            if not page.cursor or page.cursor == cursor:
                return
            await self.state.store.set_state(self.name, CHAT_CURSOR, page.cursor)
            if cursor is None or not page.logs:
                return  # the first read only finds where the log is now
            cursor = page.cursor

    async def _on_dm(self, entry: Any, message: Any) -> None:
        sender = message.sender.did
        if sender == self.me:
            return  # our own reply, which the log lists with the rest
        text = message.text or "[attachment]"
        if await optout.obey(self.state.store, self.name, sender, text):
            return
        sent = _when(message.sent_at)
        no_reply = (
            "older than 24 hours"
            if sent is not None and self.state.clock() - sent > STALE
            else None
        )
        profiles = {p.did: p for p in (getattr(entry, "related_profiles", None) or [])}
        who = profiles.get(sender)
        name = None
        if who is not None:
            display = (who.display_name or "").strip()
            name = f"{display} (@{who.handle})" if display else f"@{who.handle}"
        await receive(
            self.state,
            Message(
                channel=self.name,
                platform_id=f"dm:{message.id}",
                sender=sender,
                text=text,
                received_at=self.state.clock(),
                sender_name=name,
                conversation=None if no_reply else entry.convo_id,
                thread=None,
                no_reply=no_reply,
            ),
        )

    # Sending.

    async def send(self, delivery: Delivery) -> str | None:
        from atproto_client import models
        from atproto_client.exceptions import (
            AtProtocolError,
            BadRequestError,
            NetworkError,
            RateLimitExceededError,
            UnauthorizedError,
        )

        if self._client is None:
            raise TryLater("the Bluesky channel is not started")
        try:
            if delivery.reply_to is None:
                data = models.ChatBskyConvoSendMessage.Data(
                    convo_id=delivery.recipient,
                    message=models.ChatBskyConvoDefs.MessageInput(
                        text=fit(delivery.text, DM_LIMIT)
                    ),
                )
                sent = await self._call(lambda: self._chat.chat.bsky.convo.send_message(data))
                return str(sent.id)
            (parent_uri, parent_cid), (root_uri, root_cid) = strong_refs(delivery.reply_to)
            text = fit(delivery.text, POST_LIMIT)
            record = models.AppBskyFeedPost.Record(
                text=text,
                created_at=self._client.get_current_time_iso(),
                reply=models.AppBskyFeedPost.ReplyRef(
                    root=models.ComAtprotoRepoStrongRef.Main(uri=root_uri, cid=root_cid),
                    parent=models.ComAtprotoRepoStrongRef.Main(uri=parent_uri, cid=parent_cid),
                ),
                facets=facets(text) or None,
            )
            created = await self._call(
                lambda: self._client.app.bsky.feed.post.create(self.me, record)
            )
            return str(created.uri)
        except RateLimitExceededError as exc:
            wait = self._reset_in(exc)
            raise TryLater(f"Bluesky rate limit: retry in {wait:.0f} s", wait) from None
        except _SessionLost as exc:  # recovered by the next call: never a dead letter
            raise TryLater(f"Bluesky session: {exc}") from None
        except UnauthorizedError as exc:  # the chat service refused: a setting to fix
            log.error("Bluesky refused to send: check the app password's direct message access")
            raise TryLater(f"Bluesky refused it: {self._why(exc)}") from None
        except BadRequestError as exc:  # the post or conversation is gone, DMs are closed
            raise Undeliverable(f"Bluesky refused it: {self._why(exc)}") from None
        except (NetworkError, AtProtocolError, TimeoutError) as exc:
            raise TryLater(f"Bluesky: {self._why(exc)}") from None

    # The account's own posts and profile.

    async def post(self, text: str) -> Posted:
        """An announcement as a post on the account. No answer in time: it may be on Bluesky."""
        if self._client is None:
            raise TryLater("the Bluesky channel is not started")
        langs = list(self.state.triage.rules.languages)
        try:
            uri, _ = await self._call(
                lambda: account.create_post(self._client, str(self.me), text, facets(text), langs)
            )
        except _SessionLost as exc:  # before anything was sent
            raise TryLater(f"Bluesky did not let us in: {exc}") from None
        except Exception as exc:
            raise account.post_failure(exc, self._why(exc), self._reset_in) from None
        return Posted(uri, account.post_link(self._handle(), uri))

    async def find(self, text: str, since: datetime) -> Posted | None:
        """The account's post with exactly `text` made at or after `since`, or None. Raises
        TryLater when Bluesky cannot be asked now."""
        if self._client is None:
            raise TryLater("the Bluesky channel is not started")
        try:
            uri = await self._call(
                lambda: account.find_post(self._client, str(self.me), text, since)
            )
        except Exception as exc:
            raise TryLater(f"Bluesky could not be asked: {self._why(exc)}") from None
        return None if uri is None else Posted(uri, account.post_link(self._handle(), uri))

    async def set_description(self, description: str) -> bool:
        """Set the profile's description and nothing else; False if it already said that."""
        if self._client is None:
            raise TryLater("the Bluesky channel is not started")
        return bool(
            await self._call(
                lambda: account.set_description(self._client, str(self.me), description)
            )
        )

    def _handle(self) -> str:
        session = getattr(self._client, "_session", None)
        return str(getattr(session, "handle", None) or self.settings.handle)
