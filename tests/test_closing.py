"""Close now as rules.toml text: whole days closed, a day reopened part-way, and undone exactly."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot import closing
from bot.cli import preview_one
from bot.triage import Triage
from bot.versions import check_files, read_files
from tests.conftest import ROOT, london

FILES = read_files(ROOT / "rules.toml")


@pytest.fixture(scope="module")
def triage() -> Triage:
    return check_files(FILES)


def closed_at(triage: Triage, now: datetime, until: datetime, message: str | None) -> Triage:
    block = closing.block(triage.rules, now, until, "severe weather", message, "Jo Smith")
    return check_files(closing.closed(dict(FILES), block))


def test_until_the_next_opening_closes_today_and_says_why_and_when(triage: Triage) -> None:
    now = london("2026-12-03 10:00:00")  # a Thursday, staffed
    until = closing.default_until(triage.rules, now)
    assert until == london("2026-12-04 09:00:00")
    after = closed_at(triage, now, until, "The phone lines are down: please use the web form.")
    reply = preview_one(after, "web", "Hello", now)["reply"]
    assert reply.startswith(
        "Thank you for your message to Anytown Borough Council. We're closed for severe weather "
        "and back at 9am tomorrow. We aim to reply by 1pm tomorrow. The phone lines are down: "
        "please use the web form."
    )
    assert not preview_one(after, "x", "Hello", now)["staffed"]
    assert preview_one(after, "web", "Hello", london("2026-12-04 09:00:00"))["staffed"]
    assert closing.closed_words("Jo Smith", until, "severe weather", triage.rules, now) == (
        "Jo Smith closed the desk until 9am tomorrow: severe weather"
    )


def test_until_part_way_through_a_day_reopens_the_desk_then(triage: Triage) -> None:
    now = london("2026-12-03 10:00:00")
    after = closed_at(triage, now, london("2026-12-04 13:00:00"), None)
    assert not preview_one(after, "web", "Hi", london("2026-12-04 12:59:00"))["staffed"]
    assert preview_one(after, "web", "Hi", london("2026-12-04 13:00:00"))["staffed"]
    assert preview_one(after, "web", "Hi", now)["reply"].count("severe weather") == 1


def test_the_closure_is_read_back_and_ending_it_restores_the_text_exactly(
    triage: Triage,
) -> None:
    now = london("2026-12-03 10:00:00")
    until = london("2026-12-07 09:00:00")
    block = closing.block(
        triage.rules, now, until, "  severe   weather ", "Use the web form.", "Jo"
    )
    files = closing.closed(dict(FILES), block)
    found = closing.current(files["rules.toml"])
    assert found == closing.Closing(until, "severe weather", "Use the web form.", "Jo")
    assert closing.reopened(files) == FILES
    again = closing.closed(files, block)  # closing again replaces the block
    assert again["rules.toml"].count(closing.BEGIN) == 1


@pytest.mark.parametrize(
    ("until", "reason", "said"),
    [
        ("2026-12-03 09:00:00", "snow", "later than now"),
        ("2028-01-01 09:00:00", "snow", "within a year"),
        ("2026-12-04 09:00:00", " ", "Say why"),
        ("2026-12-04 09:00:00", "x" * 101, "at most 100"),
    ],
)
def test_a_closure_that_cannot_be_written_says_why(
    triage: Triage, until: str, reason: str, said: str
) -> None:
    now = london("2026-12-03 10:00:00")
    with pytest.raises(closing.ClosingError, match=said):
        closing.block(triage.rules, now, london(until), reason, None, "Jo")
