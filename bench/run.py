"""Benchmarks: decisions per second, POST /api/messages end to end against a floor, peak RSS.

    python bench/run.py [--seconds 10] [--rounds 3]

Needs `wrk` (Debian: apt-get install wrk) as the load generator, run as a separate process
pinned to the second core while the server under test is pinned to the first. Prints medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.check import load  # noqa: E402
from bot.models import Message, SenderState  # noqa: E402


def corpus(emergency: bool | None = None) -> list[str]:
    """The labelled test corpus's texts: all, or only emergencies, or only the rest."""
    texts = []
    for path in sorted((ROOT / "tests" / "data").glob("triage-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and (emergency is None or row["emergency"] is emergency):
                texts.append(row["text"])
    return texts


def decisions_per_second(seconds: float, emergency: bool | None = None) -> float:
    """One core: the shipped rules, the corpus's messages, times spread over a fortnight."""
    triage = load(ROOT / "rules.toml")
    start = datetime(2026, 11, 16, tzinfo=UTC)
    messages = [
        Message("web", str(i), f"s{i}", text, start + timedelta(minutes=97 * i))
        for i, text in enumerate(corpus(emergency) * 3)
    ]
    state = SenderState()
    for m in messages:  # warm the caches, as a running server has them
        triage.decide(m, state, "ABCD-EFGH")
    count = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        for m in messages:
            triage.decide(m, state, "ABCD-EFGH")
        count += len(messages)
    return count / (time.perf_counter() - began)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def texts_file() -> str:
    """The corpus's texts as JSON strings, one a line, for post.lua."""
    path = Path(tempfile.gettempdir()) / "holding-reply-bench-texts.txt"
    path.write_text("".join(json.dumps(t) + "\n" for t in corpus()), encoding="utf-8")
    return str(path)


def wrk(port: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t2",
            "-c50",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "post.lua"),
            f"http://127.0.0.1:{port}/api/messages",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_TEXTS": texts_file()},
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not match:
            raise RuntimeError(out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": ms("50"), "p99": ms("99")}


def serve(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["taskset", "-c", "0", *command],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def postgres_schema(server: str, schema: str, create: bool) -> None:
    """Create or drop the benchmark's own schema on the PostgreSQL server."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(server.partition("?")[0], timeout=5)
        try:
            if create:
                await conn.execute(f"CREATE SCHEMA {schema}")
            else:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()

    asyncio.run(run())


def burst(port: int, count: int = 10_000, connections: int = 500) -> dict[str, float]:
    out = subprocess.run(
        ["taskset", "-c", "1", sys.executable, str(ROOT / "bench" / "burst.py"), str(port),
         str(count), str(connections)],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    if result["ok"] != count:
        raise RuntimeError(
            f"the burst got {result['ok']} answers 2xx of {count}; the others: {result['other']}"
        )
    return result


def run_server(
    kind: str, seconds: int, synchronous: str, postgres: str = "", load: str = "wrk"
) -> dict[str, float]:
    port = free_port()
    schema = f"bench_{os.getpid()}_{port}"
    with tempfile.TemporaryDirectory() as tmp:
        if kind in ("holding-reply", "holding-reply-pg"):
            url = f"sqlite:///{tmp}/bench.sqlite3?synchronous={synchronous.lower()}"
            if kind == "holding-reply-pg":
                postgres_schema(postgres, schema, create=True)
                url = f"{postgres}{'&' if '?' in postgres else '?'}search_path={schema}"
            proc = serve(
                [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                {"DATABASE_URL": url},
            )
        else:
            proc = serve(
                [
                    sys.executable,
                    str(ROOT / "bench" / "floor.py"),
                    str(port),
                    f"{tmp}/floor.sqlite3",
                    synchronous,
                    *(["decide"] if kind == "floor-decide" else []),
                ],
                {},
            )
        try:
            wait_for(port)
            result = wrk(port, seconds) if load == "wrk" else burst(port)
            result["rss_mb"] = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            if kind == "holding-reply-pg":
                postgres_schema(postgres, schema, create=False)
    return result


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--postgres",
        default=os.environ.get("HOLDING_REPLY_TEST_POSTGRES") or "postgresql://127.0.0.1:5432/test",
        help="a PostgreSQL server to measure on (a schema of its own is made and dropped)",
    )
    p.add_argument(
        "--parts",
        default="decisions,sqlite,postgres,burst",
        help="what to measure, of: decisions, sqlite (with the floors), postgres, burst",
    )
    args = p.parse_args()
    parts = set(args.parts.split(","))
    if not shutil.which("wrk"):
        sys.exit("bench needs wrk as its load generator: apt-get install wrk")

    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}")
    if "decisions" in parts:
        decisions()
    kinds = []
    if "sqlite" in parts:
        kinds += [("holding-reply", "FULL"), ("floor", "FULL"), ("holding-reply", "NORMAL"),
                  ("floor", "NORMAL"), ("floor-decide", "NORMAL")]  # fmt: skip
    if "postgres" in parts:
        kinds.append(("holding-reply-pg", "-"))
    if kinds:
        end_to_end(kinds, args.seconds, args.rounds, args.postgres)
    if "burst" in parts:
        print("A burst of 10,000 messages over 500 connections, peak RSS of the server:")
        for kind, sync in (("holding-reply", "FULL"), ("holding-reply-pg", "-")):
            result = run_server(kind, 0, sync, args.postgres, load="burst")
            print(
                f"  {kind:<20} {result['sent'] / result['seconds']:>8,.0f} msg/s   "
                f"peak RSS {result['rss_mb']:5.1f} MB"
            )


def decisions() -> None:
    for label, kind in (
        ("whole corpus", None),
        ("routine only", False),
        ("emergencies only", True),
    ):
        rates = [decisions_per_second(2.0, kind) for _ in range(5)]
        print(f"decisions/s, {label} (one core, median of 5): {statistics.median(rates):,.0f}")


def end_to_end(kinds: list[tuple[str, str]], seconds: int, rounds: int, postgres: str) -> None:
    rows: dict[str, list[dict[str, float]]] = {f"{k}-{sync}": [] for k, sync in kinds}
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits all alike
        for kind, sync in kinds:
            rows[f"{kind}-{sync}"].append(run_server(kind, seconds, sync, postgres))
    print(f"POST /api/messages, 50 connections, {seconds}s x {rounds} rounds, medians:")
    for name, result in rows.items():
        rps, p50, p99 = (median(result, key) for key in ("rps", "p50", "p99"))
        rss = max(r["rss_mb"] for r in result)
        print(
            f"  {name:<20} {rps:>8,.0f} msg/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
            f"peak RSS {rss:5.1f} MB"
        )
    if "floor-FULL" not in rows:
        return
    for sync in ("FULL", "NORMAL"):
        ours, floor = (median(rows[f"{k}-{sync}"], "rps") for k in ("holding-reply", "floor"))
        print(f"  ratio holding-reply / floor, both synchronous={sync}: {ours / floor:.2f}")
    full, normal = (median(rows[name], "rps") for name in ("holding-reply-FULL", "floor-NORMAL"))
    print(f"  ratio holding-reply (FULL) / floor (NORMAL): {full / normal:.2f}")
    if "floor-decide-NORMAL" in rows:  # the floor that also decides: the most one core allows
        deciding = median(rows["floor-decide-NORMAL"], "rps")
        print(f"  ratio floor that also decides / floor, both NORMAL: {deciding / normal:.2f}")
        print(f"  ratio holding-reply (FULL) / floor that also decides: {full / deciding:.2f}")


if __name__ == "__main__":
    main()
