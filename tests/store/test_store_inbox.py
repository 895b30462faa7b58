"""What the inbox asks of the store, on every database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.store import NotFound, Store

from .test_store_contract import NOW, Decider, message

MINUTE = timedelta(minutes=1)


async def test_the_inbox_shows_each_agent_their_teams_items_only(store: Store) -> None:
    waste = (await store.ingest(message("1"), Decider(team="waste"))).item
    parking = (await store.ingest(message("2", sender="b"), Decider(team="parking"))).item
    nobody = (await store.ingest(message("3", sender="c", channel="x"), Decider(team=None))).item

    def refs(items: list[object]) -> set[str]:
        return {i.reference for i in items}  # type: ignore[attr-defined]

    assert refs(await store.inbox(None)) == {waste.reference, parking.reference, nobody.reference}
    assert refs(await store.inbox(["waste"])) == {waste.reference}
    assert refs(await store.inbox(["parking", "default"])) == {parking.reference, nobody.reference}
    assert await store.inbox([]) == []
    assert refs(await store.inbox(None, channel="x")) == {nobody.reference}
    await store.mark_done(waste.reference, "sam", NOW)
    assert refs(await store.inbox(["waste"])) == set()
    assert refs(await store.inbox(["waste"], status="done")) == {waste.reference}
    assert len(await store.inbox(None, status="all", limit=2)) == 2


async def test_claim_reassign_and_notes(store: Store) -> None:
    item = (await store.ingest(message("1"), Decider(team="waste"))).item
    jo = await store.add_user("jo", "Jo", "agent", "h", ["waste"], NOW)

    assert (await store.claim(item.reference, jo.id)).assigned_to == jo.id
    moved = await store.reassign(item.reference, "highways")
    assert (moved.team, moved.assigned_to) == ("highways", None)
    await store.add_note(item.reference, "jo", "Called them back", NOW)
    await store.add_note(item.reference, "sam", "Sorted", NOW + MINUTE)
    assert [(n.author, n.text) for n in await store.notes(item.reference)] == [
        ("jo", "Called them back"),
        ("sam", "Sorted"),
    ]
    with pytest.raises(NotFound):
        await store.add_note("NOPE-NOPE", "jo", "x", NOW)


async def test_a_human_reply_goes_back_through_the_outbox_where_the_channel_can_take_it(
    store: Store,
) -> None:
    chat = replace(message("t1", channel="telegram"), conversation="42", thread="7")
    telegram = (await store.ingest(chat, Decider())).item
    web = (await store.ingest(message("w1", sender="b"), Decider())).item
    await store.claim_deliveries("drain", NOW, 60 * MINUTE)  # the automatic reply is held

    after = await store.send_human_reply(telegram.reference, "Your bin is booked", "jo", NOW)
    assert after.first_human_reply_at == NOW
    await store.send_human_reply(web.reference, "Emailed you", "jo", NOW)
    [delivery] = await store.claim_deliveries("sender", NOW + 5 * MINUTE, MINUTE)
    assert (delivery.kind, delivery.recipient, delivery.reply_to, delivery.text) == (
        "human",
        "42",
        "7",
        "Your bin is booked",
    )
    kinds = [(r.kind, r.author) for r in await store.replies(telegram.reference)]
    assert kinds == [("auto", None), ("human", "jo")]


async def test_the_teams_reply_to_an_emergency_is_sent_before_routine_replies(
    store: Store,
) -> None:
    routine_chat = replace(message("t1", channel="telegram"), conversation="41")
    routine = (await store.ingest(routine_chat, Decider())).item
    urgent_chat = replace(message("t2", channel="telegram", sender="b"), conversation="42")
    urgent = (await store.ingest(urgent_chat, Decider(emergency="gas"))).item
    await store.claim_deliveries("drain", NOW, 60 * MINUTE)  # the automatic replies are held

    await store.send_human_reply(routine.reference, "Your bin is booked", "jo", NOW)
    await store.send_human_reply(urgent.reference, "An engineer is on the way", "jo", NOW)
    claimed = await store.claim_deliveries("sender", NOW + 5 * MINUTE, MINUTE)
    assert [(d.recipient, d.priority) for d in claimed] == [("42", 1), ("41", 0)]


async def test_history_is_the_senders_other_messages_newest_first(store: Store) -> None:
    first = (await store.ingest(message("1", at=NOW), Decider())).item
    second = (await store.ingest(message("2", at=NOW + MINUTE), Decider())).item
    third = (await store.ingest(message("3", at=NOW + 2 * MINUTE), Decider())).item
    await store.ingest(message("4", sender="bob"), Decider())
    assert [i.reference for i in await store.history(third)] == [second.reference, first.reference]
