"""Parsing the small phrases comms staff write for times: ranges, promises and durations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Literal

MINUTES_PER_DAY = 24 * 60

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")
_AMOUNT = re.compile(r"^\s*(\d+)\s+([a-z ]+?)\s*$")

Unit = Literal["minutes", "hours", "days"]
_UNITS: dict[str, Unit] = {
    "minute": "minutes",
    "minutes": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "hour": "hours",
    "hours": "hours",
    "day": "days",
    "days": "days",
}

RANGE_HELP = (
    'expected "HH:MM-HH:MM" such as "09:00-17:00", several separated by commas '
    '("10:00-12:00, 13:00-15:00"), or "closed"'
)
PROMISE_HELP = (
    'expected "N working minutes", "N working hours" or "N working days", e.g. "4 working hours"'
)
DURATION_HELP = 'expected "N minutes", "N hours" or "N days", e.g. "12 hours"'


class ParseError(ValueError):
    """The text could not be read; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A staffed range on one day: starts `start` minutes after local midnight, lasts `length`.

    A range whose end is not after its start crosses midnight and belongs to the day it starts on.
    """

    start: int
    length: int

    @property
    def end(self) -> int:
        """End in minutes after the start day's midnight (may exceed a day)."""
        return self.start + self.length

    def __str__(self) -> str:
        end = self.end % MINUTES_PER_DAY
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def parse_ranges(text: str) -> tuple[TimeRange, ...]:
    """`"09:00-12:30, 13:30-17:00"` → ranges, sorted; `"closed"` or `""` → no ranges."""
    if text.strip().lower() in ("", "closed"):
        return ()
    ranges: list[TimeRange] = []
    for part in text.split(","):
        match = _RANGE.match(part)
        if not match:
            raise ParseError(f"{part.strip()!r} is not a time range; {RANGE_HELP}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ParseError(f"{part.strip()!r} has a time that does not exist; {RANGE_HELP}")
        start = h1 * 60 + m1
        end = h2 * 60 + m2
        length = end - start if end > start else end + MINUTES_PER_DAY - start
        ranges.append(TimeRange(start, length))
    ranges.sort(key=lambda r: r.start)
    for before, after in pairwise(ranges):
        if after.start < before.end:
            raise ParseError(f"the ranges {before} and {after} overlap; {RANGE_HELP}")
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class Promise:
    """How long until a person replies, counted in staffed time: "4 working hours"."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} working {unit}"


def parse_promise(text: str) -> Promise:
    match = _AMOUNT.match(text.lower())
    words = match.group(2).split() if match else []
    if not match or len(words) != 2 or words[0] != "working" or words[1] not in _UNITS:
        raise ParseError(f"{text!r} is not a promise; {PROMISE_HELP}")
    return Promise(int(match.group(1)), _UNITS[words[1]])


def parse_duration(text: str) -> timedelta:
    match = _AMOUNT.match(text.lower())
    if not match or match.group(2) not in _UNITS:
        raise ParseError(f"{text!r} is not a duration; {DURATION_HELP}")
    amount = int(match.group(1))
    unit = _UNITS[match.group(2)]
    return timedelta(**{unit: amount})


def say_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    for size, name in ((MINUTES_PER_DAY, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0 and minutes >= size:
            n = minutes // size
            return f"{n} {name}{'s' if n != 1 else ''}"
    return "0 minutes"
