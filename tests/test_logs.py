"""The log line: one JSON object, its time as datetime would write it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.logs import JsonFormatter, _stamp


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_the_time_is_written_as_datetime_writes_it(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert _stamp(created) == expected


def test_times_that_round_into_the_next_millisecond_or_second() -> None:
    for created in (1764768000.9999996, 1764768000.1229996, 1764768000.0004995, 1764768001.0):
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert _stamp(created) == expected


def test_a_record_is_one_json_object_with_its_extras() -> None:
    record = logging.LogRecord("bot.web", logging.INFO, "web.py", 1, "message %s", ("é",), None)
    record.reference = "ABCD-EFGH"
    record.team = None
    line = JsonFormatter().format(record)
    assert "\n" not in line and "é" in line  # not escaped, as before
    out = json.loads(line)
    assert out["event"] == "message é" and out["reference"] == "ABCD-EFGH"
    assert "team" not in out  # None extras are left out
    assert out["at"].endswith("+00:00") and out["level"] == "info"
