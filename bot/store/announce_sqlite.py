"""Announcements on SQLite: the SQL of announce_queries, run by the store's one writer.

Every write runs inside the writer's BEGIN IMMEDIATE, so a claim is decided and written before
any other process (or task) can look.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.announcement import Announcement, LogEntry, NewAnnouncement, Post, Suspension
from bot.store import announce_queries as aq
from bot.store.queries import sqlite_placeholders as _q

T = TypeVar("T")


def _text(at: datetime | None) -> str | None:
    from bot.store.sqlite import to_text

    return to_text(at)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _post(row: Sequence[Any]) -> Post:
    at = _time(row[6])
    assert at is not None
    return Post(
        row[0], row[1], row[2], row[3], bool(row[4]), row[5], at, row[7], row[8], row[9],
        row[10], _time(row[11]), _time(row[12]), row[13], bool(row[14]),
    )  # fmt: skip


def _announcement(conn: sqlite3.Connection, row: Sequence[Any]) -> Announcement:
    posts = tuple(_post(r) for r in conn.execute(_q(aq.POSTS_OF), (row[0],)))
    due, written = _time(row[2]), _time(row[6])
    assert due is not None and written is not None
    return Announcement(
        row[0], row[1], due, row[3], row[4], row[5], written, row[7], _time(row[8]), row[9], posts
    )


def _log(
    conn: sqlite3.Connection, aid: int, at: datetime, who: str, action: str,
    channel: str | None = None, detail: str | None = None,
) -> None:  # fmt: skip
    conn.execute(_q(aq.LOG), (aid, _text(at), who, action, channel, detail))


def _insert(conn: sqlite3.Connection, new: NewAnnouncement, at: datetime) -> int:
    params = (new.text, _text(new.due_at), new.wall_time, new.zone, new.written_by, _text(at),
              new.notice)  # fmt: skip
    aid = int(conn.execute(_q(aq.INSERT), params).fetchone()[0])
    for channel, own in new.versions:
        conn.execute(_q(aq.INSERT_POST), (aid, channel, own, new.state, _text(new.due_at)))
    _log(conn, aid, at, new.written_by, "wrote", None, f"due {new.wall_time} {new.zone}")
    return aid


_CLAIM = _q(aq.CLAIM.format(due=aq.DUE, columns=aq.POST_COLUMNS))
_CHECK = _q(aq.CHECK.format(lapsed=aq.LAPSED_ON, columns=aq.POST_COLUMNS))
_ANY_LAPSED_ON = _q(aq.ANY_LAPSED_ON)


class SQLiteAnnouncements:
    """The announcement half of SQLiteStore."""

    async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def _read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def add_announcement(self, new: NewAnnouncement, at: datetime) -> int:
        [aid] = await self.add_announcements([new], at)
        return aid

    async def add_announcements(self, news: Sequence[NewAnnouncement], at: datetime) -> list[int]:
        # One job: the writer runs it inside one transaction (a savepoint of its own if a job
        # beside it fails), so all are stored or none.
        return await self._write(lambda conn: [_insert(conn, new, at) for new in news])

    async def announcement(self, aid: int) -> Announcement | None:
        def run(conn: sqlite3.Connection) -> Announcement | None:
            row = conn.execute(_q(aq.BY_ID), (aid,)).fetchone()
            return None if row is None else _announcement(conn, row)

        return await self._read(run)

    async def notice_announcement(self, notice: str) -> Announcement | None:
        def run(conn: sqlite3.Connection) -> Announcement | None:
            row = conn.execute(_q(aq.BY_NOTICE), (notice,)).fetchone()
            return None if row is None else _announcement(conn, row)

        return await self._read(run)

    async def announcements(self, since: datetime, limit: int = 200) -> list[Announcement]:
        def run(conn: sqlite3.Connection) -> list[Announcement]:
            rows = conn.execute(_q(aq.SINCE), (_text(since), limit)).fetchall()
            return [_announcement(conn, r) for r in rows]

        return await self._read(run)

    async def announcement_log(self, aid: int) -> list[LogEntry]:
        def run(conn: sqlite3.Connection) -> list[LogEntry]:
            rows = conn.execute(_q(aq.LOG_OF), (aid,)).fetchall()
            return [LogEntry(r[0], datetime.fromisoformat(r[1]), *r[2:]) for r in rows]

        return await self._read(run)

    async def approve_announcement(self, aid: int, by: str, at: datetime) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            if not conn.execute(_q(aq.APPROVE), (aid, by, _text(at))).rowcount:
                return False
            conn.execute(_q(aq.APPROVED_POSTS), (aid,))
            _log(conn, aid, at, by, "approved")
            return True

        return await self._write(run)

    async def cancel_announcement(self, aid: int, by: str, at: datetime) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            channels = [r[0] for r in conn.execute(_q(aq.CANCEL), (aid,))]
            for channel in channels:
                _log(conn, aid, at, by, "cancelled", channel)
            return channels

        return await self._write(run)

    async def republish_announcement(self, aid: int, by: str, at: datetime) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            channels = [r[0] for r in conn.execute(_q(aq.REPUBLISH), (aid, _text(at)))]
            for channel in channels:
                _log(conn, aid, at, by, "publish now", channel)
            return channels

        return await self._write(run)

    async def suspension(self) -> Suspension | None:
        def run(conn: sqlite3.Connection) -> Suspension | None:
            row = conn.execute(aq.SUSPENDED).fetchone()
            return (
                None if row is None else Suspension(row[0], row[1], datetime.fromisoformat(row[2]))
            )

        return await self._read(run)

    async def suspend_announcements(self, reason: str, by: str, at: datetime) -> bool:
        params = (reason, by, _text(at))
        return bool(await self._write(lambda conn: conn.execute(_q(aq.SUSPEND), params).rowcount))

    async def resume_announcements(self, by: str, at: datetime) -> int:
        def run(conn: sqlite3.Connection) -> int:
            if not conn.execute(_q(aq.RESUME), (by, _text(at))).rowcount:
                return 0
            held = conn.execute(_q(aq.HOLD), (_text(at),)).fetchall()
            for aid, channel in held:
                _log(conn, aid, at, by, "held", channel, "fell due while suspended")
            return len(held)

        return await self._write(run)

    async def claim_posts(
        self, holder: str, at: datetime, lease: timedelta, late: timedelta,
        limit: int = 5,
    ) -> list[Post]:  # fmt: skip
        params = (holder, _text(at), _text(at + lease), _text(at - late), limit)

        def run(conn: sqlite3.Connection) -> list[Post]:
            posts = [_post(r) for r in conn.execute(_CLAIM, params).fetchall()]
            for p in posts:
                _log(conn, p.announcement_id, at, "publisher", "publishing", p.channel, holder)
            return posts

        return await self._write(run)

    async def check_posts(
        self, holder: str, at: datetime, lease: timedelta, channel: str, limit: int = 5
    ) -> list[Post]:
        params = (holder, _text(at), _text(at + lease), channel, limit)
        due = (_text(at), channel)
        if not await self._read(lambda conn: conn.execute(_ANY_LAPSED_ON, due).fetchone()[0]):
            return []  # the usual round: nothing lapsed, and the writer is not disturbed

        def run(conn: sqlite3.Connection) -> list[Post]:
            posts = [_post(r) for r in conn.execute(_CHECK, params).fetchall()]
            for p in posts:
                _log(conn, p.announcement_id, at, "publisher", "checking the account", p.channel,
                     holder)  # fmt: skip
            return posts

        return await self._write(run)

    async def lapsed_posts(self, at: datetime) -> list[Post]:
        return await self._marked(aq.LAPSED, at, at, "unknown")

    async def missed_posts(self, at: datetime, late: timedelta) -> list[Post]:
        return await self._marked(aq.MISSED, at - late, at, "missed")

    async def _marked(self, sql: str, before: datetime, at: datetime, action: str) -> list[Post]:
        def run(conn: sqlite3.Connection) -> list[Post]:
            posts = [_post(r) for r in conn.execute(_q(sql), (_text(before),)).fetchall()]
            for p in posts:
                _log(conn, p.announcement_id, at, "publisher", action, p.channel, p.error)
            return posts

        return await self._write(run)

    async def post_published(
        self, post: Post, holder: str, at: datetime, platform_id: str | None,
        link: str | None, how: str | None = None,
    ) -> bool:  # fmt: skip
        params = (post.id, holder, platform_id, link, _text(at), how is not None)
        detail = link if how is None else f"{how}: {link}"
        return await self._post_outcome(aq.PUBLISHED, params, post, at, "published", detail)

    async def post_check_failed(
        self, post: Post, holder: str, error: str, at: datetime, then: datetime
    ) -> bool:
        params = (post.id, holder, _text(then), error)
        return await self._post_outcome(aq.CHECK_FAILED, params, post, at, "check failed", error)

    async def post_unknown(self, post: Post, holder: str, error: str, at: datetime) -> bool:
        params = (post.id, holder, error)
        return await self._post_outcome(aq.UNKNOWN, params, post, at, "unknown", error)

    async def post_failed(self, post: Post, holder: str, error: str, at: datetime) -> bool:
        params = (post.id, holder, error)
        return await self._post_outcome(aq.FAILED, params, post, at, "failed", error)

    async def post_retry(
        self, post: Post, holder: str, error: str, at: datetime, then: datetime
    ) -> bool:
        params = (post.id, holder, error, _text(then))
        return await self._post_outcome(aq.RETRY, params, post, at, "will retry", error)

    async def _post_outcome(
        self, sql: str, params: tuple[Any, ...], post: Post, at: datetime,
        action: str, detail: str | None,
    ) -> bool:  # fmt: skip
        def run(conn: sqlite3.Connection) -> bool:
            if not conn.execute(_q(sql), params).rowcount:
                return False
            _log(conn, post.announcement_id, at, "publisher", action, post.channel, detail)
            return True

        return await self._write(run)
