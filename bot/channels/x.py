"""X (Twitter): mentions and direct messages, polled through the X API v2 with tweepy.

Receiving. Every X_POLL_SECONDS (default 60) the channel asks for mentions newer than the cursor
kept in the store ("mentions_since_id"), and every three times that for direct messages (newer
than "dm_since_id"; X has no since_id for DMs, so the newest id seen is kept and older events
are skipped). A cursor moves only past what is stored: when the store fails, the same messages
are fetched again on the next poll, and the store's idempotency on (channel, platform_id), with
platform ids "tweet:<id>" and "dm:<event id>", makes sure each is stored and answered once. On a
429 the endpoint is not asked again until its x-rate-limit-reset. The very first poll (no cursor
yet) reads one page only: the newest 100 of each.

Read limits, per 15 minutes, as X publishes them for the Basic tier: mentions 15 a window for the
app (the bearer token we read them with), so one a minute, the default; DM events 5 for the
account, so one every 3 minutes, which is why DMs are polled three times less often. Free: about
one mentions request every 15 minutes and no DM reading (polling DMs answers 403, which is logged
and retried every 15 minutes): set X_POLL_SECONDS=900. Pro (450 mentions, 15 DM requests a window
and more): X_POLL_SECONDS=15 stays inside. The limits change; the developer console shows yours.

Replying. A mention is answered in its thread: the reply starts with "@username " and must fit
280 characters with it (counted X's way: most symbols outside Latin script, "…" included, count
two), so a reply that would not fit is cut at a word boundary with "…", never cutting the
sentence that holds the reference. A direct message is answered by direct message. The outbox's
delivery says which: reply_to set (the tweet id) is a reply in a thread, None a DM.

X's automation rules (https://help.x.com/en/rules-and-policies/x-automation), enforced here:
- one automatic reply per interaction: the core's cooldown per sender ([acknowledgement]
  cooldown), which covers mentions and DMs together, since both carry the sender's user id;
- no automatic reply to our own posts or to retweets (neither is stored: a retweet is not a
  message to us); quote posts, posts in someone else's thread where we are only among the
  copied-in @names, messages older than 24 hours (after an outage, or the first start) and
  accounts in X_IGNORE_USERS (other organisations' bots, by id or username) are queued for the
  team with no automatic reply. Nobody is treated as a bot for a username ending in "bot":
  Talbot and Abbot are people;
- opt-out: a mention or DM whose whole text (after the @names) is STOP (any case, with or
  without a full stop) turns automatic replies off for that person; START turns them back on
  (read as on every channel, bot.channels.optout). Nothing is queued or sent for either, in a
  thread or by DM;
- no duplicate posts: every reply carries its own reference, and if X still calls one a
  duplicate it becomes a dead letter with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import tweepy  # type: ignore[import-untyped]
from aiohttp import web

from bot.channels import (
    Capabilities,
    Limits,
    MaybePosted,
    SendFailed,
    TryLater,
    Undeliverable,
    optout,
)
from bot.channels.fitting import fit
from bot.channels.polling import poll_seconds
from bot.channels.posting import Posted, same_text, weighted_length
from bot.errors import StoreError
from bot.jobs import holder_name
from bot.models import Delivery, Message
from bot.web import State, receive
from bot.xapi import AsyncClient, XConfig, XConfigError, make_client, make_session

log = logging.getLogger("bot.x")

DEFAULT_POLL_SECONDS = 60.0
DM_POLL_FACTOR = 3  # Basic allows 15 mentions requests a window but only 5 DM ones
MAX_PAGES = 8  # 8 pages of 100: the 800 mentions the endpoint goes back to
PAGE_SIZE = 100
REQUEST_SECONDS = 30.0
REFUSED_RETRY_SECONDS = 900.0  # a 401 or 403 while reading: a setting to fix, not a blip
STALE = timedelta(hours=24)
# Several processes (dynos) share the polling: one at a time holds a lease on each endpoint
# while it reads, so X's read quota is spent once, not once per process. A process that dies
# mid-poll holds it no longer than this, which is longer than a poll can take (every page, each
# request to its timeout), so that a slow poll is never joined by a second one.
POLL_LEASE = timedelta(seconds=MAX_PAGES * REQUEST_SECONDS + 60)
TWEET_LIMIT = 280
MENTIONS_CURSOR = "mentions_since_id"
DMS_CURSOR = "dm_since_id"
TWEET_FIELDS = [
    "author_id",
    "conversation_id",
    "created_at",
    "referenced_tweets",
    "in_reply_to_user_id",
]
DM_FIELDS = ["id", "text", "event_type", "created_at", "sender_id", "dm_conversation_id"]

_LEADING_NAMES = re.compile(r"^(?:\s*@\w{1,15})+\s*")


class XSettings:
    """X_* from the environment, checked before anything starts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.config = XConfig.from_env(env)
        self.env = dict(env)
        try:
            self.poll_seconds = poll_seconds(
                env.get("X_POLL_SECONDS"), "X_POLL_SECONDS", DEFAULT_POLL_SECONDS
            )
        except ValueError as exc:
            raise XConfigError(str(exc)) from None
        names = (env.get("X_IGNORE_USERS") or "").split(",")
        self.ignore = frozenset(n.strip().lstrip("@").lower() for n in names if n.strip())

    def redact(self, text: str) -> str:
        """An error text without any credential in it."""
        c = self.config
        for name, secret in (
            ("X_BEARER_TOKEN", c.bearer_token),
            ("X_API_KEY", c.api_key),
            ("X_API_SECRET", c.api_secret),
            ("X_ACCESS_TOKEN", c.access_token),
            ("X_ACCESS_TOKEN_SECRET", c.access_token_secret),
        ):
            text = text.replace(secret, f"<{name}>")
        return text


def fit_reply(text: str, username: str | None, limit: int = TWEET_LIMIT) -> str:
    """The reply to post: "@username " first, within `limit`, the reference's sentence whole."""
    prefix = ""
    if username and not text.lower().startswith(f"@{username.lower()}"):
        prefix = f"@{username} "
    return fit(text, limit, prefix, weighted_length)


def _reset_in(exc: tweepy.TooManyRequests) -> float:
    """Seconds until the x-rate-limit-reset of a 429, at least 1 (60 if X did not say)."""
    reset = getattr(exc, "reset_time", None)
    if reset is None:
        with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):
            reset = int(exc.response.headers["x-rate-limit-reset"])
    if reset is None:
        return 60.0
    return max(1.0, float(reset) - time.time())


def _describe(exc: BaseException) -> str:
    """What went wrong, in one line: the status and X's own messages, never a header."""
    if isinstance(exc, tweepy.HTTPException):
        status = getattr(exc.response, "status", None) or getattr(exc.response, "status_code", "")
        messages = "; ".join(str(m) for m in exc.api_messages) or type(exc).__name__
        return f"{status} {messages}".strip()
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class XChannel:
    name = "x"
    # X's quotas are per 15 minutes and per 24 hours (Basic: 100 posts a day, 5 DMs per 15
    # minutes; Free: 17 posts a day), which no spacing can keep to without delaying replies for
    # hours: when one runs out, X's 429 reschedules the reply for its reset time. The spacing is
    # for X's spam filter, which watches bursts: one send every 5 seconds at most, and as long
    # between two to one person (the automatic reply, then the team's), which a person typing
    # a reply never notices.
    limits = Limits(per_second=0.2, per_recipient_seconds=5.0)
    capabilities = Capabilities(max_length=TWEET_LIMIT, threads=True, groups=False, posts=True)

    def __init__(self, state: State, env: Mapping[str, str], holder: str | None = None) -> None:
        self.state = state
        self.settings = XSettings(env)
        self.holder = holder or holder_name()  # this process, for the polling leases
        self.me: str | None = None  # our user id, once get_me has answered
        self.username: str | None = None
        self.ready = asyncio.Event()
        self._usernames: dict[str, str] = {}  # user id -> username, for "@username " in replies
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    # Lifecycle.

    def routes(self) -> list[web.RouteDef]:
        return []  # X is polled

    async def start(self) -> None:
        if self._task is not None:
            return
        self._session = make_session(self.settings.env)
        self._client = make_client(self.settings.env, self._session)
        self._task = asyncio.create_task(self._run(), name="x-polling")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        session, self._session, self._client = self._session, None, None
        if session is not None:
            await session.close()
        self.ready.clear()
        with contextlib.suppress(StoreError):  # another process may poll at once
            await self.state.store.release_jobs(self.holder)

    async def _call(self, request: Awaitable[Any]) -> Any:
        """One API request, given up after REQUEST_SECONDS."""
        async with asyncio.timeout(REQUEST_SECONDS):
            return await request

    # Receiving.

    async def _run(self) -> None:
        await self._hello()
        loop = asyncio.get_running_loop()
        every = self.settings.poll_seconds
        due = {"mentions": 0.0, "dms": 0.0}
        while True:
            if due["mentions"] <= loop.time():
                due["mentions"] = loop.time() + await self._guarded(self._poll_mentions, every)
            if due["dms"] <= loop.time():
                due["dms"] = loop.time() + await self._guarded(
                    self._poll_dms, every * DM_POLL_FACTOR
                )
            await asyncio.sleep(max(0.0, min(due.values()) - loop.time()))

    async def _hello(self) -> None:
        """get_me: our id (to skip our own posts) and username, retried until X answers."""
        delay = 1.0
        while True:
            try:
                client = self._client
                assert client is not None
                response = await self._call(client.get_me(user_auth=True))
                self.me, self.username = str(response.data.id), str(response.data.username)
                break
            except tweepy.TooManyRequests as exc:
                wait, error = _reset_in(exc), self._why(exc)
            except Exception as exc:  # unreachable, 5xx, a bad token: all worth trying again
                wait, error = delay, self._why(exc)
                delay = min(delay * 2, 300.0)
                if isinstance(exc, tweepy.Unauthorized):
                    log.error("X refused the credentials: check the five X_* variables")
            log.warning("X not reachable yet", extra={"error": error, "retry_in_seconds": wait})
            await asyncio.sleep(wait)
        self.ready.set()
        log.info("x ready", extra={"account": self.username})

    async def _guarded(self, poll: Callable[[], Awaitable[None]], every: float) -> float:
        """Run one poll, unless another process has polled within `every` seconds or is polling
        now; return the seconds until this process should look again."""
        what = poll.__name__.removeprefix("_poll_")
        job, started, store = f"x:{what}", datetime.now(UTC), self.state.store
        try:
            if not await store.claim_job(
                job, self.holder, started, timedelta(seconds=every), POLL_LEASE
            ):
                return every
        except StoreError as exc:
            log.warning("x polling paused", extra={"endpoint": what, "error": str(exc)})
            return every
        wait = await self._poll(poll, what, every)
        # Due again `wait` seconds after this poll began, for whichever process looks first.
        with contextlib.suppress(StoreError):
            await store.finish_job(job, self.holder, started + timedelta(seconds=wait - every))
        return wait

    async def _poll(self, poll: Callable[[], Awaitable[None]], what: str, every: float) -> float:
        """Run one poll; return the seconds until the next, as X's answer allows."""
        try:
            await poll()
            return every
        except tweepy.TooManyRequests as exc:
            wait = _reset_in(exc)
            log.warning(
                "x polling rate limited", extra={"endpoint": what, "retry_in_seconds": wait}
            )
            return wait
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            wait = max(every, REFUSED_RETRY_SECONDS)
            log.error(
                "X refused to let us read %s: check the credentials and the API access level",
                what,
                extra={"error": self.settings.redact(_describe(exc)), "retry_in_seconds": wait},
            )
            return wait
        except (tweepy.TweepyException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "x polling failed",
                extra={"endpoint": what, "error": self.settings.redact(_describe(exc))},
            )
            return every
        except StoreError as exc:  # the cursor is not saved: the same are fetched next time
            log.warning("x cursor not saved", extra={"endpoint": what, "error": str(exc)})
            return every
        except Exception:  # a surprise in X's answer must not end polling for good
            log.exception("x polling failed", extra={"endpoint": what})
            return every

    async def _poll_mentions(self) -> None:
        client, me = self._client, self.me
        assert client is not None and me is not None
        cursor = await self.state.store.get_state(self.name, MENTIONS_CURSOR)
        tweets: list[Any] = []
        users: dict[str, Any] = {}
        token = None
        for _ in range(MAX_PAGES if cursor else 1):
            page = await self._call(
                client.get_users_mentions(
                    me,
                    since_id=cursor,
                    max_results=PAGE_SIZE,
                    pagination_token=token,
                    expansions=["author_id"],
                    tweet_fields=TWEET_FIELDS,
                )
            )
            tweets.extend(page.data or [])
            users.update({str(u.id): u for u in (page.includes or {}).get("users", [])})
            token = (page.meta or {}).get("next_token")
            if not token:
                break
        await self._take(MENTIONS_CURSOR, tweets, lambda t: self._on_tweet(t, users))

    async def _poll_dms(self) -> None:
        client, me = self._client, self.me
        assert client is not None and me is not None
        cursor = await self.state.store.get_state(self.name, DMS_CURSOR)
        newer = int(cursor) if cursor else 0
        events: list[Any] = []
        users: dict[str, Any] = {}
        token = None
        for _ in range(MAX_PAGES if cursor else 1):
            page = await self._call(
                client.get_direct_message_events(
                    event_types="MessageCreate",
                    dm_event_fields=DM_FIELDS,
                    expansions=["sender_id"],
                    max_results=PAGE_SIZE,
                    pagination_token=token,
                    user_auth=True,
                )
            )
            data = page.data or []
            events.extend(e for e in data if int(e.id) > newer)
            users.update({str(u.id): u for u in (page.includes or {}).get("users", [])})
            token = (page.meta or {}).get("next_token")
            if not token or any(int(e.id) <= newer for e in data):
                break
        await self._take(DMS_CURSOR, events, lambda e: self._on_dm(e, users))

    async def _take(
        self, cursor: str, items: list[Any], handle: Callable[[Any], Awaitable[None]]
    ) -> None:
        """Handle items oldest first, then move the cursor past the last one handled."""
        done: int | None = None
        for item in sorted(items, key=lambda i: int(i.id)):
            try:
                await handle(item)
            except StoreError as exc:
                log.warning("x message not stored; fetching it again", extra={"error": str(exc)})
                break
            except Exception:  # one message that cannot be handled must not block the rest
                log.exception("x message not handled", extra={"x_id": str(item.id)})
            done = int(item.id)
        if done is not None:
            await self.state.store.set_state(self.name, cursor, str(done))

    async def _on_tweet(self, tweet: Any, users: Mapping[str, Any]) -> None:
        author = str(tweet.author_id)
        kinds = {r.type for r in (tweet.referenced_tweets or [])}
        if author == self.me or "retweeted" in kinds:
            return  # our own post, or a retweet: not a message to us
        user = users.get(author)
        if user is not None:
            self._remember(author, str(user.username))
        text = html.unescape(tweet.text)  # API v2 sends a post's &, < and > as HTML entities
        if await optout.obey(self.state.store, self.name, author, text):
            return
        replying_to = str(tweet.in_reply_to_user_id) if tweet.in_reply_to_user_id else None
        copied_in = replying_to not in (None, self.me) and not self._named(text)
        no_reply = (
            "quote post"
            if "quoted" in kinds
            else "copied in"
            if copied_in
            else self._no_reply(author, user, tweet)
        )
        await self._receive(f"tweet:{tweet.id}", author, text, user, no_reply, tweet.id)

    async def _on_dm(self, event: Any, users: Mapping[str, Any]) -> None:
        sender = str(event.sender_id)
        if sender == self.me:
            return  # our own reply, which X lists with the rest
        text = event.text or "[attachment]"
        if await optout.obey(self.state.store, self.name, sender, text):
            return
        user = users.get(sender)
        no_reply = self._no_reply(sender, user, event)
        await self._receive(f"dm:{event.id}", sender, text, user, no_reply, None)

    async def _receive(
        self,
        platform_id: str,
        sender: str,
        text: str,
        user: Any,
        no_reply: str | None,
        thread: Any,
    ) -> None:
        name = f"{user.name} (@{user.username})" if user is not None else None
        await receive(
            self.state,
            Message(
                channel=self.name,
                platform_id=platform_id,
                sender=sender,
                text=text,
                received_at=self.state.clock(),
                sender_name=name,
                conversation=None if no_reply else sender,  # None: the outbox sends nothing
                thread=str(thread) if thread is not None else None,
                no_reply=no_reply,
            ),
        )

    def _named(self, text: str) -> bool:
        """Whether the text names us outside the leading @names X adds to a reply."""
        body = _LEADING_NAMES.sub("", text)
        return bool(self.username) and f"@{self.username}".lower() in body.lower()

    def _ignored(self, user_id: str, user: Any) -> bool:
        ignore = self.settings.ignore
        return user_id in ignore or (user is not None and str(user.username).lower() in ignore)

    def _stale(self, item: Any) -> bool:
        created: datetime | None = getattr(item, "created_at", None)
        return created is not None and self.state.clock() - created > STALE

    def _no_reply(self, user_id: str, user: Any, item: Any) -> str | None:
        """Why a mention or DM from anyone gets no automatic reply, or None."""
        if self._ignored(user_id, user):
            return "ignored account (X_IGNORE_USERS)"
        if self._stale(item):
            return "older than 24 hours"
        return None

    def _remember(self, user_id: str, username: str) -> None:
        if len(self._usernames) > 10_000:
            self._usernames.clear()
        self._usernames[user_id] = username

    # Sending.

    async def send(self, delivery: Delivery) -> str | None:
        client = self._client
        if client is None:
            raise TryLater("the X channel is not started")
        try:
            if delivery.reply_to is None:
                response = await self._call(
                    client.create_direct_message(
                        participant_id=delivery.recipient, text=delivery.text, user_auth=True
                    )
                )
                return str(response.data["dm_event_id"])
            text = fit_reply(delivery.text, await self._username(client, delivery.recipient))
            response = await self._call(
                client.create_tweet(
                    text=text, in_reply_to_tweet_id=delivery.reply_to, user_auth=True
                )
            )
            return str(response.data["id"])
        except (tweepy.TweepyException, aiohttp.ClientError, TimeoutError) as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> SendFailed:
        """What a failed request means for the outbox (and the publisher)."""
        if isinstance(exc, tweepy.TooManyRequests):
            wait = _reset_in(exc)
            return TryLater(f"X rate limit: retry in {wait:.0f} s", wait)
        if isinstance(exc, tweepy.Unauthorized):  # a wrong token must not dead-letter every reply
            log.error("X refused the credentials: check the five X_* variables")
            return TryLater(f"X refused the credentials: {self._why(exc)}")
        if isinstance(exc, tweepy.Forbidden):
            if any("duplicate" in str(m).lower() for m in exc.api_messages):
                return Undeliverable(f"X refused a duplicate post: {self._why(exc)}")
            return Undeliverable(f"X refused it: {self._why(exc)}")
        if isinstance(exc, (tweepy.BadRequest, tweepy.NotFound)):
            return Undeliverable(f"X refused it: {self._why(exc)}")
        if isinstance(exc, tweepy.HTTPException):  # 5xx, or a status tweepy has no name for
            status = getattr(exc.response, "status", 500)
            if 400 <= status < 500:
                return Undeliverable(f"X refused it: {self._why(exc)}")
        return TryLater(f"X: {self._why(exc)}")

    async def post(self, text: str) -> Posted:
        """An announcement as a post on the account. No answer in time: it may be on X."""
        client = self._client
        if client is None:
            raise TryLater("the X channel is not started")
        try:
            response = await self._call(client.create_tweet(text=text, user_auth=True))
        except TimeoutError:
            raise MaybePosted("X did not answer in time: the post may be on the account") from None
        except (tweepy.TweepyException, aiohttp.ClientError) as exc:
            raise self._failure(exc) from None
        post_id = str(response.data["id"])
        who = self.username or "i/web"
        return Posted(post_id, f"https://x.com/{who}/status/{post_id}")

    async def find(self, text: str, since: datetime) -> Posted | None:
        """The account's own post with this text since `since` (GET /2/users/:id/tweets, newest
        first, replies and reposts left out), or None; TryLater when X cannot be asked."""
        client = self._client
        if client is None or self.me is None:
            raise TryLater("the X channel is not started")
        token: str | None = None
        try:
            for _ in range(MAX_PAGES):
                response = await self._call(
                    client.get_users_tweets(
                        self.me, start_time=since, max_results=PAGE_SIZE,
                        exclude=["replies", "retweets"], tweet_fields=["created_at"],
                        pagination_token=token, user_auth=True,
                    )
                )  # fmt: skip
                for tweet in response.data or []:
                    at = tweet.created_at
                    if same_text(text, str(tweet.text)) and (at is None or at >= since):
                        who = self.username or "i/web"
                        return Posted(str(tweet.id), f"https://x.com/{who}/status/{tweet.id}")
                token = (response.meta or {}).get("next_token")
                if token is None:
                    return None
        except (tweepy.TweepyException, aiohttp.ClientError, TimeoutError) as exc:
            raise TryLater(f"X: {self._why(exc)}") from None
        raise TryLater(f"X: more than {MAX_PAGES * PAGE_SIZE} posts since {since:%H:%M} UTC")

    def _why(self, exc: BaseException) -> str:
        return self.settings.redact(_describe(exc))

    async def _username(self, client: AsyncClient, user_id: str) -> str | None:
        """The username to start a reply with: remembered from polling, else asked for.

        Without it the reply still sits in the thread and X still tells the person."""
        known = self._usernames.get(user_id)
        if known is None:
            try:
                response = await self._call(client.get_user(id=user_id, user_auth=True))
                if response.data is not None:
                    known = str(response.data.username)
                    self._remember(user_id, known)
            except (tweepy.TweepyException, aiohttp.ClientError, TimeoutError) as exc:
                log.info("x username not found", extra={"error": self._why(exc)})
        return known
