"""Add newly written messages to the tuning part, keeping split.py's frozen rule.

    python3 tests/data/triage/add.py NEW.jsonl [NEW.jsonl ...]

A new message whose hash puts it in the test part (split.py's in_test) is dropped, not added to
either part: the test part was measured before it was written, and a message written while
looking at the tuning part's misses would not measure generalisation honestly. A message already
in tune.jsonl is skipped. test.jsonl is neither read nor written. Prints only counts.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from split import FIELDS, HERE, in_test, normalised


def add(tune: Path, sources: list[str]) -> Counter[str]:
    """Append the new messages of sources to the tuning part at tune; the counts of each fate."""
    lines = tune.read_text(encoding="utf-8").splitlines()
    seen = {normalised(json.loads(line)["text"]) for line in lines if line.strip()}
    counts: Counter[str] = Counter()
    added = []
    for source in sources:
        for number, line in enumerate(Path(source).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            item = json.loads(line)
            unknown = set(item) - FIELDS
            if unknown or "text" not in item or not isinstance(item.get("emergency"), bool):
                raise SystemExit(f"{source}:{number}: needs text and emergency; unknown {unknown}")
            key = normalised(item["text"])
            if key in seen:
                counts["already there"] += 1
                continue
            seen.add(key)
            if in_test(item["text"]):
                counts["dropped (hash of the test part)"] += 1
                continue
            added.append(json.dumps(item, ensure_ascii=False))
            kind = "emergency" if item["emergency"] else "other"
            counts[f"added {item.get('lang', 'en')} {kind}"] += 1
    tune.write_text("".join(line + "\n" for line in [*lines, *added]), encoding="utf-8")
    return counts


def main(sources: list[str]) -> int:
    for key, n in sorted(add(HERE / "tune.jsonl", sources).items()):
        print(key, n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
