"""The frozen split of the triage corpus: the tuning part holds only messages whose hash puts them
there, and new messages join it by the same rule (tests/data/triage/add.py). Only the tuning
part is read here; the test part is never opened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

TRIAGE = ROOT / "tests" / "data" / "triage"
sys.path.insert(0, str(TRIAGE))

from add import add  # noqa: E402
from split import in_test, normalised  # noqa: E402


def tuning_rows() -> list[dict[str, object]]:
    lines = (TRIAGE / "tune.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_every_tuning_message_hashes_to_the_tuning_part_and_is_there_once() -> None:
    rows = tuning_rows()
    assert not [r["text"] for r in rows if in_test(str(r["text"]))]
    keys = [normalised(str(r["text"])) for r in rows]
    assert len(keys) == len(set(keys))


def test_the_tuning_part_covers_every_situation_in_both_languages() -> None:
    import tomllib

    situations = tomllib.loads((TRIAGE / "situations.toml").read_text())["situation"]
    rows = tuning_rows()
    english = [r for r in rows if r.get("lang", "en") == "en"]
    for s in situations:
        n = sum(1 for r in english if r["emergency"] and r.get("situation") == s["id"])
        assert n >= 20, f"{s['id']}: {n} English tuning messages"
    others = [r for r in english if not r["emergency"]]
    hard = [r for r in others if r.get("kind") == "hard-negative"]
    assert len(others) >= sum(r["emergency"] for r in english) and len(hard) * 3 >= len(others)
    assert sum(1 for r in rows if r.get("lang") == "cy") >= 150


def test_adding_drops_what_hashes_to_the_test_part_and_what_is_already_there(
    tmp_path: Path,
) -> None:
    texts = [f"a new message number {n}" for n in range(40)]
    to_test = next(t for t in texts if in_test(t))
    to_tune = [t for t in texts if not in_test(t)][:2]
    tune = tmp_path / "tune.jsonl"
    tune.write_text(json.dumps({"text": to_tune[0], "emergency": False}) + "\n")
    new = tmp_path / "new.jsonl"
    new.write_text("".join(json.dumps({"text": t, "emergency": True, "situation": "fire"}) + "\n"
                           for t in (to_test, to_tune[0].upper(), to_tune[1])))  # fmt: skip
    counts = add(tune, [str(new)])
    assert counts == {"dropped (hash of the test part)": 1, "already there": 1,
                      "added en emergency": 1}  # fmt: skip
    assert [json.loads(line)["text"] for line in tune.read_text().splitlines()] == to_tune


def test_adding_refuses_a_message_without_a_label(tmp_path: Path) -> None:
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"text": "hello"}) + "\n")
    result = subprocess.run([sys.executable, str(TRIAGE / "add.py"), str(new)],
                            capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert result.returncode != 0 and "needs text and emergency" in result.stderr
