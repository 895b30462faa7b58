"""Notices written from the calendar: a closure, a bank holiday or special hours is announced
[announcements] notice_before working days ahead, from the templates notice-closure,
notice-bank-holiday and notice-special-hours (each channel's variant, each language).

A notice is an announcement like any other (it follows the approval setting and shows in the
list), known by a key naming what it is for ("closure:2027-12-24:2027-12-27"); the store keeps
one per key. A notice whose closure is no longer in the rules is withdrawn (cancelled) unless it
has been published.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.announcement import NewAnnouncement
from bot.channels.posting import too_long
from bot.errors import StoreError
from bot.responses import VARIABLES
from bot.schedule import ClosedDay, Schedule
from bot.store import Store
from bot.triage import Triage

log = logging.getLogger("bot.notices")

HORIZON = timedelta(days=45)  # how far ahead the calendar is read for notices
AUTHOR = "calendar"  # who the audit record says wrote a notice
SHORT = "x"  # the channel whose template variants are the short wording


@dataclass(frozen=True, slots=True)
class Notice:
    key: str
    template: str
    day: date  # the first day it is about
    reason: str | None
    due_at: datetime


def _working_day_before(schedule: Schedule, day: date, count: int) -> datetime:
    """The opening time `count` staffed days before `day` (09:00 local if none is found)."""
    found = day
    for _ in range(count):
        found -= timedelta(days=1)
        for _ in range(31):  # skip weekends, holidays and closures
            if schedule.shifts_on(found):
                break
            found -= timedelta(days=1)
    shifts = schedule.shifts_on(found)
    if shifts:
        return shifts[0].start
    return datetime.combine(found, time(9), schedule.timezone)


def upcoming(triage: Triage, now: datetime) -> list[Notice]:
    """The notices the rules call for, about days from tomorrow to HORIZON ahead."""
    rules = triage.rules
    before = rules.announcements.notice_before
    if before <= 0:
        return []
    schedule = rules.schedule_for("web")
    today = schedule.local_date(now)
    out: list[Notice] = []

    def add(key: str, template: str, day: date, reason: str | None) -> None:
        due = _working_day_before(schedule, day, before)
        out.append(Notice(key, template, day, reason, due))

    for closure in rules.closures:
        if today < closure.start <= today + HORIZON:
            key = f"closure:{closure.start}:{closure.end}"
            add(key, "notice-closure", closure.start, closure.reason)
    for day, special in sorted(rules.special_hours.items()):
        if today < day <= today + HORIZON:
            add(f"special-hours:{day}", "notice-special-hours", day, special.reason)
    day = today + timedelta(days=1)
    while day <= today + HORIZON:
        closed = schedule.closed_reason(day)
        previous = schedule.closed_reason(day - timedelta(days=1))
        if closed is not None and closed.bank_holiday and not (previous and previous.bank_holiday):
            add(f"bank-holiday:{day}", "notice-bank-holiday", day, closed.reason)
        day += timedelta(days=1)
    return out


def render(triage: Triage, notice: Notice, channel: str, wording: str | None = None) -> str:
    """The notice's text on one channel, in every language the rules name; `wording` names
    another channel whose template variant to use (the short X one, when a text is too long)."""
    rules = triage.rules
    schedule = rules.schedule_for(channel)
    start = datetime.combine(notice.day, time(), schedule.timezone)
    opens_at = schedule.next_opening(start)
    texts = []
    for language in rules.languages:
        reason = schedule.closed_reason(notice.day, language)
        said = reason or ClosedDay(notice.day, notice.reason or "", bank_holiday=False)
        context: dict[str, Any] = dict.fromkeys(VARIABLES)
        context.update(
            organisation=rules.name_in(language),
            channel=channel,
            now=notice.due_at,
            language=language,
            opens_at=opens_at,
            closure=said,
            holiday=said,
            staffed=False,
        )
        variant = wording or channel
        texts.append(triage.responses.render(language, notice.template, variant, context))
    return "\n\n".join(texts)


def draft(
    triage: Triage, notice: Notice, channels: Sequence[str], now: datetime
) -> NewAnnouncement | None:
    """The notice as an announcement on the `channels` its text fits (a channel whose text is too
    long even in the short X wording is left out, and logged); None if too late or none fits."""
    due = max(notice.due_at, now)
    if due.astimezone(triage.rules.timezone).date() >= notice.day:
        return None
    texts = {}
    for channel in channels:  # a text too long for one channel loses that channel, not all
        text = render(triage, notice, channel)
        if too_long(channel, text) is not None:
            text = render(triage, notice, channel, wording=SHORT)
        if (why := too_long(channel, text)) is not None:
            log.error(
                "notice too long for a channel: shorten its template",
                extra={"notice": notice.key, "channel": channel, "problem": why},
            )
            continue
        texts[channel] = text
    if not texts:
        return None
    base = next(iter(texts.values()))
    wall = due.astimezone(triage.rules.timezone).strftime("%Y-%m-%dT%H:%M")
    state = "approval" if triage.rules.announcements.approval else "scheduled"
    versions = tuple((c, None if t == base else t) for c, t in texts.items())
    zone = triage.rules.timezone.key
    return NewAnnouncement(base, due, wall, zone, versions, AUTHOR, state, notice.key)


async def sync(triage: Triage, store: Store, channels: Sequence[str], now: datetime) -> int:
    """Draft the notices due and not yet drafted; withdraw those the rules no longer call for.
    Return how many were drafted."""
    if not channels:
        return 0
    wanted = upcoming(triage, now)
    keys = {n.key for n in wanted}
    for announcement in await store.announcements(now):
        if announcement.notice and announcement.notice not in keys:
            withdrawn = await store.cancel_announcement(announcement.id, AUTHOR, now)
            if withdrawn:
                log.info("notice withdrawn", extra={"notice": announcement.notice})
    drafted = 0
    for notice in wanted:
        if notice.due_at > now + timedelta(days=7):  # drafted a week ahead, to be seen
            continue
        if await store.notice_announcement(notice.key) is not None:
            continue
        new = draft(triage, notice, list(channels), now)
        if new is None:
            continue
        try:
            await store.add_announcement(new, now)
        except StoreError:  # another process drafted it at the same moment
            continue
        drafted += 1
        log.info("notice drafted", extra={"notice": notice.key, "due": new.wall_time})
    return drafted
