"""Every date and time a person types is read the same way, by bot.moments: local time in the
organisation's zone unless it has an offset. Each place is tried in summer (BST, UTC+1), where
reading local time as UTC is an hour out, and in winter (GMT), where it is not."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import HoldingReplyError
from bot.models import Decision, Message, SenderState
from bot.moments import read_date, read_time
from bot.reports import parse_contacts
from bot.store import open_store
from tests.test_cli import run

LONDON = ZoneInfo("Europe/London")
SUMMER = ("2027-07-01T10:00", datetime(2027, 7, 1, 9, 0, tzinfo=UTC))
WINTER = ("2027-01-14T10:00", datetime(2027, 1, 14, 10, 0, tzinfo=UTC))
SEASONS = pytest.mark.parametrize(("typed", "meant"), [SUMMER, WINTER], ids=["BST", "GMT"])


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("2027-07-01T10:00", datetime(2027, 7, 1, 9, 0, tzinfo=UTC)),  # BST
        ("2027-07-01 10:00:30", datetime(2027, 7, 1, 9, 0, 30, tzinfo=UTC)),
        ("2027-01-14T10:00", datetime(2027, 1, 14, 10, 0, tzinfo=UTC)),  # GMT
        ("2027-07-01T10:00+00:00", datetime(2027, 7, 1, 10, 0, tzinfo=UTC)),  # an offset wins
        ("2027-07-01T10:00Z", datetime(2027, 7, 1, 10, 0, tzinfo=UTC)),
        ("2027-01-14T10:00+01:00", datetime(2027, 1, 14, 9, 0, tzinfo=UTC)),
        ("2027-07-01", datetime(2027, 6, 30, 23, 0, tzinfo=UTC)),  # a day starts at local midnight
        ("01/07/2027", datetime(2027, 6, 30, 23, 0, tzinfo=UTC)),
        ("2027-01-14", datetime(2027, 1, 14, 0, 0, tzinfo=UTC)),
        ("2027-03-28T00:30", datetime(2027, 3, 28, 0, 30, tzinfo=UTC)),  # the last GMT half hour
        ("2027-03-28T02:00", datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),  # the first BST minute
        ("2027-10-31T02:00", datetime(2027, 10, 31, 2, 0, tzinfo=UTC)),  # after the fold: GMT
    ],
)
def test_a_time_without_an_offset_is_local_time(typed: str, meant: datetime) -> None:
    assert read_time(typed, LONDON, "--at") == meant


def test_a_time_the_clocks_skip_or_repeat_is_refused_with_what_to_write() -> None:
    with pytest.raises(HoldingReplyError) as skipped:
        read_time("2027-03-28T01:30", LONDON, "--at")
    assert "does not exist in Europe/London: the clocks go forward" in str(skipped.value)
    assert "Write 2027-03-28T02:30" in str(skipped.value)
    with pytest.raises(HoldingReplyError) as twice:
        read_time("2027-10-31T01:30", LONDON, "--at")
    assert "happens twice in Europe/London" in str(twice.value)
    assert "2027-10-31T01:30+01:00 for the first time" in str(twice.value)
    assert "2027-10-31T01:30+00:00 for the second" in str(twice.value)
    assert read_time("2027-10-31T01:30+00:00", LONDON, "--at") == datetime(
        2027, 10, 31, 1, 30, tzinfo=UTC
    )


def test_mistakes_name_the_option_and_what_was_expected() -> None:
    with pytest.raises(HoldingReplyError, match=r"--at 'next tuesday' is not a date and time"):
        read_time("next tuesday", LONDON, "--at")
    with pytest.raises(HoldingReplyError, match=r"--from '2027-07-01T10:00' is not a date"):
        read_time("2027-07-01T10:00", LONDON, "--from", day=True)
    with pytest.raises(HoldingReplyError, match=r"--to '31/02/2027' is not a date"):
        read_time("31/02/2027", LONDON, "--to", day=True)
    with pytest.raises(HoldingReplyError, match="time zone cannot be read"):
        read_time("2027-07-01T10:00", None, "--at")  # rules.toml unreadable: no guessing
    assert read_time("2027-07-01T10:00+01:00", None, "--at") == SUMMER[1]
    assert read_date(" 2/7/2027 ", "date") == date(2027, 7, 2)


# Every command that reads a time, run as a comms officer runs it.


@SEASONS
def test_preview_at_is_local_time(typed: str, meant: datetime) -> None:
    result = run("preview", "--json", "--at", typed, "my bin was not collected")
    assert result.returncode == 0, result.stderr
    assert datetime.fromisoformat(json.loads(result.stdout)["at"]) == meant


async def _stored_message(url: str) -> str:
    async with open_store(url) as store:
        message = Message("web", "p1", "s1", "my bin", datetime(2026, 12, 1, tzinfo=UTC))

        def decide(_: SenderState, __: str) -> Decision:
            return Decision(True, None, None, None, None, None, "en", "acknowledgement", "ok")

        return (await store.ingest(message, decide)).item.reference


async def _first_reply(url: str, reference: str) -> datetime | None:
    async with open_store(url) as store:
        item = await store.get(reference)
        assert item is not None
        return item.first_human_reply_at


@SEASONS
def test_replied_at_is_local_time(tmp_path: Path, typed: str, meant: datetime) -> None:
    url = f"sqlite:///{tmp_path}/q.sqlite3"
    reference = asyncio.run(_stored_message(url))
    result = run("replied", reference, "--by", "me", "--at", typed, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert asyncio.run(_first_reply(url, reference)) == meant


def test_replied_at_without_an_offset_needs_readable_rules(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.sqlite3"
    reference = asyncio.run(_stored_message(url))
    broken = tmp_path / "rules.toml"
    broken.write_text('[organisation]\nname = "X"\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    env = {"DATABASE_URL": url}
    refused = run("replied", reference, "--by", "me", "--at", SUMMER[0], "--rules", str(broken),
                  env=env)  # fmt: skip
    assert refused.returncode == 1 and "time zone cannot be read" in refused.stderr
    assert asyncio.run(_first_reply(url, reference)) is None
    given = run("replied", reference, "--by", "me", "--at", "2027-07-01T10:00+01:00",
                "--rules", str(broken), env=env)  # fmt: skip
    assert given.returncode == 0, given.stderr
    assert asyncio.run(_first_reply(url, reference)) == SUMMER[1]


async def _messages_at(url: str, moments: list[datetime]) -> None:
    async with open_store(url) as store:
        for n, moment in enumerate(moments):
            message = Message("web", f"p{n}", f"s{n}", "hello", moment)

            def decide(_: SenderState, __: str) -> Decision:
                return Decision(True, None, None, None, None, None, "en", "acknowledgement", "ok")

            await store.ingest(message, decide)


@pytest.mark.parametrize(
    ("dates", "inside", "outside"),
    [
        # BST: July starts at 23:00 UTC on 30 June and ends at 23:00 UTC on 31 July.
        (("2027-07-01", "2027-08-01"), "2027-06-30T23:30", "2027-07-31T23:30"),
        # GMT: January is midnight to midnight in UTC too.
        (("2027-01-01", "2027-02-01"), "2027-01-01T00:30", "2026-12-31T23:30"),
    ],
    ids=["BST", "GMT"],
)
def test_report_from_and_to_are_local_days(
    tmp_path: Path, dates: tuple[str, str], inside: str, outside: str
) -> None:
    url = f"sqlite:///{tmp_path}/q.sqlite3"
    moments = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (inside, outside)]
    asyncio.run(_messages_at(url, moments))
    result = run("report", "--from", dates[0], "--to", dates[1], env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["overall"]["messages"] == 1
    hour = moments[0].astimezone(LONDON)
    assert report["busiest_hours"][f"{hour:%A}"][hour.hour] == 1  # the one inside, local hour


def test_report_takes_uk_dates_and_refuses_a_time_where_a_day_is_expected(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/q.sqlite3"}
    result = run("report", "--from", "01/07/2027", "--to", "01/08/2027", env=env)
    assert result.returncode == 0, result.stderr
    assert (json.loads(result.stdout)["from"], json.loads(result.stdout)["to"]) == (
        "2027-07-01",
        "2027-08-01",
    )
    result = run("report", "--from", "2027-07-01T10:00", "--to", "2027-08-01", env=env)
    assert result.returncode == 1
    assert "--from '2027-07-01T10:00' is not a date" in result.stderr


def test_contacts_dates_are_read_by_the_same_function() -> None:
    rows = parse_contacts("date,channel,count\n2027-07-01,phone,3\n02/07/2027,phone,4\n", "c.csv")
    assert [r.day for r in rows] == [date(2027, 7, 1), date(2027, 7, 2)]
