"""How long the team has lately taken to reply: for templates, `typical_reply`.

Intercom's users praise it for saying what the wait has really been, measured from recent
replies, beside what is promised. Here it is the median time to the first human reply over the
last four weeks, counted in staffed time only (a message left at 5pm on Friday and answered at
9:30am on Monday took half an hour), for the message's channel and team. A message routed to a
team hears only that team's figure: the channel's would tell someone writing about planning how
fast the bin questions are answered. A message with no team hears its channel's, all teams
together. With fewer than MIN_REPLIES answers behind a figure there is none, and templates say
nothing rather than something a handful of replies made up.

Each process measures it from the store every REFRESH (a report of four weeks, the same counting
as `python -m bot report`), and triage takes the latest measure as one more input.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.config import Rules
from bot.durations import Promise
from bot.reports import working_seconds
from bot.schedule import Schedule
from bot.store import Store

WINDOW = timedelta(days=28)
MIN_REPLIES = 20
REFRESH = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Typical:
    """Median staffed time to a first human reply, by (channel, team) and by channel."""

    teams: Mapping[tuple[str, str | None], Promise] = field(default_factory=dict)
    channels: Mapping[str, Promise] = field(default_factory=dict)
    measured_at: datetime | None = None

    def for_(self, channel: str, team: str | None) -> str | None:
        """In words, "3 working hours", or None when too few replies say it."""
        found = self.teams.get((channel, team))
        if team is None:
            found = found or self.channels.get(channel)
        return str(found) if found else None


NOTHING = Typical()


def staffed_day(schedule: Schedule) -> float:
    """The average length of a staffed day of the week, in seconds (8 hours if none is)."""
    days = [sum(r.length for r in day) for day in schedule.weekly if day]
    return 60.0 * sum(days) / len(days) if days else 8 * 3600.0


def in_words(seconds: float, day: float) -> Promise:
    """A staffed time as a promise would say it: to 5 minutes under an hour, to the hour under a
    staffed day, else to the day. Never zero: a reply within the minute took "5 working
    minutes"."""
    minutes = 5 * _nearest(seconds / 300)
    if minutes < 60:
        return Promise(max(5, minutes), "minutes")
    if seconds < day or day < 3600:
        return Promise(max(1, _nearest(seconds / 3600)), "hours")
    return Promise(max(1, _nearest(seconds / day)), "days")


def _nearest(x: float) -> int:
    """Halves up, as people round: 2.5 working hours is "3", not Python's "2"."""
    return int(x + 0.5)


async def measure(store: Store, rules: Rules, now: datetime) -> Typical:
    """The medians of the WINDOW before `now`, from the store."""
    data = await store.report(now - WINDOW, now, rules.timezone)
    teams: dict[tuple[str, str | None], Promise] = {}
    pooled: dict[str, list[float]] = {}
    for (channel, team), pairs in data.first_replies.items():
        schedule = rules.schedule_for(channel, team)
        seconds = working_seconds(schedule, pairs)
        if len(seconds) >= MIN_REPLIES:
            teams[(channel, team)] = in_words(statistics.median(seconds), staffed_day(schedule))
        pooled.setdefault(channel, []).extend(seconds)
    channels = {
        channel: in_words(statistics.median(seconds), staffed_day(rules.schedule_for(channel)))
        for channel, seconds in pooled.items()
        if len(seconds) >= MIN_REPLIES
    }
    return Typical(teams, channels, now)


__all__ = ["MIN_REPLIES", "NOTHING", "REFRESH", "WINDOW", "Typical", "in_words", "measure"]
