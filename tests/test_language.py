"""Welsh or English: short messages, Welsh place names, and the organisation's languages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.language import detect_language

BOTH = ["en", "cy"]


@pytest.mark.parametrize(
    "text",
    [
        "Helo, mae fy min heb ei gasglu",
        "Diolch yn fawr",
        "Bore da, pryd mae'r swyddfa ar agor?",
        "Bore da",
        "Shwmae",
        "Pryd fydd y biniau\u2019n cael eu casglu?",
        "Dwi'n byw yn Llanelli a dydy'r biniau ddim wedi cael eu casglu",
        "Mae tân yn y gegin!",
        "MAE'R GOLAU STRYD WEDI TORRI",
    ],
)
def test_welsh(text: str) -> None:
    assert detect_language(text, BOTH) == "cy"


@pytest.mark.parametrize(
    "text",
    [
        "bins in Llanfair not collected",
        "My bin in Aberystwyth wasn't collected",
        "Is Ty Gwyn road closed?",
        "Road closed at Pen y Bont?",
        "Llanfairpwllgwyngyll",
        "Help plis mae tân in the shed next door, it's spreading to the fence",
        "Diolch yn fawr for sorting the bins so quickly",  # a Welsh thank-you in English text
        "ok thanks",
        "",
        "\U0001f44d",
    ],
)
def test_english(text: str) -> None:
    assert detect_language(text, BOTH) == "en"


def test_only_the_organisations_languages() -> None:
    assert detect_language("Diolch yn fawr", ["en"]) == "en"
    assert detect_language("Diolch yn fawr", ["cy", "en"]) == "cy"
    assert detect_language("thank you very much", ["cy", "en"]) == "cy"  # the first is the default
    assert detect_language("Diolch yn fawr", []) == "en"


@given(st.text(max_size=200))
def test_never_raises(text: str) -> None:
    assert detect_language(text, BOTH) in BOTH
    assert detect_language(text, ["en"]) == "en"
