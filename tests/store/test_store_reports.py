"""The report's figures, counted by each database, on a store of known messages.

Every expected figure is worked out by hand in the comments of `seed`. The range is Monday
2 June 2025 to Thursday 5 June 2025 (excluded) in London, which is then UTC+1: it starts at
2025-06-01T23:00Z and ends at 2025-06-04T23:00Z.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.models import Decision, Message, SenderState
from bot.store import Contact, Figures, ReportData, Store

LONDON = ZoneInfo("Europe/London")
START = datetime(2025, 6, 1, 23, 0, tzinfo=UTC)
END = datetime(2025, 6, 4, 23, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def add(
    store: Store,
    platform_id: str,
    channel: str,
    received: str,
    *,
    staffed: bool = True,
    reply_by: str | None = None,
    emergency: str | None = None,
    redirect: str | None = None,
    team: str | None = None,
    auto_reply: bool = True,
    human_reply: str | None = None,
    done: str | None = None,
) -> None:
    def decide(state: SenderState, reference: str) -> Decision:
        return Decision(
            staffed=staffed,
            reply_by=at(reply_by) if reply_by else None,
            opens_at=None,
            emergency=emergency,
            redirect=redirect,
            team=team,
            language="en",
            template="ack" if auto_reply else None,
            reply=f"Thanks, {reference}" if auto_reply else None,
        )

    message = Message(channel, platform_id, f"sender-{platform_id}", "text", at(received))
    item = (await store.ingest(message, decide)).item
    if human_reply:
        await store.record_human_reply(item.reference, "answer", "sam", at(human_reply))
    if done:
        await store.mark_done(item.reference, "sam", at(done))


async def seed(store: Store) -> None:
    # In the range. First human reply, in clock time: m1 30 min, m2 2 h, m3 17 h, m4 10 min.
    # Local times: m1 Mon 09:00, m2 Mon 10:00, m3 Mon 21:00, m4 Tue 00:30, m5 Tue 11:00.
    await add(store, "m1", "web", "2025-06-02T08:00", reply_by="2025-06-02T12:00",
              team="waste", human_reply="2025-06-02T08:30", done="2025-06-02T10:00")  # fmt: skip
    await add(store, "m2", "web", "2025-06-02T09:00", reply_by="2025-06-02T13:00",
              team="waste", human_reply="2025-06-02T11:00")  # fmt: skip
    await add(store, "m3", "telegram", "2025-06-02T20:00", staffed=False,
              reply_by="2025-06-03T12:00", human_reply="2025-06-03T13:00",
              done="2025-06-03T14:00")  # promise broken  # fmt: skip
    await add(store, "m4", "telegram", "2025-06-02T23:30", staffed=False, emergency="fire",
              human_reply="2025-06-02T23:40")  # no promise  # fmt: skip
    await add(store, "m5", "x", "2025-06-03T10:00", reply_by="2025-06-03T14:00",
              redirect="crime", auto_reply=False)  # unanswered: promise not kept  # fmt: skip
    # Before the range: both open at its start. m6 gets a human reply inside the range (counted
    # with the replies of web and of "default"); m7 is marked done on Tuesday.
    await add(store, "m6", "web", "2025-06-01T22:30", human_reply="2025-06-02T10:00")
    await add(store, "m7", "web", "2025-05-30T10:00", done="2025-06-03T09:00")
    # After the range (Thursday 00:30 local): not counted.
    await add(store, "m8", "web", "2025-06-04T23:30", human_reply="2025-06-04T23:45")


def figures(
    group: str,
    counts: tuple[int, int, int, int, int, int, int, int, int],
    median: float | None,
    p90: float | None,
) -> Figures:
    names = ("messages", "out_of_hours", "emergencies", "redirects", "auto_replies",
             "human_replies", "answered", "with_promise", "promises_kept")  # fmt: skip
    return Figures(group, **dict(zip(names, counts, strict=True)), median_seconds=median,
                   p90_seconds=p90)  # fmt: skip


def check(found: list[Figures] | Figures, expected: list[Figures] | Figures) -> None:
    """Equal, with the percentiles to within a second (SQLite's julianday is exact to 1 ms)."""
    pairs = zip(found, expected, strict=True) if isinstance(found, list) else [(found, expected)]
    assert isinstance(expected, type(found))
    for f, e in pairs:  # type: ignore[misc]
        assert f.group == e.group
        for name in Figures.__slots__:
            value, wanted = getattr(f, name), getattr(e, name)
            if name.endswith("_seconds") and wanted is not None:
                assert value == pytest.approx(wanted, abs=1), (f.group, name)
            else:
                assert value == wanted, (f.group, name)


async def test_the_database_counts_every_figure(store: Store) -> None:
    await seed(store)

    data = await store.report(START, END, LONDON)

    assert isinstance(data, ReportData)
    #         messages, out of hours, emergencies, redirects, auto, human, answered,
    #         with a promise, kept
    # Percentiles (percentile_cont) of [600, 1800, 7200, 61200] s: the median at position 1.5,
    # 1800 + 0.5 * 5400 = 4500; the 90th at 2.7, 7200 + 0.7 * 54000 = 45000.
    check(data.overall, figures("all", (5, 2, 1, 1, 4, 5, 4, 4, 2), 4500, 45000))
    check(
        data.by_channel,
        [
            figures("telegram", (2, 2, 1, 0, 2, 2, 2, 1, 0), 30900, 55140),  # [600, 61200]
            figures("web", (2, 0, 0, 0, 2, 3, 2, 2, 2), 4500, 6660),  # [1800, 7200]
            figures("x", (1, 0, 0, 1, 0, 0, 0, 1, 0), None, None),
        ],
    )
    check(
        data.by_team,
        [
            figures("default", (3, 2, 1, 1, 2, 3, 2, 2, 0), 30900, 55140),
            figures("waste", (2, 0, 0, 0, 2, 2, 2, 2, 2), 4500, 6660),
        ],
    )
    # Local weekday (0 is Monday) and hour.
    assert data.hours == {(0, 9): 1, (0, 10): 1, (0, 21): 1, (1, 0): 1, (1, 11): 1}
    assert data.open_at_start == 2  # m6 and m7
    # Received on Monday m1-m3, Tuesday m4-m5; done on Monday m1, on Tuesday m3 and m7.
    assert data.days == {date(2025, 6, 2): (3, 1), date(2025, 6, 3): (2, 2)}
    # The answered messages' (received, first human reply), as seconds since 1970, in any order.
    pairs = {
        key: sorted(zip(value[0::2], value[1::2], strict=True))
        for key, value in data.first_replies.items()
    }
    assert pairs.keys() == {("web", "waste"), ("telegram", None)}
    expected = {
        ("web", "waste"): [("2025-06-02T08:00", "2025-06-02T08:30"),
                           ("2025-06-02T09:00", "2025-06-02T11:00")],
        ("telegram", None): [("2025-06-02T20:00", "2025-06-03T13:00"),
                             ("2025-06-02T23:30", "2025-06-02T23:40")],
    }  # fmt: skip
    for key, wanted in expected.items():
        flat = [at(t).timestamp() for pair in wanted for t in pair]
        assert [t for pair in pairs[key] for t in pair] == pytest.approx(flat, abs=0.01)
    assert data.contacts == []


async def test_an_empty_range_has_no_figures(store: Store) -> None:
    data = await store.report(START, END, LONDON)

    assert data.overall == Figures("all")
    assert data.by_channel == data.by_team == []
    assert data.hours == {} and data.days == {} and data.first_replies == {}
    assert data.open_at_start == 0


async def test_contacts_are_replaced_per_day_and_channel(store: Store) -> None:
    now = at("2025-06-10T12:00")
    assert await store.import_contacts(
        [Contact(date(2025, 6, 2), "phone", 999), Contact(date(2025, 6, 5), "email", 7)], now
    ) == 2  # fmt: skip
    await store.import_contacts(
        [
            Contact(date(2025, 6, 2), "phone", 100),
            Contact(date(2025, 6, 3), "phone", 50),
            Contact(date(2025, 6, 4), "face_to_face", 10),
            Contact(date(2025, 6, 1), "phone", 3),  # the day before the range
        ],
        now,
    )

    data = await store.report(START, END, LONDON)

    # Local dates from Monday 2 June to Thursday 5 June, excluded.
    assert data.contacts == [
        Contact(date(2025, 6, 2), "phone", 100),
        Contact(date(2025, 6, 3), "phone", 50),
        Contact(date(2025, 6, 4), "face_to_face", 10),
    ]


async def test_percentiles_match_percentile_cont_with_ties_and_small_groups(store: Store) -> None:
    # First replies after these many minutes, on three channels; ties included, and x has one.
    minutes = {"web": [5, 5, 5, 7, 30, 30, 61, 240, 241, 1000, 3], "telegram": [9, 1, 1, 2]}
    minutes["x"] = [17]
    for channel, delays in minutes.items():
        for n, delay in enumerate(delays):
            received = datetime(2025, 6, 2, 8, n, tzinfo=UTC)
            reply = (received + timedelta(minutes=delay)).isoformat()[:16]
            await add(store, f"{channel}{n}", channel, received.isoformat()[:16], human_reply=reply)

    data = await store.report(START, END, LONDON)

    def cont(values: list[int], p: float) -> float:  # PostgreSQL's percentile_cont, by hand
        ordered = sorted(v * 60 for v in values)
        position = p * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (position - low) * (ordered[high] - ordered[low])

    everything = [m for delays in minutes.values() for m in delays]
    assert data.overall.median_seconds == pytest.approx(cont(everything, 0.5), abs=1)
    assert data.overall.p90_seconds == pytest.approx(cont(everything, 0.9), abs=1)
    for figures in data.by_channel:
        delays = minutes[figures.group]
        assert figures.median_seconds == pytest.approx(cont(delays, 0.5), abs=1)
        assert figures.p90_seconds == pytest.approx(cont(delays, 0.9), abs=1)
    assert data.by_channel[2].median_seconds == pytest.approx(17 * 60, abs=1)  # x: one value


async def test_possible_emergencies_are_kept_and_counted_apart(store: Store) -> None:
    """A possible emergency is stored as an emergency (first in the queue, alerted) whose
    `matched` says it is only possible; the item says so, and reports count it apart."""

    def decide(matched: str, emergency: str) -> Decision:
        return Decision(True, None, None, emergency, None, None, "en", "emergency-999", "999",
                        matched)  # fmt: skip

    for platform_id, matched in (("p1", "possible: collapsed"), ("p2", "not breathing")):
        message = Message("web", platform_id, f"s-{platform_id}", "text", at("2025-06-02T08:00"))
        item = (await store.ingest(message, lambda s, r, m=matched: decide(m, "medical"))).item
        assert item.possible is (platform_id == "p1")
        stored = await store.get(item.reference)
        assert stored is not None and stored.possible is (platform_id == "p1")
    data = await store.report(START, END, LONDON)
    assert (data.overall.emergencies, data.overall.possible_emergencies) == (1, 1)
