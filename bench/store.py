"""The store's own cost per message: Store.ingest on SQLite, the decision made beforehand.

    python bench/store.py [--messages 5000] [--rounds 3]

Messages from the labelled corpus arrive 50 at a time (one group commit each, as under the
50-client load of bench/run.py); prints the wall and CPU time per message, for each round, with
`synchronous=full` and `normal`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import corpus  # noqa: E402
from bot.check import load  # noqa: E402
from bot.models import Message, SenderState  # noqa: E402
from bot.store import open_store  # noqa: E402


async def per_message(synchronous: str, count: int) -> tuple[float, float]:
    """(wall, CPU) microseconds per ingested message, after 500 to warm up."""
    triage, texts = load(ROOT / "rules.toml"), corpus()
    now = datetime.now(UTC)
    messages = [
        Message("web", uuid.uuid4().hex, f"s{i}", texts[i % len(texts)], now) for i in range(count)
    ]
    decisions = [triage.decide(m, SenderState(), "ABCD-EFGH") for m in messages]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3?synchronous={synchronous}"
        async with open_store(url) as store:

            async def ingest(i: int) -> None:
                decision = decisions[i]
                await store.ingest(messages[i], lambda state, reference: decision)

            await asyncio.gather(*(ingest(i) for i in range(500)))
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(500, count, 50):
                await asyncio.gather(*(ingest(i) for i in range(start, min(count, start + 50))))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1e6 * wall / (count - 500), 1e6 * cpu / (count - 500)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    for synchronous in ("full", "normal"):
        for _ in range(args.rounds):
            wall, cpu = asyncio.run(per_message(synchronous, args.messages))
            print(f"synchronous={synchronous:<6} {wall:6.0f} µs a message, {cpu:6.0f} µs of CPU")


if __name__ == "__main__":
    main()
