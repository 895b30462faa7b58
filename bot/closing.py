"""Close now: the desk closed from now until a time, for snow, a flood or an outage.

A closure is written into rules.toml, at its end, as a block between two marked comments, using
only what rules.toml already says: [[closures]] for the whole days, and [[special_hours]] for a
day the desk reopens part-way through. So a closure is a version like any other: checked,
previewed, in the history, restorable, and followed by every process. Ending it early removes
the block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import tomli

from bot import when
from bot.config import Rules
from bot.errors import HoldingReplyError
from bot.versions import RULES

BEGIN = "# >>> Closed now."
END = "# <<< End of closed now."
MAX_REASON = 100
MAX_MESSAGE = 300


class ClosingError(HoldingReplyError):
    """A closure that cannot be written as asked; the text says what to change, and `field`
    which of until, reason and message it is about."""

    def __init__(self, message: str, field: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Closing:
    """The closure a version's rules.toml holds: until when, why, and who closed the desk."""

    until: datetime  # aware UTC
    reason: str
    message: str | None
    by: str


def default_until(rules: Rules, now: datetime) -> datetime:
    """The next time the desk would open on a later day than today: "until 9am tomorrow"."""
    schedule = rules.schedule_for("web")
    today = schedule.local_date(now)
    for shift in schedule.shifts_from(now):
        if shift.day > today and shift.start > now:
            return shift.start
    return now + timedelta(days=1)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a TOML basic string is a JSON string


def block(
    rules: Rules, now: datetime, until: datetime, reason: str, message: str | None, by: str
) -> str:
    """The rules.toml text of a closure from now until `until`."""
    reason, message = " ".join(reason.split()), " ".join((message or "").split()) or None
    if not reason:
        raise ClosingError("Say why the desk is closed, e.g. “severe weather”.", "reason")
    if len(reason) > MAX_REASON:
        raise ClosingError(
            f"The reason is {len(reason)} characters; at most {MAX_REASON}.", "reason"
        )
    if message and len(message) > MAX_MESSAGE:
        raise ClosingError(
            f"The extra sentence is {len(message)} characters; at most {MAX_MESSAGE}.", "message"
        )
    if until <= now:
        raise ClosingError("“Until” must be later than now.", "until")
    if until > now + timedelta(days=366):
        raise ClosingError("“Until” must be within a year; for longer, edit the hours.", "until")
    tz = rules.timezone
    schedule = rules.schedule_for("web")
    today, last = schedule.local_date(now), schedule.local_date(until)
    shifts = schedule.shifts_on(last)  # bank holidays and other closures already left out
    partial = [s for s in shifts if s.start < until < s.end]
    later = [s for s in shifts if s.start >= until]

    def hhmm(at: datetime) -> str:
        return at.astimezone(tz).strftime("%H:%M")

    lines = [
        BEGIN + " “End the closure” in the inbox, or python -m bot close --end, removes it.",
        f"# until = {until.astimezone(UTC).isoformat()}",
        f"# by = {_quote(by)}",
    ]
    closed_to = last if not partial and not later else last - timedelta(days=1)
    if closed_to >= today:
        lines += ["[[closures]]", f'from = "{today}"', f'to = "{closed_to}"']
        lines.append(f"reason = {_quote(reason)}")
        if message:
            lines.append(f"message = {_quote(message)}")
    if partial:
        if last in rules.special_hours:
            raise ClosingError(
                f"{last} already has special hours in rules.toml: close until the end of that "
                "day, or change its special hours on the Edit page.",
                "until",
            )
        ranges = [f"{hhmm(until)}-{hhmm(r.end)}" for r in partial]
        ranges += [f"{hhmm(r.start)}-{hhmm(r.end)}" for r in later]
        lines += ["[[special_hours]]", f'date = "{last}"', f'hours = "{", ".join(ranges)}"']
        lines.append(f"reason = {_quote(reason)}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def without(text: str) -> str:
    """rules.toml without its closure block (unchanged if it has none)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith(BEGIN):
            inside = True
            while out and not out[-1].strip():
                out.pop()
            continue
        if inside:
            inside = not line.startswith(END)
            continue
        out.append(line)
    result = "".join(out)
    return result if result.endswith("\n") or not result else result + "\n"


def with_block(text: str, closure: str) -> str:
    return without(text).rstrip("\n") + "\n\n" + closure


def current(text: str) -> Closing | None:
    """The closure block in rules.toml, if there is one."""
    start = text.find(BEGIN)
    if start < 0:
        return None
    end = text.find(END, start)
    body = text[start : end if end >= 0 else len(text)]
    until = by = None
    for line in body.splitlines():
        if line.startswith("# until = "):
            until = datetime.fromisoformat(line.removeprefix("# until = ").strip())
        elif line.startswith("# by = "):
            by = json.loads(line.removeprefix("# by = "))
    try:
        data = tomli.loads(body)
    except tomli.TOMLDecodeError:
        return None
    entry = (data.get("closures") or data.get("special_hours") or [{}])[0]
    if until is None or not isinstance(entry, dict):
        return None
    return Closing(until, str(entry.get("reason", "")), entry.get("message"), str(by or "?"))


def closed(files: dict[str, str], closure: str) -> dict[str, str]:
    return {**files, RULES: with_block(files[RULES], closure)}


def reopened(files: dict[str, str]) -> dict[str, str]:
    return {**files, RULES: without(files[RULES])}


def closed_words(by: str, until: datetime, reason: str, rules: Rules, now: datetime) -> str:
    """ "Jo Smith closed the desk until 9am tomorrow: severe weather" """
    tz = rules.timezone
    said = when.say_when(until.astimezone(tz), now.astimezone(tz), "en")
    return f"{by} closed the desk until {said}: {reason}"


def reopened_words(by: str, closing: Closing | None) -> str:
    why = f" (closed for {closing.reason})" if closing and closing.reason else ""
    return f"{by} ended the closure early{why}: the desk keeps its usual hours again"
