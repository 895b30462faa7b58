"""The learned weights (bot/urgency.py): what they read, that they ship whole, that they explain."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.danger import danger, signs
from bot.urgency import WEIGHTS, features, radicals, signals, urgency
from bot.wording import prepare
from tests.conftest import ROOT


def test_features_are_stems_and_pairs_without_the_commonest_words_alone() -> None:
    found = features(prepare("And the street light is out. My dad fell"))
    assert "street light" in found and "~person fell" in found
    assert "and" not in found and "the" not in found  # alone they tell only how people write
    assert "out my" not in " | ".join(found)  # no pair across a sentence
    assert features(prepare("x"), ["#now"])[-1] == "#now"


def test_a_welsh_word_also_counts_as_its_radical_forms() -> None:
    assert "trywanu" in radicals("drywanu")  # ei drywanu: stabbing him
    assert "cyllell" in radicals("chyllell")  # gyda chyllell: with a knife
    assert "cyllell" in radicals("gyllell")
    assert "gwaed" in radicals("waed")
    welsh = features(prepare("mae o wedi ei drywanu"), welsh=True)
    assert "cy:trywanu" in welsh
    assert not any(f.startswith("cy:") for f in features(prepare("mae o wedi ei drywanu")))


def test_the_weights_ship_in_the_package_with_thresholds_for_each_language() -> None:
    data = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    assert WEIGHTS.parent == ROOT / "bot" / "data"
    for language in ("en", "cy"):
        limits = data["thresholds"][language]
        assert limits["veto"] >= 0 and 0 < limits["low"] <= limits["high"] < 1
    model = urgency()
    names = {e for e in model.categories}
    assert names <= {"gas", "power", "self-harm", "flood", "domestic-abuse", "child-at-risk",
                     "missing-person", "medical", "fire", "crime-in-progress", "road-accident",
                     "suspicious-package", "vulnerable-person", "coastguard", "council-emergency",
                     "danger-to-life"}  # fmt: skip


def test_a_reading_names_the_words_that_weighed_most() -> None:
    model = urgency()
    text = "my husband collapsed and he is not breathing"
    said = signals("medical", danger(prepare(text)), signs(prepare(text)))  # as triage does
    urgent = model.read(features(prepare(text), said))
    calm = model.read(features(prepare("what time does the tip open on sunday")))
    assert urgent.probability > 0.9 > 0.1 > calm.probability
    assert urgent.category == "medical"
    assert "reads as an emergency with probability" in urgent.explain()
    assert urgent.reasons and all(isinstance(w, float) for _, w in urgent.reasons)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gets_a_probability(text: str) -> None:
    model = urgency()
    found = features(prepare(text), welsh=True)
    assert 0.0 <= model.probability(found) <= 1.0
    model.category(found)


def test_the_quick_score_is_the_score_of_the_features_on_the_tuning_part() -> None:
    """Urgency.quick, the request path, adds up exactly the weights that score(features())
    does, on every tuning message read both as English and as Welsh."""
    model = urgency()
    lines = (ROOT / "tests" / "data" / "triage" / "tune.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in lines.splitlines() if line.strip()]
    texts += ["help help help", "", ". , .", "and and the", "mae o wedi ei drywanu"]
    for text in texts:
        prepared = prepare(text)
        said = signals("medical", danger(prepared), signs(prepared))
        for welsh in (False, True):
            slow = model.score(features(prepared, said, welsh))
            assert abs(model.quick(prepared.layout.stems, said, welsh) - slow) < 1e-9, text


def test_deciding_without_the_signs_that_cannot_matter_decides_as_with_all_of_them() -> None:
    """Matcher.decide works out the shape signs only when they can change the decision, the
    searched ones only when the plain ones leave it open: on every tuning message, it decides
    as the whole score (every feature, every sign) says it should."""
    from bot.check import load
    from bot.models import POSSIBLE

    model = urgency()
    lines = (ROOT / "tests" / "data" / "triage" / "tune.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in lines.splitlines() if line.strip()]
    triages = {"en": load(ROOT / "rules.toml"),
               "cy": load(ROOT / "examples" / "welsh-council" / "rules.toml")}  # fmt: skip
    for row in rows:
        lang = row.get("lang", "en")
        triage, welsh = triages[lang], lang == "cy"
        prepared = prepare(row["text"])
        found = triage.group.firsts(prepared)[0]
        match = triage.emergencies.decide(prepared, found, welsh)
        phrase = triage.emergencies.match(found)
        words = None if phrase else danger(prepared)
        said = signals(phrase and phrase.category.name, words, signs(prepared))
        p = model.probability(features(prepared, said, welsh))
        limits = model.thresholds[lang]
        if phrase is not None or (words is not None and words[2]):
            expected = "certain" if p >= limits["veto"] else None
        elif p < limits["low"]:
            expected = None
        else:
            expected = "possible" if p < limits["high"] else "certain"
        got = match and ("possible" if match.phrase.startswith(POSSIBLE) else "certain")
        assert got == expected, row["text"]


def test_the_compact_tables_hold_the_shipped_weights() -> None:
    """Weights split into single features and pairs, category rows in one float table: each
    feature reads back as the file has it (floats to 4 bytes for the category rows)."""
    data = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    model = urgency()
    assert all(model.weight(f) == w for f, w in data["weights"].items())
    assert model.weight("no such feature") == 0.0
    k = len(model.categories)
    for f, row in data["by_category"].items():
        stored = model.table[model.rows[f] : model.rows[f] + k]
        expected = [0.0] * k
        for pair in row.split():
            i, _, w = pair.partition(":")
            expected[int(i)] = float(w)
        assert all(abs(a - b) < 1e-6 for a, b in zip(stored, expected, strict=True)), f
