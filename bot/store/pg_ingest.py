"""Group commit for the PostgreSQL store: the messages that arrive together are stored together.

Under load, ingest calls queue up (PostgresStore.ingest) and are written a group at a time, so
one WAL flush covers the whole group. A group goes first by the optimistic path (Optimistic), two
round trips whatever its size: READ, which locks nothing, then the decisions in Python, then
WRITE, one statement and so one transaction, which writes the messages of every sender whose row
is still as READ found it. The jobs of a sender that another process changed in between go by
the locking path (ingest_together), in one transaction of four round trips: `BEGIN`; BEFORE,
which locks every sender of the group and reads what the decisions need; INSERT; `COMMIT`.

Two processes (two dynos) may hold groups with senders in common. WRITE and BEFORE both lock
their senders in one statement, sorted by (channel, sender), and take no other lock before they
have them all; messages are then written sorted by (channel, platform_id). Waits therefore always
go one way, and two groups never deadlock. Every ingest rewrites its senders' rows, so a row at
the version READ saw (its xmin) is a row no other ingest has decided on since.

A job whose decision raises fails alone: it is left out of the write. A row the database refuses
fails the whole statement; the store then runs the group's jobs again one by one (see
PostgresStore._commit), so that only that job fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg

from bot.errors import StoreError
from bot.models import Decision, Ingested, Message, QueueItem, SenderState, new_item
from bot.store import queries

Conn: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
# A job's result, or the exception it fails with.
Outcome: TypeAlias = tuple[Ingested | None, BaseException | None]

# At most this many messages in one transaction: under a burst, bounded statements and waits.
MAX_BATCH = 256
REFERENCE_INDEX = "messages_reference_key"  # the name PostgreSQL gave the UNIQUE of 0001

# Whether a message is stored already, and whether a reference is taken, each by its unique
# index. The sender is named too, though (channel, platform id) alone is unique: on a new
# database, before its first ANALYZE (a benchmark's whole run), the planner found the index on
# (channel, sender) as cheap and took it, filtering every message of the channel, for every
# message, in every group. Now either index finds a message's few rows. (A redelivery under
# another sender's name is still a duplicate: the insert's ON CONFLICT finds it.) LIMIT 1 keeps
# the reference check an index probe where EXISTS became a hash of every reference stored.
_STORED = """SELECT id FROM messages m
    WHERE m.channel = k.channel AND m.platform_id = k.platform_id AND m.sender = k.sender"""
_TAKEN = "SELECT true FROM messages m WHERE m.reference = k.reference LIMIT 1"

# One round trip before the decisions. The upsert takes every sender's row lock, in one order
# for every process, and RETURNING gives each row as it is once its lock is held, so the
# cooldown is never read stale. The duplicate check may miss a delivery committed while we
# waited; the insert's ON CONFLICT catches that.
BEFORE = f"""WITH k AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        WITH ORDINALITY AS k (channel, platform_id, sender, reference, n)),
s AS (INSERT INTO senders (channel, sender)
    SELECT DISTINCT channel, sender FROM k ORDER BY channel, sender
    ON CONFLICT (channel, sender) DO UPDATE SET sender = excluded.sender
    RETURNING channel, sender, last_ack_at, last_ack_template, opted_out)
SELECT ({_STORED}), nextval('messages_id_seq'), s.last_ack_at, s.last_ack_template, s.opted_out,
    ({_TAKEN}) IS NOT NULL
FROM k JOIN s ON s.channel = k.channel AND s.sender = k.sender
ORDER BY k.n"""

# Every message of the group, its automatic reply, the sender's last acknowledgement, the
# reply's place in the outbox (for channels that send later) and the original, in one round
# trip. ON CONFLICT DO NOTHING: a delivery committed by another process while this group waited
# for its sender is not written again, and its id is not returned.
_COLUMNS = {
    "id": "bigint",
    "reference": "text",
    "channel": "text",
    "platform_id": "text",
    "sender": "text",
    "sender_name": "text",
    "text": "text",
    "received_at": "timestamptz",
    "staffed": "boolean",
    "reply_by": "timestamptz",
    "opens_at": "timestamptz",
    "emergency": "text",
    "redirect": "text",
    "team": "text",
    "language": "text",
    "template": "text",
    "matched": "text",
    "held_back": "text",
    "conversation": "text",
    "thread": "text",
    "reply": "text",
    "priority": "integer",
    "original": "bytea",
}
_MESSAGE_COLUMNS = ", ".join(list(_COLUMNS)[:20])
INSERT = f"""WITH i AS (
    SELECT * FROM unnest({", ".join(f"${n}::{t}[]" for n, t in enumerate(_COLUMNS.values(), 1))})
        WITH ORDINALITY AS i ({", ".join(_COLUMNS)}, n)),
m AS (INSERT INTO messages ({_MESSAGE_COLUMNS})
    SELECT {_MESSAGE_COLUMNS} FROM i ORDER BY channel, platform_id
    ON CONFLICT (channel, platform_id) DO NOTHING RETURNING id),
r AS (INSERT INTO replies (message_id, kind, template, text, created_at)
    SELECT i.id, 'auto', i.template, i.reply, i.received_at FROM i JOIN m USING (id)
    WHERE i.reply IS NOT NULL ORDER BY i.n),
s AS (UPDATE senders SET last_ack_at = a.received_at, last_ack_template = a.template
    FROM (SELECT DISTINCT ON (i.channel, i.sender) i.channel, i.sender, i.received_at, i.template
        FROM i JOIN m USING (id) WHERE i.reply IS NOT NULL
        ORDER BY i.channel, i.sender, i.n DESC) a
    WHERE senders.channel = a.channel AND senders.sender = a.sender),
o AS (INSERT INTO outbox (message_id, channel, recipient, kind, text, priority, next_attempt_at,
        created_at, reply_to)
    SELECT i.id, i.channel, i.conversation, 'auto', i.reply, i.priority, i.received_at,
        i.received_at, i.thread
    FROM i JOIN m USING (id)
    WHERE i.reply IS NOT NULL AND i.conversation IS NOT NULL ORDER BY i.n),
g AS (INSERT INTO originals (message_id, content)
    SELECT i.id, i.original FROM i JOIN m USING (id) WHERE i.original IS NOT NULL)
SELECT id FROM m"""

# The optimistic path (see Optimistic). Its read locks nothing: what each message needs to be
# decided, and the version (xmin) of each sender's row, which every ingest rewrites. Each
# sender is looked up by its primary key (LATERAL ... LIMIT 1): before the first ANALYZE the
# planner read the whole table into a hash instead, once a group.
READ = f"""WITH k AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        WITH ORDINALITY AS k (channel, platform_id, sender, reference, n))
SELECT ({_STORED}), nextval('messages_id_seq'), s.last_ack_at, s.last_ack_template,
    coalesce(s.opted_out, false), ({_TAKEN}) IS NOT NULL, s.xmin::text
FROM k LEFT JOIN LATERAL (SELECT s.*, s.xmin FROM senders s
    WHERE s.channel = k.channel AND s.sender = k.sender LIMIT 1) s ON true
ORDER BY k.n"""

# Its write: one statement, so one transaction and one round trip. It takes every sender's row
# lock in the locking path's order, (channel, sender), and rewrites only the rows still at the
# version read ("seen"; none for a sender that had no row); the messages of the other senders
# are not written, and their jobs go through the locking path. A sender whose row was read but
# has since been erased gets a blank row and loses too. The count of s, evaluated once before
# the first message is written, makes every sender lock come before any message is written,
# whatever join the planner picks. Returns the ids of the messages stored
# (id, NULL, NULL) and the senders that won (NULL, channel, sender).
_SENDERS = len(_COLUMNS)
WRITE = f"""WITH p AS (
    SELECT * FROM unnest(${_SENDERS + 1}::text[], ${_SENDERS + 2}::text[], ${_SENDERS + 3}::text[],
        ${_SENDERS + 4}::timestamptz[], ${_SENDERS + 5}::text[])
        AS p (channel, sender, seen, ack_at, ack_template)),
s AS (INSERT INTO senders (channel, sender, last_ack_at, last_ack_template)
    SELECT channel, sender, CASE WHEN seen IS NULL THEN ack_at END,
        CASE WHEN seen IS NULL THEN ack_template END
    FROM p ORDER BY channel, sender
    ON CONFLICT (channel, sender) DO UPDATE
    SET (last_ack_at, last_ack_template) = (SELECT p.ack_at, p.ack_template FROM p
        WHERE p.channel = excluded.channel AND p.sender = excluded.sender)
    WHERE senders.xmin::text = (SELECT p.seen FROM p
        WHERE p.channel = excluded.channel AND p.sender = excluded.sender)
    RETURNING channel, sender, xmax = 0 AS inserted),
ok AS (SELECT s.channel, s.sender FROM s JOIN p USING (channel, sender)
    WHERE p.seen IS NULL OR NOT s.inserted),
i AS (
    SELECT * FROM unnest({", ".join(f"${n}::{t}[]" for n, t in enumerate(_COLUMNS.values(), 1))})
        WITH ORDINALITY AS i ({", ".join(_COLUMNS)}, n)),
w AS (SELECT i.* FROM i JOIN ok USING (channel, sender) WHERE (SELECT count(*) FROM s) > 0),
m AS (INSERT INTO messages ({_MESSAGE_COLUMNS})
    SELECT {_MESSAGE_COLUMNS} FROM w ORDER BY channel, platform_id
    ON CONFLICT (channel, platform_id) DO NOTHING RETURNING id),
r AS (INSERT INTO replies (message_id, kind, template, text, created_at)
    SELECT w.id, 'auto', w.template, w.reply, w.received_at FROM w JOIN m USING (id)
    WHERE w.reply IS NOT NULL ORDER BY w.n),
o AS (INSERT INTO outbox (message_id, channel, recipient, kind, text, priority, next_attempt_at,
        created_at, reply_to)
    SELECT w.id, w.channel, w.conversation, 'auto', w.reply, w.priority, w.received_at,
        w.received_at, w.thread
    FROM w JOIN m USING (id)
    WHERE w.reply IS NOT NULL AND w.conversation IS NOT NULL ORDER BY w.n),
g AS (INSERT INTO originals (message_id, content)
    SELECT w.id, w.original FROM w JOIN m USING (id) WHERE w.original IS NOT NULL)
SELECT id, NULL::text, NULL::text FROM m UNION ALL SELECT NULL, channel, sender FROM ok"""

# The stored items of the duplicates of a group, in one round trip.
DUPLICATES = f"""{queries.ITEM}
WHERE (m.channel, m.platform_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"""


class ReferenceTaken(StoreError):
    """A new message's reference was stored by another process while this one was deciding."""


@dataclass(slots=True)
class Job:
    message: Message
    decide: Callable[[SenderState, str], Decision]
    future: asyncio.Future[Ingested]


def aware(at: datetime | None) -> datetime | None:
    if at is not None and at.utcoffset() is None:
        raise ValueError(f"Datetime {at!r} has no time zone; the store keeps aware UTC only.")
    return at


async def _free_references(conn: Conn, rows: list[Any], draw: Callable[[], str]) -> list[str]:
    """One reference a job, each free in the database and unique in the group."""
    references: list[str] = [row[-1] for row in rows]
    seen: set[str] = set()
    for n, row in enumerate(rows):
        taken = row[5] or references[n] in seen
        while taken:
            references[n] = draw()
            taken = references[n] in seen or await conn.fetchval(
                queries.REFERENCE_TAKEN, references[n]
            )
        seen.add(references[n])
    return references


@dataclass(slots=True)
class Plan:
    """What a group's decisions came to: the writes, and the jobs answered some other way."""

    outcomes: list[Outcome]
    writes: list[tuple[int, int, str, Decision]]  # (job, id, reference, decision)
    stored_before: list[int]  # jobs whose message the database already holds
    again: list[tuple[int, int]]  # (job, the earlier job of this group that stores it)
    senders: dict[tuple[str, str], SenderState]  # each sender's state after the group


def _decide(batch: list[Job], rows: list[Any], references: list[str]) -> Plan:
    """Decide every new message of the group, in order, each seeing the replies before it."""
    senders: dict[tuple[str, str], SenderState] = {
        (job.message.channel, job.message.sender): SenderState(row[2], row[3], bool(row[4]))
        for job, row in zip(batch, rows, strict=True)
    }
    plan = Plan([(None, None)] * len(batch), [], [], [], senders)
    first: dict[tuple[str, str], int] = {}  # (channel, platform id) -> the job that stores it
    for n, (job, row) in enumerate(zip(batch, rows, strict=True)):
        m = job.message
        key = (m.channel, m.platform_id)
        if row[0] is not None:
            plan.stored_before.append(n)
            continue
        if key in first:
            plan.again.append((n, first[key]))
            continue
        state = senders[(m.channel, m.sender)]
        try:
            d = job.decide(state, references[n])
            aware(d.reply_by)
            aware(d.opens_at)
        except Exception as e:  # this job fails alone; the others are written
            plan.outcomes[n] = (None, e)
            continue
        first[key] = n
        if d.reply is not None:  # the next message of this sender in the group sees the reply
            senders[(m.channel, m.sender)] = SenderState(
                m.received_at.astimezone(UTC), d.template, state.opted_out
            )
        plan.writes.append((n, row[1], references[n], d))
    return plan


async def _finish(conn: Conn, batch: list[Job], plan: Plan, stored: set[int]) -> list[Outcome]:
    """Each job's outcome once the writes are done: `stored` holds the ids the write stored."""
    outcomes = plan.outcomes
    stored_before = list(plan.stored_before)
    for n, item_id, reference, d in plan.writes:
        if item_id in stored:
            item = new_item(item_id, reference, batch[n].message, d)
            outcomes[n] = (Ingested(item, duplicate=False), None)
        else:  # another process stored it while this group waited for the sender
            stored_before.append(n)
    if stored_before:
        keys = [(batch[n].message.channel, batch[n].message.platform_id) for n in stored_before]
        found = await conn.fetch(DUPLICATES, [k[0] for k in keys], [k[1] for k in keys])
        items = {(item.channel, item.platform_id): item for item in map(_item, found)}
        for n, key in zip(stored_before, keys, strict=True):
            outcomes[n] = (Ingested(items[key], duplicate=True), None)
    for n, earlier in plan.again:  # a second delivery in the same group: the first one's item
        result = outcomes[earlier][0]
        assert result is not None, "a job that decided was stored, here or before"
        outcomes[n] = (Ingested(result.item, duplicate=True), None)
    return outcomes


def _keys(batch: list[Job], drawn: list[str]) -> list[list[str]]:
    messages = [job.message for job in batch]
    return [
        [m.channel for m in messages],
        [m.platform_id for m in messages],
        [m.sender for m in messages],
        drawn,
    ]


async def ingest_together(conn: Conn, batch: list[Job], draw: Callable[[], str]) -> list[Outcome]:
    """Store every job of the batch, inside the caller's transaction; an outcome for each."""
    drawn = [draw() for _ in batch]
    before = await conn.fetch(BEFORE, *_keys(batch, drawn))
    rows = [(*row, reference) for row, reference in zip(before, drawn, strict=True)]
    references = await _free_references(conn, rows, draw)
    plan = _decide(batch, rows, references)
    stored: set[int] = set()
    if plan.writes:
        stored = set(await _insert(conn, _writes(batch, plan)))
    return await _finish(conn, batch, plan, stored)


class Optimistic:
    """One group on the optimistic path: read without locking, decide, write where unchanged.

    `read` is one statement outside any transaction; `write` is one statement, its own
    transaction, that writes only the messages of senders whose row is as it was read (see
    WRITE). The jobs of the other senders are left for the locking path: `lost` lists them.
    """

    def __init__(self, batch: list[Job], draw: Callable[[], str]) -> None:
        self.batch = batch
        self.draw = draw
        self.lost: list[int] = []
        self._plan: Plan | None = None
        self._seen: dict[tuple[str, str], str | None] = {}  # each sender's row version read

    async def read(self, conn: Conn) -> None:
        drawn = [self.draw() for _ in self.batch]
        before = await conn.fetch(READ, *_keys(self.batch, drawn))
        rows = [(*row[:6], reference) for row, reference in zip(before, drawn, strict=True)]
        references = await _free_references(conn, rows, self.draw)
        for job, row in zip(self.batch, before, strict=True):
            self._seen[(job.message.channel, job.message.sender)] = row[6]
        self._plan = _decide(self.batch, rows, references)

    async def write(self, conn: Conn) -> list[Outcome]:
        plan = self._plan
        assert plan is not None, "read before write"
        if not plan.writes:
            return await _finish(conn, self.batch, plan, set())
        keys = sorted({(self.batch[n].message.channel, self.batch[n].message.sender)
                       for n, *_ in plan.writes})  # fmt: skip
        states = [plan.senders[k] for k in keys]
        senders = (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [self._seen[k] for k in keys],
            [s.last_ack_at for s in states],
            [s.last_ack_template for s in states],
        )
        rows = await _fetch(conn, WRITE, *_columns(_writes(self.batch, plan)), *senders)
        won = {(row[1], row[2]) for row in rows if row[0] is None}
        stored = {row[0] for row in rows if row[0] is not None}
        kept = []
        for write in plan.writes:
            m = self.batch[write[0]].message
            if (m.channel, m.sender) in won:
                kept.append(write)
            else:  # another process changed the sender meanwhile: decide again, locked
                self.lost.append(write[0])
        plan.writes = kept
        lost = set(self.lost)  # a second delivery of a message not written goes with it
        self.lost += [n for n, earlier in plan.again if earlier in lost]
        plan.again = [(n, earlier) for n, earlier in plan.again if earlier not in lost]
        return await _finish(conn, self.batch, plan, stored)


def _item(row: asyncpg.Record) -> QueueItem:
    return QueueItem(*row)


def _writes(batch: list[Job], plan: Plan) -> list[tuple[Message, int, str, Decision]]:
    return [(batch[n].message, i, r, d) for n, i, r, d in plan.writes]


def _columns(writes: list[tuple[Message, int, str, Decision]]) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in _COLUMNS]
    for m, item_id, reference, d in writes:
        values = (
            item_id, reference, m.channel, m.platform_id, m.sender, m.sender_name, m.text,
            m.received_at, d.staffed, d.reply_by, d.opens_at, d.emergency, d.redirect, d.team,
            d.language, d.template, d.matched, d.held_back, m.conversation, m.thread, d.reply,
            int(d.emergency is not None), m.original,
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


async def _fetch(conn: Conn, sql: str, *args: Any) -> list[asyncpg.Record]:
    try:
        return await conn.fetch(sql, *args)
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name == REFERENCE_INDEX:
            raise ReferenceTaken(str(e)) from e
        raise


async def _insert(conn: Conn, writes: list[tuple[Message, int, str, Decision]]) -> list[int]:
    return [row[0] for row in await _fetch(conn, INSERT, *_columns(writes))]
