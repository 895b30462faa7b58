"""A real `pip install` of the project (not editable), then `check` on a minimal rules.toml in an
empty folder, run from outside the checkout: the installed package brings its own templates.

The build runs without build isolation (setuptools and wheel come from the test extra), so it
needs no network; dependencies are the ones already installed (--no-deps).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

MINIMAL = """\
[organisation]
name = "Newtown Council"

[hours]
monday = "09:00-17:00"

[promise]
first_reply = "1 working day"
"""


def test_an_installed_package_checks_minimal_rules_in_an_empty_folder(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "bot", source / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert (site / "bot" / "default_responses" / "en" / "out-of-hours.txt").is_file()

    empty = tmp_path / "newtown"
    empty.mkdir()
    (empty / "rules.toml").write_text(MINIMAL, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"  # neither the checkout nor the rules' folder
    elsewhere.mkdir()
    run_env = {**env, "PYTHONPATH": str(site), "RULES_FILE": ""}
    checked = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--rules", str(empty / "rules.toml")],
        capture_output=True, text=True, timeout=120, env=run_env, cwd=elsewhere,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "OK — Newtown Council, Europe/London" in checked.stdout
    shipped = site / "bot" / "default_responses"
    assert f"Shipped with Holding Reply, from {shipped.resolve()}" in checked.stdout
    assert str(ROOT) not in checked.stdout  # nothing came from the checkout

    previewed = subprocess.run(
        [sys.executable, "-m", "bot", "preview", "--rules", str(empty / "rules.toml"),
         "--at", "2027-07-05T20:00", "hello"],
        capture_output=True, text=True, timeout=120, env=run_env, cwd=elsewhere,
    )  # fmt: skip
    assert previewed.returncode == 0, previewed.stderr
    assert "Thank you for your message to Newtown Council." in previewed.stdout
