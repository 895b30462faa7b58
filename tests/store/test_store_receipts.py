"""Receipts on every database: when the platform said a sent reply was delivered and read, by
its id or by a watermark, never going backwards, and shown with the replies of an item."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.store import Store

from .test_store_contract import NOW, Decider, message

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


async def test_delivered_then_read_by_the_platforms_id(store: Store) -> None:
    chat = replace(message("w1", channel="whatsapp"), conversation="447700900123")
    item = (await store.ingest(chat, Decider())).item
    [d] = await store.claim_deliveries("a", NOW, MINUTE)
    await store.delivered(d.id, NOW + SECOND, "wamid.1", NOW)
    [reply] = await store.replies(item.reference)
    assert (reply.delivered_at, reply.read_at) == (None, None)

    assert await store.receipt("whatsapp", "wamid.1", False, NOW + 2 * MINUTE) == 1
    assert await store.receipt("whatsapp", "wamid.1", True, NOW + 5 * MINUTE) == 1
    [reply] = await store.replies(item.reference)
    assert (reply.delivered_at, reply.read_at) == (NOW + 2 * MINUTE, NOW + 5 * MINUTE)


async def test_receipts_out_of_order_twice_or_late_never_go_backwards(store: Store) -> None:
    chat = replace(message("w1", channel="whatsapp"), conversation="447700900123")
    item = (await store.ingest(chat, Decider())).item
    [d] = await store.claim_deliveries("a", NOW, MINUTE)
    await store.delivered(d.id, NOW, "wamid.1", NOW)

    # "read" comes first: it means delivered too.
    assert await store.receipt("whatsapp", "wamid.1", True, NOW + 5 * MINUTE) == 1
    [reply] = await store.replies(item.reference)
    assert (reply.delivered_at, reply.read_at) == (NOW + 5 * MINUTE, NOW + 5 * MINUTE)
    # The late "delivered", with its earlier time, makes delivered more exact and undoes nothing.
    assert await store.receipt("whatsapp", "wamid.1", False, NOW + 2 * MINUTE) == 1
    # Redelivered, or reported again later: nothing changes.
    assert await store.receipt("whatsapp", "wamid.1", False, NOW + 2 * MINUTE) == 0
    assert await store.receipt("whatsapp", "wamid.1", True, NOW + 9 * MINUTE) == 0
    assert await store.receipt("whatsapp", "wamid.1", False, NOW + 9 * MINUTE) == 0
    [reply] = await store.replies(item.reference)
    assert (reply.delivered_at, reply.read_at) == (NOW + 2 * MINUTE, NOW + 5 * MINUTE)


async def test_an_unknown_id_another_channels_or_a_dead_letters_changes_nothing(
    store: Store,
) -> None:
    chat = replace(message("w1", channel="whatsapp"), conversation="447700900123")
    item = (await store.ingest(chat, Decider())).item
    [d] = await store.claim_deliveries("a", NOW, MINUTE)
    assert await store.receipt("whatsapp", "wamid.1", True, NOW) == 0  # not sent yet
    await store.delivered(d.id, NOW, "wamid.1", NOW)
    assert await store.receipt("whatsapp", "wamid.unknown", True, NOW) == 0
    assert await store.receipt("facebook", "wamid.1", True, NOW) == 0
    assert await store.receipts_until("facebook", "447700900123", NOW, True, NOW) == 0
    await store.not_delivered("whatsapp", "wamid.1", "131026 Message undeliverable")
    assert await store.receipt("whatsapp", "wamid.1", True, NOW) == 0
    [reply] = await store.replies(item.reference)
    assert (reply.delivered_at, reply.read_at) == (None, None)


async def test_a_read_covers_the_replies_sent_to_that_person_before_it(store: Store) -> None:
    older = replace(message("m1", channel="instagram", sender="1701"), conversation="1701")
    newer = replace(
        message("m2", channel="instagram", sender="1701", at=NOW + MINUTE), conversation="1701"
    )
    other = replace(message("m3", channel="instagram", sender="1702"), conversation="1702")
    items = [(await store.ingest(m, Decider())).item for m in (older, newer, other)]
    for n, d in enumerate(await store.claim_deliveries("a", NOW + MINUTE, MINUTE)):
        await store.delivered(d.id, NOW + n * MINUTE, f"m_out{d.message_id}", NOW + n * MINUTE)
    newest = f"m_out{items[1].id}"

    assert await store.receipt("instagram", newest, True, NOW + 9 * MINUTE) == 2
    read = [(await store.replies(i.reference))[0].read_at for i in items]
    assert read == [NOW + 9 * MINUTE, NOW + 9 * MINUTE, None]
    # A delivery receipt covers only the one it names.
    assert await store.receipt("instagram", f"m_out{items[2].id}", False, NOW + 9 * MINUTE) == 1


async def test_a_watermark_covers_the_replies_whose_send_began_by_it(store: Store) -> None:
    """Meta's time for a reply lies between when our send began and when Meta answered, so a
    watermark equal to it is at or after the send's start, though before our sent_at."""
    msgs = [
        replace(
            message(f"m{n}", channel="facebook", sender="2401", at=NOW + n * MINUTE),
            conversation="2401",
        )
        for n in range(3)
    ]
    items = [(await store.ingest(m, Decider())).item for m in msgs]
    for n, d in enumerate(await store.claim_deliveries("a", NOW + 3 * MINUTE, MINUTE)):
        began = NOW + n * MINUTE
        await store.delivered(d.id, began + SECOND, f"m_out{n}", began)

    # Delivered up to Meta's time of the second reply (between its start and its answer).
    until = NOW + MINUTE + SECOND / 2
    assert await store.receipts_until("facebook", "2401", until, False, NOW + 2 * MINUTE) == 2
    assert await store.receipts_until("facebook", "2402", until, True, NOW + 2 * MINUTE) == 0
    assert await store.receipts_until("facebook", "2401", NOW, True, NOW + 4 * MINUTE) == 1
    replies = [(await store.replies(i.reference))[0] for i in items]
    assert [(r.delivered_at, r.read_at) for r in replies] == [
        (NOW + 2 * MINUTE, NOW + 4 * MINUTE),
        (NOW + 2 * MINUTE, None),
        (None, None),
    ]


async def test_each_reply_shows_its_own_receipts(store: Store) -> None:
    """The automatic reply and each of the team's replies to one item."""
    chat = replace(message("w1", channel="whatsapp"), conversation="447700900123")
    item = (await store.ingest(chat, Decider())).item
    await store.send_human_reply(item.reference, "Booked for Tuesday", "jo", NOW + MINUTE)
    await store.send_human_reply(item.reference, "Sorry: Wednesday", "jo", NOW + 2 * MINUTE)
    claimed = await store.claim_deliveries("a", NOW + 2 * MINUTE, MINUTE)
    assert [d.kind for d in claimed] == ["auto", "human", "human"]
    for n, d in enumerate(claimed):
        await store.delivered(d.id, NOW + 3 * MINUTE, f"wamid.{n}", NOW + 3 * MINUTE)
    await store.receipt("whatsapp", "wamid.1", False, NOW + 4 * MINUTE)

    replies = await store.replies(item.reference)
    assert [(r.text, r.delivered_at) for r in replies] == [
        (item.auto_reply, None),
        ("Booked for Tuesday", NOW + 4 * MINUTE),
        ("Sorry: Wednesday", None),
    ]
