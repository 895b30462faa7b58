"""The PostgreSQL store: the production queue, shared safely by several processes.

Every call takes a connection from a small asyncpg pool for one transaction. Two processes may
receive messages from the same sender at once, so a sender's row is written only by an ingest
that holds its lock and finds it as it was when its cooldown was read (pg_ingest): the cooldown
is read and written by one of them at a time, and a redelivered message (which has the same
sender) finds the first delivery stored. When the database goes away, calls raise
StoreError (the web channel answers 503); the pool reconnects by itself when it comes back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

import asyncpg

from bot.errors import HoldingReplyError, StoreError
from bot.models import (
    Decision,
    Delivery,
    Ingested,
    Message,
    Note,
    Outgoing,
    PersonalData,
    QueueItem,
    SenderState,
    StoredReply,
    User,
    new_reference,
)
from bot.store import (
    Contact,
    Figures,
    NotFound,
    ReportData,
    RulesVersion,
    Stale,
    collect_figures,
    files_json,
    queries,
    redact,
    rules_version_from_row,
)
from bot.store.announce_postgres import PostgresAnnouncements
from bot.store.pg_ingest import (
    MAX_BATCH,
    Job,
    Optimistic,
    Outcome,
    ReferenceTaken,
    aware,
    ingest_together,
)

T = TypeVar("T")
Conn: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
log = logging.getLogger(__name__)

# The pg_advisory_lock key that makes migrations take turns.
MIGRATION_LOCK = 0x486F6C64  # "Hold"
_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations
    (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"""
_MIGRATED = "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())"
# Rows another process has locked are skipped, not waited for: it is claiming the job now.
_CLAIM_JOB = queries.JOB_CLAIM.format(
    where=f"name = (SELECT name FROM jobs WHERE {queries.JOB_DUE} FOR UPDATE SKIP LOCKED)"
)
# Rows another sender has claimed are skipped, not waited for.
_SKIPPED = """SELECT 1 FROM jsonb_array_elements($5::jsonb) AS s (target)
    WHERE s.target ->> 0 = outbox.channel
    AND coalesce(s.target ->> 1, outbox.recipient) = outbox.recipient"""
_CLAIM_DELIVERIES = queries.CLAIM_DELIVERIES.format(
    due=queries.DUE_DELIVERIES.format(skipped=_SKIPPED) + " FOR UPDATE SKIP LOCKED",
    columns=queries.DELIVERY,
)
# Groups of ingests written at once (see PostgresStore.groups). With one, a group waiting on the
# database left the server idle whenever every client was waiting in it or behind it; with two,
# the messages that arrive meanwhile go at once: 1.1 to 1.7 times the rate under 50 clients in
# three paired runs on the development machine, and a lower p99. Four (the optimistic path holds
# no connection while deciding) showed no clear gain over two in paired runs on a shared
# machine, where the server's one core, not the database, was what limited the rate.
GROUPS = 2
# Tries of a group whose new reference another process took meanwhile (see _commit).
REFERENCE_TRIES = 5


# Errors that one bad row of a group causes (a NUL in a text, a value out of range): the
# group's jobs are run again one by one.
_ONE_ROW = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# A report reads many rows; its statements may take longer than a queue's.
REPORT_TIMEOUT = 300.0
# Failures that mean "the database is not there right now", as opposed to a bug in a query.
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # seen when the server ends a connection mid-statement
    asyncpg.PostgresError,
)


def _item(row: asyncpg.Record | None) -> QueueItem:
    assert row is not None, "a row that the same transaction saw has gone"
    return QueueItem(*row)


def _row(row: asyncpg.Record | None) -> asyncpg.Record:
    assert row is not None, "a query that always returns a row returned none"
    return row


async def _kept(conn: asyncpg.Connection) -> None:
    """A connection going back to the pool is kept as it is (asyncpg has already rolled back any
    transaction left open). asyncpg's own reset would be one more round trip, of four
    statements, after every call: it undoes session state (LISTEN, SET, cursors outside a
    transaction, advisory locks) that this store never leaves behind (the migrations' advisory
    lock is taken on a connection of their own, never one of the pool's)."""


class PostgresStore(PostgresAnnouncements):
    """The Store on a PostgreSQL database named by a postgres:// or postgresql:// URL."""

    def __init__(
        self, url: str, *, pool_size: int = 5, timeout: float = 5.0, migrate: bool = True
    ) -> None:
        self.url = url
        self.auto_migrate = migrate  # apply missing migrations on opening, or refuse to open
        self.applied: list[str] = []  # the migrations opening applied
        self.schema_version = 0
        self.pool_size = pool_size
        self.timeout = timeout  # to connect, and for each statement
        self._pool: asyncpg.Pool | None = None
        self._busy = 0  # calls under way; closing waits for them
        self._idle = asyncio.Event()
        # Turns at the pool, first come first served. asyncpg's own queue lets a new caller take
        # a connection that was being handed to one already waiting, which then goes to the back:
        # under a burst some callers waited past the timeout while the database was healthy.
        self._turns = asyncio.Semaphore(pool_size)
        self.new_reference: Callable[[], str] = new_reference  # draws a new message's reference
        self.commits = 0  # groups of ingests committed: for tests and measurements
        self.lost = 0  # ingests whose optimistic write lost to another process (see _commit)
        self._pending: list[Job] = []  # ingests waiting for the next group
        self._flushers: set[asyncio.Task[None]] = set()
        # Groups of ingests in flight at once, each on a connection of its own; the pool's
        # other connections stay free for everything else.
        self.groups = max(1, min(GROUPS, pool_size - 1))

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    # Lifecycle.

    async def __aenter__(self) -> Self:
        if self._pool is not None:
            raise StoreError(f"The store at {redact(self.url)} is already open.")
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
                max_inactive_connection_lifetime=60.0,
                reset=_kept,
            )
        except _UNAVAILABLE as e:
            raise self._error("connect to", e) from e
        try:
            await self._migrate()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        while self._flushers:  # the messages already handed over are still stored
            await asyncio.shield(next(iter(self._flushers)))
        pool, self._pool = self._pool, None  # no new calls from here on
        if pool is None:
            return
        try:
            if self._busy:  # the calls already made still finish
                await asyncio.wait_for(self._idle.wait(), self.timeout * 2)
            await asyncio.wait_for(pool.close(), self.timeout)
        except (TimeoutError, *_UNAVAILABLE) as e:
            log.warning("Could not close the PostgreSQL pool cleanly: %s", e)
            pool.terminate()

    def _error(self, doing: str, e: BaseException) -> StoreError:
        reason = str(e) or type(e).__name__
        where = redact(self.url)
        error = StoreError(f"Could not {doing} the PostgreSQL database {where}: {reason}")
        error.__cause__ = e
        return error

    async def _migrate(self) -> None:
        """Apply the migrations this database lacks.

        An advisory lock makes processes that start together take turns: the first applies,
        the others find nothing left to do. It runs on a connection of its own, closed after,
        so the session's lock can never go back to the pool, and without the pool's statement
        timeout: a migration of a large table, or a turn behind another process's, may take
        longer than a query should.
        """
        migrations = queries.migrations("postgresql")
        latest = migrations[-1][0]
        try:
            conn = await asyncpg.connect(self.url, timeout=self.timeout)
        except _UNAVAILABLE as e:
            raise self._error("migrate", e) from e
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            await conn.execute(_MIGRATIONS_TABLE)
            current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            if queries.pending(current, latest, redact(self.url), apply=self.auto_migrate):
                for version, name, sql in migrations[current:]:
                    log.info("Applying migration %s", name)
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(_MIGRATED, version)
                    self.applied.append(name)
        except _UNAVAILABLE as e:
            raise self._error("migrate", e) from e
        finally:  # ending the session ends the advisory lock
            try:
                await conn.close(timeout=self.timeout)
            except BaseException:
                conn.terminate()
        self.schema_version = latest

    # Running work.

    async def _run(self, doing: str, work: Callable[[Conn], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StoreError(
                f"The store at {redact(self.url)} is not open: use `async with store:`."
            )
        pool = self._pool
        self._busy += 1
        self._idle.clear()
        try:
            async with asyncio.timeout(self.timeout):
                await self._turns.acquire()
            try:
                async with pool.acquire(timeout=self.timeout) as conn:
                    return await work(conn)
            finally:
                self._turns.release()
        except (StoreError, NotFound):
            raise
        except _UNAVAILABLE as e:
            raise self._error(doing, e) from e
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _transaction(
        self, work: Callable[[Conn], Awaitable[T]], doing: str = "write to"
    ) -> T:
        async def run(conn: Conn) -> T:
            async with conn.transaction():
                return await work(conn)

        return await self._run(doing, run)

    # The Store interface.

    async def ingest(
        self, message: Message, decide: Callable[[SenderState, str], Decision]
    ) -> Ingested:
        aware(message.received_at)  # a naive datetime fails here, before any work
        if self._pool is None:
            raise StoreError(
                f"The store at {redact(self.url)} is not open: use `async with store:`."
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Ingested] = loop.create_future()
        self._pending.append(Job(message, decide, future))
        if len(self._flushers) < self.groups:
            self._flushers.add(loop.create_task(self._flush()))
        return await future

    async def _flush(self) -> None:
        """Store the messages waiting, a group at a time, until none are left."""
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                for job, (result, error) in zip(batch, await self._commit(batch), strict=True):
                    if job.future.done():  # its caller went away; the write stands
                        continue
                    if result is not None:
                        job.future.set_result(result)
                    else:
                        job.future.set_exception(error or StoreError("A message was not stored."))
        finally:
            self._flushers.discard(asyncio.current_task())

    async def _commit(self, batch: list[Job], locked: bool = False) -> list[Outcome]:
        """Store a group; a job that fails fails alone.

        A group goes first by the optimistic path, in two round trips (see pg_ingest.Optimistic):
        the jobs of a sender that another process changed between its read and its write go
        again by the locking path, in one transaction that locks their senders before reading
        them (`locked`), where no other process can change them until it commits.

        Another process may take a new message's reference between our check and our insert
        (each saw it free): the unique index refuses the whole group, which starts again,
        redrawing. A row the database refuses (bad data) also fails the whole statement: the
        group's jobs then run again one by one, so that only that job fails. When the database
        is not there, every job of the group fails at once.
        """
        for _ in range(REFERENCE_TRIES):
            try:
                if locked:
                    outcomes = await self._transaction(
                        lambda conn: ingest_together(conn, batch, self.new_reference)
                    )
                    self.commits += 1
                    return outcomes
                group = Optimistic(batch, self.new_reference)
                await self._run("read from", group.read)
                outcomes = await self._run("write to", group.write)
                self.commits += 1
                if group.lost:
                    self.lost += len(group.lost)
                    again = await self._commit([batch[n] for n in group.lost], locked=True)
                    for n, outcome in zip(group.lost, again, strict=True):
                        outcomes[n] = outcome
                return outcomes
            except ReferenceTaken:
                continue
            except StoreError as e:
                if len(batch) > 1 and isinstance(e.__cause__, _ONE_ROW):
                    return [(await self._commit([job], locked))[0] for job in batch]
                return [(None, e)] * len(batch)
            except Exception as e:  # a bug: every caller hears of it, none waits for ever
                log.exception("Could not store a group of %d messages", len(batch))
                return [(None, e)] * len(batch)
        error = StoreError("Could not draw a free reference for a new message; try again.")
        return [(None, error)] * len(batch)

    async def get(self, reference: str) -> QueueItem | None:
        async def run(conn: Conn) -> QueueItem | None:
            row = await conn.fetchrow(queries.BY_REFERENCE, reference)
            return None if row is None else _item(row)

        return await self._run("read from", run)

    async def open_items(
        self, include_done: bool = False, limit: int | None = None
    ) -> list[QueueItem]:
        where = "" if include_done else "WHERE m.done_at IS NULL"
        sql = f"{queries.ITEM} {where} {queries.ORDER}" + ("" if limit is None else " LIMIT $1")
        params: tuple[Any, ...] = () if limit is None else (limit,)

        async def run(conn: Conn) -> list[QueueItem]:
            return [_item(row) for row in await conn.fetch(sql, *params)]

        return await self._run("read from", run)

    @staticmethod
    async def _found(conn: Conn, reference: str) -> QueueItem:
        row = await conn.fetchrow(queries.BY_REFERENCE, reference)
        if row is None:
            raise NotFound(reference)
        return _item(row)

    async def mark_done(self, reference: str, by: str, at: datetime) -> QueueItem:
        aware(at)

        async def run(conn: Conn) -> QueueItem:
            await conn.execute(queries.DONE, at, by, reference)
            return await self._found(conn, reference)

        return await self._transaction(run)

    async def reopen(self, reference: str) -> QueueItem:
        async def run(conn: Conn) -> QueueItem:
            await conn.execute(queries.REOPEN, reference)
            return await self._found(conn, reference)

        return await self._transaction(run)

    async def record_human_reply(
        self, reference: str, text: str, by: str, at: datetime
    ) -> QueueItem:
        aware(at)

        async def run(conn: Conn) -> QueueItem:
            item = await self._found(conn, reference)
            await conn.execute(queries.INSERT_REPLY, item.id, "human", None, text, by, at)
            first = item.first_human_reply_at
            if first is not None and first <= at:
                return item
            await conn.execute(queries.FIRST_HUMAN_REPLY, at, item.id)
            return dataclasses.replace(item, first_human_reply_at=at)

        return await self._transaction(run)

    async def counts(self) -> dict[str, int]:
        async def run(conn: Conn) -> dict[str, int]:
            open_, done, replies = _row(await conn.fetchrow(queries.COUNTS))
            return {"open": open_, "done": done, "replies": replies}

        return await self._run("read from", run)

    async def set_opted_out(self, channel: str, sender: str, opted_out: bool) -> None:
        await self._run(
            "write to", lambda conn: conn.execute(queries.OPT_OUT, channel, sender, opted_out)
        )

    # Data protection.

    async def purge(self, before: datetime, at: datetime) -> int:
        aware(before)
        aware(at)

        async def run(conn: Conn) -> int:
            await conn.execute(queries.PURGE_REPLIES, before)
            await conn.execute(queries.PURGE_ORIGINALS, before)
            status = await conn.execute(queries.PURGE_MESSAGES, before, at)
            await conn.execute(queries.PURGE_SENDERS, before)
            return int(status.rpartition(" ")[2])  # "UPDATE 12"

        return await self._transaction(run)

    async def erase(self, channel: str, sender: str, at: datetime) -> int:
        aware(at)

        async def run(conn: Conn) -> int:
            await conn.execute(queries.ERASE_REPLIES, channel, sender)
            await conn.execute(queries.ERASE_ORIGINALS, channel, sender)
            status = await conn.execute(queries.ERASE_MESSAGES, channel, sender, at)
            await conn.execute(queries.ERASE_SENDER, channel, sender)
            return int(status.rpartition(" ")[2])

        return await self._transaction(run)

    async def export(self, channel: str, sender: str) -> PersonalData:
        async def run(conn: Conn) -> PersonalData:
            key = (channel, sender)
            items = [_item(r) for r in await conn.fetch(queries.EXPORT_ITEMS, *key)]
            replies = [StoredReply(*r) for r in await conn.fetch(queries.EXPORT_REPLIES, *key)]
            row = await conn.fetchrow(queries.EXPORT_SENDER, channel, sender)
            state = None if row is None else SenderState(row[0], row[1], bool(row[2]))
            return PersonalData(channel, sender, state, items, replies)

        return await self._transaction(run, "read from")  # one snapshot for the three queries

    # Jobs that must run once, however many processes share the database.

    async def claim_job(
        self, name: str, holder: str, at: datetime, every: timedelta, lease: timedelta
    ) -> bool:
        aware(at)

        async def run(conn: Conn) -> bool:
            await conn.execute(queries.JOB_ROW, name)
            status = await conn.execute(_CLAIM_JOB, name, holder, at + lease, at, at - every)
            return status == "UPDATE 1"

        return await self._transaction(run)

    async def finish_job(self, name: str, holder: str, at: datetime) -> None:
        aware(at)
        await self._run("write to", lambda conn: conn.execute(queries.JOB_FINISH, name, holder, at))

    async def release_jobs(self, holder: str) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute(queries.JOB_RELEASE, holder)
            await conn.execute(queries.OUTBOX_RELEASE, holder)

        await self._transaction(run)

    # The outbox.

    async def enqueue(self, outgoing: Outgoing, at: datetime) -> Delivery:
        aware(at)
        o = outgoing
        params = (o.message_id, o.channel, o.recipient, o.kind, o.text, o.priority, at, o.reply_to)

        async def run(conn: Conn) -> Delivery:
            return Delivery(*_row(await conn.fetchrow(queries.ENQUEUE, *params)))

        return await self._run("write to", run)

    async def claim_deliveries(
        self,
        holder: str,
        at: datetime,
        lease: timedelta,
        limit: int = 10,
        skip: Sequence[tuple[str, str | None]] = (),
    ) -> list[Delivery]:
        aware(at)
        skipped = json.dumps(list(skip))

        async def run(conn: Conn) -> list[Delivery]:
            rows = await conn.fetch(_CLAIM_DELIVERIES, holder, at, at + lease, limit, skipped)
            found = [Delivery(*r) for r in rows]
            return sorted(found, key=lambda d: (-d.priority, d.next_attempt_at, d.id))

        return await self._run("write to", run)

    async def renew_leases(self, holder: str, until: datetime) -> int:
        aware(until)

        async def run(conn: Conn) -> int:
            status = await conn.execute(queries.RENEW_LEASES, holder, until)
            return int(status.rpartition(" ")[2])

        return await self._run("write to", run)

    async def _changed(self, sql: str, *params: Any) -> bool:
        async def run(conn: Conn) -> bool:
            status = await conn.execute(sql, *params)
            return bool(status != "UPDATE 0")

        return await self._run("write to", run)

    async def delivered(
        self,
        delivery_id: int,
        at: datetime,
        platform_message_id: str | None,
        started_at: datetime | None = None,
    ) -> bool:
        aware(at)
        if started_at is not None:
            aware(started_at)
        return await self._changed(
            queries.DELIVERED, delivery_id, at, platform_message_id, started_at
        )

    async def _count(self, sql: str, *params: Any) -> int:
        async def run(conn: Conn) -> int:
            status = await conn.execute(sql, *params)
            return int(status.rpartition(" ")[2])

        return await self._run("write to", run)

    async def receipt(
        self, channel: str, platform_message_id: str, read: bool, at: datetime
    ) -> int:
        aware(at)
        return await self._count(queries.RECEIPT[read], channel, platform_message_id, at)

    async def receipts_until(
        self, channel: str, recipient: str, until: datetime, read: bool, at: datetime
    ) -> int:
        aware(at)
        aware(until)
        return await self._count(queries.RECEIPTS_UNTIL[read], channel, recipient, at, until)

    async def retry_later(self, delivery_id: int, holder: str, error: str, at: datetime) -> bool:
        aware(at)
        return await self._changed(queries.RETRY_LATER, delivery_id, holder, error, at)

    async def not_delivered(self, channel: str, platform_message_id: str, error: str) -> bool:
        return await self._changed(queries.NOT_DELIVERED, channel, platform_message_id, error)

    async def give_up(self, delivery_id: int, holder: str, error: str) -> bool:
        return await self._changed(queries.GIVE_UP, delivery_id, holder, error)

    async def revive(self, delivery_id: int, at: datetime) -> bool:
        aware(at)
        return await self._changed(queries.REVIVE, delivery_id, at)

    async def deliveries(self, state: str, limit: int = 100) -> list[Delivery]:
        async def run(conn: Conn) -> list[Delivery]:
            return [Delivery(*r) for r in await conn.fetch(queries.DELIVERIES, state, limit)]

        return await self._run("read from", run)

    # Channels' state, and edits.

    async def get_state(self, channel: str, key: str) -> str | None:
        async def run(conn: Conn) -> str | None:
            value = await conn.fetchval(queries.GET_STATE, channel, key)
            return None if value is None else str(value)

        return await self._run("read from", run)

    async def original(self, message_id: int) -> bytes | None:
        async def run(conn: Conn) -> bytes | None:
            value = await conn.fetchval(queries.GET_ORIGINAL, message_id)
            return None if value is None else bytes(value)

        return await self._run("read from", run)

    async def set_state(self, channel: str, key: str, value: str) -> None:
        await self._run(
            "write to", lambda conn: conn.execute(queries.SET_STATE, channel, key, value)
        )

    async def edit_text(self, channel: str, platform_id: str, text: str) -> QueueItem | None:
        async def run(conn: Conn) -> QueueItem | None:
            await conn.execute(queries.EDIT_TEXT, channel, platform_id, text)
            row = await conn.fetchrow(queries.BY_KEY, channel, platform_id)
            return None if row is None else _item(row)

        return await self._transaction(run)

    # Alerts.

    async def unalerted(self, until: datetime) -> list[QueueItem]:
        aware(until)

        async def run(conn: Conn) -> list[QueueItem]:
            return [_item(r) for r in await conn.fetch(queries.UNALERTED, until)]

        return await self._run("read from", run)

    async def near_breach(self, until: datetime) -> list[QueueItem]:
        aware(until)

        async def run(conn: Conn) -> list[QueueItem]:
            return [_item(r) for r in await conn.fetch(queries.NEAR_BREACH, until)]

        return await self._run("read from", run)

    async def alert(
        self,
        ids: list[int],
        compose: Callable[[list[int]], list[Outgoing]],
        at: datetime,
        *,
        breach: bool = False,
    ) -> list[int]:
        aware(at)
        sql = queries.MARK_BREACH_ALERTED if breach else queries.MARK_ALERTED

        async def run(conn: Conn) -> list[int]:
            mine = [i for i in ids if (await conn.execute(sql, i, at)) == "UPDATE 1"]
            for o in compose(mine) if mine else []:
                await conn.execute(
                    queries.ENQUEUE,
                    o.message_id, o.channel, o.recipient, o.kind, o.text, o.priority, at,
                    o.reply_to,
                )  # fmt: skip
            return mine

        return await self._transaction(run)

    async def mark_alerted(self, ids: list[int], at: datetime, *, breach: bool = False) -> int:
        aware(at)
        sql = queries.MARK_BREACH_ALERTED if breach else queries.MARK_ALERTED

        async def run(conn: Conn) -> int:
            count = 0
            for item_id in ids:
                status = await conn.execute(sql, item_id, at)
                count += int(status.rpartition(" ")[2])
            return count

        return await self._transaction(run)

    # People and sessions.

    @staticmethod
    async def _users(conn: Conn, rows: list[asyncpg.Record]) -> list[tuple[User, str]]:
        teams: dict[int, list[str]] = {}
        for user_id, team in await conn.fetch(queries.TEAMS_OF):
            teams.setdefault(user_id, []).append(team)
        return [
            (User(r[0], r[1], r[2], r[3], tuple(teams.get(r[0], ())), r[4], r[5]), r[6])
            for r in rows
        ]

    async def add_user(
        self,
        username: str,
        display_name: str,
        role: str,
        password_hash: str,
        teams: Sequence[str],
        at: datetime,
    ) -> User:
        aware(at)

        async def run(conn: Conn) -> User:
            if await conn.fetchrow(queries.USER_BY_NAME, username) is not None:
                raise HoldingReplyError(f"There is already a user called {username!r}.")
            user_id = await conn.fetchval(
                queries.ADD_USER, username, display_name, role, password_hash, at
            )
            for team in dict.fromkeys(teams):
                await conn.execute(queries.ADD_TEAM, user_id, team)
            rows = await conn.fetch(queries.USER_BY_ID, user_id)
            return (await self._users(conn, rows))[0][0]

        return await self._transaction(run)

    async def users(self) -> list[User]:
        async def run(conn: Conn) -> list[User]:
            rows = await conn.fetch(queries.ALL_USERS)
            return [user for user, _ in await self._users(conn, rows)]

        return await self._run("read from", run)

    async def user(self, username: str) -> tuple[User, str] | None:
        async def run(conn: Conn) -> tuple[User, str] | None:
            rows = await conn.fetch(queries.USER_BY_NAME, username)
            return (await self._users(conn, rows))[0] if rows else None

        return await self._run("read from", run)

    async def user_by_id(self, user_id: int) -> User | None:
        async def run(conn: Conn) -> User | None:
            rows = await conn.fetch(queries.USER_BY_ID, user_id)
            return (await self._users(conn, rows))[0][0] if rows else None

        return await self._run("read from", run)

    async def set_password(self, user_id: int, password_hash: str) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute(queries.SET_PASSWORD, user_id, password_hash)
            await conn.execute(queries.END_SESSIONS_OF, user_id)

        await self._transaction(run)

    async def set_teams(self, user_id: int, teams: Sequence[str]) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute(queries.CLEAR_TEAMS, user_id)
            for team in dict.fromkeys(teams):
                await conn.execute(queries.ADD_TEAM, user_id, team)

        await self._transaction(run)

    async def disable_user(self, user_id: int, at: datetime) -> bool:
        aware(at)

        async def run(conn: Conn) -> bool:
            status = await conn.execute(queries.DISABLE_USER, user_id, at)
            await conn.execute(queries.END_SESSIONS_OF, user_id)
            return bool(status != "UPDATE 0")

        return await self._transaction(run)

    async def start_session(
        self, token_hash: str, user_id: int, csrf: str, at: datetime, expires: datetime
    ) -> None:
        aware(at)
        aware(expires)

        async def run(conn: Conn) -> None:
            await conn.execute(queries.END_EXPIRED_SESSIONS, at)
            await conn.execute(queries.ADD_SESSION, token_hash, user_id, csrf, at, expires)

        await self._transaction(run)

    async def session(self, token_hash: str, at: datetime) -> tuple[User, str] | None:
        aware(at)

        async def run(conn: Conn) -> tuple[User, str] | None:
            found = await conn.fetchrow(queries.SESSION, token_hash, at)
            if found is None:
                return None
            rows = await conn.fetch(queries.USER_BY_ID, found[0])
            return (await self._users(conn, rows))[0][0], found[1]

        return await self._run("read from", run)

    async def end_session(self, token_hash: str) -> None:
        await self._run("write to", lambda conn: conn.execute(queries.END_SESSION, token_hash))

    async def login_failures(self, key: str, since: datetime) -> int:
        aware(since)

        async def run(conn: Conn) -> int:
            return int(await conn.fetchval(queries.COUNT_LOGIN_FAILURES, key, since))

        return await self._run("read from", run)

    async def record_login_failure(self, key: str, at: datetime) -> None:
        aware(at)
        await self._run("write to", lambda conn: conn.execute(queries.ADD_LOGIN_FAILURE, key, at))

    async def clear_login_failures(self, key: str, before: datetime) -> None:
        aware(before)
        await self._run(
            "write to", lambda conn: conn.execute(queries.CLEAR_LOGIN_FAILURES, key, before)
        )

    # The inbox.

    async def inbox(
        self,
        teams: list[str] | None,
        channel: str | None = None,
        status: str = "open",
        limit: int = 200,
    ) -> list[QueueItem]:
        sql, params = queries.inbox(teams, channel, status, limit)

        async def run(conn: Conn) -> list[QueueItem]:
            return [_item(r) for r in await conn.fetch(sql, *params)]

        return await self._run("read from", run)

    async def claim(self, reference: str, user_id: int | None) -> QueueItem:
        async def run(conn: Conn) -> QueueItem:
            await conn.execute(queries.CLAIM, reference, user_id)
            return await self._found(conn, reference)

        return await self._transaction(run)

    async def reassign(self, reference: str, team: str | None) -> QueueItem:
        async def run(conn: Conn) -> QueueItem:
            await conn.execute(queries.REASSIGN, reference, team)
            return await self._found(conn, reference)

        return await self._transaction(run)

    async def add_note(self, reference: str, author: str, text: str, at: datetime) -> None:
        aware(at)

        async def run(conn: Conn) -> None:
            status = await conn.execute(queries.ADD_NOTE, reference, author, text, at)
            if status.endswith(" 0"):
                raise NotFound(reference)

        await self._transaction(run)

    async def notes(self, reference: str) -> list[Note]:
        async def run(conn: Conn) -> list[Note]:
            return [Note(*r) for r in await conn.fetch(queries.NOTES, reference)]

        return await self._run("read from", run)

    async def replies(self, reference: str) -> list[StoredReply]:
        async def run(conn: Conn) -> list[StoredReply]:
            return [StoredReply(*r) for r in await conn.fetch(queries.REPLIES_OF, reference)]

        return await self._run("read from", run)

    async def history(self, item: QueueItem) -> list[QueueItem]:
        async def run(conn: Conn) -> list[QueueItem]:
            rows = await conn.fetch(queries.HISTORY, item.channel, item.sender, item.reference)
            return [_item(r) for r in rows]

        return await self._run("read from", run)

    async def send_human_reply(self, reference: str, text: str, by: str, at: datetime) -> QueueItem:
        aware(at)

        async def run(conn: Conn) -> QueueItem:
            item = await self._found(conn, reference)
            await conn.execute(queries.INSERT_REPLY, item.id, "human", None, text, by, at)
            if item.first_human_reply_at is None or at < item.first_human_reply_at:
                await conn.execute(queries.FIRST_HUMAN_REPLY, at, item.id)
            if item.conversation is not None:
                urgent = int(item.emergency is not None)  # an emergency's reply goes first
                await conn.execute(
                    queries.ENQUEUE,
                    item.id, item.channel, item.conversation, "human", text, urgent, at,
                    item.thread,
                )  # fmt: skip
            return await self._found(conn, reference)

        return await self._transaction(run)

    # Reports.

    async def report(self, start: datetime, end: datetime, zone: ZoneInfo) -> ReportData:
        aware(start)
        aware(end)
        days_from = start.astimezone(zone).date()
        days_to = end.astimezone(zone).date()
        t = REPORT_TIMEOUT

        async def run(conn: Conn) -> ReportData:
            groups = collect_figures(
                await conn.fetch(queries.REPORT_MESSAGES, start, end, timeout=t),
                await conn.fetch(queries.REPORT_REPLIES, start, end, timeout=t),
                await conn.fetch(queries.PG_PERCENTILES, start, end, timeout=t),
            )
            where = (start, end, zone.key)
            hours = {
                (row[0], row[1]): int(row[2])
                for row in await conn.fetch(queries.PG_HOURS, *where, timeout=t)
            }
            days: dict[date, tuple[int, int]] = {
                row[0]: (int(row[1]), 0)
                for row in await conn.fetch(queries.PG_RECEIVED_DAYS, *where, timeout=t)
            }
            for day, count in await conn.fetch(queries.PG_DONE_DAYS, *where, timeout=t):
                days[day] = (days.get(day, (0, 0))[0], int(count))
            open_at_start = await conn.fetchval(queries.REPORT_OPEN_AT, start, timeout=t)
            first: dict[tuple[str, str | None], array[float]] = {}
            for channel, team, received_at, replied_at in await conn.fetch(
                queries.PG_FIRST_REPLIES, start, end, timeout=t
            ):
                first.setdefault((channel, team), array("d")).extend((received_at, replied_at))
            contacts = [
                Contact(row[0], row[1], int(row[2]))
                for row in await conn.fetch(queries.REPORT_CONTACTS, days_from, days_to)
            ]
            return ReportData(
                overall=groups["all"][0] if groups["all"] else Figures("all"),
                by_channel=groups["channel"],
                by_team=groups["team"],
                hours=hours,
                open_at_start=int(open_at_start),
                days=days,
                first_replies=first,
                contacts=contacts,
            )

        # One snapshot for every query, read only.
        async def snapshot(conn: Conn) -> ReportData:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await run(conn)

        return await self._run("read from", snapshot)

    async def import_contacts(self, contacts: Sequence[Contact], at: datetime) -> int:
        aware(at)
        rows = [(c.day, c.channel, c.count, at) for c in contacts]

        async def run(conn: Conn) -> int:
            await conn.executemany(queries.IMPORT_CONTACT, rows)
            return len(rows)

        return await self._transaction(run)

    # Rules and templates, as versions.

    async def latest_rules_version(self) -> int:
        async def run(conn: Conn) -> int:
            return int(await conn.fetchval(queries.RULES_LATEST))

        return await self._run("read from", run)

    async def rules_version(
        self, version: int | None = None, *, source: str | None = None
    ) -> RulesVersion | None:
        params: tuple[Any, ...]
        if version is not None:
            sql, params = queries.RULES_BY_ID, (version,)
        elif source is not None:
            sql, params = queries.RULES_NEWEST_FROM, (source,)
        else:
            sql, params = queries.RULES_NEWEST, ()

        async def run(conn: Conn) -> RulesVersion | None:
            row = await conn.fetchrow(sql, *params)
            return None if row is None else rules_version_from_row(row, row[5])

        return await self._run("read from", run)

    async def rules_versions(self, limit: int = 50) -> list[RulesVersion]:
        async def run(conn: Conn) -> list[RulesVersion]:
            rows = await conn.fetch(queries.RULES_LIST, limit)
            return [rules_version_from_row(r, r[5]) for r in rows]

        return await self._run("read from", run)

    async def add_rules_version(
        self,
        files: Mapping[str, str],
        author: str,
        note: str,
        source: str,
        based_on: int,
        at: datetime,
    ) -> RulesVersion:
        aware(at)
        text = files_json(files)

        async def run(conn: Conn) -> RulesVersion:
            latest = int(await conn.fetchval(queries.RULES_LATEST))
            if latest != based_on:
                raise Stale(based_on, latest)
            try:
                # Two saves based on the same version both want this id: the second waits for
                # the first to commit, then is refused here.
                await conn.execute(queries.RULES_ADD, based_on + 1, text, author, note, source, at)
            except asyncpg.UniqueViolationError:
                raise Stale(based_on, based_on + 1) from None
            return RulesVersion(based_on + 1, dict(files), author, note, source, at)

        return await self._transaction(run)
