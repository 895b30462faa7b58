"""The outbox on every database: claimed by one sender at a time, emergencies first, leases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.models import Outgoing
from bot.store import Store

from .test_store_contract import NOW

MINUTE = timedelta(minutes=1)


def reply(n: int, priority: int = 0) -> Outgoing:
    return Outgoing("telegram", f"chat-{n}", "auto", f"Thank you ({n})", priority=priority)


async def test_enqueued_deliveries_are_claimed_emergencies_first(store: Store) -> None:
    routine = [await store.enqueue(reply(i), NOW + i * MINUTE) for i in range(3)]
    urgent = await store.enqueue(reply(9, priority=1), NOW + 5 * MINUTE)
    assert (routine[0].state, routine[0].attempts, routine[0].sent_at) == ("pending", 0, None)
    assert routine[0].created_at == routine[0].next_attempt_at == NOW

    claimed = await store.claim_deliveries("a", NOW + 10 * MINUTE, MINUTE, limit=3)

    assert [d.id for d in claimed] == [urgent.id, routine[0].id, routine[1].id]
    assert all(d.attempts == 1 for d in claimed)
    assert [d.id for d in await store.claim_deliveries("b", NOW + 10 * MINUTE, MINUTE)] == [
        routine[2].id
    ]
    # Not yet due: enqueued for later than now.
    assert await store.claim_deliveries("c", NOW - MINUTE, MINUTE) == []


async def test_a_sent_delivery_is_never_claimed_again(store: Store) -> None:
    d = await store.enqueue(reply(1), NOW)
    [claimed] = await store.claim_deliveries("a", NOW, MINUTE)
    assert await store.delivered(claimed.id, NOW + MINUTE, "tg-555")
    assert not await store.delivered(claimed.id, NOW + MINUTE, "tg-555")  # once

    assert await store.claim_deliveries("b", NOW + 60 * MINUTE, MINUTE) == []
    [sent] = await store.deliveries("sent")
    assert (sent.id, sent.platform_message_id, sent.sent_at) == (d.id, "tg-555", NOW + MINUTE)


async def test_a_killed_senders_lease_runs_out_and_another_sends(store: Store) -> None:
    await store.enqueue(reply(1), NOW)
    [first] = await store.claim_deliveries("a", NOW, 5 * MINUTE)
    # "a" is killed mid-send: nobody else may take the row until the lease runs out.
    assert await store.claim_deliveries("b", NOW + 4 * MINUTE, 5 * MINUTE) == []
    [again] = await store.claim_deliveries("b", NOW + 5 * MINUTE, 5 * MINUTE)
    assert (again.id, again.attempts) == (first.id, 2)
    # "a" comes back from the dead: it no longer holds the row, so it cannot reschedule it.
    assert not await store.retry_later(first.id, "a", "timed out", NOW + 6 * MINUTE)


async def test_retries_wait_their_turn_and_permanent_failures_are_dead_letters(
    store: Store,
) -> None:
    flaky = await store.enqueue(reply(1), NOW)
    blocked = await store.enqueue(reply(2), NOW)
    claimed = await store.claim_deliveries("a", NOW, MINUTE)
    assert {d.id for d in claimed} == {flaky.id, blocked.id}

    assert await store.retry_later(flaky.id, "a", "HTTP 429: retry after 30", NOW + 30 * MINUTE)
    assert await store.give_up(blocked.id, "a", "Forbidden: bot was blocked by the user")

    assert await store.claim_deliveries("b", NOW + 29 * MINUTE, MINUTE) == []
    [retried] = await store.claim_deliveries("b", NOW + 30 * MINUTE, MINUTE)
    assert (retried.id, retried.attempts, retried.last_error) == (
        flaky.id,
        2,
        "HTTP 429: retry after 30",
    )
    [dead] = await store.deliveries("dead")
    assert (dead.id, dead.last_error) == (blocked.id, "Forbidden: bot was blocked by the user")


async def test_two_processes_claiming_at_once_never_claim_the_same_delivery(
    store: Store, make_store: Callable[[], Store]
) -> None:
    for i in range(200):
        await store.enqueue(reply(i, priority=int(i % 7 == 0)), NOW)
    async with make_store() as other:  # a second pool, as a second dyno has
        claims = await asyncio.gather(
            *(
                (store if n % 2 else other).claim_deliveries(f"sender-{n}", NOW, MINUTE, limit=7)
                for n in range(40)
            )
        )
    ids = [d.id for batch in claims for d in batch]
    assert len(ids) == len(set(ids)) == 200  # every delivery claimed, none twice


async def test_a_reply_for_a_sending_channel_joins_the_outbox_in_the_same_transaction(
    store: Store,
) -> None:
    from dataclasses import replace

    from .test_store_contract import Decider, message, no_reply

    chat = replace(message("t1", channel="telegram"), conversation="chat-42", thread="7")
    routine = (await store.ingest(chat, Decider())).item
    urgent_msg = replace(message("t2", channel="telegram", sender="bob"), conversation="chat-43")
    urgent = (await store.ingest(urgent_msg, Decider(emergency="danger-to-life"))).item
    quiet = replace(message("t3", channel="telegram", sender="cat"), conversation="chat-44")
    await store.ingest(quiet, no_reply())  # held back: nothing to send
    await store.ingest(message("w1"), Decider())  # the web answers in its response

    claimed = await store.claim_deliveries("a", NOW, MINUTE)

    assert [(d.message_id, d.recipient, d.reply_to, d.priority) for d in claimed] == [
        (urgent.id, "chat-43", None, 1),
        (routine.id, "chat-42", "7", 0),
    ]
    assert claimed[1].text == routine.auto_reply and claimed[1].kind == "auto"
    # Once sent, a redelivery of the same message adds nothing to send.
    for d in claimed:
        await store.delivered(d.id, NOW, f"sent-{d.id}")
    await store.ingest(chat, Decider())
    assert await store.claim_deliveries("b", NOW + 60 * MINUTE, MINUTE) == []


async def test_an_edit_changes_the_text_in_the_queue_only(store: Store) -> None:
    from .test_store_contract import Decider, message

    item = (await store.ingest(message("t1", channel="telegram"), Decider())).item
    edited = await store.edit_text("telegram", "t1", "My bin AND my recycling")
    assert edited is not None
    assert (edited.reference, edited.text, edited.auto_reply) == (
        item.reference,
        "My bin AND my recycling",
        item.auto_reply,
    )
    assert await store.edit_text("telegram", "never-seen", "x") is None


async def test_channel_state_is_kept_per_channel(store: Store) -> None:
    assert await store.get_state("x", "mentions_since_id") is None
    await store.set_state("x", "mentions_since_id", "100")
    await store.set_state("x", "mentions_since_id", "205")
    await store.set_state("telegram", "mentions_since_id", "1")
    assert await store.get_state("x", "mentions_since_id") == "205"
    assert await store.get_state("telegram", "mentions_since_id") == "1"


async def test_a_dead_letter_can_be_sent_again_with_fresh_attempts(store: Store) -> None:
    d = await store.enqueue(reply(1), NOW)
    await store.claim_deliveries("a", NOW, MINUTE)
    assert await store.give_up(d.id, "a", "Forbidden: bot was blocked by the user")
    assert not await store.revive(d.id + 1000, NOW)  # no such delivery

    assert await store.revive(d.id, NOW + 60 * MINUTE)
    assert not await store.revive(d.id, NOW + 60 * MINUTE)  # no longer dead
    assert await store.claim_deliveries("b", NOW + 59 * MINUTE, MINUTE) == []
    [again] = await store.claim_deliveries("b", NOW + 60 * MINUTE, MINUTE)
    assert (again.id, again.attempts, again.state) == (d.id, 1, "pending")


async def test_alerts_include_each_item_once_and_warn_once_before_a_breach(store: Store) -> None:
    from .test_store_contract import Decider, message

    first = (await store.ingest(message("1", at=NOW), Decider())).item
    second = (await store.ingest(message("2", at=NOW + MINUTE, sender="bob"), Decider())).item
    assert [i.id for i in await store.unalerted(NOW)] == [first.id]
    assert [i.id for i in await store.unalerted(NOW + MINUTE)] == [first.id, second.id]
    assert await store.mark_alerted([first.id], NOW) == 1
    assert await store.mark_alerted([first.id, second.id], NOW) == 1  # only bob's was new
    assert await store.unalerted(NOW + MINUTE) == []

    # reply_by is NOW + 4 hours (the Decider's): due for a warning from then, once.
    assert await store.near_breach(NOW + 3 * 60 * MINUTE) == []
    due = await store.near_breach(NOW + 4 * 60 * MINUTE)
    assert [i.id for i in due] == [first.id, second.id]
    assert await store.mark_alerted([first.id], NOW, breach=True) == 1
    await store.record_human_reply(second.reference, "On it", "sam", NOW)
    assert await store.near_breach(NOW + 5 * 60 * MINUTE) == []  # warned, or answered


async def test_an_alert_marks_and_queues_in_one_transaction(store: Store) -> None:
    from .test_store_contract import Decider, message

    a = (await store.ingest(message("1"), Decider())).item
    b = (await store.ingest(message("2", sender="bob"), Decider())).item
    await store.claim_deliveries("drain", NOW, 60 * MINUTE)  # the automatic replies
    seen: list[list[int]] = []

    def compose(ids: list[int]) -> list[Outgoing]:
        seen.append(ids)
        return [Outgoing("email", "team@example.org", "alert", f"{len(ids)} new", None)]

    def broken(ids: list[int]) -> list[Outgoing]:
        raise RuntimeError("composing failed")

    with pytest.raises(RuntimeError):
        await store.alert([a.id], broken, NOW)
    assert [i.id for i in await store.unalerted(NOW)] == [a.id, b.id]  # nothing was marked

    assert await store.alert([a.id], compose, NOW) == [a.id]
    assert await store.alert([a.id, b.id], compose, NOW) == [b.id]  # a was already alerted
    assert await store.alert([a.id, b.id], compose, NOW) == []  # compose is not called
    assert seen == [[a.id], [b.id]]
    queued = await store.claim_deliveries("x", NOW, MINUTE)
    assert [(d.channel, d.kind, d.text) for d in queued] == [("email", "alert", "1 new")] * 2


async def test_a_sent_reply_the_platform_could_not_deliver_becomes_a_dead_letter(
    store: Store,
) -> None:
    d = await store.enqueue(Outgoing("whatsapp", "447700900123", "auto", "Thank you"), NOW)
    await store.claim_deliveries("a", NOW, MINUTE)
    assert not await store.not_delivered("whatsapp", "wamid.1", "too early: not sent yet")
    assert await store.delivered(d.id, NOW, "wamid.1")
    assert not await store.not_delivered("telegram", "wamid.1", "another channel's id")
    assert await store.not_delivered("whatsapp", "wamid.1", "131026 Message undeliverable")
    assert not await store.not_delivered("whatsapp", "wamid.1", "twice")
    [dead] = await store.deliveries("dead")
    assert (dead.id, dead.last_error) == (d.id, "131026 Message undeliverable")


async def test_a_claim_skips_the_targets_the_sender_is_busy_with(store: Store) -> None:
    slow = [
        await store.enqueue(Outgoing("slack", "SLOW", "alert", f"alert {n}", priority=1), NOW)
        for n in range(3)
    ]
    other_route = await store.enqueue(Outgoing("slack", "WASTE", "alert", "alert"), NOW)
    reply_to_chat = await store.enqueue(reply(1), NOW)
    urgent_reply = await store.enqueue(reply(2, priority=1), NOW + MINUTE)
    x_reply = await store.enqueue(Outgoing("x", "99", "auto", "Thanks"), NOW)
    later = NOW + 2 * MINUTE

    # Busy with slack:SLOW and with the whole of X: the rest, emergencies still first.
    busy: list[tuple[str, str | None]] = [("slack", "SLOW"), ("x", None)]
    claimed = await store.claim_deliveries("a", later, MINUTE, skip=busy)
    assert [d.id for d in claimed] == [urgent_reply.id, other_route.id, reply_to_chat.id]
    # What was skipped is still there for the next claim, in its order.
    claimed = await store.claim_deliveries("b", later, MINUTE, limit=2)
    assert [d.id for d in claimed] == [slow[0].id, slow[1].id]
    assert [d.id for d in await store.claim_deliveries("c", later, MINUTE)] == [
        slow[2].id,
        x_reply.id,
    ]


async def test_a_sender_still_sending_renews_its_leases_and_keeps_them(store: Store) -> None:
    first = await store.enqueue(reply(1), NOW)
    await store.enqueue(reply(2), NOW)
    await store.claim_deliveries("a", NOW, MINUTE)
    # Near the end of the lease, "a" is still waiting on a slow platform: it renews.
    assert await store.renew_leases("a", NOW + 3 * MINUTE) == 2
    assert await store.renew_leases("nobody", NOW + 3 * MINUTE) == 0
    assert await store.claim_deliveries("b", NOW + 2 * MINUTE, MINUTE) == []  # still a's
    assert await store.delivered(first.id, NOW + 2 * MINUTE, "tg-1")
    assert await store.renew_leases("a", NOW + 4 * MINUTE) == 1  # what it sent is not its now
    [again] = await store.claim_deliveries("b", NOW + 4 * MINUTE, MINUTE)  # "a" died: b takes it
    assert again.attempts == 2
