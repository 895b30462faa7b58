"""What every store must do, whichever database is behind it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.errors import HoldingReplyError, StoreError
from bot.models import Decision, Message, SenderState
from bot.store import NotFound, Store

NOW = datetime(2025, 3, 3, 9, 30, 0, 123456, tzinfo=UTC)


def message(
    platform_id: str = "m1",
    *,
    channel: str = "web",
    sender: str = "alice",
    at: datetime = NOW,
    text: str = "My bin was not collected",
) -> Message:
    return Message(channel, platform_id, sender, text, at, sender_name="Alice A.")


class Decider:
    """A decide function that replies (unless told not to) and remembers what it was given."""

    def __init__(self, **overrides: object) -> None:
        self.overrides = overrides
        self.calls: list[tuple[SenderState, str]] = []

    def __call__(self, state: SenderState, reference: str) -> Decision:
        self.calls.append((state, reference))
        fields: dict[str, object] = {
            "staffed": True,
            "reply_by": NOW + timedelta(hours=4),
            "opens_at": None,
            "emergency": None,
            "redirect": None,
            "team": "waste",
            "language": "en",
            "template": "ack-open",
            "reply": f"Thank you. Your reference is {reference}.",
            "matched": "bin",
        }
        fields.update(self.overrides)
        return Decision(**fields)  # type: ignore[arg-type]


def no_reply() -> Decider:
    return Decider(template=None, reply=None, held_back="cooldown")


def refuse(state: SenderState, reference: str) -> Decision:
    raise AssertionError("decide must not be called for a duplicate")


class Boom(Exception):
    pass


def explode(state: SenderState, reference: str) -> Decision:
    raise Boom("triage failed")


async def test_ingest_stores_the_message_with_its_decision_and_reference(store: Store) -> None:
    decide = Decider()
    ingested = await store.ingest(message(), decide)

    assert not ingested.duplicate
    item = ingested.item
    [(state, reference)] = decide.calls
    assert state == SenderState()
    assert item.reference == reference
    assert (item.channel, item.platform_id, item.sender, item.sender_name) == (
        "web",
        "m1",
        "alice",
        "Alice A.",
    )
    assert (item.text, item.received_at) == ("My bin was not collected", NOW)
    assert (item.staffed, item.reply_by, item.team, item.language) == (
        True,
        NOW + timedelta(hours=4),
        "waste",
        "en",
    )
    assert (item.emergency, item.redirect, item.template) == (None, None, "ack-open")
    assert item.auto_reply == f"Thank you. Your reference is {reference}."
    assert (item.done_at, item.done_by, item.first_human_reply_at) == (None, None, None)
    assert await store.get(reference) == item
    assert await store.counts() == {"open": 1, "done": 0, "replies": 1}


async def test_a_duplicate_returns_the_stored_item_without_deciding_again(store: Store) -> None:
    first = await store.ingest(message(), Decider())
    again = await store.ingest(message(text="a retried delivery"), refuse)

    assert again.duplicate
    assert again.item == first.item
    assert await store.counts() == {"open": 1, "done": 0, "replies": 1}


async def test_the_same_platform_id_on_another_channel_is_another_message(store: Store) -> None:
    web = await store.ingest(message("42", channel="web"), Decider())
    telegram = await store.ingest(message("42", channel="telegram"), Decider())

    assert not telegram.duplicate
    assert telegram.item.reference != web.item.reference
    assert len(await store.open_items()) == 2


async def test_decide_sees_what_was_last_sent_to_the_sender_on_that_channel(store: Store) -> None:
    await store.ingest(message("1", at=NOW), Decider())
    later = Decider(template="ack-again")
    await store.ingest(message("2", at=NOW + timedelta(minutes=5)), later)
    latest = Decider()
    await store.ingest(message("3", at=NOW + timedelta(minutes=9)), latest)
    elsewhere = Decider()
    await store.ingest(message("4", channel="telegram"), elsewhere)
    someone_else = Decider()
    await store.ingest(message("5", sender="bob"), someone_else)

    assert later.calls[0][0] == SenderState(last_ack_at=NOW, last_ack_template="ack-open")
    assert latest.calls[0][0] == SenderState(NOW + timedelta(minutes=5), "ack-again")
    assert elsewhere.calls[0][0] == SenderState()
    assert someone_else.calls[0][0] == SenderState()


async def test_a_message_without_a_reply_leaves_the_last_reply_alone(store: Store) -> None:
    await store.ingest(message("1", at=NOW), Decider())
    held_back = no_reply()
    quiet = await store.ingest(message("2", at=NOW + timedelta(minutes=1)), held_back)
    after = Decider()
    await store.ingest(message("3", at=NOW + timedelta(minutes=2)), after)

    assert quiet.item.auto_reply is None
    assert quiet.item.template is None
    assert held_back.calls[0][0] == SenderState(NOW, "ack-open")
    assert after.calls[0][0] == SenderState(NOW, "ack-open")
    assert await store.counts() == {"open": 3, "done": 0, "replies": 2}


async def test_no_reply_for_a_new_sender_leaves_no_state(store: Store) -> None:
    await store.ingest(message("1"), no_reply())
    after = Decider()
    await store.ingest(message("2"), after)

    assert after.calls[0][0] == SenderState()


async def test_when_decide_raises_nothing_is_stored(store: Store) -> None:
    with pytest.raises(Boom):
        await store.ingest(message(), explode)

    assert await store.counts() == {"open": 0, "done": 0, "replies": 0}
    assert await store.open_items(include_done=True) == []
    decide = Decider()
    retried = await store.ingest(message(), decide)
    assert not retried.duplicate
    assert decide.calls[0][0] == SenderState()


async def test_open_items_are_ordered_most_overdue_first(store: Store) -> None:
    async def add(platform_id: str, minutes: int, reply_in: int | None, **decision: object) -> str:
        reply_by = None if reply_in is None else NOW + timedelta(hours=reply_in)
        decide = Decider(reply_by=reply_by, **decision)
        at = NOW + timedelta(minutes=minutes)
        return (await store.ingest(message(platform_id, at=at), decide)).item.reference

    late = await add("late", 0, 3)
    soon = await add("soon", 5, 1)
    never = await add("never", 0, None, staffed=False)
    emergency = await add("emergency", 9, 5, emergency="risk-to-life")
    soon_earlier = await add("soon-earlier", 1, 1)
    unscheduled_emergency = await add("unscheduled-emergency", 0, None, emergency="fire")

    expected = [emergency, unscheduled_emergency, soon_earlier, soon, late, never]
    assert [item.reference for item in await store.open_items()] == expected
    assert [item.reference for item in await store.open_items(limit=2)] == expected[:2]

    await store.mark_done(soon_earlier, by="sam", at=NOW)
    await store.mark_done(emergency, by="sam", at=NOW)
    still_open = [unscheduled_emergency, soon, late, never]
    assert [item.reference for item in await store.open_items()] == still_open
    everything = await store.open_items(include_done=True)
    assert [item.reference for item in everything] == [*still_open, emergency, soon_earlier]


async def test_mark_done_and_reopen(store: Store) -> None:
    reference = (await store.ingest(message(), Decider())).item.reference
    done_at = NOW + timedelta(hours=1)

    done = await store.mark_done(reference, by="sam", at=done_at)
    assert (done.done_at, done.done_by) == (done_at, "sam")
    assert await store.get(reference) == done
    assert await store.open_items() == []
    assert await store.counts() == {"open": 0, "done": 1, "replies": 1}

    again = await store.mark_done(reference, by="kim", at=done_at + timedelta(hours=1))
    assert (again.done_at, again.done_by) == (done_at, "sam")

    reopened = await store.reopen(reference)
    assert (reopened.done_at, reopened.done_by) == (None, None)
    assert await store.open_items() == [reopened]
    assert await store.counts() == {"open": 1, "done": 0, "replies": 1}


async def test_record_human_reply_keeps_the_earliest(store: Store) -> None:
    ingested = await store.ingest(message(), Decider())
    reference = ingested.item.reference

    first = await store.record_human_reply(reference, "On its way", "sam", NOW + timedelta(hours=2))
    assert first.first_human_reply_at == NOW + timedelta(hours=2)
    earlier = await store.record_human_reply(reference, "Hi", "kim", NOW + timedelta(hours=1))
    assert earlier.first_human_reply_at == NOW + timedelta(hours=1)
    later = await store.record_human_reply(reference, "Done", "sam", NOW + timedelta(hours=3))
    assert later.first_human_reply_at == NOW + timedelta(hours=1)

    assert later == dataclasses.replace(
        ingested.item, first_human_reply_at=NOW + timedelta(hours=1)
    )
    assert await store.get(reference) == later
    assert await store.counts() == {"open": 1, "done": 0, "replies": 4}


@pytest.mark.parametrize(
    "act",
    [
        lambda store: store.mark_done("0000-0000", "sam", NOW),
        lambda store: store.reopen("0000-0000"),
        lambda store: store.record_human_reply("0000-0000", "Hi", "sam", NOW),
    ],
    ids=["mark_done", "reopen", "record_human_reply"],
)
async def test_an_unknown_reference_is_not_found(
    store: Store, act: Callable[[Store], Awaitable[object]]
) -> None:
    await store.ingest(message(), Decider())
    with pytest.raises(NotFound, match="0000-0000") as raised:
        await act(store)
    assert isinstance(raised.value, HoldingReplyError)
    assert await store.get("0000-0000") is None
    assert await store.counts() == {"open": 1, "done": 0, "replies": 1}


async def test_many_concurrent_ingests_are_all_stored_once(store: Store) -> None:
    messages = [
        message(f"m{i}", sender=f"s{i % 7}", at=NOW + timedelta(seconds=i)) for i in range(500)
    ]
    results = await asyncio.gather(
        *(store.ingest(m, Decider()) for m in messages),
        *(store.ingest(m, Decider()) for m in messages),  # every one delivered twice
    )

    first_time = [r for r in results if not r.duplicate]
    assert len(first_time) == 500
    references = {r.item.reference for r in first_time}
    assert len(references) == 500
    assert {r.item.reference for r in results} == references
    assert await store.counts() == {"open": 500, "done": 0, "replies": 500}
    stored = await store.open_items()
    assert {item.reference for item in stored} == references


async def test_data_survives_closing_and_reopening(make_store: Callable[[], Store]) -> None:
    async with make_store() as store:
        item = (await store.ingest(message(), Decider())).item
        item = await store.record_human_reply(item.reference, "Hi", "sam", NOW)
        item = await store.mark_done(item.reference, "sam", NOW)

    async with make_store() as store:
        assert await store.get(item.reference) == item
        assert (await store.ingest(message(), refuse)).duplicate
        later = Decider()
        await store.ingest(message("m2"), later)
        assert later.calls[0][0] == SenderState(NOW, "ack-open")


@pytest.mark.parametrize(
    "at",
    [
        datetime(2025, 1, 1, 0, 0, 0, 0, tzinfo=UTC),
        datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 7, 1, 12, 0, 0, 1, tzinfo=ZoneInfo("Europe/London")),
        datetime(2025, 3, 30, 0, 59, 59, 500000, tzinfo=ZoneInfo("Europe/London")),
        datetime(2025, 6, 1, 5, 30, 0, 654321, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
async def test_datetimes_come_back_as_the_same_instant_in_utc(store: Store, at: datetime) -> None:
    def plus(delta: timedelta) -> datetime:  # in at's zone, but counted in real time
        return (at.astimezone(UTC) + delta).astimezone(at.tzinfo)

    decide = Decider(reply_by=plus(timedelta(hours=1)), opens_at=at)
    reference = (await store.ingest(message(at=at), decide)).item.reference
    await store.mark_done(reference, "sam", plus(timedelta(microseconds=1)))
    await store.record_human_reply(reference, "Hi", "sam", plus(timedelta(microseconds=2)))
    decide_again = Decider()
    await store.ingest(message("m2"), decide_again)

    item = await store.get(reference)
    assert item is not None
    state = decide_again.calls[0][0]
    utc = at.astimezone(UTC)
    for got, expected in [
        (item.received_at, utc),
        (item.reply_by, utc + timedelta(hours=1)),
        (item.done_at, utc + timedelta(microseconds=1)),
        (item.first_human_reply_at, utc + timedelta(microseconds=2)),
        (state.last_ack_at, utc),
    ]:
        assert got == expected
        assert got is not None and got.tzinfo is UTC


async def test_a_datetime_without_a_zone_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="time zone"):
        await store.ingest(message(at=NOW.replace(tzinfo=None)), Decider())
    with pytest.raises(ValueError, match="time zone"):
        await store.ingest(message("m2"), Decider(reply_by=NOW.replace(tzinfo=None)))
    assert await store.counts() == {"open": 0, "done": 0, "replies": 0}


async def test_a_closed_store_refuses_work(make_store: Callable[[], Store]) -> None:
    store = make_store()
    with pytest.raises(StoreError, match="not open"):
        await store.ingest(message(), Decider())
    async with store:
        pass
    with pytest.raises(StoreError, match="not open"):
        await store.open_items()


async def test_closing_finishes_the_writes_already_asked_for(
    make_store: Callable[[], Store],
) -> None:
    async with make_store() as store:
        pending = [
            asyncio.create_task(store.ingest(message(f"m{i}"), Decider())) for i in range(200)
        ]
        await asyncio.sleep(0)  # every task has handed its message to the store

    results = await asyncio.gather(*pending)
    assert len({r.item.reference for r in results}) == 200
    async with make_store() as store:
        assert await store.counts() == {"open": 200, "done": 0, "replies": 200}
