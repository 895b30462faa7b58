"""Typical reply times: measured from the store's recent replies, in staffed time, and said in
the replies of templates that use `typical_reply`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.check import load
from bot.durations import Promise
from bot.jobs import measure_typical
from bot.models import Message
from bot.store import Store, open_store
from bot.typical import MIN_REPLIES, NOTHING, Typical, in_words, measure
from bot.web import State, receive
from tests.conftest import copy_rules
from tests.store.test_store_reports import add

# The shipped hours (London): Monday to Thursday 09:00-17:00, Friday 09:00-16:30.
# Monday 2 June 2025 is BST (UTC+1): 09:00 local is 08:00Z.
MONDAY = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2025, 6, 20, 12, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.replace(tzinfo=None).isoformat(timespec="minutes")


async def answered(
    store: Store, count: int, channel: str, team: str | None, **delay: float
) -> None:
    """`count` messages received on staffed weekday mornings and answered `delay` later."""
    for i in range(count):
        received = MONDAY + timedelta(days=7 * (i % 3) + i % 4, minutes=i)
        await add(store, f"{channel}-{team}-{i}", channel, iso(received), team=team,
                  human_reply=iso(received + timedelta(**delay)))  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "5 working minutes"),  # never "0"
        (20 * 60, "20 working minutes"),
        (57 * 60, "55 working minutes"),  # to 5 minutes
        (58.5 * 60, "1 working hour"),  # not "60 working minutes"
        (150 * 60, "3 working hours"),  # halves round up, as people round
        (7.5 * 3600, "8 working hours"),
        (8 * 3600, "1 working day"),
        (20 * 3600, "3 working days"),  # 2.5 staffed days of 8 hours
    ],
)
def test_staffed_time_is_said_as_a_promise_would_be(seconds: float, said: str) -> None:
    assert str(in_words(seconds, day=8 * 3600)) == said


async def test_the_median_counts_staffed_time_only(database: str, tmp_path: Path) -> None:
    rules = load(copy_rules(tmp_path)).rules
    async with open_store(database) as store:
        await answered(store, MIN_REPLIES, "web", None, hours=2)
        # Friday 16:00 local, answered Monday 10:00: 30 minutes on Friday and 1 hour on Monday.
        friday = datetime(2025, 6, 6, 15, 0, tzinfo=UTC)
        for i in range(MIN_REPLIES + 1):
            received = friday + timedelta(days=7 * (i % 2), seconds=i)
            await add(store, f"weekend-{i}", "telegram", iso(received), team="waste",
                      human_reply=iso(received + timedelta(days=2, hours=18)))  # fmt: skip
        typical = await measure(store, rules, NOW)
    assert typical.channels == {"web": Promise(2, "hours"), "telegram": Promise(2, "hours")}
    assert typical.for_("telegram", "waste") == "2 working hours"  # 1.5 hours, rounded up
    assert typical.for_("web", None) == "2 working hours"
    assert typical.for_("web", "waste") is None  # not the channel's: waste has had no replies


async def test_too_few_replies_say_nothing(database: str, tmp_path: Path) -> None:
    rules = load(copy_rules(tmp_path)).rules
    async with open_store(database) as store:
        await answered(store, MIN_REPLIES - 1, "web", "waste", minutes=30)
        await answered(store, MIN_REPLIES, "web", None, hours=3)
        typical = await measure(store, rules, NOW)
        old = await measure(store, rules, NOW + timedelta(days=60))  # out of the window
    assert typical.teams == {("web", None): Promise(3, "hours")}  # waste has 19: no figure
    assert typical.for_("web", "waste") is None  # 19 replies; the channel's 39 say nothing of it
    assert typical.channels == {"web": Promise(3, "hours")}
    assert typical.for_("x", None) is None
    assert old == Typical({}, {}, NOW + timedelta(days=60))


async def test_the_server_measures_it_and_the_reply_says_it(tmp_path: Path) -> None:
    triage = load(copy_rules(tmp_path))
    async with open_store(f"sqlite:///{tmp_path}/q.sqlite3") as store:
        now = datetime.now(UTC)
        state = State(triage, store, clock=lambda: now)
        first, _ = await receive(state, Message("web", "before", "ann", "My bin was missed", now))
        assert "Over the last four weeks" not in (first.item.auto_reply or "")
        for i in range(MIN_REPLIES):
            message = Message("web", f"m{i}", f"sender-{i}", "Is the tip open?", now)
            item = (await receive(state, message))[0].item
            await store.record_human_reply(item.reference, "Yes", "sam", now)
        await measure_typical(state)
        assert state.typical.channels == {"web": Promise(5, "minutes")}  # answered at once
        measured = state.typical
        await measure_typical(state)  # not again until REFRESH has passed
        assert state.typical is measured
        reply = (await receive(state, Message("web", "after", "bo", "Bins?", now)))[0].item
    text = reply.auto_reply or ""
    assert "Over the last four weeks, half of our replies came within 5 working minutes." in text


def test_templates_that_use_it_say_nothing_without_a_measure(tmp_path: Path) -> None:
    triage = load(copy_rules(tmp_path))
    message = Message("web", "1", "ann", "My bin was missed", datetime(2025, 6, 2, 9, tzinfo=UTC))
    quiet = triage.decide(message)
    waste = Typical(teams={("web", "waste"): Promise(3, "hours")})
    told = triage.decide(message, typical=waste)
    assert told.team == "waste"
    web = triage.decide(message, typical=Typical(channels={"web": Promise(1, "hours")}))
    assert "half of our replies" not in (web.reply or "")  # the channel's is not the team's
    assert quiet == triage.decide(message, typical=NOTHING)
    assert "half of our replies came within" not in (quiet.reply or "")
    assert "half of our replies came within 3 working hours." in (told.reply or "")
