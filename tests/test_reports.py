"""Reports: working time, contacts and costs, and the JSON, CSV and HTML a person gets.

The store is seeded with the known messages of tests/store/test_store_reports.py, on both
databases; every figure below is worked out by hand from them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from array import array
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import SOCITM, Rules, load_rules
from bot.errors import HoldingReplyError, RulesError
from bot.reports import (
    Report,
    build,
    local_range,
    parse_contacts,
    percentile,
    to_csv,
    to_html,
    to_json,
    working_seconds,
)
from bot.store import Contact, open_store
from tests.conftest import copy_rules
from tests.store.test_store_reports import END, LONDON, START, at, seed

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
CONTACTS = """date,channel,count
2025-06-02,Telephone,100
2025-06-03,phone,50
04/06/2025,Face-to-face,10
2025-06-05,email,7
"""


@pytest.fixture
def rules(tmp_path: Path) -> Rules:
    # The shipped hours: Monday to Thursday 09:00-17:00 (London), no bank holiday that week.
    return load_rules(copy_rules(tmp_path))


async def report_of(url: str, rules: Rules) -> Report:
    async with open_store(url) as store:
        await seed(store)
        await store.import_contacts(parse_contacts(CONTACTS, "contacts.csv"), NOW)
        data = await store.report(START, END, LONDON)
    return build(data, rules, date(2025, 6, 2), date(2025, 6, 5), NOW)


def test_the_range_is_local_midnight_to_midnight(rules: Rules) -> None:
    assert local_range(date(2025, 6, 2), date(2025, 6, 5), rules) == (START, END)


def test_percentile_is_postgresqls_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([600.0, 1800.0, 7200.0, 61200.0], 0.5) == 4500.0
    assert percentile([600.0, 1800.0, 7200.0, 61200.0], 0.9) == pytest.approx(45000.0)


def test_working_time_counts_staffed_hours_only(rules: Rules) -> None:
    schedule = rules.schedule_for("web")
    pairs = array("d")
    for start, end in (
        ("2025-06-02T20:00", "2025-06-03T13:00"),  # Mon 21:00 to Tue 14:00 local: 5 hours
        ("2025-06-02T23:30", "2025-06-02T23:40"),  # at night: none
        ("2025-06-05T15:00", "2025-06-09T09:00"),  # Thu 16:00 to Mon 10:00: 1 h + Fri 7.5 h + 1 h
    ):
        pairs.extend((at(start).timestamp(), at(end).timestamp()))
    found = working_seconds(schedule, pairs)
    assert found == [5 * 3600, 0, 9.5 * 3600]
    for (a, b), seconds in zip(zip(pairs[0::2], pairs[1::2], strict=True), found, strict=True):
        since = datetime.fromtimestamp(a, UTC)
        until = datetime.fromtimestamp(b, UTC)
        assert schedule.working_time_between(since, until).total_seconds() == seconds


async def test_the_report_has_every_figure(database: str, rules: Rules) -> None:
    report = await report_of(database, rules)
    out = to_json(report)

    assert out["from"] == "2025-06-02" and out["to"] == "2025-06-05"
    overall = out["overall"]
    assert overall["messages"] == 5
    assert (overall["auto_replies"], overall["human_replies"]) == (4, 5)
    assert overall["out_of_hours_share"] == 0.4  # m3, m4
    assert overall["emergencies_share"] == 0.2 and overall["redirects_share"] == 0.2
    assert (overall["first_reply_median_seconds"], overall["first_reply_p90_seconds"]) == (
        4500,
        45000,
    )
    # Working time: m1 30 min, m2 2 h, m3 5 h (Tue 09:00-14:00), m4 0 (at night).
    # [0, 1800, 7200, 18000]: median 1800 + 0.5 * 5400; 90th 7200 + 0.7 * 10800.
    assert overall["first_reply_working_median_seconds"] == 4500
    assert overall["first_reply_working_p90_seconds"] == 14760
    assert (overall["with_promise"], overall["promises_kept"]) == (4, 2)
    assert overall["promises_kept_share"] == 0.5
    channels = {row["group"]: row for row in out["by_channel"]}
    assert channels["telegram"]["first_reply_working_median_seconds"] == 9000  # [0, 18000]
    assert channels["telegram"]["first_reply_working_p90_seconds"] == 16200
    assert channels["web"]["first_reply_working_p90_seconds"] == 6660  # [1800, 7200]
    assert channels["x"]["first_reply_median_seconds"] is None
    assert channels["x"]["promises_kept_share"] == 0.0
    teams = {row["group"]: row for row in out["by_team"]}
    assert teams["default"]["messages"] == 3 and teams["waste"]["human_replies"] == 2
    assert teams["default"]["first_reply_working_median_seconds"] == 9000

    assert out["busiest_hours"]["Monday"][9] == out["busiest_hours"]["Monday"][21] == 1
    assert out["busiest_hours"]["Tuesday"][0] == out["busiest_hours"]["Tuesday"][11] == 1
    assert sum(map(sum, out["busiest_hours"].values())) == 5
    assert out["backlog"] == [
        {"date": "2025-06-02", "received": 3, "done": 1, "open_at_end": 4},
        {"date": "2025-06-03", "received": 2, "done": 2, "open_at_end": 4},
        {"date": "2025-06-04", "received": 0, "done": 0, "open_at_end": 4},
    ]
    # Imported contacts of the range beside the social channels' messages; email is the day after.
    assert out["contacts"] == [
        {"channel": "face_to_face", "contacts": 10, "unit_cost": 8.62, "estimated_cost": 86.2},
        {"channel": "phone", "contacts": 150, "unit_cost": 2.83, "estimated_cost": 424.5},
        {"channel": "telegram", "contacts": 2, "unit_cost": 0.15, "estimated_cost": 0.3},
        {"channel": "web", "contacts": 2, "unit_cost": 0.15, "estimated_cost": 0.3},
        {"channel": "x", "contacts": 1, "unit_cost": 0.15, "estimated_cost": 0.15},
    ]
    saving = out["estimated_saving"]
    assert saving["is_estimate"] is True
    assert saving["saving"] == 13.4  # 5 messages * (2.83 - 0.15)
    assert saving["source"] == SOCITM and "ESTIMATE" in saving["text"]
    json.dumps(out)  # nothing a tool cannot read


async def test_the_csv_opens_in_excel(database: str, rules: Rules) -> None:
    report = await report_of(database, rules)
    raw = to_csv(report)

    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that tells Excel it is UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    start = rows.index(["By channel"])
    header, web = rows[start + 1], rows[start + 3]
    assert header[:3] == ["group", "messages in", "automatic replies"]
    line = dict(zip(header, web, strict=True))
    assert line["group"] == "web" and line["human replies"] == "3"
    assert line["first reply median (min)"] == "75.0"  # 4500 s
    assert line["first reply 90th percentile (min)"] == "111.0"  # 6660 s
    assert line["promises kept %"] == "100.0"
    assert ["Monday", *["0"] * 9, "1", "1", *["0"] * 10, "1", "0", "0"] in rows
    assert ["2025-06-03", "2", "2", "4"] in rows
    assert ["phone", "150", "2.83", "424.5"] in rows
    assert ["Estimated saving (£)", "13.4"] in rows


async def test_the_html_is_one_file_that_needs_nothing_else(database: str, rules: Rules) -> None:
    html = to_html(await report_of(database, rules))

    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2
    for fetches in ("<script", "<link", "src=", "href=", "@import", "url("):
        assert fetches not in html
    assert "£13.40" in html and "ESTIMATE" in html and "Socitm" in html
    assert "1 h 15 min" in html  # the median first reply, 4500 s
    assert "<title>Monday 09:00: 1</title>" in html
    assert "@media print" in html


async def test_the_busiest_hours_have_a_table_with_the_same_figures_as_the_chart(
    database: str, rules: Rules
) -> None:
    """The heat map's counts are in its tooltips only; the table says the same (WCAG 1.1.1)."""
    import re

    html = to_html(await report_of(database, rules))
    charted = {
        (day, int(hour)): int(count)
        for day, hour, count in re.findall(r"<title>(\w+) (\d\d):00: (\d+)</title>", html)
    }
    table = html[html.index('<table class="hours"') :]
    table = table[: table.index("</table>")]
    days = re.findall(r'<span class="visually-hidden">(\w+)</span>', table)
    tabled = {}
    for hour, cells in re.findall(r'<th scope="row">(\d\d):00</th>(.*?)</tr>', table):
        for day, count in zip(days, re.findall(r"<td>(\d+)</td>", cells), strict=True):
            tabled[(day, int(hour))] = int(count)
    assert len(charted) == len(tabled) == 7 * 24
    assert tabled == charted
    assert sum(tabled.values()) > 0 and tabled[("Monday", 9)] == 1


def test_contacts_problems_are_listed_by_line() -> None:
    text = (
        "date,channel,count\n"
        "2025-06-31,phone,3\n"
        "2025-06-02,,3\n"
        "2025-06-02,phone,-1\n"
        "2025-06-02,web,4\n"
        "2025-06-02,phone,5\n"
        "2025-06-02,Telephone,6\n"
    )
    with pytest.raises(HoldingReplyError) as raised:
        parse_contacts(text, "in.csv")
    lines = str(raised.value).splitlines()
    assert lines[0].startswith("in.csv line 2: date '2025-06-31' is not a date")
    assert lines[1].startswith("in.csv line 3: the channel is empty")
    assert lines[2].startswith("in.csv line 4: count '-1' is not a whole number")
    assert lines[3].startswith("in.csv line 5: channel 'web' is one of Holding Reply's own")
    assert lines[4] == (
        "in.csv line 7: 2025-06-02 phone is already on line 6; give each date and channel once"
    )
    assert lines[5] == "Nothing was imported."
    with pytest.raises(HoldingReplyError, match="line 1: the first line must name the columns"):
        parse_contacts("day,what,n\n", "in.csv")
    assert parse_contacts("\ufeffCount,Date,Channel\n1,2025-06-02,E-mail\n", "x") == [
        Contact(date(2025, 6, 2), "email", 1)
    ]


def test_costs_are_read_and_checked(tmp_path: Path) -> None:
    assert load_rules(copy_rules(tmp_path)).costs.unit == {
        "face_to_face": 8.62,
        "phone": 2.83,
        "online": 0.15,
    }
    extra = '\n[costs]\nphone = 3\nemail = 0.5\nsource = "Our own 2025 study"\n'
    costs = load_rules(copy_rules(tmp_path, extra)).costs
    assert costs.of("phone") == 3.0 and costs.of("email") == 0.5 and costs.of("web") == 0.15
    assert costs.of("letter") is None and costs.source == "Our own 2025 study"
    with pytest.raises(RulesError) as raised:
        load_rules(copy_rules(tmp_path, '\n[costs]\nphone = "£2.83"\nFace = 1\nweb = -1\n'))
    text = "\n".join(str(p) for p in raised.value.problems)
    assert "costs.phone" in text and "a number without quotes or a £ sign" in text
    assert "costs.Face" in text and "not a channel name" in text
    assert "costs.web" in text


def test_the_commands_import_and_report(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database)
    rules = copy_rules(tmp_path)

    async def seeded() -> None:
        async with open_store(database) as store:
            await seed(store)

    asyncio.run(seeded())
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS.replace(",100", ",999"), encoding="utf-8")
    assert main(["import-contacts", str(contacts)]) == 0
    contacts.write_text(CONTACTS, encoding="utf-8")  # again, corrected: replaces
    assert main(["import-contacts", str(contacts)]) == 0
    assert "Imported 4 rows (2025-06-02 to 2025-06-05)" in capsys.readouterr().out

    period = ["--rules", str(rules), "--from", "2025-06-02", "--to", "2025-06-05"]
    for kind in ("json", "csv", "html"):
        out = tmp_path / f"report.{kind}"
        assert main(["report", *period, "--format", kind, "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    found = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert found["contacts"][1] == {
        "channel": "phone",
        "contacts": 150,
        "unit_cost": 2.83,
        "estimated_cost": 424.5,
    }
    assert found["overall"]["first_reply_working_p90_seconds"] == 14760

    bad = tmp_path / "bad.csv"
    bad.write_text("date,channel,count\n2025-13-01,phone,1\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["import-contacts", str(bad)]) == 1
    assert f"{bad} line 2: date '2025-13-01' is not a date" in capsys.readouterr().err
    assert main(["report", *period[:3], "2025-06-05", "--to", "2025-06-02"]) == 1
    assert "--to is the first day not included" in capsys.readouterr().err


def test_a_long_report_shows_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/empty.sqlite3"}
    out = str(tmp_path / "half-year.json")
    dates = ["--from", "2026-01-01", "--to", "2026-07-01"]
    command = [sys.executable, "-m", "bot", "report", *dates, "--format", "json", "--out", out]
    main, terminal = pty.openpty()
    try:
        done = subprocess.run(command, stderr=terminal, env=env, cwd=ROOT, timeout=60)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 0
    assert b"[##############################] 3/3" in shown
    assert b"counting in the database" in shown

    piped = subprocess.run(command, capture_output=True, env=env, cwd=ROOT, timeout=60)
    assert piped.returncode == 0 and b"[#" not in piped.stderr  # not a terminal: no bar


async def test_mastodon_and_bluesky_are_counted_as_social_channels(
    database: str, rules: Rules
) -> None:
    from tests.store.test_store_reports import add

    async with open_store(database) as store:
        await add(store, "n1", "mastodon", "2025-06-02T08:00", human_reply="2025-06-02T08:30")
        await add(store, "n2", "bluesky", "2025-06-02T09:00", human_reply="2025-06-02T09:10")
        await add(store, "n3", "bluesky", "2025-06-03T09:00")
        data = await store.report(START, END, LONDON)
    out = to_json(build(data, rules, date(2025, 6, 2), date(2025, 6, 5), NOW))
    channels = {row["group"]: row for row in out["by_channel"]}
    assert (channels["mastodon"]["messages"], channels["bluesky"]["messages"]) == (1, 2)
    assert channels["bluesky"]["first_reply_median_seconds"] == 600
    assert {c["channel"]: c["unit_cost"] for c in out["contacts"]} == {
        "bluesky": 0.15,
        "mastodon": 0.15,
    }
    with pytest.raises(HoldingReplyError, match="one of Holding Reply's own channels"):
        parse_contacts("date,channel,count\n2025-06-02,Bluesky,3\n", "contacts.csv")
