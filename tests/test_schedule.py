"""The staffed-hours calendar: boundaries, overnight ranges, clock changes, holidays, promises."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.bank_holidays import load_bank_holidays
from bot.durations import TimeRange, parse_promise, parse_ranges
from bot.schedule import Closure, Schedule, SpecialHours

LONDON = ZoneInfo("Europe/London")
SECOND = timedelta(seconds=1)


def weekly(**days: str) -> list[tuple[TimeRange, ...]]:
    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return [parse_ranges(days.get(n, "closed")) for n in names]


OFFICE = weekly(
    monday="09:00-17:00",
    tuesday="09:00-17:00",
    wednesday="09:00-17:00",
    thursday="09:00-17:00",
    friday="09:00-16:30",
)


def schedule(
    week: list[tuple[TimeRange, ...]] = OFFICE,
    nation: str = "england-and-wales",
    closures: tuple[Closure, ...] = (),
    special: dict[date, SpecialHours] | None = None,
) -> Schedule:
    return Schedule(LONDON, week, load_bank_holidays(nation), closures, special)


def local(text: str) -> datetime:
    """A London wall time as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(UTC)


def as_local(value: datetime | None) -> str | None:
    return value.astimezone(LONDON).strftime("%Y-%m-%d %H:%M:%S") if value else None


# --- staffed or not, to the second ------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "staffed"),
    [
        ("2026-11-23 08:59:59", False),  # Monday, a second before opening
        ("2026-11-23 09:00:00", True),  # opening: staffed
        ("2026-11-23 16:59:59", True),
        ("2026-11-23 17:00:00", False),  # closing: not staffed (half-open)
        ("2026-11-27 16:29:59", True),  # Friday closes at 16:30
        ("2026-11-27 16:30:00", False),
        ("2026-11-28 12:00:00", False),  # Saturday not listed: closed
        ("2026-12-25 10:00:00", False),  # Christmas Day
        ("2026-12-28 10:00:00", False),  # Boxing Day substitute (26th is a Saturday)
        ("2026-08-31 10:00:00", False),  # Summer bank holiday, England and Wales
    ],
)
def test_staffed_at_the_boundaries(at: str, staffed: bool) -> None:
    assert schedule().is_staffed(local(at)) is staffed


@pytest.mark.parametrize(
    ("nation", "day", "closed"),
    [
        ("england-and-wales", "2026-01-02", False),
        ("scotland", "2026-01-02", True),  # 2 January
        ("scotland", "2026-11-30", True),  # St Andrew's Day
        ("england-and-wales", "2026-11-30", False),
        ("scotland", "2026-08-03", True),  # Scotland's summer holiday is early August
        ("scotland", "2026-08-31", False),
        ("northern-ireland", "2026-03-17", True),  # St Patrick's Day
        ("northern-ireland", "2026-07-13", True),  # Battle of the Boyne, substitute for Sunday 12th
        ("england-and-wales", "2026-07-13", False),
        ("england-and-wales", "2027-12-27", True),  # Christmas Day 2027 is a Saturday: substitutes
        ("england-and-wales", "2027-12-28", True),
    ],
)
def test_each_nations_bank_holidays_close_the_desk(nation: str, day: str, closed: bool) -> None:
    assert schedule(nation=nation).is_staffed(local(f"{day} 10:00:00")) is not closed


# --- overnight ranges -------------------------------------------------------------------------


def test_overnight_range_belongs_to_the_day_it_starts_on() -> None:
    s = schedule(weekly(sunday="22:00-06:00"))
    assert not s.is_staffed(local("2026-11-22 21:59:59"))
    assert s.is_staffed(local("2026-11-22 22:00:00"))
    assert s.is_staffed(local("2026-11-23 05:59:59"))  # Monday morning, Sunday's range
    assert not s.is_staffed(local("2026-11-23 06:00:00"))
    assert not s.is_staffed(local("2026-11-23 23:00:00"))  # Monday night: Monday is closed
    closed_sunday = {date(2026, 11, 22): SpecialHours(date(2026, 11, 22), ())}
    assert not schedule(weekly(sunday="22:00-06:00"), special=closed_sunday).is_staffed(
        local("2026-11-23 01:00:00")
    )


def test_overnight_range_and_morning_range_overlap_counted_once() -> None:
    s = schedule(weekly(sunday="22:00-06:00", monday="05:00-07:00"))
    at = local("2026-11-22 22:00:00")
    assert as_local(s.reply_by(at, parse_promise("9 working hours"))) == "2026-11-23 07:00:00"
    assert s.working_time_between(at, local("2026-11-23 08:00:00")) == timedelta(hours=9)


# --- clock changes ----------------------------------------------------------------------------


def test_overnight_shift_over_autumn_clock_change_counts_real_hours() -> None:
    # Clocks go back at 02:00 BST on Sunday 25 October 2026: 22:00-06:00 is nine real hours.
    s = schedule(weekly(saturday="22:00-06:00"))
    at = local("2026-10-24 22:00:00")
    assert s.working_time_between(at, local("2026-10-25 12:00:00")) == timedelta(hours=9)
    assert as_local(s.reply_by(at, parse_promise("8 working hours"))) == "2026-10-25 05:00:00"
    assert as_local(s.reply_by(at, parse_promise("9 working hours"))) == "2026-10-25 06:00:00"


def test_overnight_shift_over_spring_clock_change_counts_real_hours() -> None:
    # Clocks go forward at 01:00 GMT on Sunday 29 March 2026: 22:00-06:00 is seven real hours.
    s = schedule(weekly(saturday="22:00-06:00"))
    at = local("2026-03-28 22:00:00")
    assert s.working_time_between(at, local("2026-03-29 12:00:00")) == timedelta(hours=7)
    assert as_local(s.reply_by(at, parse_promise("7 working hours"))) == "2026-03-29 06:00:00"
    assert s.is_staffed(local("2026-03-29 05:59:59"))
    assert not s.is_staffed(local("2026-03-29 06:00:00"))


def test_office_hours_keep_their_local_times_after_a_clock_change() -> None:
    s = schedule()
    # The Monday after each change still opens at 09:00 local, not 08:00 or 10:00.
    for monday in ("2026-03-30", "2026-10-26"):
        assert not s.is_staffed(local(f"{monday} 08:59:59"))
        assert s.is_staffed(local(f"{monday} 09:00:00"))
        assert s.is_staffed(local(f"{monday} 16:59:59"))
        assert not s.is_staffed(local(f"{monday} 17:00:00"))


def test_a_range_starting_in_the_spring_gap_opens_when_the_clock_allows() -> None:
    s = schedule(weekly(sunday="01:30-03:00"))
    # 01:30 does not exist on 29 March 2026; it is read as 02:30 BST.
    assert not s.is_staffed(local("2026-03-29 00:59:59"))
    assert s.next_opening(local("2026-03-29 00:30:00")) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


# --- promises ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "promise", "due"),
    [
        ("2026-11-23 10:00:00", "4 working hours", "2026-11-23 14:00:00"),
        ("2026-11-23 13:00:00", "4 working hours", "2026-11-23 17:00:00"),  # ends at closing: stays
        ("2026-11-23 13:00:01", "4 working hours", "2026-11-24 09:00:01"),
        ("2026-11-23 16:00:00", "4 working hours", "2026-11-24 12:00:00"),
        ("2026-11-27 20:00:00", "4 working hours", "2026-11-30 13:00:00"),  # Friday night → Monday
        ("2026-11-28 03:00:00", "30 working minutes", "2026-11-30 09:30:00"),
        ("2026-04-02 16:00:00", "4 working hours", "2026-04-07 12:00:00"),  # over Easter
        ("2026-11-23 08:00:00", "0 working hours", "2026-11-23 09:00:00"),
        ("2026-11-23 10:00:00", "2 working days", "2026-11-25 17:00:00"),
        ("2026-11-23 10:00:00", "0 working days", "2026-11-23 17:00:00"),
        ("2026-11-27 20:00:00", "0 working days", "2026-11-30 17:00:00"),  # day 0 is Monday
        ("2026-11-27 20:00:00", "1 working day", "2026-12-01 17:00:00"),
        ("2026-11-27 10:00:00", "1 working day", "2026-11-30 17:00:00"),
        ("2026-11-26 10:00:00", "1 working day", "2026-11-27 16:30:00"),  # Friday closes earlier
        ("2026-12-23 12:00:00", "4 working hours", "2027-01-04 12:30:00"),  # Christmas closure
        ("2026-12-22 16:00:00", "2 working days", "2027-01-04 17:00:00"),
    ],
)
def test_reply_by(at: str, promise: str, due: str) -> None:
    christmas = (Closure(date(2026, 12, 24), date(2027, 1, 1), "the Christmas closure"),)
    special = {date(2026, 12, 23): SpecialHours(date(2026, 12, 23), parse_ranges("09:00-12:30"))}
    s = schedule(closures=christmas, special=special)
    assert as_local(s.reply_by(local(at), parse_promise(promise))) == due


def test_split_day_and_next_opening() -> None:
    s = schedule(weekly(saturday="10:00-12:00, 13:00-15:00"))
    assert s.is_staffed(local("2026-11-28 11:59:59"))
    assert not s.is_staffed(local("2026-11-28 12:00:00"))
    assert as_local(s.next_opening(local("2026-11-28 12:30:00"))) == "2026-11-28 13:00:00"
    assert as_local(s.reply_by(local("2026-11-28 11:00:00"), parse_promise("2 working hours"))) == (
        "2026-11-28 14:00:00"
    )


def test_special_hours_win_over_bank_holidays_and_closures() -> None:
    christmas = date(2026, 12, 25)
    s = schedule(
        closures=(Closure(date(2026, 12, 24), date(2026, 12, 31), "closed"),),
        special={christmas: SpecialHours(christmas, parse_ranges("10:00-12:00"))},
    )
    assert s.is_staffed(local("2026-12-25 10:00:00"))
    assert not s.is_staffed(local("2026-12-24 10:00:00"))
    assert s.closed_reason(christmas) is None
    assert s.closed_reason(date(2026, 12, 28)) is not None


def test_closed_reason_names_the_holiday_in_english_and_welsh() -> None:
    s = schedule()
    reason = s.closed_reason(date(2026, 12, 25))
    assert reason is not None and reason.bank_holiday and reason.reason == "Christmas Day"
    welsh = s.closed_reason(date(2026, 12, 25), "cy")
    assert welsh is not None and welsh.reason == "Dydd Nadolig"
    assert s.closed_reason(date(2026, 12, 26)) is None  # a Saturday: not staffed anyway


def test_a_desk_that_is_never_staffed_promises_nothing() -> None:
    s = schedule(weekly())
    at = local("2026-11-23 10:00:00")
    assert s.reply_by(at, parse_promise("4 working hours")) is None
    assert s.next_opening(at) is None


def test_a_24_hour_desk_is_always_staffed() -> None:
    s = schedule(
        weekly(
            **{
                d: "00:00-24:00"
                for d in (
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                )
            }
        ),
        nation="none",
    )
    at = local("2026-10-25 01:30:00")
    assert s.is_staffed(at)
    assert s.reply_by(at, parse_promise("4 working hours")) == at + timedelta(hours=4)


# --- properties -------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(second=0, microsecond=0))

range_text = st.builds(
    lambda h1, m1, h2, m2: f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}",
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45]),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45]),
)
weeks = st.lists(st.one_of(st.just("closed"), range_text), min_size=7, max_size=7)


def _schedule_from(days: list[str]) -> Schedule:
    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return schedule(weekly(**dict(zip(names, days, strict=True))))


@settings(max_examples=150, deadline=None)
@given(at=instants, minutes=st.integers(0, 600), days=weeks)
def test_reply_by_is_exactly_the_promised_staffed_time_later(
    at: datetime, minutes: int, days: list[str]
) -> None:
    """Brute force, minute by minute, agrees with the calendar, over clock changes too."""
    s = _schedule_from(days)
    due = s.add_working_time(at, timedelta(minutes=minutes))
    if due is None:
        assert not s.ever_staffed
        return
    counted, t = 0, at
    while counted < minutes:
        if s.is_staffed(t):
            counted += 1
        t += timedelta(minutes=1)
    if minutes:
        assert due == t
        assert s.is_staffed(due - SECOND)
    assert s.working_time_between(at, due) == timedelta(minutes=minutes)


@settings(max_examples=150, deadline=None)
@given(at=instants, days=weeks)
def test_next_opening_is_staffed_and_nothing_before_it_is(at: datetime, days: list[str]) -> None:
    s = _schedule_from(days)
    opening = s.next_opening(at)
    if opening is None:
        assert not s.ever_staffed
        return
    assert opening >= at
    assert s.is_staffed(opening)
    assert s.working_time_between(at, opening) == timedelta()


@settings(max_examples=100, deadline=None)
@given(at=instants, n=st.integers(0, 5))
def test_working_days_end_at_a_closing_time_on_a_staffed_day(at: datetime, n: int) -> None:
    s = schedule()
    due = s.reply_by(at, parse_promise(f"{n} working days"))
    assert due is not None and due > at
    assert s.is_staffed(due - SECOND) and not s.is_staffed(due)
    local_due = due.astimezone(LONDON)
    assert (local_due.hour, local_due.minute) in ((17, 0), (16, 30))
    staffed_days = {s.local_date(shift.start) for shift in s.shifts_from(at) if shift.start < due}
    assert len(staffed_days) == n + 1


@settings(max_examples=60, deadline=None)
@given(
    at=instants,
    steps=st.lists(st.integers(-600, 3000), min_size=1, max_size=25),
    days=weeks,
    promise=st.sampled_from(["4 working hours", "30 working minutes", "2 working days"]),
)
def test_one_schedule_asked_again_and_again_answers_as_a_fresh_one(
    at: datetime, steps: list[int], days: list[str], promise: str
) -> None:
    """outlook() remembers the span around the last instant in which no shift starts or ends:
    asked at instants moving on (and now and then back), over closing times, midnights and clock
    changes, it says what a schedule asked for the first time says."""
    kept, due = _schedule_from(days), parse_promise(promise)
    for step in steps:
        at += timedelta(minutes=step, seconds=step % 7)
        fresh = _schedule_from(days)
        assert kept.outlook(at, due) == fresh.outlook(at, due)
        assert kept.outlook(at, None) == fresh.outlook(at, None)


@pytest.mark.parametrize("promise", ["4 working hours", "2 working days"])
def test_the_remembered_span_ends_at_closing_time_and_at_midnight(promise: str) -> None:
    s, due = schedule(), parse_promise(promise)
    before, at_close = local("2026-11-26 16:59:59"), local("2026-11-26 17:00:00")
    assert s.outlook(before, due)[0] is True
    assert s.outlook(at_close, due) == schedule().outlook(at_close, due)
    assert s.outlook(at_close, due)[:2] == (False, local("2026-11-27 09:00:00"))
    late, early = local("2026-11-26 23:59:00"), local("2026-11-27 00:01:00")
    assert s.outlook(late, due) == schedule().outlook(late, due)
    assert s.outlook(early, due) == schedule().outlook(early, due)
