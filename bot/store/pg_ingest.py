"""Group commit for the PostgreSQL store: the messages that arrive together are stored together.

Under load, ingest calls queue up (PostgresStore.ingest) and are written a group at a time, each
group in one transaction of four round trips whatever its size (`BEGIN`; one statement that locks
every sender of the group and reads what the decisions need; one statement that writes every
message, reply, acknowledgement, outbox row and original; `COMMIT`), so one WAL flush covers the
whole group. Alone, a message costs what it did before: the same four round trips.

Two processes (two dynos) may hold groups with senders in common. Each group locks its senders
in one statement, sorted by (channel, sender), and takes no other lock before it has them all;
its messages are then written sorted by (channel, platform_id). Waits therefore always go one
way, and two groups never deadlock.

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

# One round trip before the decisions. The upsert takes every sender's row lock, in one order
# for every process, and RETURNING gives each row as it is once its lock is held, so the
# cooldown is never read stale. The duplicate check may miss a delivery committed while we
# waited; the insert's ON CONFLICT catches that.
BEFORE = """WITH k AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        WITH ORDINALITY AS k (channel, platform_id, sender, reference, n)),
s AS (INSERT INTO senders (channel, sender)
    SELECT DISTINCT channel, sender FROM k ORDER BY channel, sender
    ON CONFLICT (channel, sender) DO UPDATE SET sender = excluded.sender
    RETURNING channel, sender, last_ack_at, last_ack_template, opted_out)
SELECT (SELECT id FROM messages m WHERE m.channel = k.channel AND m.platform_id = k.platform_id),
    nextval('messages_id_seq'), s.last_ack_at, s.last_ack_template, s.opted_out,
    EXISTS (SELECT 1 FROM messages m WHERE m.reference = k.reference)
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


async def ingest_together(conn: Conn, batch: list[Job], draw: Callable[[], str]) -> list[Outcome]:
    """Store every job of the batch, inside the caller's transaction; an outcome for each."""
    drawn = [draw() for _ in batch]
    messages = [job.message for job in batch]
    before = await conn.fetch(
        BEFORE,
        [m.channel for m in messages],
        [m.platform_id for m in messages],
        [m.sender for m in messages],
        drawn,
    )
    rows = [(*row, reference) for row, reference in zip(before, drawn, strict=True)]
    references = await _free_references(conn, rows, draw)
    senders: dict[tuple[str, str], SenderState] = {
        (m.channel, m.sender): SenderState(row[2], row[3], bool(row[4]))
        for m, row in zip(messages, rows, strict=True)
    }
    outcomes: list[Outcome] = [(None, None)] * len(batch)
    first: dict[tuple[str, str], int] = {}  # (channel, platform id) -> the job that stores it
    stored_before: list[int] = []  # jobs whose message the database already holds
    again: list[tuple[int, int]] = []  # (job, the earlier job of this group that stores it)
    writes: list[tuple[int, int, str, Decision]] = []  # (job, id, reference, decision)
    for n, (job, row) in enumerate(zip(batch, rows, strict=True)):
        m = job.message
        key = (m.channel, m.platform_id)
        if row[0] is not None:
            stored_before.append(n)
            continue
        if key in first:
            again.append((n, first[key]))
            continue
        state = senders[(m.channel, m.sender)]
        try:
            d = job.decide(state, references[n])
            aware(d.reply_by)
            aware(d.opens_at)
        except Exception as e:  # this job fails alone; the others are written
            outcomes[n] = (None, e)
            continue
        first[key] = n
        if d.reply is not None:  # the next message of this sender in the group sees the reply
            senders[(m.channel, m.sender)] = SenderState(
                m.received_at.astimezone(UTC), d.template, state.opted_out
            )
        writes.append((n, row[1], references[n], d))

    if writes:
        stored = set(await _insert(conn, [(batch[n].message, i, r, d) for n, i, r, d in writes]))
        for n, item_id, reference, d in writes:
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
    for n, earlier in again:  # a second delivery in the same group: the first one's item
        result = outcomes[earlier][0]
        assert result is not None, "a job that decided was stored, here or before"
        outcomes[n] = (Ingested(result.item, duplicate=True), None)
    return outcomes


def _item(row: asyncpg.Record) -> QueueItem:
    return QueueItem(*row)


async def _insert(conn: Conn, writes: list[tuple[Message, int, str, Decision]]) -> list[int]:
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
    try:
        return [row[0] for row in await conn.fetch(INSERT, *columns)]
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name == REFERENCE_INDEX:
            raise ReferenceTaken(str(e)) from e
        raise
