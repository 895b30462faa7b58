"""The decision, as a pure function: message, rules, what we know of the sender, and now."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.check import load
from bot.models import Message, SenderState
from bot.phrases import prepare
from bot.triage import REFERENCE_SLOT, Triage
from tests.conftest import ROOT, copy_rules, london

FRIDAY_NIGHT = london("2026-11-27 20:00:00")
MONDAY_MORNING = london("2026-11-23 10:00:00")


def message(
    text: str, at: object = FRIDAY_NIGHT, channel: str = "web", name: str | None = None
) -> Message:
    return Message(channel, "p1", "s1", text, at, name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("at", "template"),
    [
        ("2026-11-23 10:00:00", "acknowledgement"),  # Monday, staffed
        ("2026-11-27 20:00:00", "out-of-hours"),  # Friday night
        ("2026-08-31 11:00:00", "bank-holiday"),  # Summer bank holiday
        ("2026-08-30 11:00:00", "out-of-hours"),  # the Sunday before it: not today
        ("2026-12-27 15:00:00", "closure"),  # inside the Christmas closure
        ("2026-12-23 13:00:00", "closure"),  # after the short day, the closure follows
    ],
)
def test_template_follows_the_calendar(triage: Triage, at: str, template: str) -> None:
    decision = triage.decide(message("I have a question", london(at)), SenderState(), "ABCD-EFGH")
    assert decision.template == template
    assert decision.reply and "ABCD-EFGH" in decision.reply and REFERENCE_SLOT not in decision.reply


def test_emergency_is_answered_within_the_cooldown_and_others_are_not(triage: Triage) -> None:
    just_now = SenderState(FRIDAY_NIGHT - timedelta(minutes=5), "out-of-hours")
    routine = triage.decide(message("I have a question"), just_now, "R")
    assert routine.reply is None and routine.template is None and routine.held_back == "cooldown"
    urgent = triage.decide(message("my kitchen is on fire"), just_now, "R")
    assert urgent.emergency == "fire" and urgent.reply and "999" in urgent.reply
    after = SenderState(FRIDAY_NIGHT - triage.rules.cooldown, "out-of-hours")
    assert triage.decide(message("I have a question"), after, "R").reply is not None


def test_a_redirect_is_said_once_even_within_the_cooldown(triage: Triage) -> None:
    acked = SenderState(FRIDAY_NIGHT - timedelta(minutes=5), "out-of-hours")
    text = "can I pay my council tax with my card number on here"
    first = triage.decide(message(text), acked, "R")
    assert first.redirect == "card-payment" and first.reply
    again = triage.decide(message(text), SenderState(FRIDAY_NIGHT, first.template), "R")
    assert again.reply is None and again.held_back == "cooldown"


def test_an_opted_out_sender_gets_no_automatic_reply_except_in_an_emergency(triage: Triage) -> None:
    out = SenderState(opted_out=True)
    assert triage.decide(message("I have a question"), out, "R").held_back == "opted-out"
    assert triage.decide(message("someone has collapsed and is not breathing"), out, "R").reply


def test_the_name_is_used_but_cut_to_a_sensible_length(triage: Triage) -> None:
    reply = triage.decide(message("hi", name="Ann " + "x" * 100), SenderState(), "R").reply
    assert reply and reply.startswith("Hello Ann xxx") and "x" * 41 not in reply


def _rules(tmp_path: Path, extra: str, replace: dict[str, str] | None = None) -> Triage:
    return load(copy_rules(tmp_path, extra, replace))


def test_welsh_messages_get_welsh_replies(tmp_path: Path) -> None:
    triage = _rules(tmp_path, "", {'languages = ["en"]': 'languages = ["en", "cy"]'})
    welsh = triage.decide(message("Helo, mae fy min heb ei gasglu"), SenderState(), "R")
    assert welsh.language == "cy"
    assert "Diolch am eich neges" in (welsh.reply or "")
    assert "Ein nod yw ateb erbyn 1yh ddydd Llun 30 Tachwedd" in (welsh.reply or "")
    english = triage.decide(message("My bin in Llanfair wasn't collected"), SenderState(), "R")
    assert english.language == "en" and "Thank you" in (english.reply or "")


def test_bilingual_replies_carry_both_languages_welsh_first() -> None:
    triage = load(ROOT / "examples" / "welsh-council" / "rules.toml")
    reply = triage.decide(message("When is the library open?"), SenderState(), "R").reply or ""
    assert reply.index("Diolch") < reply.index("Thank you")
    closed = triage.decide(message("Hello", london("2026-12-28 10:00:00")), SenderState(), "R")
    assert "cyfnod cau'r Nadolig" in (closed.reply or "")
    assert "the Christmas closure" in (closed.reply or "")


def test_the_x_channel_uses_its_short_variant(tmp_path: Path) -> None:
    triage = _rules(tmp_path, "\n[channels.x]\n")
    web = triage.decide(message("I have a question"), SenderState(), "ABCD-EFGH")
    x = triage.decide(message("I have a question", channel="x"), SenderState(), "ABCD-EFGH")
    assert x.reply and web.reply and len(x.reply) <= 280 < len(web.reply)
    assert "ABCD-EFGH" in x.reply


def test_a_desk_never_staffed_makes_no_promise(tmp_path: Path) -> None:
    hours = (
        '[hours]\nmonday = "09:00-17:00"\ntuesday = "09:00-17:00"\nwednesday = "09:00-17:00"\n'
        'thursday = "09:00-17:00"\nfriday = "09:00-16:30"\n'
    )
    triage = _rules(
        tmp_path,
        "",
        {hours: "[hours]\n", '[[special_hours]]\ndate = "2026-12-23"\nhours = "09:00-12:30"\n': ""},
    )
    decision = triage.decide(message("I have a question"), SenderState(), "R")
    assert decision.reply_by is None and decision.opens_at is None
    assert "We will reply as soon as we can" in (decision.reply or "")


def test_deciding_is_deterministic(triage: Triage) -> None:
    m = message("There's a strong smell of gas in the flats and my bin wasn't collected")
    assert triage.decide(m, SenderState(), "R") == triage.decide(m, SenderState(), "R")


@pytest.mark.parametrize(
    ("text", "category", "template"),
    [
        ("the whole stairwell stinks like rotten eggs", "gas", "emergency-gas"),
        ("husband has a crushing feeling in his chest", "medical", "emergency-999"),
        ("a telegraph pole is down and the wires are across the road", "power", "emergency-power"),
    ],
)
def test_danger_words_are_answered_even_when_no_phrase_matches(
    triage: Triage, text: str, category: str, template: str
) -> None:
    assert triage.emergencies.first(prepare(text)) is None
    decision = triage.decide(message(text), SenderState(), "R")
    assert (decision.emergency, decision.template) == (category, template)
    assert decision.matched  # the words that triggered it, for the team to see


def test_every_shipped_template_fits_every_channel(tmp_path: Path) -> None:
    """With all channels on, `check` renders each template at its longest for each channel."""
    triage = _rules(tmp_path, "\n[channels.x]\n[channels.telegram]\n")
    assert set(triage.rules.channels) == {"web", "x", "telegram"}
