"""The issue's targets for triage, on the held-out test part of the corpus.

The figures come from `python3 bench/triage.py --part test --no-speed`, which prints counts and
never a message, so this test reads the test part without anyone seeing it. A target not yet
met is marked xfail(strict=True) with the figure measured when it was written: if the matcher
improves enough to meet it, the test fails until the mark is taken off.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache

import pytest

from tests.conftest import ROOT

RECALL = re.compile(r"^emergency recall (\d+)/(\d+)")
ALARMS = re.compile(r"^false alarms (\d+)/(\d+)")
SITUATION = re.compile(r"^  ([a-z-]+) +(\d+)/(\d+)")


@cache
def figures() -> dict[str, dict[str, object]]:
    """Per language: recall, false alarms, and recall per situation (a fraction each)."""
    result = subprocess.run(
        [sys.executable, "bench/triage.py", "--part", "test", "--no-speed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    out: dict[str, dict[str, object]] = {}
    lang = ""
    for line in result.stdout.splitlines():
        if line.startswith("== test / "):
            lang = line.split()[3].rstrip(":")
            out[lang] = {"situations": {}}
        elif m := RECALL.match(line):
            out[lang]["recall"] = int(m[1]) / int(m[2])
        elif m := ALARMS.match(line):
            out[lang]["alarms"] = int(m[1]) / int(m[2])
        elif m := SITUATION.match(line):
            situations = out[lang]["situations"]
            assert isinstance(situations, dict)
            situations[m[1]] = int(m[2]) / int(m[3])
    return out


def test_the_test_part_is_measured_in_both_languages() -> None:
    found = figures()
    assert set(found) == {"en", "cy"}
    assert len(found["en"]["situations"]) == 39  # type: ignore[arg-type]


@pytest.mark.xfail(
    strict=True,
    reason="measured 94.7% (319/337) on 3 December 2026 with the scaled weights and the larger"
    " tuning corpus (95.8% before them; 97.2% out of fold on the tuning part)",
)
def test_english_emergency_recall_is_at_least_99_percent() -> None:
    assert figures()["en"]["recall"] >= 0.99  # type: ignore[operator]


@pytest.mark.xfail(
    strict=True,
    reason="measured on 3 December 2026: 12 situations under 95%, the lowest carbon-monoxide"
    " 4/7, dangerous-structure 4/6, suicide-risk 8/11 and trapped 4/5",
)
def test_every_situation_has_recall_of_at_least_95_percent() -> None:
    situations = figures()["en"]["situations"]
    assert isinstance(situations, dict)
    assert min(situations.values()) >= 0.95


@pytest.mark.xfail(
    strict=True,
    reason="measured 5.4% (23/423, of which 5 possible emergencies) on 3 December 2026 (7.6%"
    " before the scaled weights)",
)
def test_english_false_alarms_are_at_most_2_percent() -> None:
    assert figures()["en"]["alarms"] <= 0.02  # type: ignore[operator]


def test_welsh_emergency_recall_is_at_least_97_percent() -> None:
    assert figures()["cy"]["recall"] >= 0.97  # type: ignore[operator]


@pytest.mark.xfail(
    strict=True,
    reason="measured 18.0% (11/61, of which 5 possible emergencies) on 3 December 2026 (21.3%"
    " before)",
)
def test_welsh_false_alarms_are_at_most_3_percent() -> None:
    assert figures()["cy"]["alarms"] <= 0.03  # type: ignore[operator]
