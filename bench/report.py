"""How long a year's report takes over a million messages, on SQLite and on PostgreSQL.

    python bench/report.py [--messages 1000000] [--parts sqlite,postgres] [--postgres URL]

Seeds a store with synthetic messages spread over 2025 (bulk inserts straight into the tables,
after the store has made them: executemany in one transaction on SQLite, COPY on PostgreSQL, in
a schema of its own that is dropped afterwards), then times the whole report of the year:
Store.report (the database's counting), the working time, and writing the HTML. Prints the
times and the process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bot.check import load  # noqa: E402
from bot.models import reference_for  # noqa: E402
from bot.reports import build, local_range, to_html  # noqa: E402
from bot.store import open_store  # noqa: E402

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
CHANNELS = ("web", "telegram", "x")
TEAMS = (None, "waste", "housing", "parking", "council-tax", "highways")
COLUMNS = ("id", "reference", "channel", "platform_id", "sender", "text", "received_at",
           "staffed", "reply_by", "emergency", "redirect", "team", "language", "template",
           "done_at", "done_by", "first_human_reply_at")  # fmt: skip
REPLY_COLUMNS = ("message_id", "kind", "template", "text", "author", "created_at")


def messages(count: int) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(message row, its replies), in the order they arrive, with datetimes aware; more in the
    day than at night; replies are stored with their message (as if written in its order)."""
    rng = random.Random(2025)
    seconds_in_year = 365 * 86400
    offsets = [rng.randrange(seconds_in_year) for _ in range(count)]
    for n, offset in enumerate(offsets):
        if offset % 86400 < 8 * 3600 and rng.random() < 0.7:  # fewer at night
            offsets[n] = min(offset + 10 * 3600, seconds_in_year - 1)
    offsets.sort()  # stored in the order they arrive, as the server does
    for i, offset in enumerate(offsets, start=1):
        at = YEAR_START + timedelta(seconds=offset)
        staffed = at.weekday() < 5 and 9 <= at.hour < 17
        emergency = "fire" if rng.random() < 0.02 else None
        redirect = "crime-report" if rng.random() < 0.05 else None
        first = at + timedelta(minutes=rng.randrange(5, 3000)) if rng.random() < 0.7 else None
        done = first + timedelta(hours=1) if first and rng.random() < 0.9 else None
        row = (i, reference_for(i), rng.choice(CHANNELS), f"p{i}", f"s{i % 50000}", "",
               at, staffed, at + timedelta(hours=4), emergency, redirect, rng.choice(TEAMS),
               "en", "ack", done, "sam" if done else None, first)  # fmt: skip
        replies = [(i, "auto", "ack", "", None, at)] if rng.random() < 0.8 else []
        if first:
            replies.append((i, "human", None, "", "sam", first))
        yield row, replies


def text(value: Any) -> Any:
    """The SQLite store's form: fixed-width UTC text, booleans as 0 or 1."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    if isinstance(value, bool):
        return int(value)
    return value


async def seed_sqlite(path: Path, count: int) -> None:
    async with open_store(f"sqlite:///{path}"):
        pass  # makes the tables
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    insert = f"INSERT INTO messages ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    reply = f"INSERT INTO replies ({', '.join(REPLY_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
    batch: list[tuple[Any, ...]] = []
    replies: list[tuple[Any, ...]] = []
    for row, its in messages(count):
        batch.append(tuple(map(text, row)))
        replies.extend(tuple(map(text, r)) for r in its)
        if len(batch) >= 50000:
            conn.executemany(insert, batch)
            conn.executemany(reply, replies)
            batch, replies = [], []
    conn.executemany(insert, batch)
    conn.executemany(reply, replies)
    conn.execute("COMMIT")
    conn.close()


async def seed_postgres(url: str, count: int) -> None:
    async with open_store(url):
        pass
    conn = await asyncpg.connect(url)
    try:
        rows: list[tuple[Any, ...]] = []
        replies: list[tuple[Any, ...]] = []
        for row, its in messages(count):
            rows.append(row)
            replies.extend(its)
            if len(rows) >= 50000:
                await conn.copy_records_to_table("messages", records=rows, columns=COLUMNS)
                await conn.copy_records_to_table("replies", records=replies, columns=REPLY_COLUMNS)
                rows, replies = [], []
        await conn.copy_records_to_table("messages", records=rows, columns=COLUMNS)
        await conn.copy_records_to_table("replies", records=replies, columns=REPLY_COLUMNS)
        await conn.execute("ANALYZE")  # as autovacuum would soon after such a load
    finally:
        await conn.close()


async def time_report(url: str, rounds: int) -> list[float]:
    triage = load(ROOT / "rules.toml")
    rules = triage.rules
    start, end = date(2025, 1, 1), date(2026, 1, 1)
    first, last = local_range(start, end, rules)
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        async with open_store(url) as store:
            queried = time.perf_counter()
            data = await store.report(first, last, rules.timezone)
            counted = time.perf_counter()
        report = build(data, rules, start, end, datetime.now(UTC))
        html = to_html(report)
        done = time.perf_counter()
        times.append(done - began)
        print(
            f"  report in {done - began:.2f} s (database {counted - queried:.2f} s, working "
            f"time and HTML {done - counted:.2f} s); {report.overall.figures.messages} messages, "
            f"{len(html) // 1024} KB of HTML; first reply median "
            f"{report.overall.figures.median_seconds:.0f} s, 90th percentile "
            f"{report.overall.figures.p90_seconds:.0f} s",
            flush=True,
        )
    return times


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--parts", default="sqlite,postgres")
    p.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    parts = args.parts.split(",")
    if "sqlite" in parts:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "report.sqlite3"
            began = time.perf_counter()
            await seed_sqlite(path, args.messages)
            print(f"SQLite: seeded {args.messages} messages in {time.perf_counter() - began:.0f} s")
            await time_report(f"sqlite:///{path}", args.rounds)
    if "postgres" in parts:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f"CREATE SCHEMA {schema}")
        url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}search_path={schema}"
        try:
            began = time.perf_counter()
            await seed_postgres(url, args.messages)
            print(f"PostgreSQL: seeded {args.messages} in {time.perf_counter() - began:.0f} s")
            await time_report(url, args.rounds)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak memory of this process (seeding included): {peak} MB")


if __name__ == "__main__":
    asyncio.run(main())
