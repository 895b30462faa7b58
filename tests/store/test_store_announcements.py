"""Announcements on every database: claimed once per channel, "publishing" before the platform,
lapsed leases become "unknown", late ones "missed", suspend holds, approval by someone else."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.announcement import NewAnnouncement
from bot.errors import StoreError
from bot.store import Store, open_store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.postgres import sql as pg_sql
from tests.test_announce_cli import found_after_a_crash

from .test_store_contract import NOW

MINUTE = timedelta(minutes=1)
LATE = timedelta(hours=2)


def new(state: str = "scheduled", by: str = "amy", notice: str | None = None) -> NewAnnouncement:
    return NewAnnouncement(
        "Closed Monday", NOW, "2025-03-03T09:30", "Europe/London",
        (("telegram", None), ("x", "Closed Mon")), by, state, notice,
    )  # fmt: skip


async def test_written_announcement_is_read_back_with_its_posts(store: Store) -> None:
    aid = await store.add_announcement(new(notice="closure:2025-03-10"), NOW - MINUTE)
    a = await store.announcement(aid)
    assert a is not None
    assert (a.text, a.due_at, a.wall_time, a.zone, a.written_by) == (
        "Closed Monday", NOW, "2025-03-03T09:30", "Europe/London", "amy",
    )  # fmt: skip
    assert [(p.channel, p.text, p.own_text, p.state) for p in a.posts] == [
        ("telegram", "Closed Monday", False, "scheduled"),
        ("x", "Closed Mon", True, "scheduled"),
    ]
    assert (await store.notice_announcement("closure:2025-03-10")) == a
    assert [x.id for x in await store.announcements(NOW - LATE)] == [aid]
    assert [e.action for e in await store.announcement_log(aid)] == ["wrote"]


async def test_two_publishers_claim_each_post_once(store: Store) -> None:
    for _ in range(3):
        await store.add_announcement(new(), NOW)
    claims = await asyncio.gather(
        *(store.claim_posts(h, NOW, MINUTE, LATE, limit=10) for h in ("a", "b", "c"))
    )
    ids = [p.id for claimed in claims for p in claimed]
    assert len(ids) == len(set(ids)) == 6
    assert all(p.state == "publishing" for claimed in claims for p in claimed)
    assert await store.claim_posts("d", NOW + LATE, MINUTE, LATE * 2) == []


async def test_not_claimed_before_it_is_due(store: Store) -> None:
    await store.add_announcement(new(), NOW)
    assert await store.claim_posts("a", NOW - MINUTE, MINUTE, LATE) == []


async def test_a_lapsed_lease_is_unknown_and_never_claimed_again(store: Store) -> None:
    aid = await store.add_announcement(new(), NOW)
    claimed = await store.claim_posts("a", NOW, MINUTE, LATE)
    # "a" dies after the platform accepted: nobody may post it again.
    assert await store.lapsed_posts(NOW + MINUTE / 2) == []
    lapsed = await store.lapsed_posts(NOW + MINUTE)
    assert sorted(p.id for p in lapsed) == sorted(p.id for p in claimed)
    assert {p.state for p in lapsed} == {"unknown"}
    assert await store.claim_posts("b", NOW + 2 * MINUTE, MINUTE, LATE) == []
    # "a" was only slow: what the platform said is still recorded.
    assert await store.post_published(claimed[0], "a", NOW, "99", "https://t.me/c/99")
    assert not await store.post_published(claimed[1], "b", NOW, "98", None)
    a = await store.announcement(aid)
    assert a is not None
    assert sorted(p.state for p in a.posts) == ["published", "unknown"]
    assert not any(p.found_by_check for p in a.posts)  # its holder's own call, though late


async def test_late_posts_are_missed_not_published(store: Store) -> None:
    await store.add_announcement(new(), NOW)
    assert await store.claim_posts("a", NOW + LATE, MINUTE, LATE) == []
    missed = await store.missed_posts(NOW + LATE, LATE)
    assert [p.state for p in missed] == ["missed", "missed"]
    assert missed[0].error
    assert await store.missed_posts(NOW + LATE, LATE) == []


async def test_suspend_holds_what_falls_due_for_a_person(store: Store) -> None:
    aid = await store.add_announcement(new(), NOW)
    assert await store.suspend_announcements("National mourning", "amy", NOW - MINUTE)
    assert not await store.suspend_announcements("again", "bob", NOW - MINUTE)
    suspension = await store.suspension()
    assert suspension is not None and suspension.reason == "National mourning"
    assert await store.claim_posts("a", NOW, MINUTE, LATE) == []
    assert await store.missed_posts(NOW + LATE * 2, LATE) == []  # held, not missed
    assert await store.resume_announcements("amy", NOW + MINUTE) == 2
    assert await store.suspension() is None
    assert await store.claim_posts("a", NOW + MINUTE, MINUTE, LATE) == []
    a = await store.announcement(aid)
    assert a is not None and {p.state for p in a.posts} == {"held"}
    assert sorted(await store.republish_announcement(aid, "amy", NOW + 2 * MINUTE)) == [
        "telegram", "x",
    ]  # fmt: skip
    assert len(await store.claim_posts("a", NOW + 2 * MINUTE, MINUTE, LATE)) == 2


async def test_approval_is_by_someone_else_once(store: Store) -> None:
    aid = await store.add_announcement(new(state="approval"), NOW - LATE)
    assert await store.claim_posts("a", NOW, MINUTE, LATE) == []
    assert not await store.approve_announcement(aid, "amy", NOW - MINUTE)  # the writer
    assert await store.approve_announcement(aid, "bob", NOW - MINUTE)
    assert not await store.approve_announcement(aid, "cat", NOW - MINUTE)
    a = await store.announcement(aid)
    assert a is not None and (a.approved_by, a.approved_at) == ("bob", NOW - MINUTE)
    assert len(await store.claim_posts("a", NOW, MINUTE, LATE)) == 2
    log = await store.announcement_log(aid)
    assert [(e.who, e.action) for e in log][:2] == [("amy", "wrote"), ("bob", "approved")]


async def test_cancel_failed_and_retry(store: Store) -> None:
    aid = await store.add_announcement(new(), NOW)
    first, second = await store.claim_posts("a", NOW, MINUTE, LATE)
    assert await store.post_failed(first, "a", "The account is suspended.", NOW)
    assert await store.post_retry(second, "a", "X is busy", NOW, NOW + MINUTE)
    assert await store.claim_posts("b", NOW, MINUTE, LATE) == []
    assert sorted(await store.cancel_announcement(aid, "amy", NOW)) == ["telegram", "x"]
    a = await store.announcement(aid)
    assert a is not None and {p.state for p in a.posts} == {"cancelled"}
    assert any(p.error == "The account is suspended." for p in a.posts)


async def test_many_announcements_are_stored_together_or_not_at_all(store: Store) -> None:
    ids = await store.add_announcements([new(), new(notice="closure:2025-03-10")], NOW)
    assert [a.id for a in await store.announcements(NOW - LATE)] == ids
    # The third breaks a rule of the database (a notice is stored once): none of them stay.
    with pytest.raises(StoreError):
        await store.add_announcements([new(), new(), new(notice="closure:2025-03-10")], NOW)
    assert [a.id for a in await store.announcements(NOW - LATE)] == ids
    # A second channel of the same name breaks another (one post per channel).
    twice = replace(new(), versions=(("x", None), ("x", "again")))
    with pytest.raises(StoreError):
        await store.add_announcements([new(), twice], NOW)
    assert [a.id for a in await store.announcements(NOW - LATE)] == ids
    assert await store.add_announcements([], NOW) == []


async def test_a_lapsed_post_is_taken_for_one_check_and_settled_by_its_checker(
    store: Store,
) -> None:
    aid = await store.add_announcement(new(), NOW)
    claimed = {p.channel: p for p in await store.claim_posts("a", NOW, MINUTE, LATE)}
    assert {p.claimed_at for p in claimed.values()} == {NOW}
    assert await store.check_posts("b", NOW + MINUTE / 2, MINUTE, "x") == []  # lease still runs
    # Two servers look at once: one of them takes it, still "publishing".
    taken = await asyncio.gather(
        *(store.check_posts(h, NOW + MINUTE, MINUTE, "x") for h in ("b", "c"))
    )
    [[checking]] = [t for t in taken if t]
    checker = "b" if taken[0] else "c"
    assert (checking.channel, checking.state, checking.checks, checking.claimed_at) == (
        "x", "publishing", 1, NOW,
    )  # fmt: skip
    # Telegram's post cannot be checked: it goes "unknown"; the one being checked does not.
    assert [p.channel for p in await store.lapsed_posts(NOW + MINUTE)] == ["telegram"]
    # The account could not be read: looked at again later, counted.
    assert await store.post_check_failed(
        checking, checker, "X: 503", NOW + MINUTE, NOW + 3 * MINUTE
    )
    assert await store.check_posts(checker, NOW + 2 * MINUTE, MINUTE, "x") == []
    [again] = await store.check_posts(checker, NOW + 3 * MINUTE, MINUTE, "x")
    assert again.checks == 2 and again.error == "X: 503"
    # The server that first took it no longer holds it; the checker records what it found.
    assert not await store.post_published(claimed["x"], "a", NOW, "1", None)
    assert await store.post_published(again, checker, NOW, "1", "https://x.com/a/status/1",
                                      how="found on the account")  # fmt: skip
    a = await store.announcement(aid)
    assert a is not None
    assert [(p.channel, p.state, p.link, p.found_by_check) for p in a.posts] == [
        ("telegram", "unknown", None, False),
        ("x", "published", "https://x.com/a/status/1", True),
    ]  # fmt: skip
    log = [(e.action, e.channel, e.detail) for e in await store.announcement_log(aid)]
    assert ("checking the account", "x", checker) in log
    assert ("check failed", "x", "X: 503") in log
    assert ("published", "x", "found on the account: https://x.com/a/status/1") in log


async def test_after_failed_checks_a_post_is_unknown_and_claimed_again_only_by_a_person(
    store: Store,
) -> None:
    aid = await store.add_announcement(new(), NOW)
    await store.claim_posts("a", NOW, MINUTE, LATE)
    [checking] = await store.check_posts("b", NOW + MINUTE, MINUTE, "x")
    assert await store.post_unknown(checking, "b", "could not be checked", NOW + MINUTE)
    assert not await store.post_unknown(checking, "b", "again", NOW + MINUTE)
    assert await store.check_posts("b", NOW + LATE, MINUTE, "x") == []
    assert await store.republish_announcement(aid, "amy", NOW + 2 * MINUTE) == ["x"]
    [again] = await store.claim_posts("c", NOW + 2 * MINUTE, MINUTE, LATE)
    assert (again.channel, again.attempts, again.checks) == ("x", 2, 0)


_COUNT_UPDATES = (
    "CREATE TABLE updates_seen (n INTEGER)",
    """CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO updates_seen VALUES (1); RETURN NULL; END $$""",
    """CREATE TRIGGER count_update AFTER UPDATE ON announcement_posts
    FOR EACH STATEMENT EXECUTE FUNCTION count_update()""",
)


async def test_a_round_with_nothing_to_check_writes_nothing(store: Store, store_url: str) -> None:
    """Every publisher round asks each channel that can look at its account. With nothing lapsed
    (nearly always) that must cost no write: on SQLite no transaction on the one writer, which
    every process shares; on PostgreSQL not one UPDATE statement reaches the table (a statement
    trigger fires even for an UPDATE that matches no row)."""
    if isinstance(store, PostgresStore):
        for statement in _COUNT_UPDATES:
            await pg_sql(statement, store_url)

    async def writes() -> int:
        if isinstance(store, SQLiteStore):
            return store.commits
        [row] = await pg_sql("SELECT count(*) FROM updates_seen", store_url)
        return int(row[0])

    await store.add_announcement(new(), NOW)
    await store.claim_posts("a", NOW, MINUTE, LATE)  # "a" dies while publishing
    before = await writes()
    assert await store.check_posts("b", NOW + MINUTE / 2, MINUTE, "x") == []  # lease still runs
    assert await store.check_posts("b", NOW + MINUTE, MINUTE, "bluesky") == []  # none there
    assert await writes() == before
    # The measure can see a write: when one has lapsed, the check takes it.
    [taken] = await store.check_posts("b", NOW + MINUTE, MINUTE, "x")
    assert taken.checks == 1
    assert await writes() > before


async def test_a_post_found_before_migration_11_is_marked_found_from_its_log(
    store_url: str,
) -> None:
    async with open_store(store_url) as store:
        aid = await found_after_a_crash(store)
    # The database as it was before migration 11: no column, and the log the only record (and
    # none of the later migrations, which are applied again after it).
    undo = (
        "DROP INDEX outbox_platform_message",
        "DROP INDEX outbox_sent_to",
        "DROP INDEX outbox_message",
        *(
            f"ALTER TABLE outbox DROP COLUMN {c}"
            for c in ("delivered_at", "read_at", "send_started_at")
        ),
        "ALTER TABLE announcement_posts DROP COLUMN found_by_check",
        "DELETE FROM schema_migrations WHERE version >= 11",
    )
    if store_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(store_url.removeprefix("sqlite:///"))) as conn, conn:
            for statement in undo:
                conn.execute(statement)
    else:
        for statement in undo:
            await pg_sql(statement, store_url)
    async with open_store(store_url) as store:
        assert store.applied == ["0011_found_by_check.sql", "0012_receipts.sql"]
        a = await store.announcement(aid)
    assert a is not None
    assert [(p.channel, p.state, p.found_by_check) for p in a.posts] == [
        ("telegram", "published", False), ("x", "published", True),
    ]  # fmt: skip
