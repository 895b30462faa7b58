"""Retention, erasure and subject access, and jobs claimed once: on every database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from bot.models import SenderState
from bot.store import Store

from .test_store_contract import NOW, Decider, message

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


async def test_purge_blanks_old_done_messages_and_keeps_what_reports_count(store: Store) -> None:
    old_done = (await store.ingest(message("1", at=NOW - 100 * DAY), Decider())).item
    old_open = (await store.ingest(message("2", at=NOW - 100 * DAY, sender="bob"), Decider())).item
    new_done = (await store.ingest(message("3", at=NOW - DAY, sender="cat"), Decider())).item
    for item in (old_done, new_done):
        await store.mark_done(item.reference, "sam", NOW - DAY)
    await store.record_human_reply(old_done.reference, "Sorted, sorry!", "sam", NOW - 99 * DAY)

    assert await store.purge(NOW - 90 * DAY, NOW) == 1
    assert await store.purge(NOW - 90 * DAY, NOW) == 0  # idempotent

    purged = await store.get(old_done.reference)
    assert purged is not None
    assert (purged.text, purged.sender, purged.sender_name, purged.auto_reply) == ("", "", None, "")
    assert purged.platform_id != "1"
    # What the reports need is all still there.
    assert (purged.channel, purged.received_at, purged.reply_by, purged.team) == (
        old_done.channel,
        old_done.received_at,
        old_done.reply_by,
        old_done.team,
    )
    assert purged.first_human_reply_at == NOW - 99 * DAY
    assert purged.done_at == NOW - DAY
    # An open message is kept until it is done; a recent one until it is old enough.
    assert await store.get(old_open.reference) == old_open
    kept = await store.get(new_done.reference)
    assert kept is not None and kept.text == new_done.text
    assert await store.counts() == {"open": 1, "done": 2, "replies": 4}
    export = await store.export("web", "alice")
    assert export.items == []
    assert all(r.text == "" for r in (await store.export("web", "")).replies)


async def test_purge_forgets_old_cooldowns_but_never_an_opt_out(store: Store) -> None:
    await store.ingest(message("1", at=NOW - 100 * DAY, sender="alice"), Decider())
    await store.ingest(message("2", at=NOW - 100 * DAY, sender="bob"), Decider())
    await store.set_opted_out("web", "bob", True)
    await store.ingest(message("3", at=NOW - HOUR, sender="cat"), Decider())

    await store.purge(NOW - 90 * DAY, NOW)

    assert (await store.export("web", "alice")).state is None
    bob = (await store.export("web", "bob")).state
    assert bob is not None and bob.opted_out
    assert (await store.export("web", "cat")).state == SenderState(NOW - HOUR, "ack-open", False)


async def test_export_holds_everything_about_one_sender_on_one_channel(store: Store) -> None:
    first = (await store.ingest(message("1", at=NOW), Decider())).item
    second = (await store.ingest(message("2", at=NOW + HOUR, text="Any news?"), Decider())).item
    await store.ingest(message("3", sender="bob"), Decider())
    await store.ingest(message("4", channel="telegram"), Decider())
    await store.record_human_reply(first.reference, "On its way", "sam", NOW + 2 * HOUR)

    data = await store.export("web", "alice")

    assert (data.channel, data.sender) == ("web", "alice")
    assert [i.reference for i in data.items] == [first.reference, second.reference]
    assert [i.text for i in data.items] == ["My bin was not collected", "Any news?"]
    assert [(r.message_id, r.kind, r.text, r.author) for r in data.replies] == [
        (first.id, "auto", first.auto_reply, None),
        (second.id, "auto", second.auto_reply, None),
        (first.id, "human", "On its way", "sam"),
    ]
    assert data.replies[2].created_at == NOW + 2 * HOUR
    assert data.state == SenderState(NOW + HOUR, "ack-open", False)
    nobody = await store.export("web", "nobody")
    assert (nobody.items, nobody.replies, nobody.state) == ([], [], None)


async def test_erase_blanks_one_sender_everywhere_on_that_channel(store: Store) -> None:
    mine = [
        (await store.ingest(message(str(i), at=NOW + i * HOUR), Decider())).item for i in range(3)
    ]
    await store.mark_done(mine[0].reference, "sam", NOW)
    await store.record_human_reply(mine[1].reference, "Hello Alice", "sam", NOW + 5 * HOUR)
    theirs = (await store.ingest(message("9", sender="bob"), Decider())).item
    elsewhere = (await store.ingest(message("9", channel="telegram"), Decider())).item

    assert await store.erase("web", "alice", NOW + DAY) == 3

    data = await store.export("web", "alice")
    assert (data.items, data.replies, data.state) == ([], [], None)
    for item in mine:
        erased = await store.get(item.reference)
        assert erased is not None
        assert (erased.text, erased.sender, erased.sender_name, erased.auto_reply) == (
            "",
            "",
            None,
            "",
        )
    assert await store.get(theirs.reference) == theirs
    assert await store.get(elsewhere.reference) == elsewhere
    # Nothing remembered: a new message from the same address starts afresh.
    again = Decider()
    await store.ingest(message("10", at=NOW + DAY), again)
    assert again.calls[0][0] == SenderState()


async def test_a_job_is_claimed_by_one_holder_until_it_finishes_or_its_lease_runs_out(
    store: Store,
) -> None:
    every, lease = HOUR, 10 * timedelta(minutes=1)

    assert await store.claim_job("purge", "a", NOW, every, lease)
    assert not await store.claim_job("purge", "b", NOW + timedelta(minutes=5), every, lease)
    assert await store.claim_job("other-job", "b", NOW, every, lease)  # jobs are separate
    await store.finish_job("purge", "a", NOW + timedelta(minutes=5))
    # Finished: not due again until `every` has passed since it finished.
    assert not await store.claim_job("purge", "b", NOW + 30 * timedelta(minutes=1), every, lease)
    assert await store.claim_job("purge", "b", NOW + timedelta(minutes=65), every, lease)
    # b is killed mid-job: nobody can take it until the lease runs out, then anyone can.
    later = NOW + timedelta(minutes=65)
    assert not await store.claim_job("purge", "c", later + timedelta(minutes=9), every, lease)
    assert await store.claim_job("purge", "c", later + timedelta(minutes=10), every, lease)
    # A late finish by the holder that lost its lease changes nothing.
    await store.finish_job("purge", "b", later + timedelta(minutes=11))
    assert not await store.claim_job("purge", "d", later + timedelta(minutes=12), every, lease)


async def test_released_leases_can_be_taken_at_once(store: Store) -> None:
    assert await store.claim_job("purge", "a", NOW, HOUR, HOUR)
    await store.release_jobs("a")  # a shut down cleanly without finishing
    assert await store.claim_job("purge", "b", NOW + timedelta(seconds=1), HOUR, HOUR)


async def test_of_many_holders_claiming_at_once_exactly_one_wins(
    store: Store, make_store: Callable[[], Store]
) -> None:
    async with make_store() as other:  # a second pool, as a second process has
        wins = await asyncio.gather(
            *(
                (store if i % 2 else other).claim_job("purge", f"h{i}", NOW, HOUR, HOUR)
                for i in range(20)
            )
        )
    assert wins.count(True) == 1
