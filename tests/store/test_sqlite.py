"""What only the SQLite store does: WAL, migrations, URLs, group commit, file errors."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import HoldingReplyError, StoreError
from bot.store import open_store
from bot.store.queries import migrations
from bot.store.sqlite import SQLiteStore, from_text, to_text
from tests.conftest import ROOT

from .test_store_contract import NOW, Boom, Decider, explode, message

VERSIONS = [version for version, _, _ in migrations("sqlite")]
LATEST = VERSIONS[-1]


def tables(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


async def test_the_database_is_in_wal_mode_with_migrations_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    async with SQLiteStore(path):
        assert tables(path, "PRAGMA journal_mode") == [("wal",)]
    async with SQLiteStore(path):
        pass

    rows = tables(path, "SELECT version, applied_at FROM schema_migrations")
    assert [version for version, _ in rows] == VERSIONS
    applied_at = from_text(str(rows[0][1]))
    assert datetime.now(UTC) - applied_at < timedelta(minutes=1)
    names = {name for (name,) in tables(path, "SELECT name FROM sqlite_master")}
    assert {"messages", "replies", "senders", "messages_open"} <= names


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    async with SQLiteStore(path):
        pass
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, '2030-01-01T00:00:00.000000Z')")

    with pytest.raises(
        StoreError, match=rf"schema version 99.*knows versions up to {LATEST}"
    ) as raised:
        async with SQLiteStore(path):
            pass
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://holding:s3cret@db.example/queue", "'mysql' is not supported"),
        ("queue.sqlite3", "sqlite:///relative/path.sqlite3"),
        ("sqlite://", "no database file"),
        ("sqlite:///", "no database file"),
        ("sqlite://relative.sqlite3", "no database file"),
    ],
)
def test_a_bad_url_says_what_is_accepted(url: str, says: str) -> None:
    with pytest.raises(HoldingReplyError, match=says) as raised:
        open_store(url)
    assert "sqlite:////absolute/path.sqlite3" in str(raised.value)
    assert "postgres://user:password@host:5432/database" in str(raised.value)
    assert "s3cret" not in str(raised.value)


async def test_a_relative_url_is_under_the_working_directory_made_on_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/queue.sqlite3")
    assert not (tmp_path / "data").exists()  # constructing has no side effects
    async with store:
        await store.ingest(message(), Decider())
    assert (tmp_path / "data" / "queue.sqlite3").is_file()


async def test_an_absolute_url(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "queue.sqlite3"
    async with open_store(f"sqlite:///{path}") as store:
        await store.ingest(message(), Decider())
    assert tables(path, "SELECT platform_id FROM messages") == [("m1",)]


async def test_an_in_memory_store_works_while_open() -> None:
    async with open_store("sqlite://:memory:") as store:
        item = (await store.ingest(message(), Decider())).item
        assert await store.get(item.reference) == item
        assert await store.open_items() == [item]


def test_synchronous_is_full_or_normal() -> None:
    assert SQLiteStore("x.sqlite3").synchronous == "FULL"
    assert SQLiteStore("x.sqlite3", synchronous="normal").synchronous == "NORMAL"
    with pytest.raises(HoldingReplyError, match="'synchronous' has value 'OFF'"):
        SQLiteStore("x.sqlite3", synchronous="OFF")


@pytest.mark.parametrize("where", ["under a file", "a directory", "not a database"])
async def test_a_path_that_cannot_be_used_gives_a_store_error_naming_it(
    tmp_path: Path, where: str
) -> None:
    if where == "under a file":
        (tmp_path / "file").write_text("")
        path = tmp_path / "file" / "queue.sqlite3"
    elif where == "a directory":
        path = tmp_path / "queue.sqlite3"
        path.mkdir()
    else:
        path = tmp_path / "queue.sqlite3"
        path.write_bytes(b"this is not a database, it is a shopping list" * 100)

    with pytest.raises(StoreError) as raised:
        async with SQLiteStore(path):
            pass
    assert str(path) in str(raised.value)


async def test_a_failing_job_in_a_batch_leaves_the_others_committed(tmp_path: Path) -> None:
    """Twenty messages arrive together and share one commit; the one that fails fails alone."""
    path = tmp_path / "store.sqlite3"
    async with SQLiteStore(path) as store:
        before = store.commits
        results = await asyncio.gather(
            *(store.ingest(message(f"m{i}"), explode if i == 7 else Decider()) for i in range(20)),
            return_exceptions=True,
        )
        assert store.commits - before == 1  # one transaction, one fsync, for all twenty

    assert isinstance(results[7], Boom)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 7)
    stored = {platform_id for (platform_id,) in tables(path, "SELECT platform_id FROM messages")}
    assert stored == {f"m{i}" for i in range(20) if i != 7}


async def test_messages_arriving_during_a_commit_gather_for_the_next_one(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "store.sqlite3") as store:
        before = store.commits
        first = asyncio.create_task(store.ingest(message("first"), Decider()))
        await asyncio.sleep(0)  # the first group (of one) is committing now
        rest = [asyncio.create_task(store.ingest(message(f"m{i}"), Decider())) for i in range(30)]
        await asyncio.gather(first, *rest)
        assert store.commits - before == 2
        # Reads are not held up by the write connection.
        assert await store.counts() == {"open": 31, "done": 0, "replies": 31}


async def test_closing_checkpoints_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    async with SQLiteStore(path) as store:
        await asyncio.gather(*(store.ingest(message(f"m{i}"), Decider()) for i in range(50)))
    wal = tmp_path / "store.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_queries_are_written_with_numbered_placeholders() -> None:
    from bot.store import sqlite

    assert sqlite._q("WHERE a = $1 AND b = $12") == "WHERE a = ?1 AND b = ?12"


@given(
    st.datetimes(datetime(1900, 1, 1), datetime(9000, 1, 1), timezones=st.timezones()),
    st.datetimes(datetime(1900, 1, 1), datetime(9000, 1, 1), timezones=st.just(UTC)),
)
def test_stored_text_is_the_same_instant_and_sorts_like_time(at: datetime, other: datetime) -> None:
    text = to_text(at)
    assert from_text(text) == at.astimezone(UTC)
    assert from_text(text).tzinfo is UTC
    assert len(text) == len(to_text(other))
    assert (text < to_text(other)) == (at.astimezone(UTC) < other)


async def test_a_database_locked_by_another_process_gives_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    async with SQLiteStore(path, busy_timeout=0.1) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            results = await asyncio.gather(
                *(store.ingest(message(f"m{i}"), Decider()) for i in range(5)),
                return_exceptions=True,
            )
            assert all(isinstance(r, StoreError) for r in results), results
            assert "database is locked" in str(results[0])
            assert str(path) in str(results[0])
            assert await store.counts() == {"open": 0, "done": 0, "replies": 0}
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert not (await store.ingest(message("m0"), Decider())).duplicate


def test_database_url_can_choose_synchronous_normal(tmp_path: Path) -> None:
    from bot.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/q.sqlite3?synchronous=normal")
    assert isinstance(store, SQLiteStore) and store.synchronous == "NORMAL"
    assert open_store(f"sqlite:///{tmp_path}/q.sqlite3").synchronous == "FULL"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "says"),
    [("?sync=normal", "option 'sync'"), ("?synchronous=off", "Expected 'FULL' or 'NORMAL'")],
)
def test_database_url_options_are_checked(tmp_path: Path, query: str, says: str) -> None:
    from bot.errors import HoldingReplyError
    from bot.store import open_store

    with pytest.raises(HoldingReplyError, match=says):
        open_store(f"sqlite:///{tmp_path}/q.sqlite3{query}")


async def test_a_database_made_by_the_first_version_is_migrated_with_its_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    first = (ROOT / "bot/store/migrations/sqlite/0001_initial.sql").read_text(encoding="utf-8")
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(first)
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        conn.execute("INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00.000000Z')")
        conn.execute(
            "INSERT INTO messages (id, reference, channel, platform_id, sender, text, received_at,"
            " staffed, language) VALUES (1, 'AAAA-AAAA', 'web', 'm1', 'alice', 'my bin',"
            " '2026-01-02T09:00:00.000000Z', 1, 'en')"
        )
    async with SQLiteStore(path) as store:
        assert store.applied == [name for _, name, _ in migrations("sqlite")[1:]]
        kept = await store.get("AAAA-AAAA")
        assert kept is not None and (kept.sender, kept.text) == ("alice", "my bin")
        assert await store.erase("web", "alice", NOW) == 1


async def test_a_job_failing_after_it_wrote_leaves_nothing_and_the_others_committed(
    tmp_path: Path,
) -> None:
    """Its statements are undone, not committed with the group's."""
    path = tmp_path / "store.sqlite3"

    def half_way(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO senders (channel, sender) VALUES ('web', 'half-way')")
        raise Boom("after writing")

    async with SQLiteStore(path) as store:
        before = store.commits
        jobs = [store.ingest(message(f"m{i}"), Decider()) for i in range(10)]
        results = await asyncio.gather(
            *jobs[:5], store._write(half_way), *jobs[5:], return_exceptions=True
        )
        assert store.commits - before == 1

    assert isinstance(results[5], Boom)
    assert sum(not isinstance(r, BaseException) for r in results) == 10
    assert len(tables(path, "SELECT id FROM messages")) == 10
    assert tables(path, "SELECT sender FROM senders WHERE sender = 'half-way'") == []
