"""Split the labelled triage corpus once, by a fixed rule, into a tuning part and a test part.

The rule is committed before any tuning: a message belongs to the test part when the SHA-256 of
its normalised text (lower case, runs of white space as one space, trimmed), read as a number
from its first 8 hex digits, leaves 0 when divided by 3. Nothing else decides it, so the split
cannot drift towards what the matcher already catches.

    python3 tests/data/triage/split.py SOURCE.jsonl [SOURCE.jsonl ...]

writes tune.jsonl and test.jsonl beside this file, each sorted by the writer's order, and prints
only counts. Whoever tunes the rules reads tune.jsonl and never opens test.jsonl: the test part is
measured by `python3 bench/triage.py --part test`, which prints figures, not messages.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
FIELDS = {"text", "emergency", "situation", "lang", "kind"}


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def in_test(text: str) -> bool:
    return int(hashlib.sha256(normalised(text).encode()).hexdigest()[:8], 16) % 3 == 0


def main(sources: list[str]) -> int:
    seen: set[str] = set()
    parts: dict[str, list[str]] = {"tune": [], "test": []}
    counts: Counter[tuple[str, str, str]] = Counter()
    for source in sources:
        for number, line in enumerate(Path(source).read_text().splitlines(), 1):
            if not line.strip():
                continue
            item = json.loads(line)
            unknown = set(item) - FIELDS
            if unknown or "text" not in item or not isinstance(item.get("emergency"), bool):
                raise SystemExit(f"{source}:{number}: needs text and emergency; unknown {unknown}")
            key = normalised(item["text"])
            if key in seen:  # the same message twice would sit in both parts' figures
                continue
            seen.add(key)
            part = "test" if in_test(item["text"]) else "tune"
            parts[part].append(json.dumps(item, ensure_ascii=False))
            counts[
                (part, item.get("lang", "en"), "emergency" if item["emergency"] else "other")
            ] += 1
    for part, lines in parts.items():
        (HERE / f"{part}.jsonl").write_text("".join(line + "\n" for line in lines))
    for key, n in sorted(counts.items()):
        print(*key, n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
