"""Publishing announcements: each post on each channel once, however many processes run.

Each process looks every PUBLISH_SECONDS. A due post is claimed in the store, which writes it
as "publishing" and commits before the platform is called. Then:
- the platform accepts: "published", with its id and link;
- it cannot now (TryLater): tried again a minute later (or when it says), ATTEMPTS times;
- it refuses for good (Undeliverable): "failed", with the platform's reason;
- no answer (MaybePosted), or the process dies: the row stays "publishing" until its lease
  runs out. It is never posted again blindly. On a channel that can look at its own account
  (a `Finder`: X, the Facebook Page) one process then looks for a post with that text made
  since a minute before the call: found, it is "published" with its link (the log says it was
  found by a check); not there, the platform never took it, so it is due again (another
  attempt); the platform cannot be asked, it is asked again a minute later, and after ATTEMPTS
  such checks it is "unknown". On a channel that cannot tell (Telegram) it is "unknown" at
  once: a person checks the account and publishes or cancels.
A post due longer ago than [announcements] late_limit (the server was down) is "missed", and the
team is alerted through [alerts] default, as are posts that became unknown. While announcements
are suspended nothing is claimed; what falls due meanwhile is held for a person on resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot import notices
from bot.announcement import Post
from bot.channels import MaybePosted, TryLater, Undeliverable
from bot.channels.posting import Finder, Poster
from bot.errors import StoreError
from bot.models import Outgoing
from bot.web import State

log = logging.getLogger("bot.publisher")

PUBLISH_SECONDS = 15.0
LEASE = timedelta(minutes=5)  # far longer than one platform call (30 s at most) takes
RETRY = timedelta(minutes=1)
NOTICES_EVERY = timedelta(hours=1)
ATTEMPTS = 5  # a platform still refusing after this many tries: "failed", with its last reason
CHECK_LEASE = timedelta(minutes=2)  # looking at the account is one or a few platform calls
CLOCK_SLACK = timedelta(minutes=1)  # the platform's clock and ours may disagree a little


class Publisher:
    def __init__(
        self,
        state: State,
        posters: Mapping[str, Poster],
        holder: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.state = state
        self.posters = posters
        self.holder = holder
        self.clock = clock or state.clock
        self._wake = asyncio.Event()
        self._notices_for: object = None  # the rules the notices were last drafted from
        self._notices_at: datetime | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.once()
            except StoreError as exc:
                log.warning(
                    "publishing paused: the database is unavailable", extra={"error": str(exc)}
                )
            except Exception:
                log.exception("publishing failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PUBLISH_SECONDS):
                    await self._wake.wait()

    async def once(self) -> int:
        """Mark lapsed and missed posts, publish those due; return how many were published."""
        store = self.state.store
        rules = self.state.triage.rules
        now = self.clock()
        late = rules.announcements.late_limit
        await self._notices(now)
        unknown = await self._check_lapsed(now)
        lapsed = unknown + await store.lapsed_posts(now)
        missed = await store.missed_posts(now, late)
        if lapsed or missed:
            await self._alert(lapsed, missed, now)
        published = 0
        for post in await store.claim_posts(self.holder, now, LEASE, late):
            published += await self._publish(post)
        return published

    async def _notices(self, now: datetime) -> None:
        """Notices from the calendar: hourly, and at once when the rules change."""
        triage = self.state.triage
        fresh = self._notices_at is not None and now - self._notices_at < NOTICES_EVERY
        if triage is self._notices_for and fresh:
            return
        self._notices_for, self._notices_at = triage, now
        await notices.sync(triage, self.state.store, sorted(self.posters), now)

    async def _check_lapsed(self, now: datetime) -> list[Post]:
        """Look on the account for lapsed posts where the channel can tell; those that cannot
        be checked after ATTEMPTS tries are returned, "unknown". Taking them first keeps
        lapsed_posts, which marks the rest "unknown", off them."""
        unknown: list[Post] = []
        for name, poster in sorted(self.posters.items()):
            if not isinstance(poster, Finder):
                continue
            for post in await self.state.store.check_posts(self.holder, now, CHECK_LEASE, name):
                if not await self._check(post, poster):
                    unknown.append(post)
        return unknown

    async def _check(self, post: Post, finder: Finder) -> bool:
        """Settle one lapsed post from what the account shows; False when it became unknown."""
        store = self.state.store
        extra = {"announcement": post.announcement_id, "channel": post.channel}
        claimed = post.claimed_at or post.not_before
        try:
            found = await finder.find(post.text, claimed - CLOCK_SLACK)
        except Exception as exc:  # TryLater, or anything else: the account could not be read
            now = self.clock()
            why = f"could not look at the account: {exc}" if str(exc) else type(exc).__name__
            if post.checks >= ATTEMPTS:
                why = (
                    "The server stopped while publishing and the account could not be checked "
                    f"({post.checks} tries; {why}): the post may or may not be on it."
                )
                await store.post_unknown(post, self.holder, why, now)
                log.error("announcement may have been posted", extra={**extra, "error": why})
                return False
            wait = getattr(exc, "retry_after", None)
            then = now + max(RETRY, timedelta(seconds=wait or 0))
            await store.post_check_failed(post, self.holder, why, now, then)
            log.warning("announcement check will be tried again", extra={**extra, "error": why})
            return True
        now = self.clock()
        if found is not None:
            how = "found on the account by a check after the server stopped"
            await store.post_published(
                post, self.holder, now, found.platform_id, found.link, how=how
            )
            log.info("announcement found published", extra={**extra, "link": found.link})
            return True
        why = "Not on the account after the server stopped while publishing: publishing again."
        # Due again when it was first taken, so a post that is now too late is "missed".
        await store.post_retry(post, self.holder, why, now, claimed)
        log.warning("announcement not found on the account", extra=extra)
        return True

    async def _publish(self, post: Post) -> int:
        store = self.state.store
        poster = self.posters.get(post.channel)
        extra = {"announcement": post.announcement_id, "channel": post.channel}
        if poster is None:
            why = f"{post.channel} is not set up on this server (its credentials are missing)"
            await store.post_failed(post, self.holder, why, self.clock())
            log.error("announcement not published", extra={**extra, "error": why})
            return 0
        try:
            posted = await poster.post(post.text)
        except TryLater as exc:
            wait = RETRY if exc.retry_after is None else timedelta(seconds=exc.retry_after)
            now = self.clock()
            if post.attempts >= ATTEMPTS:
                why = f"{exc} (tried {post.attempts} times)"
                await store.post_failed(post, self.holder, why, now)
                log.error("announcement not published", extra={**extra, "error": why})
                return 0
            await store.post_retry(post, self.holder, str(exc), now, now + max(wait, RETRY))
            log.warning("announcement will be tried again", extra={**extra, "error": str(exc)})
            return 0
        except Undeliverable as exc:
            await store.post_failed(post, self.holder, str(exc), self.clock())
            log.error("announcement refused", extra={**extra, "error": str(exc)})
            return 0
        except MaybePosted as exc:  # left "publishing": it becomes "unknown" when the lease ends
            log.error("announcement may have been posted", extra={**extra, "error": str(exc)})
            return 0
        await store.post_published(post, self.holder, self.clock(), posted.platform_id, posted.link)
        log.info("announcement published", extra={**extra, "link": posted.link})
        return 1

    async def _alert(self, lapsed: list[Post], missed: list[Post], now: datetime) -> None:
        rules = self.state.triage.rules
        lines = [f"Announcements need a person ({rules.name})"]
        lines += [
            f"- {p.channel}, announcement {p.announcement_id}: unknown (may have been posted; "
            "check the account, then publish again or cancel)"
            for p in lapsed
        ]
        lines += [
            f"- {p.channel}, announcement {p.announcement_id}: missed (the server was down when "
            "it was due)"
            for p in missed
        ]
        lines.append("python -m bot announce list shows them.")
        text = "\n".join(lines)
        for route in rules.alerts.default:
            await self.state.store.enqueue(Outgoing(route.kind, route.target, "alert", text), now)
        if rules.alerts.default:
            self.state.wake()
        log.error(
            "announcements need a person",
            extra={"unknown": [p.id for p in lapsed], "missed": [p.id for p in missed]},
        )
