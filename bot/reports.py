"""Reports for management: what came in and went out, how fast, at what estimated cost.

The database counts (Store.report); this module adds what needs the calendar (working time),
the contacts imported from other channels and their costs, and writes JSON, CSV or HTML.
"""

from __future__ import annotations

import csv
import io
import re
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import CHANNELS, Rules
from bot.errors import HoldingReplyError
from bot.moments import read_date, start_of_day
from bot.schedule import Schedule
from bot.store import Contact, Figures, ReportData

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Other names people give the channels of the costs table.
_ALIASES = {
    "telephone": "phone",
    "tel": "phone",
    "calls": "phone",
    "f2f": "face_to_face",
    "in_person": "face_to_face",
    "face2face": "face_to_face",
    "e_mail": "email",
}
MAX_PROBLEMS = 20


# Importing contacts from other channels.


def channel_name(text: str) -> str:
    """ "Face-to-face" -> "face_to_face", "Telephone" -> "phone": the names [costs] uses."""
    name = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    return _ALIASES.get(name, name)


def read_contacts(path: Path) -> list[Contact]:
    """The rows of a CSV with the columns date, channel, count (in any order, other columns
    ignored). Raises HoldingReplyError naming the file and line of every problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise HoldingReplyError(f"Cannot read {path}: {e}") from e
    return parse_contacts(text, str(path))


def parse_contacts(text: str, where: str) -> list[Contact]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    columns = [c.strip().lower() for c in header or []]
    missing = [c for c in ("date", "channel", "count") if c not in columns]
    if missing:
        raise HoldingReplyError(
            f"{where} line 1: the first line must name the columns date, channel, count "
            f"(missing: {', '.join(missing)}); found {', '.join(columns) or 'nothing'}."
        )
    at = {name: columns.index(name) for name in ("date", "channel", "count")}
    problems: list[str] = []
    seen: dict[tuple[date, str], int] = {}
    out: list[Contact] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(columns):
            problems.append(f"{where} line {line}: expected {len(columns)} columns, got {len(row)}")
            continue
        raw_day, raw_channel, raw_count = (row[at[c]].strip() for c in ("date", "channel", "count"))
        try:
            day = read_date(raw_day, "date")
        except HoldingReplyError:
            problems.append(
                f"{where} line {line}: date {raw_day!r} is not a date; expected YYYY-MM-DD, "
                "such as 2026-03-31, or DD/MM/YYYY"
            )
            continue
        channel = channel_name(raw_channel)
        if not channel:
            problems.append(f"{where} line {line}: the channel is empty; e.g. phone, email")
            continue
        # Email stays importable: the mailbox the email channel reads is counted already, but most
        # organisations have other mailboxes (the general enquiries one) whose mail it is not.
        if channel in CHANNELS and channel != "email":
            problems.append(
                f"{where} line {line}: channel {raw_channel!r} is one of Holding Reply's own "
                "channels, whose messages are counted already; import other channels only "
                "(phone, face_to_face, email...)"
            )
            continue
        number = raw_count.replace(",", "")
        if not number.isdigit():
            problems.append(
                f"{where} line {line}: count {raw_count!r} is not a whole number of contacts "
                "(0 or more)"
            )
            continue
        earlier = seen.get((day, channel))
        if earlier is not None:
            problems.append(
                f"{where} line {line}: {day} {channel} is already on line {earlier}; give each "
                "date and channel once"
            )
            continue
        seen[day, channel] = line
        out.append(Contact(day, channel, int(number)))
    if problems:
        more = len(problems) - MAX_PROBLEMS
        shown = problems[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise HoldingReplyError("\n".join([*shown, "Nothing was imported."]))
    if not out:
        raise HoldingReplyError(f"{where} has no rows after its header; nothing was imported.")
    return out


# Working time: the calendar lives in Python, so it is computed from the answered messages'
# (received, first human reply) pairs, with every staffed range of the period laid out once.


def working_seconds(schedule: Schedule, pairs: array[float]) -> list[float]:
    """The staffed time between each pair (received, replied), in seconds."""
    if not pairs:
        return []
    first = datetime.fromtimestamp(min(pairs[0::2]), UTC)
    last = datetime.fromtimestamp(max(pairs[1::2]), UTC)
    day = schedule.local_date(first) - timedelta(days=1)  # an overnight range may be open
    spans: list[tuple[float, float]] = []
    while day <= schedule.local_date(last):
        spans.extend((s.start.timestamp(), s.end.timestamp()) for s in schedule.shifts_on(day))
        day += timedelta(days=1)
    starts: list[float] = []
    ends: list[float] = []
    for begin, finish in sorted(spans):  # overlapping ranges count once
        if ends and begin <= ends[-1]:
            ends[-1] = max(ends[-1], finish)
        else:
            starts.append(begin)
            ends.append(finish)
    before = [0.0]  # staffed time before each range
    for begin, finish in zip(starts, ends, strict=True):
        before.append(before[-1] + finish - begin)

    def staffed_until(t: float) -> float:
        i = bisect_right(starts, t) - 1
        if i < 0:
            return 0.0
        return before[i] + min(t - starts[i], ends[i] - starts[i])

    return [
        max(0.0, staffed_until(b) - staffed_until(a))
        for a, b in zip(pairs[0::2], pairs[1::2], strict=True)
    ]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Of sorted values, as PostgreSQL's percentile_cont: interpolated at p * (n - 1)."""
    if not values:
        return None
    position = p * (len(values) - 1)
    i = int(position)
    after = values[i + 1] if i + 1 < len(values) else values[i]
    return values[i] + (position - i) * (after - values[i])


# The report.


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the figures table: the database's counts and the working times."""

    figures: Figures
    working_median_seconds: float | None
    working_p90_seconds: float | None


@dataclass(frozen=True)
class Report:
    organisation: str
    timezone: str
    start: date
    end: date  # the first date not included
    generated_at: datetime
    overall: Row
    by_channel: list[Row]
    by_team: list[Row]
    hours: list[list[int]]  # [weekday][hour], local time
    backlog: list[tuple[date, int, int, int]]  # date, received, done, open at the end of it
    contacts: list[tuple[str, int, float | None]]  # channel, contacts, cost of one (None: unset)
    phone_cost: float
    online_cost: float
    cost_source: str

    @property
    def social_messages(self) -> int:
        return self.overall.figures.messages

    @property
    def estimated_saving(self) -> float:
        """What the social channels' messages would have cost more as phone calls."""
        return self.social_messages * (self.phone_cost - self.online_cost)


def local_range(start: date, end: date, rules: Rules) -> tuple[datetime, datetime]:
    """[start, end) of local dates as UTC instants: local midnight to local midnight."""
    return start_of_day(start, rules.timezone), start_of_day(end, rules.timezone)


def build(data: ReportData, rules: Rules, start: date, end: date, now: datetime) -> Report:
    """The report of [start, end) (local dates) from what the store counted."""
    working: dict[tuple[str, str], list[float]] = {}
    for (channel, team), pairs in data.first_replies.items():
        seconds = working_seconds(rules.schedule_for(channel, team), pairs)
        for key in (("all", "all"), ("channel", channel), ("team", team or "default")):
            working.setdefault(key, []).extend(seconds)

    def row(by: str, figures: Figures) -> Row:
        values = sorted(working.get((by, figures.group), []))
        return Row(figures, percentile(values, 0.5), percentile(values, 0.9))

    hours = [[data.hours.get((d, h), 0) for h in range(24)] for d in range(7)]
    backlog: list[tuple[date, int, int, int]] = []
    still_open = data.open_at_start
    day = start
    while day < end:
        received, done = data.days.get(day, (0, 0))
        still_open += received - done
        backlog.append((day, received, done, still_open))
        day += timedelta(days=1)
    counts: dict[str, int] = {f.group: f.messages for f in data.by_channel}
    for contact in data.contacts:
        counts[contact.channel] = counts.get(contact.channel, 0) + contact.count
    costs = rules.costs
    return Report(
        organisation=rules.name,
        timezone=rules.timezone.key,
        start=start,
        end=end,
        generated_at=now,
        overall=row("all", data.overall),
        by_channel=[row("channel", f) for f in data.by_channel],
        by_team=[row("team", f) for f in data.by_team],
        hours=hours,
        backlog=backlog,
        contacts=[(name, count, costs.of(name)) for name, count in sorted(counts.items())],
        phone_cost=costs.unit.get("phone", 0.0),
        online_cost=costs.unit.get("online", 0.0),
        cost_source=costs.source,
    )


def saving_text(report: Report) -> str:
    return (
        f"ESTIMATE, not a measured cost: had each of the {report.social_messages} messages on "
        f"social channels been a telephone call instead (£{report.phone_cost:.2f} a contact, "
        f"against £{report.online_cost:.2f} online), it would have cost about "
        f"£{report.estimated_saving:,.2f} more. Source of the unit costs: {report.cost_source}."
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


def _row_json(row: Row) -> dict[str, Any]:
    f = row.figures
    return {
        "group": f.group,
        "messages": f.messages,
        "auto_replies": f.auto_replies,
        "human_replies": f.human_replies,
        "out_of_hours": f.out_of_hours,
        "out_of_hours_share": _share(f.out_of_hours, f.messages),
        "emergencies": f.emergencies,
        "emergencies_share": _share(f.emergencies, f.messages),
        "possible_emergencies": f.possible_emergencies,
        "redirects": f.redirects,
        "redirects_share": _share(f.redirects, f.messages),
        "answered": f.answered,
        "first_reply_median_seconds": _seconds(f.median_seconds),
        "first_reply_p90_seconds": _seconds(f.p90_seconds),
        "first_reply_working_median_seconds": _seconds(row.working_median_seconds),
        "first_reply_working_p90_seconds": _seconds(row.working_p90_seconds),
        "with_promise": f.with_promise,
        "promises_kept": f.promises_kept,
        "promises_kept_share": _share(f.promises_kept, f.with_promise),
    }


def to_json(report: Report) -> dict[str, Any]:
    return {
        "organisation": report.organisation,
        "timezone": report.timezone,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "to_is_excluded": True,
        "generated_at": report.generated_at.isoformat(),
        "overall": _row_json(report.overall),
        "by_channel": [_row_json(r) for r in report.by_channel],
        "by_team": [_row_json(r) for r in report.by_team],
        "busiest_hours": {name: report.hours[i] for i, name in enumerate(DAY_NAMES)},
        "backlog": [
            {"date": d.isoformat(), "received": r, "done": dn, "open_at_end": o}
            for d, r, dn, o in report.backlog
        ],
        "contacts": [
            {"channel": c, "contacts": n, "unit_cost": u, "estimated_cost": _cost(n, u)}
            for c, n, u in report.contacts
        ],
        "estimated_saving": {
            "is_estimate": True,
            "social_messages": report.social_messages,
            "phone_unit_cost": report.phone_cost,
            "online_unit_cost": report.online_cost,
            "saving": round(report.estimated_saving, 2),
            "source": report.cost_source,
            "text": saving_text(report),
        },
    }


def _cost(count: int, unit: float | None) -> float | None:
    return None if unit is None else round(count * unit, 2)


# CSV: one file, for Excel: UTF-8 with a byte order mark (so £ and accents show), one section
# per table, each a title line, a header line and its rows, with an empty line between.

_CSV_COLUMNS = (
    ("group", "group"),
    ("messages in", "messages"),
    ("automatic replies", "auto_replies"),
    ("human replies", "human_replies"),
    ("out of hours", "out_of_hours"),
    ("out of hours %", "out_of_hours_share"),
    ("emergencies", "emergencies"),
    ("emergencies %", "emergencies_share"),
    ("possible emergencies", "possible_emergencies"),
    ("redirects", "redirects"),
    ("redirects %", "redirects_share"),
    ("answered", "answered"),
    ("first reply median (min)", "first_reply_median_seconds"),
    ("first reply 90th percentile (min)", "first_reply_p90_seconds"),
    ("first reply median, working time (min)", "first_reply_working_median_seconds"),
    ("first reply 90th percentile, working time (min)", "first_reply_working_p90_seconds"),
    ("with a promise", "with_promise"),
    ("promises kept", "promises_kept"),
    ("promises kept %", "promises_kept_share"),
)


def _csv_value(key: str, value: Any) -> Any:
    if value is None:
        return ""
    if key.endswith("_share"):
        return round(value * 100, 1)
    if key.endswith("_seconds"):
        return round(value / 60, 1)
    return value


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    period = f"{report.start} to {report.end - timedelta(days=1)} (inclusive)"
    w.writerow([f"{report.organisation}: report for {period}, times in {report.timezone}"])
    w.writerow([])
    for title, rows in (
        ("Overall", [report.overall]),
        ("By channel", report.by_channel),
        ("By team", report.by_team),
    ):
        w.writerow([title])
        w.writerow([label for label, _ in _CSV_COLUMNS])
        for row in rows:
            data = _row_json(row)
            w.writerow([_csv_value(key, data[key]) for _, key in _CSV_COLUMNS])
        w.writerow([])
    w.writerow([f"Busiest hours: messages received, local time ({report.timezone})"])
    w.writerow(["day", *(f"{h:02d}:00" for h in range(24))])
    for name, counts in zip(DAY_NAMES, report.hours, strict=True):
        w.writerow([name, *counts])
    w.writerow([])
    w.writerow(["Backlog"])
    w.writerow(["date", "received", "marked done", "open at the end of the day"])
    w.writerows([d.isoformat(), r, dn, o] for d, r, dn, o in report.backlog)
    w.writerow([])
    w.writerow(["Contacts by channel"])
    w.writerow(["channel", "contacts", "cost of one (£)", "estimated cost (£)"])
    for channel, count, unit in report.contacts:
        w.writerow([channel, count, "" if unit is None else unit, _cost(count, unit) or ""])
    w.writerow([])
    w.writerow(["Estimated saving (£)", round(report.estimated_saving, 2)])
    w.writerow([saving_text(report)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_html(report: Report) -> str:
    """The report as one self-contained HTML page (bot.report_html)."""
    from bot.report_html import page

    return page(report)
