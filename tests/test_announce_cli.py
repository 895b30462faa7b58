"""`python -m bot announce`, run as a real subprocess on each database, as a comms officer would."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from bot.announcement import NewAnnouncement
from bot.store import Store, open_store
from tests.conftest import copy_rules
from tests.postgres import run as pg_run
from tests.postgres import sql
from tests.test_cli import run


def announce(url: str, rules: Path, *args: str) -> tuple[int, str, str]:
    result = run("announce", *args, "--rules", str(rules), env={"DATABASE_URL": url})
    return result.returncode, result.stdout, result.stderr


def listed(url: str, rules: Path) -> list[dict[str, Any]]:
    code, out, err = announce(url, rules, "list", "--json")
    assert code == 0, err
    found: list[dict[str, Any]] = json.loads(out)["announcements"]
    return found


def test_add_list_cancel(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    code, out, err = announce(
        database, rules, "add", "--at", "2030-12-24T09:00", "--channels", "x,telegram",
        "--x-text", "Closed 25-26 Dec.", "--by", "amy", "We are closed on 25 and 26 December.",
    )  # fmt: skip
    assert code == 0, err
    assert "scheduled for 2030-12-24T09:00 Europe/London" in out
    [item] = listed(database, rules)
    assert item["when"] == "2030-12-24T09:00+00:00"
    assert item["channels"] == {
        "telegram": {"state": "scheduled", "found_by_check": False,
                     "text": "We are closed on 25 and 26 December.", "link": None,
                     "platform_id": None, "error": None},
        "x": {"state": "scheduled", "found_by_check": False, "text": "Closed 25-26 Dec.",
              "link": None, "platform_id": None, "error": None},
    }  # fmt: skip
    code, out, err = announce(database, rules, "cancel", str(item["id"]), "--by", "amy")
    assert code == 0, err
    assert {c["state"] for c in listed(database, rules)[0]["channels"].values()} == {"cancelled"}
    code, _, err = announce(database, rules, "cancel", str(item["id"]))
    assert code == 1 and "nothing left to cancel" in err


def test_add_refuses_mistakes_at_writing_time(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    code, _, err = announce(
        database, rules, "add", "--at", "2030-10-27T01:30", "--channels", "x,fax", "你" * 141
    )
    assert code == 1 and "Traceback" not in err
    assert "happens twice in Europe/London" in err and "2030-10-27T01:30+01:00" in err
    assert "'fax' cannot post" in err
    assert "too long for x: 282 of 280" in err
    assert listed(database, rules) == []


def test_suspend_and_resume(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    code, out, err = announce(database, rules, "suspend", "--reason", "National mourning")
    assert code == 0, err
    code, out, err = announce(database, rules, "list")
    assert "SUSPENDED" in out and "National mourning" in out
    assert announce(database, rules, "suspend", "--reason", "again")[0] == 1
    code, out, err = announce(database, rules, "resume")
    assert code == 0 and "0 posts fell due" in out
    assert announce(database, rules, "resume")[0] == 1


async def test_approval_by_a_second_admin_only(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path, "\n[announcements]\napproval = true\n")
    async with open_store(database) as store:
        for name in ("amy", "bob"):
            await store.add_user(
                name,
                name,
                "admin",
                "x",
                (),
                datetime.now(UTC),
            )
    code, out, err = announce(
        database, rules, "add", "--at", "2030-06-01T10:00", "--channels", "telegram",
        "--by", "amy", "Roadworks on the High Street",
    )  # fmt: skip
    assert code == 0 and "waiting for a second admin" in out, err
    [item] = listed(database, rules)
    assert item["channels"]["telegram"]["state"] == "approval"
    code, _, err = announce(database, rules, "approve", str(item["id"]), "--by", "amy")
    assert code == 1 and "a different admin must approve" in err
    code, _, err = announce(database, rules, "approve", str(item["id"]), "--by", "bob")
    assert code == 0, err
    [item] = listed(database, rules)
    assert (item["approved_by"], item["channels"]["telegram"]["state"]) == ("bob", "scheduled")


def test_import_reports_every_problem_and_schedules_nothing(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "when,channels,text,x_text\n"
        "2030-12-24T09:00,x,Closed at Christmas,\n"
        "2030-13-01T09:00,telegram,Bad month,\n"
        "2030-12-27T09:00,x;telegram,Semicolons,\n"
        f"2030-12-28T09:00,x,Fine for Telegram,{'a' * 281}\n",
        encoding="utf-8",
    )
    code, _, err = announce(database, rules, "import", str(bad))
    assert code == 1
    assert "bad.csv: line 3, column when: " in err
    assert "bad.csv: line 4, column channels: 'x;telegram' cannot post" in err
    assert "bad.csv: line 5, column x_text: too long for x: 281 of 280" in err
    assert "3 problems found; nothing was scheduled." in err
    assert listed(database, rules) == []

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("date,channels,text\n", encoding="utf-8")
    code, _, err = announce(database, rules, "import", str(wrong))
    assert "line 1: the column 'when' is missing" in err
    assert "line 1: column 'date' is not one of" in err


def test_import_schedules_every_line(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    good = tmp_path / "good.csv"
    good.write_text(
        "when,channels,text,telegram_text\n"
        '24/12/2030,"x, telegram",Closed at Christmas,"Closed 25, 26 Dec: call 999 in danger."\n'
        "2030-12-31T16:00,telegram,Closing early today,\n",
        encoding="utf-8",
    )
    code, out, err = announce(database, rules, "import", str(good))
    assert code == 0, err
    assert "Scheduled 2 announcements" in out
    first, second = listed(database, rules)
    assert first["when"] == "2030-12-24T00:00+00:00"
    assert first["channels"]["telegram"]["text"] == "Closed 25, 26 Dec: call 999 in danger."
    assert second["text"] == "Closing early today"


def _refuse_text(url: str, text: str) -> None:
    """A real database rule that makes storing one announcement fail, as a full disk or a
    dropped connection would half way through an import."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON announcements WHEN NEW.text = '{text}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        return
    schema = parse_qs(urlsplit(url).query)["search_path"][0]
    pg_run(sql(f"ALTER TABLE {schema}.announcements ADD CONSTRAINT refuse "
               f"CHECK (text <> '{text}')"))  # fmt: skip


def test_an_import_failing_at_line_3_stores_nothing(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    assert listed(database, rules) == []  # the tables exist
    _refuse_text(database, "Closing early today")
    good = tmp_path / "good.csv"
    good.write_text(
        "when,channels,text\n"
        "2030-12-24T09:00,telegram,Closed at Christmas\n"
        "2030-12-31T16:00,telegram,Closing early today\n"
        "2031-01-02T09:00,telegram,Open again\n",
        encoding="utf-8",
    )
    code, out, err = announce(database, rules, "import", str(good))
    assert code == 1, out
    assert "Nothing was scheduled from" in err and "stored whole or not at all" in err
    assert listed(database, rules) == []


async def found_after_a_crash(store: Store) -> int:
    """An announcement whose server died while publishing on X and on Telegram, ten minutes ago:
    Telegram's answer came back and was recorded; X's post was then found on the account by a
    check. The store calls are the publisher's own (tests/test_publisher_checks.py drives the
    publisher itself)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    taken, lease = now - timedelta(minutes=10), timedelta(minutes=5)
    wall = taken.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%dT%H:%M")
    new = NewAnnouncement("Closed on Monday.", taken, wall, "Europe/London",
                          (("telegram", None), ("x", None)), "amy", "scheduled")  # fmt: skip
    aid = await store.add_announcement(new, taken - lease)
    posts = {p.channel: p for p in await store.claim_posts("a", taken, lease, lease)}
    assert await store.post_published(posts["telegram"], "a", taken, "7", None)
    [checked] = await store.check_posts("b", taken + lease, lease, "x")
    assert await store.post_published(
        checked, "b", taken + lease, "19", "https://x.com/anytown/status/19",
        how="found on the account by a check after the server stopped",
    )  # fmt: skip
    return aid


async def test_list_says_which_post_was_found_by_a_check(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    async with open_store(database) as store:
        aid = await found_after_a_crash(store)
    [item] = await asyncio.to_thread(listed, database, rules)
    assert item["id"] == aid
    assert {c: (v["state"], v["found_by_check"]) for c, v in item["channels"].items()} == {
        "telegram": ("published", False), "x": ("published", True),
    }  # fmt: skip
    code, out, err = await asyncio.to_thread(announce, database, rules, "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert lines["x"].split(None, 1)[1] == (
        "published: found on the account by a check after the server stopped while publishing"
        "  https://x.com/anytown/status/19"
    )
    assert lines["telegram"].split(None, 1)[1] == "published"
