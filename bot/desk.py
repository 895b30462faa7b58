"""The desk's status, as the public "Message us" page states it before anyone writes.

Worked out at each request from the rules and the clock, with the calendar, the promise and the
words the automatic replies use (bot.schedule, bot.when, the reply templates): whether someone
is at the desk now; if not, when it next opens and the bank holiday or closure that keeps it
shut; when a message sent now would be answered (the reply-by the automatic reply promises);
and who to call instead, from the first paragraph of the emergency and redirect responses that
rules.toml names.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import when
from bot.models import Message
from bot.triage import Triage

CHANNEL = "web"
# The page's red box already says the 999 line; this response says the same in other words.
SAID_ABOVE = "emergency-999"
STAFFED_LOOKAHEAD = timedelta(days=8)  # a desk staffed around the clock has no "until"
log = logging.getLogger("bot.desk")
_Calls = tuple[tuple[str, ...], tuple[str, ...]]
# By the rules in force, then language; weak, so rules replaced by an edit are not kept alive.
_CALLS: weakref.WeakKeyDictionary[Triage, dict[str, _Calls]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Desk:
    """Each time already in words in the page's language ("9am on Tuesday 29 December")."""

    staffed: bool
    until: str | None  # when the desk closes, when staffed now
    opens: str | None  # when it next opens, when not staffed (None: no staffed time ahead)
    holiday_day: str | None  # the bank holiday that keeps it shut: "Monday 31 August"
    holiday: str | None  # and its name: "Summer bank holiday"
    closure: str | None  # a closure that keeps it shut: "the Christmas closure"
    closure_message: str | None
    reply_by: str | None  # as the automatic reply promises (None: "as soon as we can")
    hours: str  # "Monday to Thursday 9am to 5pm, Friday 9am to 4:30pm"
    calls: tuple[str, ...]  # who to call instead, in an emergency
    not_for: tuple[str, ...]  # what the channel does not take, and where to go instead


def desk(triage: Triage, now: datetime, language: str) -> Desk:
    rules = triage.rules
    zone = rules.timezone
    schedule = rules.schedule_for(CHANNEL)
    staffed, opens_at, reply_by = schedule.outlook(now, rules.promise_for(CHANNEL))
    local_now = now.astimezone(zone)

    def say(moment: datetime | None) -> str | None:
        return None if moment is None else when.say_when(moment.astimezone(zone), local_now,
                                                         language)  # fmt: skip

    until: datetime | None = None
    if staffed:  # the end of the staffed time running now, ranges that touch counted as one
        until = now
        for shift in schedule.shifts_from(now):
            if shift.start > until:
                break
            until = max(until, shift.end)
            if until - now > STAFFED_LOOKAHEAD:
                until = None
                break
    holiday = closure = None
    for day in triage.closed_days(schedule, now, opens_at, language):
        if day.bank_holiday:
            holiday = holiday or day
        else:
            closure = closure or day
    calls, not_for = _calls(triage, now, language)
    return Desk(
        staffed=staffed,
        until=say(until),
        opens=say(opens_at),
        holiday_day=None
        if holiday is None
        else when.say_day(holiday.day, local_now.date(), language),
        holiday=None if holiday is None else holiday.reason,
        closure=None if closure is None else closure.reason,
        closure_message=None if closure is None else closure.message,
        reply_by=say(reply_by),
        hours=triage.hours_text(schedule, language),
        calls=calls,
        not_for=not_for,
    )


def _calls(triage: Triage, now: datetime, language: str) -> _Calls:
    """The first paragraph of each emergency and redirect response the rules name, once each:
    the same words a message about it would be answered with."""
    by_language = _CALLS.setdefault(triage, {})
    if language in by_language:
        return by_language[language]
    rules = triage.rules
    schedule = rules.schedule_for(CHANNEL)
    message = Message(CHANNEL, "", "", "", now)
    context = triage.context(message, "", now, schedule, False, None, None, None, None, None,
                             None, None)  # fmt: skip

    def first_paragraphs(names: list[str]) -> tuple[str, ...]:
        out: list[str] = []
        for name in dict.fromkeys(names):
            try:
                text = triage.render_one(name, CHANNEL, language, dict(context), schedule)
            except Exception:  # templates are checked at load; the page must show regardless
                log.exception("response not shown on the form page", extra={"template": name})
                continue
            first = text.strip().split("\n\n", 1)[0].strip()
            if first and first not in out:
                out.append(first)
        return tuple(out)

    emergencies = [c.response for c in rules.emergencies if c.response and c.response != SAID_ABOVE]
    redirects = [c.response for c in rules.redirects if c.response]
    found = (first_paragraphs(emergencies), first_paragraphs(redirects))
    by_language[language] = found
    return found
