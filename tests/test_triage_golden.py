"""Every decision of the corpus, byte for byte, as recorded before the decision was made faster.

A change made for speed must not change what anyone is told. This test decides every message of
tests/data/triage-*.jsonl and tests/data/triage/tune.jsonl (never the held-out test part) with
three sets of rules (the shipped council, the bilingual Welsh council, the police example), at
instants that cover every kind of hour (staffed, evening, weekend, special hours, a closure, a
bank holiday, summer time), on every kind of channel, for a new sender, one in the cooldown and
one who opted out, with and without a measured typical reply time. It compares the whole
Decision (reply included) and what `python -m bot preview` explains, through both ways the
code decides (decide, and draft then finish as the server does), with tests/data/triage-golden.txt.

That file holds a digest per message, never a message. It was written from the
code before the change it guards; rewrite it only when decisions are meant to change (new rules,
new templates, retrained urgency weights), from a tree whose decisions are the intended ones:

    python3 tests/test_triage_golden.py --write
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from bot.check import load  # noqa: E402
from bot.durations import parse_promise  # noqa: E402
from bot.models import Message, SenderState  # noqa: E402
from bot.triage import REFERENCE_SLOT, Triage  # noqa: E402
from bot.typical import Typical  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "triage-golden.txt"
RULES = {
    "en": ROOT / "rules.toml",
    "cy": ROOT / "examples" / "welsh-council" / "rules.toml",
    "police": ROOT / "examples" / "police" / "rules.toml",
}
LONDON = ZoneInfo("Europe/London")
INSTANTS = [
    datetime.fromisoformat(t).replace(tzinfo=LONDON).astimezone(UTC)
    for t in (
        "2026-11-16T10:00",  # a Monday morning: staffed
        "2026-11-27T20:00",  # a Friday evening
        "2026-11-28T03:17",  # Saturday night
        "2026-12-23T11:59",  # special hours, the day before a closure
        "2026-12-24T19:30",  # in the Christmas closure
        "2026-05-22T16:45",  # the Friday before the Spring bank holiday
        "2026-05-25T10:00",  # the Spring bank holiday
        "2026-07-01T08:59:30",  # summer time, a minute before opening
    )
]
CHANNELS = ("web", "x", "bluesky", "mastodon", "telegram", "email", "facebook")
STATES = (
    SenderState(),
    SenderState(last_ack_at=INSTANTS[0] - timedelta(hours=1), last_ack_template="out-of-hours"),
    SenderState(opted_out=True),
)
TYPICAL = Typical(
    teams={("web", None): parse_promise("3 working hours")},
    channels={"x": parse_promise("2 working days")},
)


def texts() -> Iterator[str]:
    paths = [*sorted((ROOT / "tests" / "data").glob("triage-*.jsonl"))]
    paths.append(ROOT / "tests" / "data" / "triage" / "tune.jsonl")
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)["text"]


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def decisions(triage: Triage, text: str, n: int) -> str:
    """Everything decided for one message, as text: one line per instant, and the explanation."""
    out = ["\n".join(triage.explain(text))]
    for i, at in enumerate(INSTANTS):
        channel = CHANNELS[(n + i) % len(CHANNELS)]
        name = ("Jo", None, "  A name far longer than any reply should repeat back  ")[(n + i) % 3]
        state = STATES[(n + i) % len(STATES)]
        typical = TYPICAL if (n + i) % 2 else Typical()
        message = Message(channel, str(n), f"s{n}", text, at, sender_name=name)
        decided = triage.decide(message, state, "ABCD-EFGH", typical=typical)
        drafted = triage.draft(message, typical=typical)
        finished = triage.finish(drafted, state, "WXYZ-2345", at)
        out.append(repr(decided))
        out.append(repr(finished))
        slot = (drafted.reply or "").replace(REFERENCE_SLOT, "<slot>")
        out.append(repr(dataclasses.replace(drafted, reply=slot)))
    return "\n".join(out)


def digests() -> dict[str, str]:
    """Per message (its place and a digest of its text): a digest of its decisions under each
    set of rules."""
    triages = [load(path) for path in RULES.values()]
    found = {}
    for n, text in enumerate(texts()):
        said = "\n".join(decisions(triage, text, n) for triage in triages)
        found[f"{n} {key(text)}"] = hashlib.sha256(said.encode()).hexdigest()[:20]
    return found


def test_every_decision_is_what_it_was() -> None:
    expected = dict(
        line.rsplit(" ", 1) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line
    )
    found = digests()
    compared = [k for k in found if k in expected]
    assert len(compared) >= 2400, "the corpus changed: see the docstring to rewrite the file"
    changed = [k for k in compared if found[k] != expected[k]]
    assert not changed, f"{len(changed)} messages decided differently, first: {changed[:10]}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    rows = digests()
    GOLDEN.write_text("".join(f"{k} {v}\n" for k, v in rows.items()), encoding="utf-8")
    print(f"wrote {len(rows)} digests to {GOLDEN}")
