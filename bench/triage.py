"""Emergency recall and false alarms of the shipped rules on the labelled corpora.

    python bench/triage.py

Uses the same Triage the server uses (phrases, then danger words), on every message of
tests/data/triage-*.jsonl, and prints the figures per file and what was missed.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.check import load  # noqa: E402
from bot.models import Message  # noqa: E402


def main() -> None:
    triage = load(ROOT / "rules.toml")
    at = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    for path in sorted((ROOT / "tests" / "data").glob("triage-*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        caught = alarms = urgent = 0
        missed: list[str] = []
        for row in rows:
            decision = triage.decide(Message("web", "b", "b", row["text"], at))
            flagged = decision.emergency is not None
            if row["emergency"]:
                urgent += 1
                caught += flagged
                if not flagged:
                    missed.append(row["text"])
            else:
                alarms += flagged
        routine = len(rows) - urgent
        print(
            f"{path.name}: {len(rows)} messages; emergencies caught {caught}/{urgent} "
            f"({caught / urgent:.1%}); false alarms {alarms}/{routine} ({alarms / routine:.1%})"
        )
        for text in missed:
            print(f"  missed: {text}")


if __name__ == "__main__":
    main()
