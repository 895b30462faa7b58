"""What `check` says when the rules are valid: a summary a comms officer can read back."""

from __future__ import annotations

from bot.check import summary
from bot.triage import Triage
from tests.conftest import london


def test_summary_names_hours_closures_bank_holidays_and_channels(triage: Triage) -> None:
    text = summary(triage, london("2026-11-25 12:00:00"))
    lines = [line.strip() for line in text.splitlines()]
    assert "Staffed: Monday to Thursday 9am to 5pm, Friday 9am to 4:30pm" in lines
    assert "Thursday 24 December to Friday 1 January 2027: the Christmas closure" in lines
    assert "England and Wales bank holidays in the next 90 days:" in lines
    assert "Monday 28 December: Boxing Day" in lines
    assert "Special hours on Wednesday 23 December: 09:00-12:30" in lines
    assert "Channels: web" in lines


def test_summary_leaves_out_what_is_past_or_far_off(triage: Triage) -> None:
    text = summary(triage, london("2027-03-01 12:00:00"))
    assert "Christmas closure" not in text and "Special hours" not in text
    assert "Friday 26 March: Good Friday" in text  # within 90 days of 1 March 2027
