"""Emergency recall, false alarms and decisions per second of the shipped rules on the corpus.

    python3 bench/triage.py --part tune|test|dev [--lang en|cy] [--misses] [--baseline REV]

English messages are decided with the shipped rules.toml, Welsh ones with
examples/welsh-council/rules.toml, by the same Triage the server uses. Prints, per language:
emergency recall (an emergency counts as caught when the reply leads with the emergency line, as
a certain or a possible emergency), recall per situation, false alarms among the other messages
(hard negatives and ordinary ones apart), the share of caught emergencies answered with the
situation's own response template (the right number to call), and decisions per second.

- `tune`: tests/data/triage/tune.jsonl, the part the rules are tuned on.
- `test`: tests/data/triage/test.jsonl, held out. Only figures are printed: `--misses` is refused,
  and nothing here prints a message of the test part.
- `dev`: the older corpora, tests/data/triage-*.jsonl (no situations).

`--misses` lists the missed emergencies and the false alarms (tune and dev only).
`--baseline REV` also measures decisions per second of the code and rules at git revision REV,
checked out in a temporary worktree, interleaved with this tree's runs, on the same messages.
`--root DIR` decides with the code and rules of DIR (what --baseline uses).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
DATA = HERE / "tests" / "data"
RULES = {"en": "rules.toml", "cy": "examples/welsh-council/rules.toml"}
AT = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # a Friday evening: closed, the common case


def rows_of(part: str) -> list[dict[str, Any]]:
    if part == "dev":
        paths = sorted(DATA.glob("triage-*.jsonl"))
    else:
        paths = [DATA / "triage" / f"{part}.jsonl"]
    rows = []
    for path in paths:
        if not path.exists():
            raise SystemExit(f"{path} does not exist yet")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row.setdefault("lang", "en")
                row.setdefault("situation", None)
                rows.append(row)
    return rows


def expected_templates(root: Path, triage: Any) -> dict[str, str]:
    """Situation id -> the response template of its category in these rules."""
    path = DATA / "triage" / "situations.toml"
    situations = tomllib.loads(path.read_text())["situation"]
    by_name = {c.name: c.response for c in triage.rules.emergencies}
    return {s["id"]: by_name.get(s.get("category", ""), "") or "" for s in situations}


def flagged(decision: Any) -> tuple[bool, bool]:
    """(leads with the emergency line, only as a possible emergency)."""
    possible = bool(getattr(decision, "possible", False))
    return decision.emergency is not None or possible, possible


def figures(part: str, lang: str, triage: Any, rows: list[dict[str, Any]], misses: bool) -> None:
    from bot.models import Message

    templates = expected_templates(HERE, triage)
    caught = possible = right = urgent = 0
    by_situation: Counter[str] = Counter()
    caught_by: Counter[str] = Counter()
    alarms: Counter[str] = Counter()
    possible_alarms = 0
    others: Counter[str] = Counter()
    missed: list[str] = []
    raised: list[str] = []
    for row in rows:
        decision = triage.decide(Message("web", "b", "b", row["text"], AT))
        hit, maybe = flagged(decision)
        situation = row.get("situation") or "-"
        if row["emergency"]:
            urgent += 1
            by_situation[situation] += 1
            if hit:
                caught += 1
                possible += maybe
                caught_by[situation] += 1
                right += decision.template == templates.get(situation)
            else:
                missed.append(f"[{situation}] {row['text']}")
        else:
            kind = row.get("kind") or "ordinary"
            kind = kind if kind in ("hard-negative", "ordinary") else "ordinary"
            others[kind] += 1
            if hit:
                alarms[kind] += 1
                possible_alarms += maybe
                why = f"{decision.emergency or 'possible'}: {decision.matched}"
                raised.append(f"[{situation}] {row['text']}  <- {why}")
    routine = sum(others.values())
    print(f"== {part} / {lang}: {len(rows)} messages")
    if urgent:
        print(
            f"emergency recall {caught}/{urgent} ({caught / urgent:.1%}),"
            f" of which possible {possible}"
        )
        if any(s != "-" for s in by_situation):
            share = right / max(caught, 1)
            print(f"right response for the situation: {right}/{caught} ({share:.1%})")
            for situation, n in sorted(by_situation.items()):
                flag = "" if caught_by[situation] / n >= 0.95 else "   < 95%"
                print(f"  {situation:22} {caught_by[situation]:4}/{n:<4} "
                      f"{caught_by[situation] / n:6.1%}{flag}")  # fmt: skip
    if routine:
        total = sum(alarms.values())
        print(f"false alarms {total}/{routine} ({total / routine:.1%}), of which possible"
              f" {possible_alarms}; certain emergencies only {total - possible_alarms}/{routine}"
              f" ({(total - possible_alarms) / routine:.1%})", end="")  # fmt: skip
        print("".join(f"; {k} {alarms[k]}/{n}" for k, n in sorted(others.items())))
    if misses:
        for text in missed:
            print(f"  missed: {text}")
        for text in raised:
            print(f"  alarm: {text}")


def speed(root: Path, texts: list[str], seconds: float) -> float:
    """Decisions per second of CPU time on these texts (English rules), best of three runs."""
    sys.path.insert(0, str(root))
    from bot.check import load
    from bot.models import Message

    triage = load(root / RULES["en"])
    messages = [
        Message("web", "b", "b", t, AT + timedelta(hours=i % 300)) for i, t in enumerate(texts)
    ]
    best = 0.0
    for m in messages:  # warm the caches once
        triage.decide(m)
    for _ in range(3):  # CPU time of this process: the machine is shared, and other work on it
        done, start = 0, time.process_time()  # would count against whichever tree ran then
        while time.process_time() - start < seconds / 3:
            for m in messages:
                triage.decide(m)
            done += len(messages)
        best = max(best, done / (time.process_time() - start))
    return best


def measure_speed(root: Path, part: str, seconds: float) -> float:
    """speed() in a fresh process, so that two trees' code never mix."""
    out = subprocess.run(
        [sys.executable, __file__, "--root", str(root), "--part", part, "--speed-only",
         "--seconds", str(seconds)],
        check=True, capture_output=True, text=True, cwd=HERE,
    )  # fmt: skip
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--part", choices=("tune", "test", "dev"), default="tune")
    parser.add_argument("--lang", choices=("en", "cy"))
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--baseline", metavar="REV")
    parser.add_argument("--root", type=Path, default=HERE)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    if args.misses and args.part == "test":
        raise SystemExit("--misses is refused for the test part: it is measured, never read")
    rows = rows_of(args.part)
    english = [r["text"] for r in rows if r["lang"] == "en"]
    if args.speed_only:
        print(speed(args.root.resolve(), english, args.seconds))
        return
    sys.path.insert(0, str(args.root.resolve()))
    from bot.check import load

    for lang in ("en", "cy"):
        chosen = [r for r in rows if r["lang"] == lang]
        if chosen and args.lang in (None, lang):
            figures(args.part, lang, load(args.root / RULES[lang]), chosen, args.misses)
    if args.no_speed or not english:
        return
    if args.baseline is None:
        print(f"decisions/s (English rules, {len(english)} messages): "
              f"{speed(args.root.resolve(), english, args.seconds):,.0f}")  # fmt: skip
        return
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", "-q", str(old),
                        args.baseline], check=True)  # fmt: skip
        try:
            before, after = [], []
            for _ in range(args.rounds):  # interleaved, so a noisy moment hits both
                before.append(measure_speed(old, args.part, args.seconds))
                after.append(measure_speed(args.root.resolve(), args.part, args.seconds))
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(old)],
                           check=True)  # fmt: skip
    b, a = max(before), max(after)
    print(f"decisions/s (English rules, {len(english)} messages, best of {args.rounds} rounds): "
          f"{args.baseline} {b:,.0f}; this tree {a:,.0f} ({a / b - 1:+.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
