"""The SQLite store: one write connection that commits jobs in groups, reads on a few others.

Group commit: every job waiting (up to MAX_BATCH) runs inside one BEGIN IMMEDIATE ... COMMIT,
so one fsync covers many messages under load; a job that fails is undone alone (see _commit).
The jobs' statements run on the event loop (they are quick, and each one run on another thread
would cost a handover of the interpreter lock); the COMMIT, where the fsync happens, runs on the
writer thread, and the jobs that arrive meanwhile gather for the next group.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import queue
import sqlite3
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, overload
from zoneinfo import ZoneInfo

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
    new_item,
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
    rules_version_from_row,
)
from bot.store.announce_sqlite import SQLiteAnnouncements

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BATCH = 256


_q = queries.sqlite_placeholders


_BY_KEY = _q(queries.BY_KEY)
_BY_REFERENCE = _q(queries.BY_REFERENCE)
# One round trip for what ingest needs to know first: is the message already stored, the
# sender, and whether the reference drawn is taken. The new message's id is SQLite's to give
# (NULL into an INTEGER PRIMARY KEY) and read back as the cursor's lastrowid.
_BEFORE_INGEST = _q(
    """SELECT (SELECT id FROM messages WHERE channel = $1 AND platform_id = $2),
    s.last_ack_at, s.last_ack_template, s.opted_out,
    EXISTS (SELECT 1 FROM messages WHERE reference = $4)
FROM (SELECT 1) LEFT JOIN senders s ON s.channel = $1 AND s.sender = $3"""
)
_REFERENCE_TAKEN = _q(queries.REFERENCE_TAKEN)
_INSERT_MESSAGE = _q(queries.INSERT_MESSAGE)
_INSERT_REPLY = _q(queries.INSERT_REPLY)
_INSERT_ORIGINAL = _q(queries.INSERT_ORIGINAL)
_ACKNOWLEDGED = _q(queries.ACKNOWLEDGED)
_DONE = _q(queries.DONE)
_REOPEN = _q(queries.REOPEN)
_FIRST_HUMAN_REPLY = _q(queries.FIRST_HUMAN_REPLY)


@overload
def to_text(at: datetime) -> str: ...
@overload
def to_text(at: None) -> None: ...
def to_text(at: datetime | None) -> str | None:
    """Fixed-width UTC text, so that text order is time order."""
    if at is None:
        return None
    if at.tzinfo is not UTC:  # the clock's own datetimes are UTC already: skip the conversion
        if at.utcoffset() is None:
            raise ValueError(f"Datetime {at!r} has no time zone; the store keeps aware UTC only.")
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" becomes "Z"


@overload
def from_text(text: str) -> datetime: ...
@overload
def from_text(text: None) -> None: ...
def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _item(row: Sequence[Any]) -> QueueItem:
    return QueueItem(
        id=row[0],
        reference=row[1],
        channel=row[2],
        platform_id=row[3],
        sender=row[4],
        sender_name=row[5],
        text=row[6],
        received_at=datetime.fromisoformat(row[7]),
        staffed=bool(row[8]),
        reply_by=from_text(row[9]),
        emergency=row[10],
        redirect=row[11],
        team=row[12],
        language=row[13],
        template=row[14],
        auto_reply=row[15],
        done_at=from_text(row[16]),
        done_by=row[17],
        first_human_reply_at=from_text(row[18]),
        conversation=row[19],
        thread=row[20],
        assigned_to=row[21],
        held_back=row[22],
        possible=bool(row[23]),
    )


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        message_id=row[1],
        channel=row[2],
        recipient=row[3],
        kind=row[4],
        text=row[5],
        priority=row[6],
        state=row[7],
        attempts=row[8],
        next_attempt_at=datetime.fromisoformat(row[9]),
        last_error=row[10],
        platform_message_id=row[11],
        created_at=datetime.fromisoformat(row[12]),
        sent_at=from_text(row[13]),
        reply_to=row[14],
        reference=row[15],
    )


_ENQUEUE = _q(queries.ENQUEUE)
_SKIPPED = """SELECT 1 FROM json_each($5) s WHERE json_extract(s.value, '$[0]') = outbox.channel
    AND coalesce(json_extract(s.value, '$[1]'), outbox.recipient) = outbox.recipient"""
_CLAIM_DELIVERIES = _q(
    queries.CLAIM_DELIVERIES.format(
        due=queries.DUE_DELIVERIES.format(skipped=_SKIPPED), columns=queries.DELIVERY
    )
)


def _get(conn: sqlite3.Connection, reference: str) -> QueueItem | None:
    row = conn.execute(_BY_REFERENCE, (reference,)).fetchone()
    return None if row is None else _item(row)


def _found(conn: sqlite3.Connection, reference: str) -> QueueItem:
    item = _get(conn, reference)
    if item is None:
        raise NotFound(reference)
    return item


def _ingest(
    conn: sqlite3.Cursor,
    message: Message,
    decide: Callable[[SenderState, str], Decision],
    draw: Callable[[], str],
    received: str,
) -> Ingested:
    """Store one message with its decision, inside the writer's transaction.

    `conn`: one cursor for all the statements (a cursor made for each costs more than a short
    statement's own work); `received`: the message's received_at as to_text gives it."""
    reference = draw()
    existing, last_ack_at, last_template, opted_out, taken = conn.execute(
        _BEFORE_INGEST, (message.channel, message.platform_id, message.sender, reference)
    ).fetchone()
    if existing is not None:
        row = conn.execute(_BY_KEY, (message.channel, message.platform_id)).fetchone()
        return Ingested(_item(row), duplicate=True)
    # The one writer holds the database, so a reference found free here stays free.
    while taken:
        reference = draw()
        taken = conn.execute(_REFERENCE_TAKEN, (reference,)).fetchone()[0]
    state = SenderState(from_text(last_ack_at), last_template, bool(opted_out))
    d = decide(state, reference)
    inserted = conn.execute(
        _INSERT_MESSAGE,
        (
            None,  # ?1, the id: SQLite's next
            reference,
            message.channel,
            message.platform_id,
            message.sender,
            message.sender_name,
            message.text,
            received,
            int(d.staffed),
            to_text(d.reply_by),
            to_text(d.opens_at),
            d.emergency,
            d.redirect,
            d.team,
            d.language,
            d.template,
            d.matched,
            d.held_back,
            None,  # ?19, the reply, is not a column of the message
            message.conversation,
            message.thread,
        ),
    )
    item_id = inserted.lastrowid
    assert item_id is not None  # set by every INSERT into a rowid table
    if message.original is not None:
        conn.execute(_INSERT_ORIGINAL, (item_id, message.original))
    if d.reply is not None:
        conn.execute(_INSERT_REPLY, (item_id, "auto", d.template, d.reply, None, received))
        conn.execute(_ACKNOWLEDGED, (message.channel, message.sender, received, d.template))
        if message.conversation is not None:  # sent later, by the outbox, in this transaction
            conn.execute(
                _ENQUEUE,
                (
                    item_id,
                    message.channel,
                    message.conversation,
                    "auto",
                    d.reply,
                    int(d.emergency is not None),
                    received,
                    message.thread,
                ),
            )
    item = new_item(item_id, reference, message, d)
    return Ingested(item, duplicate=False)


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


def _run_together(
    conn: sqlite3.Connection, batch: list[_Job]
) -> list[tuple[Any, BaseException | None]] | None:
    """Every job's result, or None as soon as one of them raises."""
    try:
        return [(job.run(conn), None) for job in batch]
    except Exception:
        return None


def _statements(sql: str) -> Iterator[str]:
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if any(s.strip() and not s.strip().startswith("--") for s in statement.splitlines()):
        raise StoreError(f"A migration ends without a semicolon: {statement.strip()[:80]!r}")


class SQLiteStore(SQLiteAnnouncements):
    """The Store on one SQLite file, or ":memory:" (then reads go through the writer too)."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        readers: int = 3,
        migrate: bool = True,
    ) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise HoldingReplyError(
                f"SQLite 'synchronous' has value {synchronous!r}. Expected 'FULL' or 'NORMAL'."
            )
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self._memory = self.path == ":memory:"
        self._reader_count = 0 if self._memory else max(1, readers)
        self._open = False
        self.auto_migrate = migrate  # apply missing migrations on opening, or refuse to open
        self.applied: list[str] = []  # the migrations opening applied
        self.schema_version = 0
        self.commits = 0  # transactions the writer committed: for tests and measurements
        self.new_reference: Callable[[], str] = new_reference  # draws a new message's reference
        self._conn: sqlite3.Connection | None = None  # the write connection
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None  # one thread
        self._pending: list[_Job] = []
        self._flusher: asyncio.Task[None] | None = None
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._pooled: list[sqlite3.Connection] = []

    # Lifecycle.

    async def __aenter__(self) -> Self:
        if self._open or self._writer is not None:
            raise StoreError(f"The store at {self.path} is already open.")
        self._pool = queue.SimpleQueue()
        self._pending = []
        if not self._memory:
            try:
                await asyncio.to_thread(Path(self.path).parent.mkdir, parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"Cannot create the directory for the SQLite database {self.path}: {e}"
                ) from e
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="store-writer"
        )
        try:
            self._conn = await self._on_writer(self._open_writer)
            for _ in range(self._reader_count):
                self._pooled.append(await asyncio.to_thread(self._connect, reader=True))
        except BaseException:
            await self._stop()
            raise
        for conn in self._pooled:
            self._pool.put(conn)
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, self._reader_count), thread_name_prefix="store-reader"
        )
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False  # no new jobs; the ones queued still run
        await self._stop()

    async def _stop(self) -> None:
        if self._flusher is not None:  # the writes already asked for still happen
            await asyncio.shield(self._flusher)
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, wait=True)
            self._readers = None
        while self._pooled:
            self._pooled.pop().close()
        self._pool = queue.SimpleQueue()
        if self._writer is not None:
            if self._conn is not None:
                await self._on_writer(self._close_writer, self._conn)
                self._conn = None
            await asyncio.to_thread(self._writer.shutdown, wait=True)
            self._writer = None

    async def _on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect(reader=False)
        try:
            self._migrate(conn)
            conn.execute("PRAGMA busy_timeout = 0")  # see _begin
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_writer(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            log.warning("Could not checkpoint %s on closing: %s", self.path, e)
        finally:
            conn.close()

    def _connect(self, *, reader: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=64,
            )
            try:
                if reader:
                    conn.execute("PRAGMA query_only = ON")
                    return conn
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode != ("memory" if self._memory else "wal"):
                    raise StoreError(f"The database {self.path} cannot use WAL mode ({mode}).")
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                return conn
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as e:
            raise self._error("open", e) from e

    def _error(self, doing: str, e: sqlite3.Error) -> StoreError:
        error = StoreError(f"Could not {doing} the SQLite database {self.path}: {e}")
        error.__cause__ = e
        return error

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrations = queries.migrations("sqlite")
        latest = migrations[-1][0]
        conn.execute(queries.MIGRATIONS_TABLE)
        for version, name, sql in migrations:
            conn.execute("BEGIN IMMEDIATE")  # another process may be migrating too
            try:
                (current,) = conn.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
                ).fetchone()
                if queries.pending(current, latest, self.path, apply=self.auto_migrate) and (
                    version > current
                ):
                    log.info("Applying migration %s to %s", name, self.path)
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute(
                        _q("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)"),
                        (version, to_text(datetime.now(UTC))),
                    )
                    self.applied.append(name)
                conn.execute("COMMIT")
            except BaseException as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise self._error(f"apply migration {name} to", e) from e
                raise
        self.schema_version = latest

    # The writer thread.

    async def _flush(self) -> None:
        """Commit the jobs waiting, a group at a time, until none are left."""
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                for job, (result, error) in zip(batch, await self._commit(batch), strict=True):
                    if job.future.done():  # its caller went away; the write stands
                        continue
                    if error is None:
                        job.future.set_result(result)
                    else:
                        job.future.set_exception(error)
        finally:
            self._flusher = None

    async def _begin(self, conn: sqlite3.Connection) -> None:
        # The write connection's busy timeout is 0, so BEGIN on the event loop never blocks it;
        # only when another process holds the lock is the wait handed to the writer thread.
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise

            def wait_and_begin() -> None:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                finally:
                    conn.execute("PRAGMA busy_timeout = 0")

            await self._on_writer(wait_and_begin)

    async def _commit(self, batch: list[_Job]) -> list[tuple[Any, BaseException | None]]:
        """Run every job of the batch in one transaction; one failing job fails only itself.

        The jobs first run one after another with nothing between them. If one fails, the whole
        transaction is rolled back and the batch runs again, this time each job in its own
        SAVEPOINT, so that the failing one is undone alone. A savepoint for every job would cost
        about as much as the job's own statements, and jobs almost never fail.
        """
        conn = self._conn
        assert conn is not None
        try:
            await self._begin(conn)
            outcomes = _run_together(conn, batch)
            if outcomes is None:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                await self._begin(conn)
                outcomes = self._run_apart(conn, batch)
            await self._on_writer(conn.execute, "COMMIT")
            self.commits += 1
            return outcomes
        except BaseException as e:
            if conn.in_transaction:
                try:
                    await self._on_writer(conn.execute, "ROLLBACK")
                except sqlite3.Error as rollback_error:
                    log.warning("Could not roll back %s: %s", self.path, rollback_error)
            error = self._error("write to", e) if isinstance(e, sqlite3.Error) else e
            return [(None, error)] * len(batch)

    def _run_apart(
        self, conn: sqlite3.Connection, batch: list[_Job]
    ) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        for job in batch:
            conn.execute("SAVEPOINT job")
            try:
                result = job.run(conn)
            except BaseException as e:
                if not conn.in_transaction:  # SQLite rolled the whole transaction back
                    raise
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                error = self._error("write to", e) if isinstance(e, sqlite3.Error) else e
                outcomes.append((None, error))
            else:
                conn.execute("RELEASE job")
                outcomes.append((result, None))
        return outcomes

    # Running jobs.

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError(f"The store at {self.path} is not open: use `async with store:`.")

    async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Job(run, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        if self._memory:  # a second connection would see a different, empty database
            return await self._write(run)
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, self._pooled_read, run
        )

    def _pooled_read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._pool.get()
        try:
            return run(conn)
        except sqlite3.Error as e:
            raise self._error("read from", e) from e
        finally:
            self._pool.put(conn)

    # The Store interface.

    async def ingest(
        self, message: Message, decide: Callable[[SenderState, str], Decision]
    ) -> Ingested:
        received = to_text(message.received_at)  # a naive datetime fails here, not in the writer
        return await self._write(
            lambda conn: _ingest(conn.cursor(), message, decide, self.new_reference, received)
        )

    async def get(self, reference: str) -> QueueItem | None:
        return await self._read(lambda conn: _get(conn, reference))

    async def open_items(
        self, include_done: bool = False, limit: int | None = None
    ) -> list[QueueItem]:
        where = "" if include_done else "WHERE m.done_at IS NULL"
        sql = f"{queries.ITEM} {where} {queries.ORDER}" + ("" if limit is None else _q(" LIMIT $1"))
        params = () if limit is None else (limit,)
        return await self._read(lambda conn: [_item(r) for r in conn.execute(sql, params)])

    async def mark_done(self, reference: str, by: str, at: datetime) -> QueueItem:
        done_at = to_text(at)

        def run(conn: sqlite3.Connection) -> QueueItem:
            conn.execute(_DONE, (done_at, by, reference))
            return _found(conn, reference)

        return await self._write(run)

    async def reopen(self, reference: str) -> QueueItem:
        def run(conn: sqlite3.Connection) -> QueueItem:
            conn.execute(_REOPEN, (reference,))
            return _found(conn, reference)

        return await self._write(run)

    async def record_human_reply(
        self, reference: str, text: str, by: str, at: datetime
    ) -> QueueItem:
        created = to_text(at)

        def run(conn: sqlite3.Connection) -> QueueItem:
            item = _found(conn, reference)
            conn.execute(_INSERT_REPLY, (item.id, "human", None, text, by, created))
            first = item.first_human_reply_at
            if first is not None and first <= at:
                return item
            conn.execute(_FIRST_HUMAN_REPLY, (created, item.id))
            return dataclasses.replace(item, first_human_reply_at=from_text(created))

        return await self._write(run)

    async def counts(self) -> dict[str, int]:
        def run(conn: sqlite3.Connection) -> dict[str, int]:
            open_, done, replies = conn.execute(queries.COUNTS).fetchone()
            return {"open": open_, "done": done, "replies": replies}

        return await self._read(run)

    async def set_opted_out(self, channel: str, sender: str, opted_out: bool) -> None:
        params = (channel, sender, int(opted_out))
        await self._write(lambda conn: conn.execute(_q(queries.OPT_OUT), params))

    # Data protection.

    async def purge(self, before: datetime, at: datetime) -> int:
        cutoff, now = to_text(before), to_text(at)

        def run(conn: sqlite3.Connection) -> int:
            conn.execute(_q(queries.PURGE_REPLIES), (cutoff,))
            conn.execute(_q(queries.PURGE_ORIGINALS), (cutoff,))
            count = conn.execute(_q(queries.PURGE_MESSAGES), (cutoff, now)).rowcount
            conn.execute(_q(queries.PURGE_SENDERS), (cutoff,))
            return int(count)

        return await self._write(run)

    async def erase(self, channel: str, sender: str, at: datetime) -> int:
        now = to_text(at)

        def run(conn: sqlite3.Connection) -> int:
            conn.execute(_q(queries.ERASE_REPLIES), (channel, sender))
            conn.execute(_q(queries.ERASE_ORIGINALS), (channel, sender))
            count = conn.execute(_q(queries.ERASE_MESSAGES), (channel, sender, now)).rowcount
            conn.execute(_q(queries.ERASE_SENDER), (channel, sender))
            return int(count)

        return await self._write(run)

    async def export(self, channel: str, sender: str) -> PersonalData:
        def run(conn: sqlite3.Connection) -> PersonalData:
            key = (channel, sender)
            items = [_item(r) for r in conn.execute(_q(queries.EXPORT_ITEMS), key)]
            replies = [
                StoredReply(row[0], row[1], row[2], row[3], row[4], from_text(row[5]))
                for row in conn.execute(_q(queries.EXPORT_REPLIES), key)
            ]
            row = conn.execute(_q(queries.EXPORT_SENDER), key).fetchone()
            state = None if row is None else SenderState(from_text(row[0]), row[1], bool(row[2]))
            return PersonalData(channel, sender, state, items, replies)

        return await self._read(run)

    # Jobs that must run once, however many processes share the database.

    async def claim_job(
        self, name: str, holder: str, at: datetime, every: timedelta, lease: timedelta
    ) -> bool:
        params = (name, holder, to_text(at + lease), to_text(at), to_text(at - every))
        claim = _q(queries.JOB_CLAIM.format(where=queries.JOB_DUE))

        def run(conn: sqlite3.Connection) -> bool:
            # Inside BEGIN IMMEDIATE: no other process can claim between the check and the write.
            conn.execute(_q(queries.JOB_ROW), (name,))
            return bool(conn.execute(claim, params).rowcount)

        return await self._write(run)

    async def finish_job(self, name: str, holder: str, at: datetime) -> None:
        params = (name, holder, to_text(at))
        await self._write(lambda conn: conn.execute(_q(queries.JOB_FINISH), params))

    async def release_jobs(self, holder: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_q(queries.JOB_RELEASE), (holder,))
            conn.execute(_q(queries.OUTBOX_RELEASE), (holder,))

        await self._write(run)

    # The outbox.

    async def enqueue(self, outgoing: Outgoing, at: datetime) -> Delivery:
        o = outgoing
        params = (
            o.message_id,
            o.channel,
            o.recipient,
            o.kind,
            o.text,
            o.priority,
            to_text(at),
            o.reply_to,
        )
        return await self._write(lambda conn: _delivery(conn.execute(_ENQUEUE, params).fetchone()))

    async def claim_deliveries(
        self,
        holder: str,
        at: datetime,
        lease: timedelta,
        limit: int = 10,
        skip: Sequence[tuple[str, str | None]] = (),
    ) -> list[Delivery]:
        params = (holder, to_text(at), to_text(at + lease), limit, json.dumps(list(skip)))

        def run(conn: sqlite3.Connection) -> list[Delivery]:
            # Inside BEGIN IMMEDIATE: no other process can claim between the choice and the write.
            rows = [_delivery(r) for r in conn.execute(_CLAIM_DELIVERIES, params)]
            return sorted(rows, key=lambda d: (-d.priority, d.next_attempt_at, d.id))

        return await self._write(run)

    async def renew_leases(self, holder: str, until: datetime) -> int:
        params = (holder, to_text(until))
        return int(
            await self._write(lambda conn: conn.execute(_q(queries.RENEW_LEASES), params).rowcount)
        )

    async def _changed(self, sql: str, params: tuple[Any, ...]) -> bool:
        return bool(await self._write(lambda conn: conn.execute(_q(sql), params).rowcount))

    async def delivered(
        self,
        delivery_id: int,
        at: datetime,
        platform_message_id: str | None,
        started_at: datetime | None = None,
    ) -> bool:
        return await self._changed(
            queries.DELIVERED, (delivery_id, to_text(at), platform_message_id, to_text(started_at))
        )

    async def receipt(
        self, channel: str, platform_message_id: str, read: bool, at: datetime
    ) -> int:
        params = (channel, platform_message_id, to_text(at))
        sql = _q(queries.RECEIPT[read])
        return int(await self._write(lambda conn: conn.execute(sql, params).rowcount))

    async def receipts_until(
        self, channel: str, recipient: str, until: datetime, read: bool, at: datetime
    ) -> int:
        params = (channel, recipient, to_text(at), to_text(until))
        sql = _q(queries.RECEIPTS_UNTIL[read])
        return int(await self._write(lambda conn: conn.execute(sql, params).rowcount))

    async def retry_later(self, delivery_id: int, holder: str, error: str, at: datetime) -> bool:
        return await self._changed(queries.RETRY_LATER, (delivery_id, holder, error, to_text(at)))

    async def not_delivered(self, channel: str, platform_message_id: str, error: str) -> bool:
        return await self._changed(queries.NOT_DELIVERED, (channel, platform_message_id, error))

    async def give_up(self, delivery_id: int, holder: str, error: str) -> bool:
        return await self._changed(queries.GIVE_UP, (delivery_id, holder, error))

    async def revive(self, delivery_id: int, at: datetime) -> bool:
        return await self._changed(queries.REVIVE, (delivery_id, to_text(at)))

    async def deliveries(self, state: str, limit: int = 100) -> list[Delivery]:
        sql = _q(queries.DELIVERIES)
        return await self._read(
            lambda conn: [_delivery(r) for r in conn.execute(sql, (state, limit))]
        )

    # Channels' state, and edits.

    async def get_state(self, channel: str, key: str) -> str | None:
        sql = _q(queries.GET_STATE)

        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(sql, (channel, key)).fetchone()
            return None if row is None else str(row[0])

        return await self._read(run)

    async def original(self, message_id: int) -> bytes | None:
        sql = _q(queries.GET_ORIGINAL)

        def run(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(sql, (message_id,)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(run)

    async def set_state(self, channel: str, key: str, value: str) -> None:
        params = (channel, key, value)
        await self._write(lambda conn: conn.execute(_q(queries.SET_STATE), params))

    async def edit_text(self, channel: str, platform_id: str, text: str) -> QueueItem | None:
        def run(conn: sqlite3.Connection) -> QueueItem | None:
            conn.execute(_q(queries.EDIT_TEXT), (channel, platform_id, text))
            row = conn.execute(_BY_KEY, (channel, platform_id)).fetchone()
            return None if row is None else _item(row)

        return await self._write(run)

    # Alerts.

    async def unalerted(self, until: datetime) -> list[QueueItem]:
        sql, cutoff = _q(queries.UNALERTED), to_text(until)
        return await self._read(lambda conn: [_item(r) for r in conn.execute(sql, (cutoff,))])

    async def near_breach(self, until: datetime) -> list[QueueItem]:
        sql, cutoff = _q(queries.NEAR_BREACH), to_text(until)
        return await self._read(lambda conn: [_item(r) for r in conn.execute(sql, (cutoff,))])

    async def alert(
        self,
        ids: list[int],
        compose: Callable[[list[int]], list[Outgoing]],
        at: datetime,
        *,
        breach: bool = False,
    ) -> list[int]:
        sql = _q(queries.MARK_BREACH_ALERTED if breach else queries.MARK_ALERTED)
        when = to_text(at)

        def run(conn: sqlite3.Connection) -> list[int]:
            mine = [i for i in ids if conn.execute(sql, (i, when)).rowcount]
            for o in compose(mine) if mine else []:
                params = (o.message_id, o.channel, o.recipient, o.kind, o.text, o.priority, when,
                          o.reply_to)  # fmt: skip
                conn.execute(_ENQUEUE, params)
            return mine

        return await self._write(run)

    async def mark_alerted(self, ids: list[int], at: datetime, *, breach: bool = False) -> int:
        sql = _q(queries.MARK_BREACH_ALERTED if breach else queries.MARK_ALERTED)
        when = to_text(at)

        def run(conn: sqlite3.Connection) -> int:
            return sum(conn.execute(sql, (item_id, when)).rowcount for item_id in ids)

        return await self._write(run)

    # People and sessions.

    @staticmethod
    def _users(conn: sqlite3.Connection, rows: list[Any]) -> list[tuple[User, str]]:
        teams: dict[int, list[str]] = {}
        for user_id, team in conn.execute(_q(queries.TEAMS_OF)):
            teams.setdefault(user_id, []).append(team)
        return [
            (
                User(
                    id=r[0],
                    username=r[1],
                    display_name=r[2],
                    role=r[3],
                    teams=tuple(teams.get(r[0], ())),
                    created_at=datetime.fromisoformat(r[4]),
                    disabled_at=from_text(r[5]),
                ),
                r[6],
            )
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
        created = to_text(at)

        def run(conn: sqlite3.Connection) -> User:
            if conn.execute(_q(queries.USER_BY_NAME), (username,)).fetchone() is not None:
                raise HoldingReplyError(f"There is already a user called {username!r}.")
            params = (username, display_name, role, password_hash, created)
            (user_id,) = conn.execute(_q(queries.ADD_USER), params).fetchone()
            for team in dict.fromkeys(teams):
                conn.execute(_q(queries.ADD_TEAM), (user_id, team))
            row = conn.execute(_q(queries.USER_BY_ID), (user_id,)).fetchall()
            return self._users(conn, row)[0][0]

        return await self._write(run)

    async def users(self) -> list[User]:
        def run(conn: sqlite3.Connection) -> list[User]:
            rows = conn.execute(_q(queries.ALL_USERS)).fetchall()
            return [user for user, _ in self._users(conn, rows)]

        return await self._read(run)

    async def user(self, username: str) -> tuple[User, str] | None:
        def run(conn: sqlite3.Connection) -> tuple[User, str] | None:
            rows = conn.execute(_q(queries.USER_BY_NAME), (username,)).fetchall()
            return self._users(conn, rows)[0] if rows else None

        return await self._read(run)

    async def user_by_id(self, user_id: int) -> User | None:
        def run(conn: sqlite3.Connection) -> User | None:
            rows = conn.execute(_q(queries.USER_BY_ID), (user_id,)).fetchall()
            return self._users(conn, rows)[0][0] if rows else None

        return await self._read(run)

    async def set_password(self, user_id: int, password_hash: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_q(queries.SET_PASSWORD), (user_id, password_hash))
            conn.execute(_q(queries.END_SESSIONS_OF), (user_id,))

        await self._write(run)

    async def set_teams(self, user_id: int, teams: Sequence[str]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_q(queries.CLEAR_TEAMS), (user_id,))
            for team in dict.fromkeys(teams):
                conn.execute(_q(queries.ADD_TEAM), (user_id, team))

        await self._write(run)

    async def disable_user(self, user_id: int, at: datetime) -> bool:
        when = to_text(at)

        def run(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(_q(queries.DISABLE_USER), (user_id, when)).rowcount
            conn.execute(_q(queries.END_SESSIONS_OF), (user_id,))
            return bool(changed)

        return await self._write(run)

    async def start_session(
        self, token_hash: str, user_id: int, csrf: str, at: datetime, expires: datetime
    ) -> None:
        params = (token_hash, user_id, csrf, to_text(at), to_text(expires))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_q(queries.END_EXPIRED_SESSIONS), (params[3],))
            conn.execute(_q(queries.ADD_SESSION), params)

        await self._write(run)

    async def session(self, token_hash: str, at: datetime) -> tuple[User, str] | None:
        when = to_text(at)

        def run(conn: sqlite3.Connection) -> tuple[User, str] | None:
            found = conn.execute(_q(queries.SESSION), (token_hash, when)).fetchone()
            if found is None:
                return None
            rows = conn.execute(_q(queries.USER_BY_ID), (found[0],)).fetchall()
            return self._users(conn, rows)[0][0], found[1]

        return await self._read(run)

    async def end_session(self, token_hash: str) -> None:
        await self._write(lambda conn: conn.execute(_q(queries.END_SESSION), (token_hash,)))

    async def login_failures(self, key: str, since: datetime) -> int:
        params = (key, to_text(since))
        sql = _q(queries.COUNT_LOGIN_FAILURES)
        return await self._read(lambda conn: int(conn.execute(sql, params).fetchone()[0]))

    async def record_login_failure(self, key: str, at: datetime) -> None:
        params = (key, to_text(at))
        await self._write(lambda conn: conn.execute(_q(queries.ADD_LOGIN_FAILURE), params))

    async def clear_login_failures(self, key: str, before: datetime) -> None:
        params = (key, to_text(before))
        await self._write(lambda conn: conn.execute(_q(queries.CLEAR_LOGIN_FAILURES), params))

    # The inbox.

    async def inbox(
        self,
        teams: list[str] | None,
        channel: str | None = None,
        status: str = "open",
        limit: int = 200,
    ) -> list[QueueItem]:
        sql, params = queries.inbox(teams, channel, status, limit)
        sql = _q(sql)
        return await self._read(lambda conn: [_item(r) for r in conn.execute(sql, params)])

    async def claim(self, reference: str, user_id: int | None) -> QueueItem:
        def run(conn: sqlite3.Connection) -> QueueItem:
            conn.execute(_q(queries.CLAIM), (reference, user_id))
            return _found(conn, reference)

        return await self._write(run)

    async def reassign(self, reference: str, team: str | None) -> QueueItem:
        def run(conn: sqlite3.Connection) -> QueueItem:
            conn.execute(_q(queries.REASSIGN), (reference, team))
            return _found(conn, reference)

        return await self._write(run)

    async def add_note(self, reference: str, author: str, text: str, at: datetime) -> None:
        params = (reference, author, text, to_text(at))

        def run(conn: sqlite3.Connection) -> None:
            if not conn.execute(_q(queries.ADD_NOTE), params).rowcount:
                raise NotFound(reference)

        await self._write(run)

    async def notes(self, reference: str) -> list[Note]:
        sql = _q(queries.NOTES)
        return await self._read(
            lambda conn: [
                Note(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]))
                for r in conn.execute(sql, (reference,))
            ]
        )

    async def replies(self, reference: str) -> list[StoredReply]:
        sql = _q(queries.REPLIES_OF)
        return await self._read(
            lambda conn: [
                StoredReply(r[0], r[1], r[2], r[3], r[4], *map(from_text, r[5:8]))
                for r in conn.execute(sql, (reference,))
            ]
        )

    async def history(self, item: QueueItem) -> list[QueueItem]:
        sql, params = _q(queries.HISTORY), (item.channel, item.sender, item.reference)
        return await self._read(lambda conn: [_item(r) for r in conn.execute(sql, params)])

    async def send_human_reply(self, reference: str, text: str, by: str, at: datetime) -> QueueItem:
        created = to_text(at)

        def run(conn: sqlite3.Connection) -> QueueItem:
            item = _found(conn, reference)
            conn.execute(_INSERT_REPLY, (item.id, "human", None, text, by, created))
            if item.first_human_reply_at is None or at < item.first_human_reply_at:
                conn.execute(_FIRST_HUMAN_REPLY, (created, item.id))
            if item.conversation is not None:  # sent by the outbox, through its channel
                urgent = int(item.emergency is not None)  # an emergency's reply goes first
                conn.execute(
                    _ENQUEUE,
                    (item.id, item.channel, item.conversation, "human", text, urgent, created,
                     item.thread),
                )  # fmt: skip
            return _found(conn, reference)

        return await self._write(run)

    # Reports.

    async def report(self, start: datetime, end: datetime, zone: ZoneInfo) -> ReportData:
        params = (to_text(start), to_text(end))
        days_from = start.astimezone(zone).date().isoformat()
        days_to = end.astimezone(zone).date().isoformat()

        def run(conn: sqlite3.Connection) -> ReportData:
            began = not conn.in_transaction  # one snapshot for every query (":memory:" has one)
            if began:
                conn.execute("BEGIN")
            try:
                return read(conn)
            finally:
                if began:
                    conn.execute("COMMIT")

        def read(conn: sqlite3.Connection) -> ReportData:
            counted = conn.execute(_q(queries.REPORT_MESSAGES), params).fetchall()
            replies = conn.execute(_q(queries.REPORT_REPLIES), params).fetchall()
            answered = {
                (by, f.group): f.answered
                for by, figures in collect_figures(counted, [], []).items()
                for f in figures
            }
            sql, more, keys = queries.sqlite_percentiles(answered)
            ranked = conn.execute(_q(sql), (*params, *more)).fetchall()
            percentiles = queries.sqlite_percentile_rows(ranked, keys, answered)
            groups = collect_figures(counted, replies, percentiles)
            hours: dict[tuple[int, int], int] = {}
            days: dict[date, tuple[int, int]] = {}
            for bucket, count in conn.execute(_q(queries.SQLITE_RECEIVED_HOURS), params):
                local = _local_hour(bucket, zone)
                slot = (local.weekday(), local.hour)
                hours[slot] = hours.get(slot, 0) + count
                received, done = days.get(local.date(), (0, 0))
                days[local.date()] = (received + count, done)
            for bucket, count in conn.execute(_q(queries.SQLITE_DONE_HOURS), params):
                day = _local_hour(bucket, zone).date()
                received, done = days.get(day, (0, 0))
                days[day] = (received, done + count)
            (open_at_start,) = conn.execute(_q(queries.REPORT_OPEN_AT), params[:1]).fetchone()
            first: dict[tuple[str, str | None], array[float]] = {}
            for channel, team, received_at, replied_at in conn.execute(
                _q(queries.SQLITE_FIRST_REPLIES), params
            ):
                first.setdefault((channel, team), array("d")).extend((received_at, replied_at))
            contacts = [
                Contact(date.fromisoformat(row[0]), row[1], int(row[2]))
                for row in conn.execute(_q(queries.REPORT_CONTACTS), (days_from, days_to))
            ]
            overall = groups["all"][0] if groups["all"] else Figures("all")
            return ReportData(
                overall=overall,
                by_channel=groups["channel"],
                by_team=groups["team"],
                hours=hours,
                open_at_start=int(open_at_start),
                days=days,
                first_replies=first,
                contacts=contacts,
            )

        return await self._read(run)

    async def import_contacts(self, contacts: Sequence[Contact], at: datetime) -> int:
        when = to_text(at)
        rows = [(c.day.isoformat(), c.channel, c.count, when) for c in contacts]
        sql = _q(queries.IMPORT_CONTACT)

        def run(conn: sqlite3.Connection) -> int:
            conn.executemany(sql, rows)
            return len(rows)

        return await self._write(run)

    # Rules and templates, as versions.

    async def latest_rules_version(self) -> int:
        sql = queries.RULES_LATEST
        return await self._read(lambda conn: int(conn.execute(sql).fetchone()[0]))

    async def rules_version(
        self, version: int | None = None, *, source: str | None = None
    ) -> RulesVersion | None:
        params: tuple[Any, ...]
        if version is not None:
            sql, params = _q(queries.RULES_BY_ID), (version,)
        elif source is not None:
            sql, params = _q(queries.RULES_NEWEST_FROM), (source,)
        else:
            sql, params = queries.RULES_NEWEST, ()

        def run(conn: sqlite3.Connection) -> RulesVersion | None:
            row = conn.execute(sql, params).fetchone()
            return None if row is None else rules_version_from_row(row, from_text(row[5]))

        return await self._read(run)

    async def rules_versions(self, limit: int = 50) -> list[RulesVersion]:
        sql = _q(queries.RULES_LIST)

        def run(conn: sqlite3.Connection) -> list[RulesVersion]:
            rows = conn.execute(sql, (limit,)).fetchall()
            return [rules_version_from_row(r, from_text(r[5])) for r in rows]

        return await self._read(run)

    async def add_rules_version(
        self,
        files: Mapping[str, str],
        author: str,
        note: str,
        source: str,
        based_on: int,
        at: datetime,
    ) -> RulesVersion:
        params = (based_on + 1, files_json(files), author, note, source, to_text(at))

        def run(conn: sqlite3.Connection) -> RulesVersion:
            # Inside BEGIN IMMEDIATE: nobody else can save between the check and the insert.
            (latest,) = conn.execute(queries.RULES_LATEST).fetchone()
            if latest != based_on:
                raise Stale(based_on, int(latest))
            conn.execute(_q(queries.RULES_ADD), params)
            return RulesVersion(based_on + 1, dict(files), author, note, source, at)

        return await self._write(run)


def _local_hour(bucket: str, zone: ZoneInfo) -> datetime:
    """A UTC hour bucket, 'YYYY-MM-DDTHH', as local time. Zones whose offset is not a whole
    number of hours (none in the UK) would put part of each hour in the wrong local hour."""
    return datetime.fromisoformat(bucket + ":00+00:00").astimezone(zone)
