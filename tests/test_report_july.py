"""A held-out check of the report's figures in summer time, end to end as a comms officer works.

Messages arrive in July 2027 (BST, UTC+1) and are decided by the real triage of a small
rules.toml written in an empty folder (so it uses the shipped templates); replies are recorded
with `python -m bot replied REF --at <local time>`; `python -m bot report` counts July. Every
figure is worked out by hand below, from the local times alone. m4's reply comes at 12:30 for a
13:00 promise: read as UTC it would land at 13:30 and the promise would count as broken.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.check import load
from bot.models import Message
from bot.store import open_store
from tests.test_cli import run

LONDON = ZoneInfo("Europe/London")
RULES = """\
[organisation]
name = "Julytown Council"
timezone = "Europe/London"
bank_holidays = "none"

[hours]
monday = "09:00-17:00"
tuesday = "09:00-17:00"
wednesday = "09:00-17:00"
thursday = "09:00-17:00"
friday = "09:00-17:00"

[promise]
first_reply = "4 working hours"

[channels.web]
[channels.telegram]

[[emergency]]
name = "fire"
phrases = ["on fire"]
response = "emergency-999"

[[redirect]]
name = "crime-report"
phrases = ["report a crime"]
response = "redirect-crime"

[[team]]
name = "waste"
phrases = ["bin"]
promise = "1 working day"
"""

# name: (channel, arrived (local), text, reply_by worked out by hand (local), replied (local))
MESSAGES = {
    # Wednesday 30 June, 23:30 BST = 22:30 UTC: June, not July (but still open on 1 July).
    "m0": ("web", "2027-06-30T23:30", "hello", "2027-07-01T13:00", None),
    # Monday 10:00, waste (1 working day: by closing time on Tuesday). Answered after 1h30.
    "m1": ("web", "2027-07-05T10:00", "my bin was not collected", "2027-07-06T17:00",
           "2027-07-05T11:30"),
    # Monday 16:00, no team, 4 working hours: 1 h on Monday, 3 on Tuesday -> Tuesday 12:00.
    "m2": ("web", "2027-07-05T16:00", "a question about council tax", "2027-07-06T12:00",
           "2027-07-06T10:00"),
    # Tuesday 20:00, closed: an emergency. 4 working hours from Wednesday 9:00.
    "m3": ("telegram", "2027-07-06T20:00", "the house next door is on fire", "2027-07-07T13:00",
           "2027-07-06T20:10"),
    # Wednesday 08:00, closed: a redirect. Answered at 12:30, half an hour inside the promise.
    "m4": ("telegram", "2027-07-07T08:00", "I want to report a crime", "2027-07-07T13:00",
           "2027-07-07T12:30"),
    # Thursday 12:00, never answered.
    "m5": ("web", "2027-07-08T12:00", "hello there", "2027-07-08T16:00", None),
    # Friday 16:30, waste: day 0 is Friday, so by closing time on Monday 12 July.
    "m6": ("web", "2027-07-09T16:30", "the bin again", "2027-07-12T17:00", "2027-07-12T09:30"),
    # Saturday 31 July, 23:30 BST = 22:30 UTC: still July. Closed; never answered.
    "m7": ("web", "2027-07-31T23:30", "hello", "2027-08-02T13:00", None),
}  # fmt: skip


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(UTC)


async def arrive(url: str, rules: Path) -> dict[str, str]:
    """Each message stored as the server stores it: decided by the real triage on arrival."""
    triage = load(rules)
    references = {}
    async with open_store(url) as store:
        for name, (channel, arrived, text, reply_by, _) in MESSAGES.items():
            message = Message(channel, name, f"sender-{name}", text, local(arrived))
            ingested = await store.ingest(
                message, lambda state, ref, m=message: triage.decide(m, state, ref)
            )
            assert ingested.item.reply_by == local(reply_by), name  # the hand-worked promise
            references[name] = ingested.item.reference
    return references


def row(
    group: str, messages: int, human: int, out_of_hours: int, emergencies: int, redirects: int,
    clock: tuple[int | None, int | None], working: tuple[int | None, int | None], kept: int,
) -> dict[str, object]:  # fmt: skip
    def share(part: int) -> float:
        return round(part / messages, 4)

    answered = human  # one reply per answered message here
    return {
        "group": group,
        "messages": messages,
        "auto_replies": messages,  # every message had its automatic reply, in July
        "human_replies": human,
        "out_of_hours": out_of_hours,
        "out_of_hours_share": share(out_of_hours),
        "emergencies": emergencies,
        "emergencies_share": share(emergencies),
        "possible_emergencies": 0,  # none of July's messages is only possibly an emergency
        "redirects": redirects,
        "redirects_share": share(redirects),
        "answered": answered,
        "first_reply_median_seconds": clock[0],
        "first_reply_p90_seconds": clock[1],
        "first_reply_working_median_seconds": working[0],
        "first_reply_working_p90_seconds": working[1],
        "with_promise": messages,
        "promises_kept": kept,
        "promises_kept_share": share(kept),
    }


def test_july_figures_agree_with_the_hand_worked_ones(database: str, tmp_path: Path) -> None:
    folder = tmp_path / "julytown"  # nothing but rules.toml: the shipped templates answer
    folder.mkdir()
    rules = folder / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    references = asyncio.run(arrive(database, rules))
    env = {"DATABASE_URL": database}
    for name, (*_, replied) in MESSAGES.items():
        if replied:
            done = run("replied", references[name], "--by", "sam", "--at", replied,
                       "--rules", str(rules), env=env)  # fmt: skip
            assert done.returncode == 0, done.stderr

    result = run("report", "--rules", str(rules), "--from", "2027-07-01", "--to", "2027-08-01",
                 env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    # First replies in clock time (s): m3 600, m1 5400, m4 16200, m2 64800, m6 234000 (Friday
    # 16:30 to Monday 09:30). In working time: m3 0 (at night), m6 3600 (30 min Friday, 30 min
    # Monday), m1 5400, m2 7200 (16:00-17:00, 09:00-10:00), m4 12600 (09:00-12:30).
    # Percentiles as percentile_cont: the 90th of five is 0.6 of the way from the 4th to the 5th.
    assert report["overall"] == row(
        "all", 7, human=5, out_of_hours=3, emergencies=1, redirects=1,
        clock=(16200, 64800 + round(0.6 * (234000 - 64800))),
        working=(5400, 7200 + round(0.6 * (12600 - 7200))),
        kept=5,  # m1 m2 m3 m4 m6; m5 and m7 never answered
    )  # fmt: skip
    assert report["by_channel"] == [
        row("telegram", 2, human=2, out_of_hours=2, emergencies=1, redirects=1,
            clock=(8400, 600 + round(0.9 * 15600)), working=(6300, round(0.9 * 12600)),
            kept=2),
        row("web", 5, human=3, out_of_hours=1, emergencies=0, redirects=0,
            clock=(64800, 64800 + round(0.8 * (234000 - 64800))),
            working=(5400, 5400 + round(0.8 * 1800)), kept=3),
    ]  # fmt: skip
    assert report["by_team"] == [
        row("default", 5, human=3, out_of_hours=3, emergencies=1, redirects=1,
            clock=(16200, 16200 + round(0.8 * (64800 - 16200))),
            working=(7200, 7200 + round(0.8 * (12600 - 7200))), kept=3),
        row("waste", 2, human=2, out_of_hours=0, emergencies=0, redirects=0,
            clock=(119700, 5400 + round(0.9 * (234000 - 5400))),
            working=(4500, 3600 + round(0.9 * 1800)), kept=2),
    ]  # fmt: skip

    # Busiest hours, in local time: one message in each of these hours, none in any other.
    expected_hours = {
        "Monday": {10: 1, 16: 1}, "Tuesday": {20: 1}, "Wednesday": {8: 1},
        "Thursday": {12: 1}, "Friday": {16: 1}, "Saturday": {23: 1}, "Sunday": {},
    }  # fmt: skip
    assert report["busiest_hours"] == {
        day: [hours.get(h, 0) for h in range(24)] for day, hours in expected_hours.items()
    }
    # Backlog: m0 is open as July starts; nothing is marked done.
    arrivals = {"2027-07-05": 2, "2027-07-06": 1, "2027-07-07": 1, "2027-07-08": 1,
                "2027-07-09": 1, "2027-07-31": 1}  # fmt: skip
    still_open = 1
    backlog = []
    for day in range(1, 32):
        date = f"2027-07-{day:02d}"
        still_open += arrivals.get(date, 0)
        backlog.append({"date": date, "received": arrivals.get(date, 0), "done": 0,
                        "open_at_end": still_open})  # fmt: skip
    assert report["backlog"] == backlog
    assert report["contacts"] == [
        {"channel": "telegram", "contacts": 2, "unit_cost": 0.15, "estimated_cost": 0.3},
        {"channel": "web", "contacts": 5, "unit_cost": 0.15, "estimated_cost": 0.75},
    ]
    saving = report["estimated_saving"]
    assert saving["social_messages"] == 7
    assert saving["saving"] == round(7 * (2.83 - 0.15), 2)
    assert (report["from"], report["to"]) == ("2027-07-01", "2027-08-01")
