"""Mastodon: mentions of the organisation's account, polled through Mastodon.py.

Receiving. Every MASTODON_POLL_SECONDS (default 60) one process (a lease in the store) asks for
the account's mention notifications newer than the cursor kept in the store
("notifications_since_id"), oldest first, page after page (min_id), so a burst larger than a page
leaves no gap. The cursor moves only past what is stored; the store's idempotency on (channel,
platform_id), platform id "status:<id>", makes sure each mention is stored and answered once.
The very first poll (no cursor yet) reads one page: the newest 40.

Replying. A mention is answered in its thread (in_reply_to_id), starting "@acct " so the person
is notified, with a visibility no more public than the mention's: a direct mention gets a direct
answer, a followers-only one a followers-only answer, and a public or unlisted one an unlisted
answer (in the thread, but kept off the public timelines). The reply fits the instance's own
character limit, read from /api/v2/instance (configuration.statuses.max_characters), falling
back to /api/v1/instance and then to 500. Each reply carries an Idempotency-Key, so a retried
send never posts twice.

Rate limits: Mastodon allows 300 requests per 5 minutes per account, and 300 new posts per 3
hours, each reported in X-RateLimit-Remaining and X-RateLimit-Reset. Mastodon.py is set to raise
on a 429 rather than sleep in its thread; the reset time then reschedules the reply through the
outbox, and a poll waits until it. (Remaining is not used to hold sends back before a 429: the
last answer's headers may be those of the other limit.)

Announcements. `post` publishes a public status (POST /api/v1/statuses); its link is the
status's url. Mastodon counts a status in grapheme clusters with each link as 23 (see
bot/channels/graphemes.py), against the instance's own limit: once the channel has read it, that
figure replaces the default of 500 in bot.channels.posting.LIMITS for this process, so the inbox
checks announcements against the instance's own limit (the command line, which does not ask
the instance, checks against 500). `find` looks through the account's own recent statuses
(GET /api/v1/accounts/:id/statuses) for one with the same text, after a crash. `set_note` sets
the profile's note and nothing else (PATCH /api/v1/accounts/update_credentials).

Mastodon.py is synchronous: every call runs in a worker thread (asyncio.to_thread), one at a
time, so the event loop never waits on the network.

Who is never answered automatically (their mention is still queued for the team): the account
itself (not even stored), accounts marked as bots, mentions older than 24 hours, and posts in
someone else's thread where we are only among the @names Mastodon copies into a reply.

Opt-out, as on X (bot.channels.optout): a mention of any visibility, direct included, whose
whole text after the @names is STOP (any case, with or without a full stop) turns automatic
replies off for that person; START turns them back on. Neither is queued for the team, and
nothing is posted in answer, publicly or directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.channels import (
    Capabilities,
    Limits,
    MaybePosted,
    TryLater,
    Undeliverable,
    optout,
    posting,
)
from bot.channels.fitting import fit
from bot.channels.polling import leased, poll_seconds
from bot.channels.posting import Posted
from bot.errors import HoldingReplyError, StoreError
from bot.jobs import holder_name
from bot.models import Delivery, Message
from bot.web import State, receive

log = logging.getLogger("bot.mastodon")

DEFAULT_POLL_SECONDS = 60.0
DEFAULT_MAX_CHARACTERS = 500
FIND_PAGES = 3
MAX_PAGES = 8
PAGE_SIZE = 40  # Mastodon's most per page for notifications
REQUEST_SECONDS = 30.0
REFUSED_RETRY_SECONDS = 900.0
STALE = timedelta(hours=24)
POLL_LEASE = timedelta(seconds=MAX_PAGES * REQUEST_SECONDS + 60)
CURSOR = "notifications_since_id"
# The answer's visibility for each of the mention's: never more public than it.
VISIBILITY = {
    "public": "unlisted",
    "unlisted": "unlisted",
    "private": "private",
    "direct": "direct",
}
_LEADING_NAMES = re.compile(r"^(?:\s*@[\w.-]+(?:@[\w.-]+)?)+\s*")
# Mastodon's Account::MENTION_RE. It shows a mention of an account it knows as a link reading
# "@username" (the account's own spelling; with the domain only when two it knows share the
# username), and one it does not know as typed: so posts are compared with each mention as
# "@username", in lower case, on both sides.
_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@[\w.-]+\w)?", re.IGNORECASE
)


class MastodonConfigError(HoldingReplyError):
    """MASTODON_* in the environment are missing or malformed."""


class MastodonSettings:
    """MASTODON_* from the environment, checked before anything starts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.base_url = (env.get("MASTODON_API_BASE_URL") or "").strip().rstrip("/")
        self.token = (env.get("MASTODON_ACCESS_TOKEN") or "").strip()
        missing = [
            name
            for name, value in (
                ("MASTODON_API_BASE_URL", self.base_url),
                ("MASTODON_ACCESS_TOKEN", self.token),
            )
            if not value
        ]
        if missing:
            raise MastodonConfigError(
                f"Mastodon channel: missing environment variable {', '.join(missing)}. Set "
                "MASTODON_API_BASE_URL (e.g. https://social.example.gov.uk) and "
                "MASTODON_ACCESS_TOKEN (from Preferences > Development > New application)."
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            raise MastodonConfigError(
                f"MASTODON_API_BASE_URL has value {self.base_url!r}. Expected the instance's "
                "address, e.g. https://mastodon.social."
            )
        try:
            self.poll_seconds = poll_seconds(
                env.get("MASTODON_POLL_SECONDS"), "MASTODON_POLL_SECONDS", DEFAULT_POLL_SECONDS
            )
        except ValueError as exc:
            raise MastodonConfigError(str(exc)) from None

    def redact(self, text: str) -> str:
        return text.replace(self.token, "<MASTODON_ACCESS_TOKEN>") if self.token else text


class _Text(HTMLParser):
    """A status's HTML as plain text: paragraphs and line breaks kept, tags dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(content: str) -> str:
    """The text a person wrote, from Mastodon's HTML rendering of it."""
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


def reply_thread(status_id: str, visibility: str) -> str:
    """What Message.thread holds for Mastodon: the status to answer and its visibility."""
    return f"{status_id} {visibility}"


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a MastodonAPIError (its second argument), if any."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


class MastodonChannel:
    name = "mastodon"
    # 300 posts per 3 hours is the instance's own limit: its 429 reschedules replies beyond it.
    # The spacing keeps bursts gentle, and two replies to one person (the automatic one, then
    # the team's) a few seconds apart.
    limits = Limits(per_second=0.5, per_recipient_seconds=5.0)

    def __init__(self, state: State, env: Mapping[str, str], holder: str | None = None) -> None:
        self.state = state
        self.settings = MastodonSettings(env)
        self.holder = holder or holder_name()
        self.capabilities = Capabilities(
            max_length=DEFAULT_MAX_CHARACTERS, threads=True, groups=False, posts=True
        )
        self.me: str | None = None  # our account id, once verify_credentials has answered
        self.acct: str | None = None
        self.ready = asyncio.Event()
        self._api: Any = None  # mastodon.Mastodon, imported when the channel starts
        self._lock = asyncio.Lock()  # Mastodon.py keeps rate-limit state: one call at a time
        self._task: asyncio.Task[None] | None = None

    # Lifecycle.

    def routes(self) -> list[web.RouteDef]:
        return []  # Mastodon is polled

    async def start(self) -> None:
        if self._task is not None:
            return
        from mastodon import Mastodon

        self._api = Mastodon(
            access_token=self.settings.token,
            api_base_url=self.settings.base_url,
            ratelimit_method="throw",  # never sleep in a worker thread: the outbox reschedules
            request_timeout=REQUEST_SECONDS,
            version_check_mode="none",
            mastodon_version="4.0.0",  # no version probe at start
            user_agent="HoldingReply",
        )
        self._task = asyncio.create_task(self._run(), name="mastodon-polling")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        api, self._api = self._api, None
        if api is not None:
            await asyncio.to_thread(api.session.close)
        self.ready.clear()
        posting.LIMITS[self.name] = replace(posting.LIMITS[self.name], most=DEFAULT_MAX_CHARACTERS)
        with contextlib.suppress(StoreError):
            await self.state.store.release_jobs(self.holder)

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One Mastodon.py call, in a worker thread, one at a time."""
        async with self._lock:
            return await asyncio.to_thread(method, *args, **kwargs)

    def _reset_in(self) -> float:
        """Seconds until the X-RateLimit-Reset Mastodon last gave, at least 1 (60 if none)."""
        reset = getattr(self._api, "ratelimit_reset", None)
        if reset is None:
            return 60.0
        return max(1.0, float(reset) - time.time())

    def _why(self, exc: BaseException) -> str:
        parts = [str(a) for a in getattr(exc, "args", ()) if a is not None]
        return self.settings.redact(" ".join(parts) or type(exc).__name__)

    # Receiving.

    async def _run(self) -> None:
        await self._hello()
        every = self.settings.poll_seconds
        while True:
            wait = await leased(
                self.state.store,
                "mastodon:notifications",
                self.holder,
                every,
                POLL_LEASE,
                self._poll,
            )
            await asyncio.sleep(wait)

    async def _hello(self) -> None:
        """Our account, and the instance's character limit, retried until the instance answers."""
        from mastodon import MastodonRatelimitError, MastodonUnauthorizedError

        delay = 1.0
        while True:
            try:
                account = await self._call(self._api.account_verify_credentials)
                self.me, self.acct = str(account["id"]), str(account["acct"])
                break
            except MastodonRatelimitError:
                wait = self._reset_in()
                error = "rate limited"
            except Exception as exc:  # unreachable, 5xx, a bad token: all worth trying again
                wait, error = delay, self._why(exc)
                delay = min(delay * 2, 300.0)
                if isinstance(exc, MastodonUnauthorizedError):
                    log.error("Mastodon refused the token: check MASTODON_ACCESS_TOKEN")
            log.warning("Mastodon not reachable yet", extra={"error": error, "retry_in": wait})
            await asyncio.sleep(wait)
        limit = await self._max_characters()
        self.capabilities = Capabilities(max_length=limit, threads=True, groups=False, posts=True)
        # Announcements written in this process are checked against the instance's own limit.
        posting.LIMITS[self.name] = replace(posting.LIMITS[self.name], most=limit)
        self.ready.set()
        log.info("mastodon ready", extra={"account": self.acct, "max_characters": limit})

    async def _max_characters(self) -> int:
        """The instance's own limit on a post's length: v2, else v1, else 500."""
        api = self._api
        for read, path in (
            (api.instance_v2, ("configuration", "statuses", "max_characters")),
            (api.instance_v1, ("configuration", "statuses", "max_characters")),
            (api.instance_v1, ("max_toot_chars",)),  # Pleroma, Akkoma, Glitch
        ):
            try:
                value: Any = await self._call(read)
                for key in path:
                    value = value[key]
                if isinstance(value, int) and value > 0:
                    return value
            except Exception as exc:  # an older or different server: try the next way
                log.debug("instance limit not read", extra={"error": self._why(exc)})
        return DEFAULT_MAX_CHARACTERS

    async def _poll(self) -> float:
        """One poll; return the seconds until the next, as the instance's answer allows."""
        from mastodon import (
            MastodonError,
            MastodonNetworkError,
            MastodonRatelimitError,
            MastodonUnauthorizedError,
        )

        every = self.settings.poll_seconds
        try:
            await self._read()
            return every
        except MastodonRatelimitError:
            wait = self._reset_in()
            log.warning("mastodon polling rate limited", extra={"retry_in": wait})
            return wait
        except MastodonUnauthorizedError as exc:
            wait = max(every, REFUSED_RETRY_SECONDS)
            log.error(
                "Mastodon refused to let us read notifications: check MASTODON_ACCESS_TOKEN and "
                "its read:notifications scope",
                extra={"error": self._why(exc), "retry_in": wait},
            )
            return wait
        except (MastodonNetworkError, MastodonError) as exc:
            log.warning("mastodon polling failed", extra={"error": self._why(exc)})
            return every
        except StoreError as exc:
            log.warning("mastodon cursor not saved", extra={"error": str(exc)})
            return every
        except Exception:  # a surprise in the answer must not end polling for good
            log.exception("mastodon polling failed")
            return every

    async def _read(self) -> None:
        api = self._api
        cursor = await self.state.store.get_state(self.name, CURSOR)
        if cursor is None:  # first start: the newest page only
            page = await self._call(api.notifications, types=["mention"], limit=PAGE_SIZE)
            await self._take(list(page))
            return
        for _ in range(MAX_PAGES):
            page = list(
                await self._call(
                    api.notifications, types=["mention"], min_id=cursor, limit=PAGE_SIZE
                )
            )
            if not page:
                return
            done = await self._take(page)
            if done is None or done == cursor or len(page) < PAGE_SIZE:
                return
            cursor = done

    async def _take(self, notifications: list[Any]) -> str | None:
        """Handle notifications oldest first, then move the cursor past the last one handled."""
        done: str | None = None
        for notification in sorted(notifications, key=lambda n: int(n["id"])):
            try:
                if notification.get("type") == "mention" and notification.get("status"):
                    await self._on_mention(notification)
            except StoreError as exc:
                log.warning(
                    "mastodon mention not stored; reading it again", extra={"error": str(exc)}
                )
                break
            except Exception:  # one mention that cannot be handled must not block the rest
                log.exception("mastodon mention not handled", extra={"id": str(notification["id"])})
            done = str(notification["id"])
        if done is not None:
            await self.state.store.set_state(self.name, CURSOR, done)
        return done

    async def _on_mention(self, notification: Mapping[str, Any]) -> None:
        status, account = notification["status"], notification["account"]
        author = str(account["id"])
        if author == self.me:
            return  # our own post
        text = plain_text(str(status.get("content") or "")) or "[attachment]"
        if await optout.obey(self.state.store, self.name, author, text):
            return
        replying_to = status.get("in_reply_to_account_id")
        copied_in = (
            replying_to is not None and str(replying_to) != self.me and not self._named(text)
        )
        created = status.get("created_at")
        if isinstance(created, str):
            created = datetime.fromisoformat(created.replace("Z", "+00:00"))
        if isinstance(created, datetime) and created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        no_reply = (
            "automated account"
            if account.get("bot")
            else "copied in"
            if copied_in
            else "older than 24 hours"
            if isinstance(created, datetime) and self.state.clock() - created > STALE
            else None
        )
        acct = str(account["acct"])
        display = str(account.get("display_name") or "").strip()
        visibility = str(status.get("visibility") or "public")
        await receive(
            self.state,
            Message(
                channel=self.name,
                platform_id=f"status:{status['id']}",
                sender=author,
                text=text,
                received_at=self.state.clock(),
                sender_name=f"{display} (@{acct})" if display else f"@{acct}",
                conversation=None if no_reply else acct,  # None: the outbox sends nothing
                thread=reply_thread(str(status["id"]), visibility),
                no_reply=no_reply,
            ),
        )

    def _named(self, text: str) -> bool:
        """Whether the text names us outside the leading @names Mastodon copies into a reply."""
        body = _LEADING_NAMES.sub("", text).lower()
        return self.acct is not None and f"@{self.acct.split('@')[0].lower()}" in body

    # Sending.

    async def send(self, delivery: Delivery) -> str | None:
        from mastodon import (
            MastodonError,
            MastodonNetworkError,
            MastodonNotFoundError,
            MastodonRatelimitError,
            MastodonServerError,
            MastodonUnauthorizedError,
        )

        api = self._api
        if api is None:
            raise TryLater("the Mastodon channel is not started")
        status_id, _, visibility = (delivery.reply_to or "").partition(" ")
        acct = delivery.recipient
        prefix = "" if delivery.text.lower().startswith(f"@{acct.lower()}") else f"@{acct} "
        text = fit(delivery.text, self.capabilities.max_length, prefix)
        try:
            status = await self._call(
                api.status_post,
                text,
                in_reply_to_id=status_id or None,
                visibility=VISIBILITY.get(visibility, "direct"),
                idempotency_key=f"holding-reply-{delivery.id}",
            )
            return str(status["id"])
        except MastodonRatelimitError:
            wait = self._reset_in()
            raise TryLater(f"Mastodon rate limit: retry in {wait:.0f} s", wait) from None
        except MastodonUnauthorizedError as exc:  # a wrong token must not dead-letter every reply
            log.error("Mastodon refused the token: check MASTODON_ACCESS_TOKEN (write:statuses)")
            raise TryLater(f"Mastodon refused the token: {self._why(exc)}") from None
        except (MastodonNetworkError, MastodonServerError) as exc:
            raise TryLater(f"Mastodon: {self._why(exc)}") from None
        except MastodonNotFoundError as exc:
            raise Undeliverable(f"Mastodon: the post answered is gone: {self._why(exc)}") from None
        except MastodonError as exc:
            status_code = _status(exc)
            if status_code is not None and 400 <= status_code < 500:
                raise Undeliverable(f"Mastodon refused it: {self._why(exc)}") from None
            raise TryLater(f"Mastodon: {self._why(exc)}") from None

    # The account's own statuses and profile.

    async def post(self, text: str) -> Posted:
        """An announcement as a public status. No answer in time: it may be on the account."""
        from mastodon import (
            MastodonError,
            MastodonNetworkError,
            MastodonRatelimitError,
            MastodonServerError,
            MastodonUnauthorizedError,
        )

        api = self._api
        if api is None:
            raise TryLater("the Mastodon channel is not started")
        try:
            status = await self._call(api.status_post, text, visibility="public")
        except MastodonRatelimitError:
            wait = self._reset_in()
            raise TryLater(
                f"Mastodon's rate limit: it can be posted in {wait:.0f} s", wait
            ) from None
        except MastodonUnauthorizedError as exc:
            raise TryLater(
                "Mastodon refused the access token: check MASTODON_ACCESS_TOKEN and its "
                f"write:statuses scope ({self._why(exc)})"
            ) from None
        except MastodonServerError as exc:
            raise TryLater(f"Mastodon could not take it now: {self._why(exc)}") from None
        except MastodonNetworkError as exc:
            if _nothing_sent(exc):
                raise TryLater(f"Mastodon could not be reached: {self._why(exc)}") from None
            raise MaybePosted(
                "Mastodon did not answer in time: the post may be on the account"
            ) from None
        except MastodonError as exc:
            code = _status(exc)
            if code is not None and 400 <= code < 500:
                raise Undeliverable(f"Mastodon refused the post: {_refusal(exc)}") from None
            raise TryLater(f"Mastodon: {self._why(exc)}") from None
        url = status.get("url") or status.get("uri")
        return Posted(str(status["id"]), str(url) if url else None)

    async def find(self, text: str, since: datetime) -> Posted | None:
        """The account's status with `text` made at or after `since`, or None. Raises TryLater
        when Mastodon cannot be asked now. Mastodon gives back HTML, so the text is compared
        as plain text with its spacing evened out and its mentions without their domain."""
        from mastodon import MastodonError

        api = self._api
        if api is None or self.me is None:
            raise TryLater("the Mastodon channel is not started")
        wanted = _comparable(text)
        found: Posted | None = None
        max_id: str | None = None
        try:
            for _ in range(FIND_PAGES):
                page = list(
                    await self._call(api.account_statuses, self.me, max_id=max_id, limit=PAGE_SIZE)
                )
                for status in page:  # newest first
                    if _created(status) < since:
                        return found
                    if _comparable(plain_text(str(status.get("content") or ""))) == wanted:
                        url = status.get("url") or status.get("uri")
                        found = Posted(str(status["id"]), str(url) if url else None)
                if len(page) < PAGE_SIZE:
                    break
                max_id = str(page[-1]["id"])
        except MastodonError as exc:
            raise TryLater(f"Mastodon could not be asked: {self._why(exc)}") from None
        return found

    async def set_note(self, note: str) -> bool:
        """Set the profile's note (its bio), and no other field; False if it already said that."""
        api = self._api
        if api is None:
            raise TryLater("the Mastodon channel is not started")
        return bool(await self._call(update_note, api, note))


def update_note(api: Any, note: str) -> bool:
    """With Mastodon.py (in a worker thread): PATCH the account's note alone, unless it already
    says `note` (each change is sent to every follower's instance, so none is made for nothing)."""
    account = api.account_verify_credentials()
    if str((account.get("source") or {}).get("note") or "") == note:
        return False
    api.account_update_credentials(note=note)
    return True


def _even(text: str) -> str:
    return " ".join(text.split())


def _comparable(text: str) -> str:
    """A post's text as `find` compares it: "@Jo@example.org" and Mastodon's "@jo" alike."""
    return _even(_MENTION.sub(lambda m: "@" + m[1].lower(), text))


def _created(status: Mapping[str, Any]) -> datetime:
    created = status.get("created_at")
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    if not isinstance(created, datetime):
        return datetime.min.replace(tzinfo=UTC)
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def _nothing_sent(exc: BaseException) -> bool:
    """Whether a network error happened before the request reached the instance (it could not
    connect), rather than after (a timeout or a dropped connection: it may have been posted)."""
    import requests
    import urllib3.exceptions

    seen: BaseException | None = exc
    for _ in range(10):  # the chain is short; never follow a loop
        if seen is None:
            break
        if isinstance(
            seen,
            requests.exceptions.ConnectTimeout
            | urllib3.exceptions.NewConnectionError
            | urllib3.exceptions.ConnectTimeoutError,
        ):
            return True
        reason = getattr(seen, "reason", None)  # urllib3's MaxRetryError wraps the cause
        if isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        inner = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
        seen = inner[0] if inner else seen.__cause__ or seen.__context__
    return False


def _refusal(exc: BaseException) -> str:
    """Mastodon's reason ("Validation failed: Text character limit of 500 exceeded"), plainly."""
    args = [a for a in getattr(exc, "args", ()) if isinstance(a, str)]
    detail = args[-1] if args else str(exc)
    if "character limit" in detail:
        return f"it is longer than the instance allows ({detail})"
    if "blank" in detail:
        return "it is empty"
    return detail
