"""The staffed-hours calendar: when a person is at the desk, and when a promise falls due.

Everything here takes and returns aware UTC datetimes; local time exists only inside, where the
weekly ranges written in rules.toml are laid onto real dates in the organisation's timezone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.durations import Promise, TimeRange

# How far ahead to look for staffed time before deciding there is none (a desk closed for
# more than two years has no honest reply-by time to give).
HORIZON_DAYS = 800
# The first days of that walk, from yesterday on, are laid out once per date in one tuple: a
# promise in working hours or days nearly always falls due within them.
AHEAD_DAYS = 14
_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)


class HolidayCalendar(Protocol):
    def name_on(self, day: date, language: str = "en") -> str | None: ...


@dataclass(frozen=True, slots=True)
class Closure:
    """Whole local dates on which nobody is at the desk, both ends included."""

    start: date
    end: date
    reason: str
    reason_cy: str | None = None  # the Welsh wording, for Welsh replies
    message: str | None = None  # one more sentence for the replies, e.g. "Use the web form."

    def reason_in(self, language: str) -> str:
        return self.reason_cy if language == "cy" and self.reason_cy else self.reason


@dataclass(frozen=True, slots=True)
class SpecialHours:
    """One local date whose ranges replace the weekly ones; wins over holidays and closures."""

    day: date
    ranges: tuple[TimeRange, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Shift:
    """One staffed range laid onto a real date: belongs to `day`, from `start` to `end` (UTC)."""

    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ClosedDay:
    """A date that would have been staffed but is not, and why (for "Monday is a bank holiday")."""

    day: date
    reason: str
    bank_holiday: bool
    message: str | None = None  # a closure's extra sentence


@dataclass(frozen=True, slots=True)
class _Window:
    """From `start` to `end` no shift starts or ends and the local date is the same: `first`,
    the first shift not yet ended, is too, and `due` holds promises due at the same instant
    from anywhere in it."""

    start: datetime
    end: datetime
    first: Shift | None
    due: dict[Promise, datetime | None]


class Schedule:
    """A weekly pattern of staffed ranges, with bank holidays, closures and special dates."""

    def __init__(
        self,
        timezone: ZoneInfo,
        weekly: Sequence[Sequence[TimeRange]],
        holidays: HolidayCalendar,
        closures: Sequence[Closure] = (),
        special: Mapping[date, SpecialHours] | None = None,
    ) -> None:
        if len(weekly) != 7:
            raise ValueError("weekly needs seven days, Monday first")
        self.timezone = timezone
        self.weekly = tuple(tuple(day) for day in weekly)
        self.holidays = holidays
        self.closures = tuple(sorted(closures, key=lambda c: c.start))
        self.special = dict(special or {})
        self._shifts: dict[date, tuple[Shift, ...]] = {}
        self._closed: dict[tuple[date, date, str], tuple[ClosedDay, ...]] = {}
        self._ahead: dict[date, tuple[Shift, ...]] = {}
        self._until: dict[tuple[date, datetime, timedelta, str], tuple[ClosedDay, ...]] = {}
        # The span of time around the last instant asked about in which no shift starts or ends
        # and the local date stays the same: see outlook(). One slot, replaced whole.
        self._window: _Window | None = None
        self._midnights: dict[date, datetime] = {}  # the UTC instant a local date ends
        self.ever_staffed = any(self.weekly) or any(s.ranges for s in self.special.values())

    # --- laying ranges onto dates -------------------------------------------------------------

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.timezone).date()

    def closure_on(self, day: date) -> Closure | None:
        for closure in self.closures:
            if closure.start <= day <= closure.end:
                return closure
            if closure.start > day:
                break
        return None

    def closed_reason(self, day: date, language: str = "en") -> ClosedDay | None:
        """Why a date has no staffed ranges though the weekly pattern has some, if it is so."""
        if day in self.special or not self.weekly[day.weekday()]:
            return None
        closure = self.closure_on(day)
        if closure is not None:
            return ClosedDay(
                day, closure.reason_in(language), bank_holiday=False, message=closure.message
            )
        name = self.holidays.name_on(day, language)
        if name is not None:
            return ClosedDay(day, name, bank_holiday=True)
        return None

    def shifts_on(self, day: date) -> tuple[Shift, ...]:
        """The staffed ranges that start on this local date, as UTC instants, in order."""
        cached = self._shifts.get(day)
        if cached is not None:
            return cached
        if day in self.special:
            ranges: Sequence[TimeRange] = self.special[day].ranges
        elif self.closure_on(day) is not None or self.holidays.name_on(day) is not None:
            ranges = ()
        else:
            ranges = self.weekly[day.weekday()]
        midnight = datetime.combine(day, time.min)
        shifts = tuple(
            Shift(
                day,
                self._to_utc(midnight + timedelta(minutes=r.start)),
                self._to_utc(midnight + timedelta(minutes=r.end)),
            )
            for r in ranges
        )
        if len(self._shifts) > 4096:
            self._shifts.clear()
        self._shifts[day] = shifts
        return shifts

    def _to_utc(self, wall: datetime) -> datetime:
        # A wall time in the spring-forward gap does not exist; fold=0 reads it with the offset
        # before the change, i.e. an hour later on the new clock. An ambiguous autumn time is
        # read as its first occurrence. Both are what a person at the desk would expect.
        return wall.replace(tzinfo=self.timezone).astimezone(UTC)

    def shifts_from(self, at: datetime) -> Iterator[Shift]:
        """Every shift that has not ended by `at`, in order of start, up to the horizon."""
        day = self.local_date(at) - _ONE_DAY  # yesterday's overnight range may be open
        ahead = self._ahead.get(day)
        if ahead is None:
            days = (self.shifts_on(day + timedelta(days=k)) for k in range(AHEAD_DAYS))
            ahead = tuple(chain.from_iterable(days))
            if len(self._ahead) > 1024:
                self._ahead.clear()
            self._ahead[day] = ahead
        for shift in ahead:
            if shift.end > at:
                yield shift
        day += timedelta(days=AHEAD_DAYS)
        for _ in range(HORIZON_DAYS - AHEAD_DAYS):
            for shift in self.shifts_on(day):
                if shift.end > at:
                    yield shift
            day += _ONE_DAY

    # --- questions asked of the calendar -------------------------------------------------------

    def shift_at(self, at: datetime) -> Shift | None:
        """The shift in progress at `at` (staffed at its start, not at its end), if any."""
        day = self.local_date(at)
        for d in (day - timedelta(days=1), day):
            for shift in self.shifts_on(d):
                if shift.start <= at < shift.end:
                    return shift
        return None

    def is_staffed(self, at: datetime) -> bool:
        return self.shift_at(at) is not None

    def next_opening(self, at: datetime) -> datetime | None:
        """When the desk is next staffed after `at`; `at` itself when it is staffed now."""
        staffed, opens_at, _ = self.outlook(at, None)
        return at if staffed else opens_at

    def reply_by(self, at: datetime, promise: Promise) -> datetime | None:
        """The earliest instant at which the promise is due, or None if no staffed time exists."""
        return self.outlook(at, promise)[2]

    def outlook(
        self, at: datetime, promise: Promise | None
    ) -> tuple[bool, datetime | None, datetime | None]:
        """(staffed now, next opening when not, when the promise is due) in one pass.

        The first shift not yet ended, in order of start, either contains `at` or starts after
        it: any shift containing `at` starts no later than one that starts after it. That same
        shift is day 0 for a promise in working days.
        """
        if not self.ever_staffed:
            return False, None, None
        window = self._window
        rest: Iterator[Shift] | None = None
        if window is None or not window.start <= at < window.end:
            window, rest = self._window_at(at)
            self._window = window
        first = window.first
        if first is None:
            return False, None, None
        staffed = first.start <= at
        opens_at = None if staffed else first.start
        if promise is None:
            return staffed, opens_at, None
        minutes = promise.amount * (60 if promise.unit == "hours" else 1)
        if staffed and promise.unit != "days":
            # what _accumulate finds at once when the promise ends within the shift under way
            if timedelta(minutes=minutes) <= first.end - at:
                return staffed, opens_at, at + timedelta(minutes=minutes)
        elif promise in window.due:  # closed, or in working days: the same all window long
            return staffed, opens_at, window.due[promise]
        rest = rest or self.shifts_from(at)
        if promise.unit == "days":
            due = self._nth_day(rest, promise.amount)
        else:
            due = self._accumulate(rest, at, timedelta(minutes=minutes))
        if not staffed or promise.unit == "days":
            window.due[promise] = due
        return staffed, opens_at, due

    def _window_at(self, at: datetime) -> tuple[_Window, Iterator[Shift]]:
        """The window from `at` to the next start or end of a shift, or to the next local
        midnight (shifts_from starts from the local date), whichever comes first; and the shifts
        not yet ended at `at`, as shifts_from gives them, for the rest of the walk.

        Within the window the shifts not yet ended are the same ones, so whether the desk is
        staffed, when it opens next, and a promise due when closed or in working days are too.
        """
        day = self.local_date(at)
        end = self._midnights.get(day)
        if end is None:
            if len(self._midnights) > 1024:
                self._midnights.clear()
            end = self._midnights[day] = self._to_utc(datetime.combine(day + _ONE_DAY, time.min))
        shifts = self.shifts_from(at)
        seen: list[Shift] = []
        for shift in shifts:  # in order of start: a later one cannot start or end sooner
            seen.append(shift)
            if shift.start >= end:
                break
            if shift.start > at:
                end = shift.start
            end = min(end, shift.end)
        window = _Window(at, max(end, at + _TICK), seen[0] if seen else None, {})
        return window, chain(seen, shifts)

    def add_working_time(self, at: datetime, amount: timedelta) -> datetime | None:
        """`at` plus `amount` of staffed time, counted in real elapsed time."""
        return self._accumulate(self.shifts_from(at), at, amount)

    @staticmethod
    def _accumulate(shifts: Iterator[Shift], at: datetime, amount: timedelta) -> datetime | None:
        # A promise that ends exactly at a closing time stays there: `<=` below, not `<`.
        # Overlapping shifts (an overnight range running into an early one) are counted once.
        remaining = amount
        cursor = at
        for shift in shifts:
            begin = max(shift.start, cursor)
            if shift.end <= begin:
                continue
            available = shift.end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
            cursor = shift.end
        return None

    def _nth_day(self, shifts: Iterator[Shift], days: int) -> datetime | None:
        """The close of the last range of the `days`-th staffed date after the first one."""
        seen: list[date] = []
        for shift in shifts:
            if seen and (shift.day <= seen[-1]):
                continue
            seen.append(shift.day)
            if len(seen) == days + 1:
                return self.shifts_on(shift.day)[-1].end
        return None

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much staffed time lies between two instants (for reports and SLAs)."""
        total = timedelta()
        cursor = start
        for shift in self.shifts_from(start):
            if shift.start >= end:
                break
            begin = max(shift.start, cursor)
            finish = min(shift.end, end)
            if finish > begin:
                total += finish - begin
                cursor = finish
        return total

    def closed_until(
        self, at: datetime, opens_at: datetime, limit: timedelta, language: str = "en"
    ) -> tuple[ClosedDay, ...]:
        """closed_days_between the dates of `at` and `opens_at`, looking `limit` ahead at most."""
        start = self.local_date(at)
        key = (start, opens_at, limit, language)  # many messages share the next opening
        found = self._until.get(key)
        if found is None:
            end = min(self.local_date(opens_at), start + limit)
            found = self.closed_days_between(start, end, language)
            if len(self._until) > 4096:
                self._until.clear()
            self._until[key] = found
        return found

    def closed_days_between(
        self, start: date, end: date, language: str = "en"
    ) -> tuple[ClosedDay, ...]:
        """Dates from `start` to `end` (inclusive) that are closed by a holiday or closure."""
        key = (start, end, language)
        cached = self._closed.get(key)
        if cached is not None:
            return cached
        out: list[ClosedDay] = []
        day = start
        while day <= end:
            reason = self.closed_reason(day, language)
            if reason is not None:
                out.append(reason)
            day += timedelta(days=1)
        if len(self._closed) > 4096:
            self._closed.clear()
        self._closed[key] = tuple(out)
        return self._closed[key]
