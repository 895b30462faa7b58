"""What only the PostgreSQL store does: URLs, migrations shared by processes, locking, outages."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta

import pytest

from bot.errors import HoldingReplyError, StoreError
from bot.models import Decision, SenderState
from bot.store import open_store
from bot.store.postgres import PostgresStore
from bot.store.queries import migrations
from tests.postgres import fresh_database, sql

from .test_store_contract import NOW, Boom, Decider, explode, message, no_reply

VERSIONS = [version for version, _, _ in migrations("sqlite")]
LATEST = VERSIONS[-1]


@pytest.fixture
def url() -> Iterator[str]:
    yield from fresh_database()


def schema_of(url: str) -> str:
    return url.rpartition("search_path=")[2]


def test_heroku_style_urls_and_the_pool_size_option() -> None:
    heroku = open_store("postgres://holding:s3cret@db.example:5432/queue?sslmode=require")
    assert isinstance(heroku, PostgresStore)
    assert "sslmode=require" in heroku.url
    assert "s3cret" not in repr(heroku)
    sized = open_store("postgresql://db.example/queue?pool_size=12&sslmode=require")
    assert isinstance(sized, PostgresStore)
    assert sized.pool_size == 12
    assert "pool_size" not in sized.url  # ours; the driver would take it for a server setting


@pytest.mark.parametrize("size", ["0", "many", "101"])
def test_a_bad_pool_size_says_what_is_expected(size: str) -> None:
    with pytest.raises(HoldingReplyError, match=r"pool_size=.*from 1 to 100"):
        open_store(f"postgres://holding:s3cret@db.example/queue?pool_size={size}")


async def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    # Port 9 on loopback (discard) has nothing listening here: refused at once.
    store = open_store("postgres://holding:s3cret@127.0.0.1:9/queue")
    says = r"Could not connect to .*holding:\*\*\*@127\.0\.0\.1:9"
    with pytest.raises(StoreError, match=says) as e:
        async with store:
            pass
    assert "s3cret" not in str(e.value)


async def test_migrations_are_recorded_once_even_when_processes_start_together(url: str) -> None:
    # Four stores opening at once stand in for four dynos starting after a deploy.
    stores = [open_store(url) for _ in range(4)]
    await asyncio.gather(*(s.__aenter__() for s in stores))
    for s in stores:
        await s.__aexit__(None, None, None)

    schema = schema_of(url)
    rows = await sql(f"SELECT version, applied_at FROM {schema}.schema_migrations")
    assert [r["version"] for r in rows] == VERSIONS
    tables = await sql(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"
    )
    assert {"messages", "replies", "senders"} <= {r["table_name"] for r in tables}


async def test_a_database_from_a_newer_version_is_refused(url: str) -> None:
    async with open_store(url):
        pass
    await sql(f"INSERT INTO {schema_of(url)}.schema_migrations VALUES (99, now())")

    with pytest.raises(StoreError, match=rf"schema version 99.*knows versions up to {LATEST}"):
        async with open_store(url):
            pass


async def test_two_processes_ingesting_the_same_deliveries_store_each_once(url: str) -> None:
    """Two stores (two pools, as two dynos have) race on redeliveries and on one sender."""
    async with open_store(url) as one, open_store(url) as two:
        jobs = []
        for i in range(40):
            for store in (one, two):  # every message is delivered to both
                jobs.append(store.ingest(message(f"m{i}", sender=f"s{i % 4}"), Decider()))
        results = await asyncio.gather(*jobs)

        stored = [r for r in results if not r.duplicate]
        assert len(stored) == 40
        assert sorted(r.item.platform_id for r in stored) == sorted(f"m{i}" for i in range(40))
        first = {r.item.platform_id: r.item for r in stored}
        for r in results:  # a duplicate answers with what the first delivery stored
            assert r.item == first[r.item.platform_id]
        assert await one.counts() == {"open": 40, "done": 0, "replies": 40}


async def test_the_cooldown_holds_across_processes(url: str) -> None:
    """Each sender's state is read and written by one transaction at a time."""

    def cooldown(state: SenderState, reference: str) -> Decision:
        recent = state.last_ack_at is not None and NOW - state.last_ack_at < timedelta(hours=1)
        return (no_reply() if recent else Decider())(state, reference)

    async with open_store(url) as one, open_store(url) as two:
        results = await asyncio.gather(
            *(
                (one if i % 2 else two).ingest(message(f"m{i}", sender="alice"), cooldown)
                for i in range(30)
            )
        )
    replied = [r for r in results if r.item.auto_reply is not None]
    assert len(replied) == 1  # without the lock, several would read "never acknowledged"


async def test_a_lost_connection_fails_one_call_and_the_pool_recovers(url: str) -> None:
    async with open_store(url) as store:
        await store.ingest(message("before"), Decider())
        # The server ends every connection to this schema's database, as a restart would.
        await sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        outcomes: list[object] = []
        for i in range(3):
            try:
                outcomes.append(await store.ingest(message(f"after{i}"), Decider()))
            except StoreError as e:
                outcomes.append(e)
        assert not isinstance(outcomes[-1], StoreError)  # recovered without reopening
        counts = await store.counts()
    stored = sum(1 for o in outcomes if not isinstance(o, StoreError))
    assert counts["open"] == 1 + stored


async def test_callers_get_a_connection_in_the_order_they_asked(url: str) -> None:
    """Under a burst, a caller that has waited is not overtaken by callers that came later.

    asyncpg's pool lets a new caller take a connection that was being handed to a waiting one,
    which then goes to the back of the queue: in a burst of 10,000 messages some waited past
    the timeout and got 503s while the database was healthy.
    """
    async with PostgresStore(url, pool_size=1) as store:
        served: list[str] = []

        def use(name: str) -> Awaitable[None]:
            async def work(conn: object) -> None:
                served.append(name)

            return store._run("read from", work)

        early = [asyncio.create_task(use("early")) for _ in range(20)]
        late: list[asyncio.Task[None]] = []
        while not all(task.done() for task in early) and len(late) < 2000:
            late.append(asyncio.create_task(use("late")))  # a new caller at every turn
            await asyncio.sleep(0)
        await asyncio.gather(*early, *late)
    assert served[:20] == ["early"] * 20


async def test_a_reference_another_process_takes_meanwhile_is_drawn_again(url: str) -> None:
    """Both processes find the reference free; the unique index refuses the second insert,
    which starts again with a new draw rather than failing the message."""
    import asyncpg

    async with open_store(url) as store:
        await store.ingest(message("m0"), Decider())  # the tables exist, and one row
        other = await asyncpg.connect(url)
        try:
            transaction = other.transaction()
            await transaction.start()
            await other.execute(
                "INSERT INTO messages (id, reference, channel, platform_id, sender, text,"
                " received_at, staffed, language) VALUES (nextval('messages_id_seq'),"
                " 'FFFF-FFFF', 'web', 'other', 'bob', 'hi', now(), true, 'en')"
            )
            draws = iter(["FFFF-FFFF", "GGGG-GGGG"])
            store.new_reference = lambda: next(draws)  # type: ignore[attr-defined]
            ingest = asyncio.ensure_future(store.ingest(message("m1"), Decider()))
            # Wait until the insert is blocked on the other transaction's index entry.
            while not await other.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database())"
            ):
                assert not ingest.done(), ingest
                await asyncio.sleep(0.01)
            await transaction.commit()
        finally:
            await other.close()
        stored = await ingest
    assert stored.item.reference == "GGGG-GGGG"
    assert stored.item.auto_reply == "Thank you. Your reference is GGGG-GGGG."


async def test_messages_that_arrive_together_share_one_transaction(url: str) -> None:
    """Group commit: twenty ingests at once are one transaction (one WAL flush); the one whose
    decision fails fails alone, and each caller gets its own item."""
    async with open_store(url) as store:
        assert isinstance(store, PostgresStore)
        await store.ingest(message("warm-up"), Decider())  # the pool has its connection
        before = store.commits
        results = await asyncio.gather(
            *(store.ingest(message(f"m{i}"), explode if i == 7 else Decider()) for i in range(20)),
            return_exceptions=True,
        )
        assert store.commits - before == 1
        assert isinstance(results[7], Boom)
        for i, result in enumerate(results):
            if i != 7:
                assert not isinstance(result, BaseException)
                assert result.item.platform_id == f"m{i}"
                assert await store.get(result.item.reference) == result.item
        assert await store.counts() == {"open": 20, "done": 0, "replies": 20}


async def test_a_row_the_database_refuses_fails_only_its_own_message(url: str) -> None:
    """A NUL character is refused by PostgreSQL's text type: the group is run again one by one."""
    async with open_store(url) as store:
        results = await asyncio.gather(
            *(
                store.ingest(message(f"m{i}", text="bin\x00" if i == 3 else "bin"), Decider())
                for i in range(10)
            ),
            return_exceptions=True,
        )
        assert isinstance(results[3], StoreError)
        assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 3)
        assert await store.counts() == {"open": 9, "done": 0, "replies": 9}


async def test_in_one_group_a_sender_is_acknowledged_once_and_a_redelivery_is_a_duplicate(
    url: str,
) -> None:
    def cooldown(state: SenderState, reference: str) -> Decision:
        recent = state.last_ack_at is not None and NOW - state.last_ack_at < timedelta(hours=1)
        return (no_reply() if recent else Decider())(state, reference)

    async with open_store(url) as store:
        assert isinstance(store, PostgresStore)
        await store.ingest(message("warm-up", sender="bob"), Decider())
        before = store.commits
        results = await asyncio.gather(
            *(store.ingest(message(f"m{i % 3}"), cooldown) for i in range(6))
        )
        assert store.commits - before == 1
    assert [r.duplicate for r in results] == [False, False, False, True, True, True]
    assert [r.item for r in results[3:]] == [r.item for r in results[:3]]
    assert [r.item.auto_reply is not None for r in results[:3]] == [True, False, False]


async def test_two_processes_with_the_same_senders_in_opposite_orders_never_deadlock(
    url: str,
) -> None:
    """Each group locks its senders in one order, whatever order its messages came in."""
    senders = [f"s{i:02}" for i in range(40)]
    async with open_store(url) as one, open_store(url) as two:
        for round_ in range(5):
            results = await asyncio.gather(
                *(one.ingest(message(f"a{round_}-{s}", sender=s), Decider()) for s in senders),
                *(
                    two.ingest(message(f"b{round_}-{s}", sender=s), Decider())
                    for s in reversed(senders)
                ),
            )
            assert not any(r.duplicate for r in results)
        assert await one.counts() == {"open": 400, "done": 0, "replies": 400}


async def test_messages_arriving_while_a_group_is_written_go_in_the_next_one(url: str) -> None:
    async with open_store(url) as store:
        assert isinstance(store, PostgresStore)
        await store.ingest(message("warm-up"), Decider())
        before = store.commits
        first = asyncio.create_task(store.ingest(message("first"), Decider()))
        await asyncio.sleep(0)  # the first group (of one) is being written now
        rest = [asyncio.create_task(store.ingest(message(f"m{i}"), Decider())) for i in range(30)]
        results = await asyncio.gather(first, *rest)
        assert store.commits - before == 2  # a second group at once, not thirty transactions
        assert [r.item.platform_id for r in results] == ["first"] + [f"m{i}" for i in range(30)]
        assert await store.counts() == {"open": 32, "done": 0, "replies": 32}


async def test_closing_stores_the_messages_already_handed_over(url: str) -> None:
    store = open_store(url)
    await store.__aenter__()
    ingests = [asyncio.create_task(store.ingest(message(f"m{i}"), Decider())) for i in range(40)]
    await asyncio.sleep(0)
    await store.__aexit__(None, None, None)
    assert all(not r.duplicate for r in await asyncio.gather(*ingests))
    async with open_store(url) as again:
        assert await again.counts() == {"open": 40, "done": 0, "replies": 40}


def meanwhile(url: str, work: Callable[[PostgresStore], Awaitable[object]]) -> None:
    """Another dyno does `work` now, to the end, while this one is between two awaits: its own
    store and event loop, on a thread this one waits for."""

    async def other() -> None:
        async with open_store(url) as store:
            assert isinstance(store, PostgresStore)
            await work(store)

    thread = threading.Thread(target=asyncio.run, args=(other(),))
    thread.start()
    thread.join()


class Interrupted:
    """A cooldown decision that, the first time it is asked, lets another dyno act first: a
    decision made on the optimistic path, between its read and its write."""

    def __init__(self, url: str, work: Callable[[PostgresStore], Awaitable[object]]) -> None:
        self.url = url
        self.work: Callable[[PostgresStore], Awaitable[object]] | None = work
        self.states: list[SenderState] = []

    def __call__(self, state: SenderState, reference: str) -> Decision:
        self.states.append(state)
        if self.work is not None:
            work, self.work = self.work, None
            meanwhile(self.url, work)
        recent = state.last_ack_at is not None and NOW - state.last_ack_at < timedelta(hours=1)
        return (no_reply() if recent else Decider())(state, reference)


@pytest.mark.parametrize("known", [False, True], ids=["new sender", "known sender"])
async def test_a_sender_another_dyno_acknowledges_meanwhile_is_decided_again(
    url: str, known: bool
) -> None:
    """The optimistic write finds alice's row changed since its read: her message is not written
    on that state but decided again, locked, and she gets one reply in all."""
    async with open_store(url) as store:
        assert isinstance(store, PostgresStore)
        if known:  # her row exists, acknowledged long ago
            old = message("old", sender="alice", at=NOW - timedelta(days=2))
            await store.ingest(old, Decider())
        other = Interrupted(url, lambda two: two.ingest(message("b1", sender="alice"), Decider()))
        ours = await store.ingest(message("a1", sender="alice"), other)
        assert store.lost == 1
        assert other.states[0].last_ack_at == (NOW - timedelta(days=2) if known else None)
        assert other.states[1].last_ack_at == NOW  # the other dyno's reply, read under the lock
        assert not ours.duplicate and ours.item.auto_reply is None
        assert await store.get(ours.item.reference) == ours.item
        assert await store.counts() == {
            "open": 3 if known else 2,
            "done": 0,
            "replies": 2 if known else 1,
        }


async def test_a_group_where_one_sender_loses_stores_the_others_at_once(url: str) -> None:
    """Only the sender that changed goes by the locking path; a redelivery of its message in
    the same group follows it there and answers with the same item."""
    async with open_store(url) as store:
        assert isinstance(store, PostgresStore)
        await store.ingest(message("warm-up", sender="zed"), Decider())
        before = store.commits
        other = Interrupted(url, lambda two: two.ingest(message("b1", sender="alice"), Decider()))
        results = await asyncio.gather(
            store.ingest(message("a1", sender="alice"), other),
            *(store.ingest(message(f"m{i}", sender=f"s{i}"), Decider()) for i in range(5)),
            store.ingest(message("a1", sender="alice"), other),
        )
        assert store.commits - before == 2  # the group, then alice's job, locked
        assert store.lost == 2  # her message and its redelivery
    assert [r.duplicate for r in results] == [False] + [False] * 5 + [True]
    assert results[-1].item == results[0].item
    assert results[0].item.auto_reply is None  # the other dyno replied to her first
    assert all(r.item.auto_reply is not None for r in results[1:6])


async def test_a_sender_erased_meanwhile_is_decided_again_on_a_blank_row(url: str) -> None:
    async with open_store(url) as store:
        assert isinstance(store, PostgresStore)
        await store.ingest(message("old", sender="alice", at=NOW - timedelta(minutes=5)), Decider())
        other = Interrupted(url, lambda two: two.erase("web", "alice", NOW))
        ours = await store.ingest(message("a1", sender="alice"), other)
        assert store.lost == 1
        assert other.states[0].last_ack_at is not None  # read before the erasure: cooldown
        assert other.states[1] == SenderState()  # decided again on what is there now
        assert ours.item.auto_reply is not None
        senders = await sql(f"SELECT last_ack_at FROM {schema_of(url)}.senders")
        assert [row["last_ack_at"] for row in senders] == [NOW]  # ours, not the erased one
