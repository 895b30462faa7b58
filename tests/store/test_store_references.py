"""References: random, unique, in the old format; on every store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator

from bot.models import Outgoing, reference_for
from bot.store import Store

from .test_store_contract import NOW, Decider, message

SHAPE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def drawing(*references: str) -> Callable[[], str]:
    """A draw that gives these references in turn: a store's new_reference, chosen by a test."""
    it: Iterator[str] = iter(references)
    return lambda: next(it)


async def test_references_are_random_not_a_count_of_earlier_messages(store: Store) -> None:
    first = [(await store.ingest(message(f"m{i}"), Decider())).item for i in range(20)]
    refs = [item.reference for item in first]
    assert all(SHAPE.fullmatch(r) for r in refs) and len(set(refs)) == 20
    # Not the old scramble of the row id, which anyone could reverse to count messages.
    assert not any(item.reference == reference_for(item.id) for item in first)


async def test_a_reference_already_taken_is_drawn_again(store: Store) -> None:
    store.new_reference = drawing("AAAA-AAAA")  # type: ignore[attr-defined]
    first = await store.ingest(message("m1"), Decider())
    # The next draws collide twice (with the stored message), then find a free reference.
    store.new_reference = drawing("AAAA-AAAA", "AAAA-AAAA", "BBBB-BBBB")  # type: ignore[attr-defined]
    decide = Decider()
    second = await store.ingest(message("m2"), decide)
    assert (first.item.reference, second.item.reference) == ("AAAA-AAAA", "BBBB-BBBB")
    assert [reference for _, reference in decide.calls] == ["BBBB-BBBB"]  # decided once
    assert second.item.auto_reply == "Thank you. Your reference is BBBB-BBBB."
    assert (await store.get("BBBB-BBBB")) == second.item


async def test_within_one_group_commit_references_do_not_collide(store: Store) -> None:
    # Two messages written in the same transaction draw the same reference first.
    store.new_reference = drawing(  # type: ignore[attr-defined]
        "CCCC-CCCC", "CCCC-CCCC", "DDDD-DDDD"
    )
    a, b = await asyncio.gather(
        store.ingest(message("m1", sender="a"), Decider()),
        store.ingest(message("m2", sender="b"), Decider()),
    )
    assert {a.item.reference, b.item.reference} == {"CCCC-CCCC", "DDDD-DDDD"}


async def test_messages_stored_with_the_old_references_keep_them(store: Store) -> None:
    # A message stored before references were random: its reference is the scramble of its id.
    old = reference_for(1)
    store.new_reference = drawing(old)  # type: ignore[attr-defined]
    before = await store.ingest(message("old"), Decider())
    assert before.item.reference == old
    store.new_reference = drawing("EEEE-EEEE")  # type: ignore[attr-defined]
    after = await store.ingest(message("new"), Decider())
    assert after.item.reference == "EEEE-EEEE"
    assert (await store.get(old)) == before.item
    # The outbox names a delivery by the reference stored with its message, old or new.
    reply = Outgoing("telegram", "chat", "human", "hi", message_id=before.item.id)
    await store.enqueue(reply, NOW)
    [delivery] = await store.deliveries("pending")
    assert delivery.reference == old
