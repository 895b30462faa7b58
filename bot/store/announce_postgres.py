"""Announcements on PostgreSQL: the SQL of announce_queries, each change in one transaction.

Two processes claiming at once do not take the same post: the due rows are chosen FOR UPDATE
SKIP LOCKED, and the "publishing" mark commits before the platform is called.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from bot.announcement import Announcement, LogEntry, NewAnnouncement, Post, Suspension
from bot.store import announce_queries as aq

if TYPE_CHECKING:
    from bot.store.postgres import Conn

T = TypeVar("T")


def _post(row: Sequence[Any] | asyncpg.Record) -> Post:
    r = row
    return Post(
        r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
        r[13], r[14],
    )  # fmt: skip


async def _announcement(conn: Conn, row: asyncpg.Record) -> Announcement:
    posts = tuple(_post(r) for r in await conn.fetch(aq.POSTS_OF, row[0]))
    r = row
    return Announcement(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], posts)


async def _log(
    conn: Conn, aid: int, at: datetime, who: str, action: str, channel: str | None = None,
    detail: str | None = None,
) -> None:  # fmt: skip
    await conn.execute(aq.LOG, aid, at, who, action, channel, detail)


async def _insert(conn: Conn, new: NewAnnouncement, at: datetime) -> int:
    aid = int(
        await conn.fetchval(
            aq.INSERT, new.text, new.due_at, new.wall_time, new.zone, new.written_by, at,
            new.notice,
        )
    )  # fmt: skip
    for channel, own in new.versions:
        await conn.execute(aq.INSERT_POST, aid, channel, own, new.state, new.due_at)
    await _log(conn, aid, at, new.written_by, "wrote", None, f"due {new.wall_time} {new.zone}")
    return aid


_CLAIM = aq.CLAIM.format(due=aq.DUE + " FOR UPDATE SKIP LOCKED", columns=aq.POST_COLUMNS)
_CHECK = aq.CHECK.format(lapsed=aq.LAPSED_ON + " FOR UPDATE SKIP LOCKED", columns=aq.POST_COLUMNS)


def _count(status: str) -> int:
    return int(status.rpartition(" ")[2])


class PostgresAnnouncements:
    """The announcement half of PostgresStore."""

    async def _run(self, doing: str, work: Callable[[Conn], Awaitable[T]]) -> T:
        raise NotImplementedError  # PostgresStore's

    async def _transaction(
        self, work: Callable[[Conn], Awaitable[T]], doing: str = "write to"
    ) -> T:
        raise NotImplementedError  # PostgresStore's

    async def add_announcement(self, new: NewAnnouncement, at: datetime) -> int:
        [aid] = await self.add_announcements([new], at)
        return aid

    async def add_announcements(self, news: Sequence[NewAnnouncement], at: datetime) -> list[int]:
        async def run(conn: Conn) -> list[int]:  # one transaction: all are stored or none
            return [await _insert(conn, new, at) for new in news]

        return await self._transaction(run)

    async def _one(self, sql: str, key: Any) -> Announcement | None:
        async def run(conn: Conn) -> Announcement | None:
            row = await conn.fetchrow(sql, key)
            return None if row is None else await _announcement(conn, row)

        return await self._run("read from", run)

    async def announcement(self, aid: int) -> Announcement | None:
        return await self._one(aq.BY_ID, aid)

    async def notice_announcement(self, notice: str) -> Announcement | None:
        return await self._one(aq.BY_NOTICE, notice)

    async def announcements(self, since: datetime, limit: int = 200) -> list[Announcement]:
        async def run(conn: Conn) -> list[Announcement]:
            return [await _announcement(conn, r) for r in await conn.fetch(aq.SINCE, since, limit)]

        return await self._run("read from", run)

    async def announcement_log(self, aid: int) -> list[LogEntry]:
        async def run(conn: Conn) -> list[LogEntry]:
            return [LogEntry(*r) for r in await conn.fetch(aq.LOG_OF, aid)]

        return await self._run("read from", run)

    async def approve_announcement(self, aid: int, by: str, at: datetime) -> bool:
        async def run(conn: Conn) -> bool:
            if not _count(await conn.execute(aq.APPROVE, aid, by, at)):
                return False
            await conn.execute(aq.APPROVED_POSTS, aid)
            await _log(conn, aid, at, by, "approved")
            return True

        return await self._transaction(run)

    async def _channels(
        self, sql: str, aid: int, by: str, at: datetime, action: str,
        *params: Any,
    ) -> list[str]:  # fmt: skip
        async def run(conn: Conn) -> list[str]:
            channels = [r[0] for r in await conn.fetch(sql, aid, *params)]
            for channel in channels:
                await _log(conn, aid, at, by, action, channel)
            return channels

        return await self._transaction(run)

    async def cancel_announcement(self, aid: int, by: str, at: datetime) -> list[str]:
        return await self._channels(aq.CANCEL, aid, by, at, "cancelled")

    async def republish_announcement(self, aid: int, by: str, at: datetime) -> list[str]:
        return await self._channels(aq.REPUBLISH, aid, by, at, "publish now", at)

    async def suspension(self) -> Suspension | None:
        async def run(conn: Conn) -> Suspension | None:
            row = await conn.fetchrow(aq.SUSPENDED)
            return None if row is None else Suspension(*row)

        return await self._run("read from", run)

    async def suspend_announcements(self, reason: str, by: str, at: datetime) -> bool:
        async def run(conn: Conn) -> bool:
            # Two admins suspending at once: one row, not two.
            await conn.execute("LOCK TABLE announcement_suspensions IN EXCLUSIVE MODE")
            return bool(_count(await conn.execute(aq.SUSPEND, reason, by, at)))

        return await self._transaction(run)

    async def resume_announcements(self, by: str, at: datetime) -> int:
        async def run(conn: Conn) -> int:
            await conn.execute("LOCK TABLE announcement_suspensions IN EXCLUSIVE MODE")
            if not _count(await conn.execute(aq.RESUME, by, at)):
                return 0
            held = await conn.fetch(aq.HOLD, at)
            for aid, channel in held:
                await _log(conn, aid, at, by, "held", channel, "fell due while suspended")
            return len(held)

        return await self._transaction(run)

    async def claim_posts(
        self, holder: str, at: datetime, lease: timedelta, late: timedelta,
        limit: int = 5,
    ) -> list[Post]:  # fmt: skip
        async def run(conn: Conn) -> list[Post]:
            rows = await conn.fetch(_CLAIM, holder, at, at + lease, at - late, limit)
            posts = [_post(r) for r in rows]
            for p in posts:
                await _log(
                    conn, p.announcement_id, at, "publisher", "publishing", p.channel, holder
                )
            return posts

        return await self._transaction(run)

    async def check_posts(
        self, holder: str, at: datetime, lease: timedelta, channel: str, limit: int = 5
    ) -> list[Post]:
        async def lapsed(conn: Conn) -> bool:
            return bool(await conn.fetchval(aq.ANY_LAPSED_ON, at, channel))

        if not await self._run("read from", lapsed):
            return []  # the usual round: nothing lapsed, no transaction and no UPDATE

        async def run(conn: Conn) -> list[Post]:
            posts = [_post(r) for r in await conn.fetch(_CHECK, holder, at, at + lease, channel,
                                                        limit)]  # fmt: skip
            for p in posts:
                await _log(conn, p.announcement_id, at, "publisher", "checking the account",
                           p.channel, holder)  # fmt: skip
            return posts

        return await self._transaction(run)

    async def lapsed_posts(self, at: datetime) -> list[Post]:
        return await self._marked(aq.LAPSED, at, at, "unknown")

    async def missed_posts(self, at: datetime, late: timedelta) -> list[Post]:
        return await self._marked(aq.MISSED, at - late, at, "missed")

    async def _marked(self, sql: str, before: datetime, at: datetime, action: str) -> list[Post]:
        async def run(conn: Conn) -> list[Post]:
            posts = [_post(r) for r in await conn.fetch(sql, before)]
            for p in posts:
                await _log(conn, p.announcement_id, at, "publisher", action, p.channel, p.error)
            return posts

        return await self._transaction(run)

    async def post_published(
        self, post: Post, holder: str, at: datetime, platform_id: str | None,
        link: str | None, how: str | None = None,
    ) -> bool:  # fmt: skip
        params = (post.id, holder, platform_id, link, at, how is not None)
        detail = link if how is None else f"{how}: {link}"
        return await self._post_outcome(aq.PUBLISHED, params, post, at, "published", detail)

    async def post_check_failed(
        self, post: Post, holder: str, error: str, at: datetime, then: datetime
    ) -> bool:
        params = (post.id, holder, then, error)
        return await self._post_outcome(aq.CHECK_FAILED, params, post, at, "check failed", error)

    async def post_unknown(self, post: Post, holder: str, error: str, at: datetime) -> bool:
        params = (post.id, holder, error)
        return await self._post_outcome(aq.UNKNOWN, params, post, at, "unknown", error)

    async def post_failed(self, post: Post, holder: str, error: str, at: datetime) -> bool:
        return await self._post_outcome(
            aq.FAILED, (post.id, holder, error), post, at, "failed", error
        )

    async def post_retry(
        self, post: Post, holder: str, error: str, at: datetime, then: datetime
    ) -> bool:
        params = (post.id, holder, error, then)
        return await self._post_outcome(aq.RETRY, params, post, at, "will retry", error)

    async def _post_outcome(
        self, sql: str, params: tuple[Any, ...], post: Post, at: datetime,
        action: str, detail: str | None,
    ) -> bool:  # fmt: skip
        async def run(conn: Conn) -> bool:
            if not _count(await conn.execute(sql, *params)):
                return False
            await _log(conn, post.announcement_id, at, "publisher", action, post.channel, detail)
            return True

        return await self._transaction(run)
