"""Emergency recall and false alarms of the shipped phrase lists, on labelled messages.

triage-dev.jsonl came with the project; triage-extra.jsonl holds blind sets, each written before
the phrase lists and danger words were tuned against it (a few of its emergencies are still
missed, on purpose). Both must reach 98% recall with at most 5% false alarms, counting what the
phrases match and, when none does, what bot.danger finds (as triage decides). A PhraseGroup over
the categories must answer exactly as the categories one by one do, on every message and on
arbitrary text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.check import load
from bot.models import Message
from bot.phrases import PhraseGroup, PhraseSet, phrase_problem, prepare

ROOT = Path(__file__).resolve().parent.parent
RULES = tomli.loads((ROOT / "rules.toml").read_text(encoding="utf-8"))
CATEGORIES = [(c["name"], PhraseSet(c["phrases"], c.get("unless", ()))) for c in RULES["emergency"]]


TRIAGE = load(ROOT / "rules.toml")
AT = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


def emergency(text: str) -> str | None:
    """What the shipped rules decide, through the same Triage the server uses."""
    decision = TRIAGE.decide(Message("web", "corpus", "corpus", text, AT))
    return None if decision.emergency is None else f"{decision.emergency}: {decision.matched}"


@pytest.mark.parametrize("corpus", ["triage-dev.jsonl", "triage-extra.jsonl"])
def test_recall_and_false_alarms(corpus: str) -> None:
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / corpus).open(encoding="utf-8")]
    urgent = [r["text"] for r in rows if r["emergency"]]
    routine = [r["text"] for r in rows if not r["emergency"]]
    missed = [text for text in urgent if emergency(text) is None]
    alarms = [f"{text}  <- {emergency(text)}" for text in routine if emergency(text) is not None]
    recall = 1 - len(missed) / len(urgent)
    false_alarms = len(alarms) / len(routine)
    assert recall >= 0.98, f"{corpus}: recall {recall:.1%}; missed:\n" + "\n".join(missed)
    assert false_alarms <= 0.05, f"{corpus}: false alarms {false_alarms:.1%}:\n" + "\n".join(alarms)


def test_extra_corpus_is_big_and_balanced() -> None:
    rows = [json.loads(line) for line in (ROOT / "tests/data/triage-extra.jsonl").open()]
    urgent = sum(r["emergency"] for r in rows)
    assert len(rows) >= 150 and abs(urgent - (len(rows) - urgent)) <= len(rows) // 10


def test_every_shipped_phrase_is_usable() -> None:
    problems = [
        f"{kind}.{entry['name']}: {phrase!r} {problem}"
        for kind in ("emergency", "redirect", "team")
        for entry in RULES[kind]
        for phrase in [*entry["phrases"], *entry.get("unless", [])]
        if (problem := phrase_problem(phrase)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_every_category_has_a_name_and_a_response() -> None:
    names = [e["name"] for e in RULES["emergency"]]
    assert len(names) == len(set(names))
    for entry in RULES["emergency"]:
        assert entry["response"].startswith("emergency-"), entry["name"]
    for entry in RULES["redirect"]:
        assert entry["response"].startswith("redirect-"), entry["name"]


KINDS = {
    kind: [
        PhraseSet(e["phrases"], e.get("unless", ()), emergency=kind == "emergency")
        for e in RULES[kind]
    ]
    for kind in ("emergency", "redirect", "team")
}
GROUPS = {kind: PhraseGroup(sets) for kind, sets in KINDS.items()}
MESSAGES = [
    json.loads(line)["text"]
    for corpus in ("triage-dev.jsonl", "triage-extra.jsonl")
    for line in (ROOT / "tests" / "data" / corpus).open(encoding="utf-8")
]


def one_by_one(sets: list[PhraseSet], text: str) -> tuple[int, str] | None:
    prepared = prepare(text)
    for n, phrases in enumerate(sets):
        found = phrases.find(prepared)
        if found is not None:
            return n, found
    return None


def test_a_group_answers_as_its_sets_do_on_every_corpus_message() -> None:
    extra = ["my bin wasn't collected", "When does the tip open", "I have a question"]
    for text in [*MESSAGES, *extra]:
        for kind, group in GROUPS.items():
            assert group.first(prepare(text)) == one_by_one(KINDS[kind], text), (kind, text)


WORDS = sorted({w for text in MESSAGES for w in text.split()})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120) | st.lists(st.sampled_from(WORDS), max_size=25).map(" ".join))
def test_a_group_answers_as_its_sets_do_on_any_text(text: str) -> None:
    for kind, group in GROUPS.items():
        assert group.first(prepare(text)) == one_by_one(KINDS[kind], text)


def test_an_empty_group_matches_nothing() -> None:
    assert PhraseGroup([]).first(prepare("there is a fire")) is None
