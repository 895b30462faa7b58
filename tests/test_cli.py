"""The command line, run as a real subprocess, as a comms officer would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import Decision, Message, SenderState
from bot.store import open_store
from tests.conftest import ROOT, london


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        cwd=cwd,
    )


def test_check_passes_on_the_shipped_rules_and_summarises() -> None:
    result = run("check")
    assert result.returncode == 0, result.stderr
    assert "OK — Anytown Borough Council, Europe/London" in result.stdout
    assert "Staffed: Monday to Thursday 9am to 5pm, Friday 9am to 4:30pm" in result.stdout
    assert "Channels: web" in result.stdout


@pytest.mark.parametrize(
    "example", sorted(p.parent.name for p in (ROOT / "examples").glob("*/rules.toml"))
)
def test_check_passes_on_every_example(example: str) -> None:
    result = run("check", "--rules", str(ROOT / "examples" / example / "rules.toml"))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_there_are_police_and_welsh_examples() -> None:
    assert (ROOT / "examples" / "police" / "rules.toml").exists()
    assert (ROOT / "examples" / "welsh-council" / "rules.toml").exists()


def test_check_reports_every_problem_with_file_and_line_and_no_traceback(tmp_path: Path) -> None:
    rules = (ROOT / "rules.toml").read_text(encoding="utf-8")
    rules = rules.replace('monday = "09:00-17:00"', 'monday = "9am-5pm"')
    rules = rules.replace('first_reply = "4 working hours"', 'first_reply = "soon"')
    rules += "\n[organisation.extra]\n"
    bad = tmp_path / "rules.toml"
    bad.write_text(
        rules.replace(
            'timezone = "Europe/London"',
            f'timezone = "Europe/London"\nresponses = "{ROOT / "responses"}"',
        ),
        encoding="utf-8",
    )
    result = run("check", "--rules", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert any(
        f"{bad}:" in line and "hours.monday: '9am-5pm' is not a time range" in line
        for line in lines
    )
    assert any("promise.first_reply: 'soon' is not a promise" in line for line in lines)
    assert any("organisation.extra: unknown key 'extra'" in line for line in lines)
    assert lines[-1] == "3 problems found; nothing was changed."


def test_check_finds_template_mistakes(tmp_path: Path) -> None:
    responses = tmp_path / "responses" / "en"  # the organisation's own, over the shipped ones
    responses.mkdir(parents=True)
    (responses / "acknowledgement.txt").write_text("Thanks {{ organization }}", encoding="utf-8")
    (responses / "bio.txt").write_text("{% if %}", encoding="utf-8")
    (responses / "out-of-hours.x.txt").write_text("x" * 281, encoding="utf-8")
    rules = (
        (ROOT / "rules.toml")
        .read_text(encoding="utf-8")
        .replace("[channels.web]", "[channels.web]\n[channels.x]")
        .replace('response = "redirect-crime"', 'response = "redirect-crime-ours"')
    )
    (tmp_path / "rules.toml").write_text(rules, encoding="utf-8")
    result = run("check", "--rules", str(tmp_path / "rules.toml"))
    assert result.returncode == 1
    err = result.stderr
    assert "acknowledgement.txt: unknown variable(s) organization" in err
    assert "bio.txt:1: template error" in err
    assert "out-of-hours.x.txt: can be 281 characters long for x, over its limit of 280" in err
    missing = tmp_path / "responses" / "en" / "redirect-crime-ours.txt"
    assert f"{missing}: template missing; needed by redirect[1].response" in err


def test_preview_json_says_what_the_bot_would_answer() -> None:
    result = run(
        "preview",
        "--json",
        "--at",
        "2026-11-27T20:00",
        "--at",
        "2026-11-23T10:00:00+00:00",
        "--channel",
        "web",
        "my bin wasn't collected",
    )
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["at"] == "2026-11-27T20:00:00+00:00"
    assert first["staffed"] is False and first["template"] == "out-of-hours"
    assert first["team"] == "waste" and first["language"] == "en"
    assert first["reply_by"] == "2026-12-02T17:00:00+00:00"  # the waste team's 2 working days
    assert first["emergency"] is None and first["redirect"] is None
    assert "We aim to reply by 5pm on Wednesday 2 December" in first["reply"]
    assert second["staffed"] is True and second["template"] == "acknowledgement"


def test_preview_text_output_and_local_time_across_the_clock_change() -> None:
    result = run("preview", "--at", "2026-10-24T20:00", "someone is on fire")
    assert result.returncode == 0, result.stderr
    assert "At Saturday 24 October 2026 20:00 BST (closed)" in result.stdout
    assert "emergency:" in result.stdout and "call 999" in result.stdout


def test_preview_shows_how_a_typical_reply_time_reads() -> None:
    at = "2026-11-30T10:00"  # a Monday morning: staffed
    plain = run("preview", "--at", at, "My bin was not collected")
    typical = run("preview", "--at", at, "--typical", "3 working hours", "My bin was not collected")
    assert plain.returncode == typical.returncode == 0, typical.stderr
    assert "half of our replies" not in plain.stdout
    assert "Over the last four weeks, half of our replies came within 3 working hours." in (
        typical.stdout
    )
    wrong = run("preview", "--typical", "soon", "hello")
    assert wrong.returncode == 1
    assert "--typical: 'soon' is not a promise; expected" in wrong.stderr


def test_preview_rejects_a_bad_time() -> None:
    result = run("preview", "--at", "next tuesday", "hello")
    assert result.returncode == 1
    assert "--at 'next tuesday' is not a date and time" in result.stderr


def test_bio_prints_one_line_per_channel() -> None:
    result = run("bio", "--channel", "web")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "Anytown Borough Council. Staffed Mon–Thu 9am–5pm, Fri 9am–4:30pm, not monitored 24/7. "
        "Emergencies: 999."
    )


async def test_queue_lists_open_items_most_overdue_first_and_done_removes_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/q.sqlite3"
    async with open_store(url) as store:
        for n, (text, due, emergency) in enumerate(
            [
                ("later", "2026-11-30 13:00:00", None),
                ("sooner", "2026-11-24 10:00:00", None),
                ("fire!", "2026-11-30 13:00:00", "fire"),
            ]
        ):
            message = Message("web", f"p{n}", f"s{n}", text, datetime(2026, 11, 23, tzinfo=UTC))

            def decide(
                _: SenderState, __: str, due: str = due, em: str | None = emergency
            ) -> Decision:
                return Decision(
                    False, london(due), None, em, None, None, "en", "out-of-hours", "ok"
                )

            await store.ingest(message, decide)
    env = {"DATABASE_URL": url}
    result = run("queue", "--json", env=env)
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [i["text"] for i in items] == ["fire!", "sooner", "later"]
    table = run("queue", env=env)
    assert "EMERGENCY fire" in table.stdout and table.stdout.index("sooner") < table.stdout.index(
        "later"
    )
    done = run("done", items[1]["reference"], "--by", "Sam", env=env)
    assert done.returncode == 0, done.stderr
    after = json.loads(run("queue", "--json", env=env).stdout)
    assert [i["text"] for i in after] == ["fire!", "later"]
    everything = json.loads(run("queue", "--json", "--all", env=env).stdout)
    assert everything[-1]["done_by"] == "Sam"
    missing = run("done", "NOPE-NOPE", "--by", "Sam", env=env)
    assert missing.returncode == 1 and "NOPE-NOPE" in missing.stderr


def test_queue_with_an_unusable_database_url_says_so() -> None:
    result = run("queue", env={"DATABASE_URL": "mysql://localhost/db"})
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_preview_says_why_it_is_or_is_not_an_emergency() -> None:
    urgent = run("preview", "--json", "my husband has collapsed and is not breathing")
    assert urgent.returncode == 0, urgent.stderr
    why = json.loads(urgent.stdout)["why"]
    assert why[0] == "an emergency"
    assert any('of emergency "medical"' in line for line in why)
    assert any("the learned weights" in line for line in why)
    calm = run("preview", "when is the tip open on sundays")
    assert calm.returncode == 0, calm.stderr
    assert "why:       not an emergency" in calm.stdout


def test_check_warns_about_phrases_that_never_match_or_match_too_much(tmp_path: Path) -> None:
    rules = (ROOT / "rules.toml").read_text(encoding="utf-8")
    rules = rules.replace(
        'phrases = [\n    "cable down",',
        'phrases = [\n    "road", "fire last week", "cable down",',
        1,
    )
    rules = rules.replace('unless = ["coastguard station",', 'unless = ["overboard",', 1)
    (tmp_path / "responses").symlink_to(ROOT / "responses")
    path = tmp_path / "rules.toml"
    path.write_text(rules, encoding="utf-8")
    result = run("check", "--rules", str(path))
    assert result.returncode == 0, result.stderr  # warnings, not errors
    out = result.stdout
    assert 'warning: emergency "power": phrase "road" matches' in out
    assert 'warning: emergency "power": phrase "fire last week" does not match' in out
    assert 'phrase "man overboard" can never match: its own `unless` cancels it' in out
    clean = run("check")
    assert "warning:" not in clean.stdout
