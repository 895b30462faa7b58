"""The README is part of the product: every key, template value and command is documented."""

from __future__ import annotations

import re

import pytest

from bot.cli import parser
from bot.config import KEYS
from bot.responses import VARIABLES
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("key", sorted(KEYS))
def test_every_rules_key_is_documented(key: str) -> None:
    assert f"`{key}`" in README, f"README.md does not document the rules.toml key `{key}`"


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_every_template_value_is_documented(name: str) -> None:
    assert re.search(rf"`{re.escape(name)}`", README), f"README.md does not list `{name}`"


def test_every_command_is_documented() -> None:
    commands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"python -m bot {name}" in README, f"README.md does not document `{name}`"


def environment_variables() -> set[str]:
    """Every variable the code reads: os.environ.get("NAME") or os.environ["NAME"]."""
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"os\.environ(?:\.get\(|\[)\"([A-Z][A-Z0-9_]+)\"", text))
        found |= set(re.findall(r"\benv(?:\.get\(|\[)\"([A-Z][A-Z0-9_]+)\"", text))
        listed = re.findall(
            r"^    \"([A-Z][A-Z0-9_]+)\",(?:\s+#.*)?$", text, re.MULTILINE
        )  # tuples of names
        found |= {name for name in listed if f"{name} =" not in text}  # not a constant's own name
    return found


def test_the_code_reads_the_variables_we_know_of() -> None:
    assert {"PORT", "DATABASE_URL", "RULES_FILE", "LOG_LEVEL", "AUTO_MIGRATE"} <= (
        environment_variables()
    )


@pytest.mark.parametrize("variable", sorted(environment_variables()))
def test_every_environment_variable_is_documented(variable: str) -> None:
    rows = [line for line in README.splitlines() if line.startswith("| `")]
    first_cells = [row.split(" | ")[0] for row in rows]
    assert any(f"`{variable}`" in cell for cell in first_cells), (
        f"README.md's table does not explain `{variable}`"
    )


def test_every_documented_key_exists() -> None:
    """The reverse: the key tables do not describe keys the code no longer accepts."""
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_<>.]+)` \|", README, re.MULTILINE))
    assert documented <= set(KEYS), documented - set(KEYS)


def test_quick_start_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, re.DOTALL)
    assert blocks[0].strip() == "python3 -m pip install . && python3 -m bot"
    test_command = blocks[1].strip()
    assert test_command == "python3 -m pip install -e '.[test]' && python3 -m pytest"
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
