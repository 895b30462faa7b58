"""rules.toml: what is accepted, and the message a comms officer gets for each mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_rules
from bot.errors import RulesError

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
[organisation]
name = "Testville Council"
timezone = "Europe/London"
bank_holidays = "england-and-wales"
responses = "{responses}"

[hours]
monday = "09:00-17:00"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text.replace("{responses}", str(ROOT / "responses")), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_rules(write(tmp_path, text))
    return [str(p) for p in caught.value.problems]


def test_minimal_rules_get_sensible_defaults(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, MINIMAL))
    assert rules.name == "Testville Council"
    assert str(rules.promise) == "4 working hours"
    assert rules.cooldown == timedelta(hours=12)
    assert rules.languages == ("en",)
    assert [str(r) for r in rules.hours[0]] == ["09:00-17:00"]
    assert rules.hours[1] == ()  # a day that is not listed is closed


def test_the_shipped_rules_load() -> None:
    rules = load_rules(ROOT / "rules.toml")
    assert rules.name == "Anytown Borough Council"
    assert rules.emergencies and rules.redirects and rules.teams


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[hours]\nmonday = "9-5"\n',
            ["hours.monday: '9-5' is not a time range; expected \"HH:MM-HH:MM\""],
        ),
        ('[hours]\nmonday = "09:00-17:00, 16:00-18:00"\n', ["overlap"]),
        ('[hours]\nmonday = "25:00-26:00"\n', ["time that does not exist"]),
        (
            '[hours]\nmonady = "09:00-17:00"\n',
            ["hours.monady: unknown key 'monady'; did you mean \"monday\"?"],
        ),
        (
            '[promise]\nfirst_reply = "4 hours"\n',
            ["promise.first_reply: '4 hours' is not a promise; expected \"N working minutes\""],
        ),
        (
            '[acknowledgement]\ncooldown = "a while"\n',
            ["acknowledgement.cooldown: 'a while' is not a duration"],
        ),
        (
            '[[closures]]\nfrom = "2026-12-24"\nto = "2026-12-20"\nreason = "x"\n',
            ["closures[1].to: 2026-12-20 is before"],
        ),
        (
            '[[closures]]\nfrom = "24/12/2026"\nreason = "x"\n',
            ['closures[1].from: expected a date written "YYYY-MM-DD"'],
        ),
        (
            "[[closures]]\nfrom = 2026-12-24\n",
            ["closures[1].reason: missing; this key is required"],
        ),
        ("[channels.webb]\n", ["channels.webb: unknown key 'webb'; did you mean \"web\"?"]),
        ('[channels.web]\nenabled = "yes"\n', ["channels.web.enabled: expected true or false"]),
        (
            '[[team]]\nname = "waste"\nphrases = "bins"\n',
            ["team[1].phrases: expected a list of phrases"],
        ),
        ('[[emergency]]\nname = "x"\nphrases = ["fire"]\n', ["emergency[1].response: missing"]),
        (
            '[[emergency]]\nname = "x"\nphrases = ["fire"]\nresponse = "a"\n'
            '[[emergency]]\nname = "x"\nphrases = ["gas"]\nresponse = "a"\n',
            ["emergency[2].name: 'x' is used by another"],
        ),
        ("[nonsense]\n", ["nonsense: unknown key 'nonsense'"]),
    ],
)
def test_each_mistake_gets_a_message_naming_the_key(
    tmp_path: Path, extra: str, expected: list[str]
) -> None:
    found = "\n".join(
        problems(tmp_path, MINIMAL.replace('[hours]\nmonday = "09:00-17:00"\n', "") + extra)
    )
    for text in expected:
        assert text in found


def test_messages_name_the_file_and_line(tmp_path: Path) -> None:
    text = MINIMAL + 'tuesday = "nine till five"\n'
    found = problems(tmp_path, text)
    assert len(found) == 1
    line = text.splitlines().index('tuesday = "nine till five"') + 1
    assert found[0].startswith(f"{tmp_path / 'rules.toml'}:{line}: hours.tuesday:")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace('"Europe/London"', '"Europe/Londn"').replace(
            '"england-and-wales"', '"england"'
        )
        + 'friday = "late"\n'
    )
    found = "\n".join(problems(tmp_path, text))
    assert "organisation.timezone: 'Europe/Londn' is not a timezone" in found
    assert "organisation.bank_holidays:" in found and "england-and-wales" in found
    assert "hours.friday:" in found


def test_invalid_toml_names_the_line_and_suggests_quotes(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "tuesday = 09:00-17:00\n")
    assert len(found) == 1
    assert ":9: not valid TOML" in found[0]


def test_unquoted_text_gets_a_hint(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "[acknowledgement]\ncooldown = twelve hours\n")
    assert 'text values need quotes: cooldown = "twelve hours"' in found[0]


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path / "nope.toml")
    assert "file not found; pass --rules FILE or set RULES_FILE" in str(caught.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert "not UTF-8" in str(caught.value)


def test_overnight_and_split_ranges_and_welsh(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            MINIMAL
            + (
                'saturday = "10:00-12:00, 13:00-15:00"\nsunday = "22:00-06:00"\n[organisation.x]\n'
            ).replace("[organisation.x]\n", ""),
        )
    )
    assert [str(r) for r in rules.hours[5]] == ["10:00-12:00", "13:00-15:00"]
    assert rules.hours[6][0].length == 8 * 60


def test_channel_and_team_overrides_take_precedence(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            MINIMAL
            + """
[promise]
first_reply = "4 working hours"

[channels.x]
promise = "1 working day"
bank_holidays = "scotland"

[channels.x.hours]
saturday = "10:00-12:00"

[[team]]
name = "waste"
phrases = ["bin"]
promise = "2 working days"
""",
        )
    )
    assert str(rules.promise_for("web")) == "4 working hours"
    assert str(rules.promise_for("x")) == "1 working day"
    assert str(rules.promise_for("x", "waste")) == "2 working days"
    assert rules.schedule_for("x").weekly[5] and not rules.schedule_for("x").weekly[0]
    assert rules.schedule_for("x").holidays.spec == "scotland"
    assert rules.schedule_for("web").holidays.spec == "england-and-wales"


@pytest.mark.parametrize("example", ["police", "welsh-council"])
def test_examples_keep_every_shipped_emergency_phrase(example: str) -> None:
    """The examples copy the shipped emergency lists; a phrase added to one must reach them."""
    import tomli

    def phrases(path: Path) -> dict[str, set[str]]:
        data = tomli.loads(path.read_text(encoding="utf-8"))
        return {e["name"]: set(e["phrases"]) for e in data["emergency"]}

    shipped = phrases(ROOT / "rules.toml")
    copied = phrases(ROOT / "examples" / example / "rules.toml")
    for name, wanted in shipped.items():
        assert wanted <= copied.get(name, set()), (
            f"{example}: {name} lacks {wanted - copied.get(name, set())}"
        )
