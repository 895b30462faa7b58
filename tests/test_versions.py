"""Rules versions as texts: read from files, checked as `check` checks, compared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.errors import RulesError
from bot.responses import SHIPPED
from bot.versions import (
    MAX_TEMPLATE,
    check_files,
    diff,
    read_files,
    summary_of,
    templates,
    write_files,
)
from tests.conftest import ROOT


def test_the_shipped_rules_and_templates_make_a_version_that_passes() -> None:
    files = read_files(ROOT / "rules.toml")
    assert templates(files) == []  # the checkout's responses/ is empty: every reply is shipped
    assert files["rules.toml"] == (ROOT / "rules.toml").read_text(encoding="utf-8")
    assert check_files(files).rules.name == "Anytown Borough Council"


def test_a_folder_above_the_rules_is_kept_inside_the_version(tmp_path: Path) -> None:
    org = tmp_path / "org" / "welsh-council"
    org.mkdir(parents=True)
    rules_text = (ROOT / "examples" / "welsh-council" / "rules.toml").read_text(encoding="utf-8")
    (org / "rules.toml").write_text(
        rules_text.replace("[organisation]", '[organisation]\nresponses = "../../responses"', 1),
        encoding="utf-8",
    )
    (tmp_path / "responses" / "cy").mkdir(parents=True)
    shutil.copy(SHIPPED / "cy" / "bio.txt", tmp_path / "responses" / "cy" / "bio.txt")
    files = read_files(org / "rules.toml")
    assert "../../responses/cy/bio.txt" in files
    out = tmp_path / "written"
    out.mkdir()
    rules = write_files(files, out)
    assert rules.is_relative_to(out) and (rules.parent / "../../responses/cy/bio.txt").exists()
    check_files(files)


def test_problems_are_named_as_the_files_are_written_and_at_their_line() -> None:
    files = read_files(ROOT / "rules.toml")
    files["rules.toml"] = files["rules.toml"].replace(
        'monday = "09:00-17:00"', 'monday = "9-17:00"'
    )
    with pytest.raises(RulesError) as caught:
        check_files(files)
    said = [str(p) for p in caught.value.problems]
    line = files["rules.toml"].splitlines().index('monday = "9-17:00"') + 1
    assert said[0].startswith(f"rules.toml:{line}: hours.monday: '9-17:00' is not a time range")

    files = read_files(ROOT / "rules.toml")
    files["responses/en/bio.txt"] = "{{ organisaton }}"
    with pytest.raises(RulesError) as caught:
        check_files(files)
    assert str(caught.value.problems[0]).startswith("responses/en/bio.txt: unknown variable")


def test_sizes_and_names_are_limited() -> None:
    files = read_files(ROOT / "rules.toml")
    with pytest.raises(RulesError, match="at most 16,384"):
        check_files({**files, "responses/en/bio.txt": "x" * (MAX_TEMPLATE + 1)})
    with pytest.raises(RulesError, match="not a template's name"):
        check_files({**files, "/etc/passwd": "x"})


def test_the_difference_is_shown_file_by_file() -> None:
    old = {"rules.toml": "a\nb\n", "r/en/bio.txt": "hi"}
    new = {"rules.toml": "a\nc\n", "r/en/bio.txt": "hi", "r/en/new.txt": "x"}
    found = diff(old, new)
    assert [d.name for d in found] == ["rules.toml", "r/en/new.txt"]
    assert "-b" in found[0].lines and "+c" in found[0].lines
    assert found[1].lines[0] == "(new file)"
    assert summary_of(old, new) == "rules.toml and r/en/new.txt"
    assert summary_of(old, old) == "nothing (the same as the version before)"
