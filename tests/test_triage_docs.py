"""docs/triage.md, the corpus's situations and the shipped rules say the same thing."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITUATIONS = tomllib.loads((ROOT / "tests/data/triage/situations.toml").read_text())["situation"]
DOC = (ROOT / "docs" / "triage.md").read_text(encoding="utf-8")
RULES = tomllib.loads((ROOT / "rules.toml").read_text(encoding="utf-8"))
RESPONSE = {e["name"]: e.get("response", "") for e in RULES["emergency"]}
# The numbers a citizen may be told to call: 999, 0800 111 999, 116 123, 111, 105, 0345 988 1188.
NUMBER = re.compile(r"\b\d{3,5}(?: \d{3}){1,2}\b|\b\d{3}\b")


def rows() -> dict[str, list[str]]:
    out = {}
    for line in DOC.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0].strip("`")] = cells
    return out


def test_every_situation_is_in_the_doc_once_and_nothing_else() -> None:
    assert sorted(rows()) == sorted(s["id"] for s in SITUATIONS)


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: s["id"])
def test_the_doc_row_agrees_with_situations_and_rules(
    situation: dict[str, str],
) -> None:
    cells = rows()[situation["id"]]
    assert cells[1] == situation["about"]
    assert cells[2] == situation["call"]
    assert cells[3], "every situation names its source"
    assert cells[4] == f"`{situation['category']}`"
    assert situation["category"] in RESPONSE, "the category is an [[emergency]] in rules.toml"
    assert cells[5] == f"`{RESPONSE[situation['category']]}`"


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: s["id"])
def test_the_reply_names_the_number_to_call(situation: dict[str, str]) -> None:
    """Each number in the situation's `call` is in its category's templates, every language."""
    template = RESPONSE[situation["category"]]
    numbers = NUMBER.findall(situation["call"])
    assert numbers
    for language in ("en", "cy"):
        path = ROOT / "bot" / "default_responses" / language / f"{template}.txt"
        text = path.read_text(encoding="utf-8")
        for number in numbers:
            assert number in text, f"{language}/{template}.txt does not name {number}"
