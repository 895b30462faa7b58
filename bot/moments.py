"""Reading the dates and times people type: `--at`, `--from`, `--to`, a CSV's dates.

One place decides what a time without an offset means (the organisation's local time, as on
the clock on the office wall), so no command can read it another way. Everything returned is an
aware UTC datetime, or a plain date for a day on the calendar.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from bot.errors import HoldingReplyError

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_UK_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")  # how Excel writes UK dates


def read_date(text: str, what: str) -> date:
    """A day: "2027-07-01" or "01/07/2027" (day first, as in the UK).

    `what` names the option or column in the message, e.g. "--from".
    """
    text = text.strip()
    try:
        if _ISO_DAY.fullmatch(text):
            return date.fromisoformat(text)
        found = _UK_DAY.fullmatch(text)
        if found:
            return date(int(found[3]), int(found[2]), int(found[1]))
    except ValueError:
        pass
    raise HoldingReplyError(
        f"{what} {text!r} is not a date; expected YYYY-MM-DD, such as 2027-07-01, or DD/MM/YYYY"
    )


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight at the start of `day`, in UTC."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def read_time(text: str, zone: ZoneInfo | None, what: str, *, day: bool = False) -> datetime:
    """The moment a person meant, as an aware UTC datetime.

    ISO 8601 ("2027-07-01T10:00", "2027-07-01 10:00", "2027-07-01T10:00+01:00"). Without an
    offset it is local time in `zone`: 10:00 in July is 09:00 UTC, in January 10:00 UTC. A date
    alone ("2027-07-01", "01/07/2027") is the start of that day, local time; with `day=True`
    only a date is accepted. A local time that the clock change skips (01:30 on the day the
    clocks go forward) or that happens twice (01:30 on the day they go back) is refused with
    what to write instead, rather than guessed. `zone` is None when the organisation's zone
    cannot be known (rules.toml has mistakes): then only a time with an offset can be read.
    """
    text = text.strip()
    if day or _ISO_DAY.fullmatch(text) or _UK_DAY.fullmatch(text):
        return start_of_day(read_date(text, what), _known(zone, what, text))
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise HoldingReplyError(
            f"{what} {text!r} is not a date and time; expected ISO 8601 such as 2027-07-01T10:00 "
            "(local time) or 2027-07-01T10:00+01:00"
        ) from None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    return _local(value, _known(zone, what, text), what, text)


def _known(zone: ZoneInfo | None, what: str, text: str) -> ZoneInfo:
    if zone is None:
        raise HoldingReplyError(
            f"{what} {text!r} is local time, but the organisation's time zone cannot be read "
            "from rules.toml (run python -m bot check). Fix the rules, or give the time with "
            "its offset, e.g. 2027-07-01T10:00+01:00"
        )
    return zone


def _local(wall: datetime, zone: ZoneInfo, what: str, text: str) -> datetime:
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    moment = first.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != wall:  # the clocks skip it
        later = moment.astimezone(zone)  # the same moment, read on the clock after the change
        raise HoldingReplyError(
            f"{what} {text!r} does not exist in {zone.key}: the clocks go forward then. "
            f"Write {later:%Y-%m-%dT%H:%M} (the same moment on the new clock), or add an offset"
        )
    raise HoldingReplyError(
        f"{what} {text!r} happens twice in {zone.key}: the clocks go back then. Add an offset: "
        f"{_with_offset(first)} for the first time, {_with_offset(second)} for the second"
    )


def _with_offset(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")
