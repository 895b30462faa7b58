"""Danger words with signs that it is happening now: what they catch, and what they must not."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.danger import CONCEPTS, danger
from bot.phrases import prepare

ROOT = Path(__file__).resolve().parent.parent
RULES = tomli.loads((ROOT / "rules.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # a danger word and a sign that it is happening now
        ("a group of men are laying into a young lad by the bus station", "danger-to-life"),
        ("two guys in balaclavas are going through the cars right now", "crime-in-progress"),
        ("the tumble dryer is smoking and I can see an orange glow inside", "fire"),
        ("my friend took something and now she's shaking and won't stop", "medical"),
        ("my sister rang whispering, she's hiding in the wardrobe", "domestic-abuse"),
        # two kinds of danger word of one emergency
        ("my dad's gone grey and can't get his words out", "medical"),
        ("husband has a crushing feeling in his chest", "medical"),
        ("the whole stairwell stinks like rotten eggs", "gas"),
        ("smell of eggs in my kitchen and i feel dizzy", "gas"),
        ("river's burst through and the water's in our living room", "flood"),
        ("a telegraph pole is down and the wires are across the road", "power"),
        ("a little boy about 3 is walking along the dual carriageway on his own", "child-at-risk"),
        ("my husband has dementia and still isn't back", "missing-person"),
        ("old lady on the bench in just her nightdress and she's freezing", "vulnerable-person"),
        ("my mate sent me a photo of a load of pills and said goodbye", "self-harm"),
        # text speak and slips of case
        ("NANNA WENT DOWN IN THE KITCHEN AND SHES NOT TALKING", "medical"),
    ],
)
def test_catches(text: str, name: str) -> None:
    found = danger(prepare(text))
    assert found is not None and found[0] == name, found


@pytest.mark.parametrize(
    "text",
    [
        "the smoke alarm in my council flat keeps beeping, i think the battery is going",
        "our gas boiler is making a funny noise, who do i call for a repair",
        "I'm bleeding money with these parking charges",
        "my elderly mum is confused by the new bin calendar, can you post her a paper copy",
        "our neighbour is burning garden waste and the smoke is coming into our house right now",
        "What number do I ring if I smell gas?",
        "the flooding on Brook Street has gone down now, thanks for the sandbags",
        "my flat is freezing, the heating has been off since monday",
        "there's no smoke now, all fine",
        "the garage fire last month was awful, when will the road reopen?",
        "lol the kitchen is on fire again, my cooking is that bad 😂",
        "is there a defibrillator in the village hall?",
        "my bin is overflowing",
        "",
    ],
)
def test_stays_silent(text: str) -> None:
    assert danger(prepare(text)) is None


def test_every_emergency_it_names_is_in_the_shipped_rules() -> None:
    shipped = {entry["name"] for entry in RULES["emergency"]}
    assert set(CONCEPTS) <= shipped


def test_it_says_which_words_made_it_an_emergency() -> None:
    assert danger(prepare("husband has a crushing feeling in his chest")) == (
        "medical",
        "husband + crushing",
        True,
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_safe(text: str) -> None:
    found = danger(prepare(text))
    assert found is None or found[0] in CONCEPTS
