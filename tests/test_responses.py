"""Templates in two layers: the organisation's own folders, then the ones shipped in the package.

Each test writes rules.toml in an empty folder, as a new user does, and reads replies through
the real triage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.check import load, summary
from bot.errors import RulesError
from bot.models import Message, SenderState
from bot.responses import SHIPPED
from bot.triage import Triage

MINIMAL = """\
[organisation]
name = "Newtown Council"
{extra}
[hours]
monday = "09:00-17:00"

[promise]
first_reply = "1 working day"

[channels.web]
[channels.x]
"""
SUNDAY_NIGHT = datetime(2027, 7, 4, 21, 0, tzinfo=UTC)  # closed: out-of-hours


def rules_in(folder: Path, extra: str = "") -> Path:
    path = folder / "rules.toml"
    path.write_text(MINIMAL.format(extra=extra), encoding="utf-8")
    return path


def own(folder: Path, relative: str, text: str) -> Path:
    path = folder / "responses" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def reply(triage: Triage, channel: str, text: str = "hello", language: str = "en") -> str:
    message = Message(channel, "p1", "s1", text, SUNDAY_NIGHT)
    decision = triage.decide(message, SenderState(), "ABCD-EFGH")
    assert decision.reply is not None
    return decision.reply


def shipped(relative: str) -> str:
    return (SHIPPED / relative).read_text(encoding="utf-8")


def test_minimal_rules_in_an_empty_folder_use_the_shipped_templates(tmp_path: Path) -> None:
    triage = load(rules_in(tmp_path))
    assert reply(triage, "web").startswith("Thank you for your message to Newtown Council.")
    assert triage.responses.source("en", "out-of-hours", "web") == SHIPPED / "en/out-of-hours.txt"
    assert triage.responses.source("en", "out-of-hours", "x") == SHIPPED / "en/out-of-hours.x.txt"
    text = summary(triage, SUNDAY_NIGHT)
    # Only what these rules use: five templates, four with an X variant; no emergency's.
    assert "Templates: 9 in use, every one checked" in text and "emergency" not in text
    assert "Yours: none" in text
    assert f"Shipped with Holding Reply, from {SHIPPED}" in text
    assert "en/out-of-hours.x.txt" in text


def test_an_own_template_overrides_the_shipped_one_on_every_channel(tmp_path: Path) -> None:
    mine = own(tmp_path, "en/out-of-hours.txt", "Closed, {{ organisation }}. Ref {{ reference }}")
    triage = load(rules_in(tmp_path))
    assert reply(triage, "web") == "Closed, Newtown Council. Ref ABCD-EFGH"
    # Also on X: the organisation's wording beats the shipped short variant of the old wording.
    assert reply(triage, "x") == "Closed, Newtown Council. Ref ABCD-EFGH"
    assert triage.responses.source("en", "out-of-hours", "x") == mine
    # Everything else is still shipped.
    assert triage.responses.source("en", "bio", "web") == SHIPPED / "en/bio.txt"
    text = summary(triage, SUNDAY_NIGHT)
    yours, ships = text.split("Shipped with Holding Reply", 1)
    assert "en/out-of-hours.txt" in yours and "Yours, from" in yours
    assert "en/out-of-hours" not in ships and "en/bio.txt" in ships


def test_a_channel_variant_alone_overrides_only_that_channel(tmp_path: Path) -> None:
    own(tmp_path, "en/out-of-hours.x.txt", "Closed. Ref {{ reference }}")
    triage = load(rules_in(tmp_path))
    assert reply(triage, "x") == "Closed. Ref ABCD-EFGH"
    assert reply(triage, "web").startswith("Thank you for your message to Newtown Council.")
    assert triage.responses.source("en", "out-of-hours", "web") == SHIPPED / "en/out-of-hours.txt"


def test_each_language_is_overridden_on_its_own(tmp_path: Path) -> None:
    own(tmp_path, "cy/out-of-hours.txt", "Ar gau. Cyfeirnod {{ reference }}")
    path = rules_in(tmp_path, 'languages = ["en", "cy"]\n')
    # Web only: the shipped Welsh templates have no X variants yet (too long for 280).
    path.write_text(path.read_text(encoding="utf-8").replace("[channels.x]", ""), "utf-8")
    triage = load(path)
    welsh = "Diolch am eich neges. Mae'r swyddfa ar gau heddiw."
    assert reply(triage, "web", welsh) == "Ar gau. Cyfeirnod ABCD-EFGH"
    assert reply(triage, "web").startswith("Thank you for your message to Newtown Council.")


def test_an_own_plain_template_too_long_for_x_is_caught(tmp_path: Path) -> None:
    own(tmp_path, "en/out-of-hours.txt", "x" * 300)
    with pytest.raises(RulesError) as caught:
        load(rules_in(tmp_path))
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "out-of-hours.txt: can be 300 characters long for x, over its limit of 280" in text
    assert "add a shorter en/out-of-hours.x.txt" in text


def test_a_template_the_rules_need_that_nobody_has_is_missing(tmp_path: Path) -> None:
    extra = '\n[[redirect]]\nname = "parking"\nphrases = ["parking"]\nresponse = "our-parking"\n'
    path = rules_in(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'responses' / 'en' / 'our-parking.txt'}: "
        "template missing; needed by redirect[1].response"
    ]


def test_a_folder_named_in_the_rules_must_exist(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load(rules_in(tmp_path, 'responses = "replies"\n'))
    assert "organisation.responses: folder 'replies' not found" in str(caught.value.problems[0])
