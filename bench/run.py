"""Benchmarks: the four targets of issue 16, each a ratio against a floor measured in the same run.

    python3 bench/run.py [--seconds 10] [--rounds 3] [--parts postgres,decision,sqlite,burst]
    python3 bench/run.py --parts decision,reply,speed   # where a decision's budget goes
    python3 bench/run.py --parts postgres-decide        # PostgreSQL against a deciding floor

POST /api/messages end to end (each request a new message from a new sender, wrk with 2 threads
and 50 connections), Holding Reply and each floor in turn, round by round; the peak RSS under
that load and under a burst of 10,000 messages. Appends the table to BENCHMARKS.md with the
machine, the commit and the command (--no-write: print only).

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


def hardest() -> list[str]:
    """The project's hardest corpus: the tuning part of the triage data (about half
    emergencies, a third of the rest hard negatives), English and Welsh."""
    path = ROOT / "tests" / "data" / "triage" / "tune.jsonl"
    return [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]


TEXTS = {"corpus": corpus, "routine": lambda: corpus(False), "hardest": hardest}


def texts_file(texts: str = "corpus") -> str:
    """The texts as JSON strings, one a line, for post.lua (a file of this run's own)."""
    path = Path(tempfile.gettempdir()) / f"holding-reply-bench-{os.getpid()}-{texts}.txt"
    if not path.exists():
        lines = "".join(json.dumps(t) + "\n" for t in TEXTS[texts]())
        path.write_text(lines, encoding="utf-8")
    return str(path)


def wrk(port: int, seconds: int, texts: str = "corpus") -> dict[str, float]:
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
        env={**os.environ, "BENCH_TEXTS": texts_file(texts)},
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


# What each measured server is: (Holding Reply or a floor, its storage, the texts it is sent).
KINDS: dict[str, tuple[str, str, str]] = {
    "pg": ("holding-reply", "postgresql", "corpus"),
    "pg-floor": ("floor", "postgresql", "corpus"),
    "pg-floor-decide": ("floor-decide", "postgresql", "corpus"),
    "pg-again": ("holding-reply", "postgresql", "corpus"),  # pg, measured beside the above
    "sqlite": ("holding-reply", "FULL", "corpus"),
    "sqlite-floor": ("floor", "NORMAL", "corpus"),
    "routine-floor": ("floor", "NORMAL", "routine"),
    "routine-decide": ("floor-decide", "NORMAL", "routine"),
    "routine-reply": ("floor-reply", "NORMAL", "routine"),
    "reply-floor": ("floor", "NORMAL", "routine"),  # routine-floor again, measured beside it
    "hardest-floor": ("floor", "NORMAL", "hardest"),
    "hardest-decide": ("floor-decide", "NORMAL", "hardest"),
}
# The pairs each part compares, ours (or the floor that decides) first: the ratio is first/second.
PARTS = {
    "postgres": [("pg", "pg-floor")],
    "sqlite": [("sqlite", "sqlite-floor")],
    "decision": [("routine-decide", "routine-floor"), ("hardest-decide", "hardest-floor")],
    # What answering with a reply costs before any deciding (not a target: its budget).
    "reply": [("routine-reply", "reply-floor")],
    # Holding Reply on PostgreSQL against a floor that makes the same decision (not a target).
    "postgres-decide": [("pg-again", "pg-floor-decide")],
}


def run_server(kind: str, seconds: int, postgres: str, load: str = "wrk") -> dict[str, float]:
    """Start one server pinned to the first core, load it from the second, stop it."""
    what, storage, texts = KINDS[kind]
    port = free_port()
    schema = f"bench_{os.getpid()}_{port}"
    with tempfile.TemporaryDirectory() as tmp:
        if storage == "postgresql":
            postgres_schema(postgres, schema, create=True)
            db = f"{postgres}{'&' if '?' in postgres else '?'}search_path={schema}"
        else:
            db = f"sqlite:///{tmp}/bench.sqlite3?synchronous={storage.lower()}"
        if what == "holding-reply":
            command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"]
            proc = serve([*command, "--port", str(port)], {"DATABASE_URL": db})
        else:
            decide = {"floor-decide": ["decide"], "floor-reply": ["reply"]}.get(what, [])
            floor = [sys.executable, str(ROOT / "bench" / "floor.py"), str(port)]
            if storage == "postgresql":
                floor.append(db)
            else:
                floor += [f"{tmp}/floor.sqlite3", storage]
            proc = serve([*floor, *decide], {})
        try:
            wait_for(port)
            result = wrk(port, seconds, texts) if load == "wrk" else burst(port)
            result["rss_mb"] = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            if storage == "postgresql":
                postgres_schema(postgres, schema, create=False)
    return result


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def end_to_end(
    parts: list[str], seconds: int, rounds: int, postgres: str
) -> dict[str, list[dict[str, float]]]:
    """Each pair of each part measured in turn, round by round; the pair's order flips every
    round, so that a machine getting busier or quieter hits both alike."""
    pairs = [pair for part in parts for pair in PARTS[part]]
    rows: dict[str, list[dict[str, float]]] = {k: [] for pair in pairs for k in pair}
    for n in range(rounds):
        for pair in pairs:
            for kind in pair if n % 2 == 0 else reversed(pair):
                rows[kind].append(run_server(kind, seconds, postgres))
                r = rows[kind][-1]
                print(
                    f"  round {n + 1}  {kind:<15} {r['rps']:>8,.0f} msg/s   p50 {r['p50']:6.1f}"
                    f" ms   p99 {r['p99']:6.1f} ms   peak RSS {r['rss_mb']:5.1f} MB",
                    flush=True,
                )
    return rows


def ratios(rows: dict[str, list[dict[str, float]]], ours: str, floor: str) -> list[float]:
    """The ratio of each round (the two measured one after the other)."""
    return [a["rps"] / b["rps"] for a, b in zip(rows[ours], rows[floor], strict=True)]


def table(
    rows: dict[str, list[dict[str, float]]], bursts: dict[str, dict[str, float]]
) -> list[str]:
    """The four targets of issue 16, as a Markdown table."""
    out = [
        "| target | Holding Reply (or the floor that decides) | its floor | ratio, median of "
        "rounds (each round) | p99, ours / floor's | target |",
        "|---|---|---|---|---|---|",
    ]

    def row(label: str, ours: str, floor: str, target: str) -> None:
        if ours not in rows:
            return
        each = ratios(rows, ours, floor)
        a, b = (median(rows[k], "rps") for k in (ours, floor))
        p99 = f"{median(rows[ours], 'p99'):.1f} / {median(rows[floor], 'p99'):.1f} ms"
        rounds = " / ".join(f"{r:.2f}" for r in each)
        out.append(
            f"| {label} | {a:,.0f} msg/s | {b:,.0f} msg/s | **{statistics.median(each):.2f}** "
            f"({rounds}) | {p99} | {target} |"
        )

    row(
        "1. PostgreSQL end to end, pool of 5, `synchronous_commit` on; floor: one INSERT a "
        "message through an asyncpg pool of 5",
        "pg",
        "pg-floor",
        "≥ 1.0×, p99 ≤ the floor's",
    )
    row(
        "2. the decision, routine messages: the SQLite floor that also decides / the same floor",
        "routine-decide",
        "routine-floor",
        "≥ 0.75×",
    )
    row(
        "2. the decision, the hardest corpus (`tests/data/triage/tune.jsonl`)",
        "hardest-decide",
        "hardest-floor",
        "≥ 0.6×",
    )
    row(
        "(2.) for comparison, not a target: the floor that builds the same Message and answers "
        "with a fixed reply (a routine one, decided once), without deciding / the same floor",
        "routine-reply",
        "reply-floor",
        "what is left is the decision's share",
    )
    row(
        "(1.) for comparison, not a target: PostgreSQL end to end / the PostgreSQL floor that "
        "also makes the decision and answers with its reply",
        "pg-again",
        "pg-floor-decide",
        "above 1.0: our storage beats one INSERT a message",
    )
    row(
        "3. SQLite end to end, `synchronous=FULL`; floor: one insert a message, "
        "`synchronous=NORMAL`",
        "sqlite",
        "sqlite-floor",
        "≥ 0.5×, p99 ≤ 2× floor's",
    )
    peaks = [
        f"{name} {max(r['rss_mb'] for r in rows[kind]):.1f} MB"
        for name, kind in (("SQLite", "sqlite"), ("PostgreSQL", "pg"))
        if kind in rows
    ]
    if peaks:
        out.append(f"| 4. peak RSS under the 50-client load | {', '.join(peaks)} | | | | ≤ 80 MB |")
    if bursts:
        done = ", ".join(
            f"{name} {r['rss_mb']:.1f} MB ({r['sent'] / r['seconds']:,.0f} msg/s, "
            f"{r['ok']:,.0f} of {r['sent']:,.0f} answered 202)"
            for name, r in bursts.items()
        )
        out.append(f"| 4. peak RSS, a burst of 10,000 messages over 500 connections | {done} "
                   "| | | | ≤ 120 MB |")  # fmt: skip
    return out


def machine(postgres: str) -> str:
    import sqlite3

    import asyncpg

    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())

    async def pg() -> str:
        conn = await asyncpg.connect(postgres.partition("?")[0], timeout=5)
        try:
            version = await conn.fetchval("SHOW server_version")
            sync = await conn.fetchval("SHOW synchronous_commit")
            return f"PostgreSQL {version} (`synchronous_commit = {sync}`)"
        finally:
            await conn.close()

    try:
        database = asyncio.run(pg())
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        database = f"PostgreSQL unreachable ({e})"
    return (
        f"{os.cpu_count()} cores ({cpu.group(1) if cpu else 'unknown CPU'}), "
        f"{int(memory.group(1)) / 1024**2 if memory else 0:.0f} GB, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {database}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + (" plus uncommitted changes" if git("status", "--porcelain").strip() else "")


def write(lines: list[str], command: str, about: str) -> None:
    """Add a dated section to BENCHMARKS.md; the earlier sections stay as they are."""
    path = ROOT / "BENCHMARKS.md"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        "",
        f"## `bench/run.py`, {when}, at commit `{commit()}`",
        "",
        f"Machine: {about}. Command:",
        "",
        "```",
        command,
        "```",
        "",
        *lines,
    ]
    path.write_text(path.read_text("utf-8").rstrip("\n") + "\n" + "\n".join(section) + "\n")
    print(f"written to {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=int, default=10, help="of each wrk run (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="of each pair, alternating (default 3)")
    p.add_argument(
        "--postgres",
        default=os.environ.get("HOLDING_REPLY_TEST_POSTGRES") or "postgresql://127.0.0.1:5432/test",
        help="a PostgreSQL server to measure on (a schema of its own is made and dropped)",
    )
    p.add_argument(
        "--parts",
        default="postgres,decision,sqlite,burst",
        help="what to measure, of: postgres, decision, sqlite, burst (all four by default), "
        "speed (decisions per second in one process), reply (the floor answering with a "
        "fixed reply: what answering costs before deciding) and postgres-decide (PostgreSQL "
        "against a floor that also decides), not by default",
    )
    p.add_argument("--no-write", action="store_true", help="print only; BENCHMARKS.md untouched")
    args = p.parse_args()
    parts = args.parts.split(",")
    unknown = set(parts) - {*PARTS, "burst", "speed"}
    if unknown:
        p.error(f"unknown parts {', '.join(sorted(unknown))}")
    if not shutil.which("wrk"):
        print("installing wrk, the load generator, from Debian's packages", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)

    about = machine(args.postgres)
    print(f"machine: {about}", flush=True)
    lines: list[str] = []
    if "speed" in parts:
        lines += decisions()
    rows = end_to_end([part for part in parts if part in PARTS], args.seconds, args.rounds,
                      args.postgres)  # fmt: skip
    bursts: dict[str, dict[str, float]] = {}
    if "burst" in parts:
        for name, kind in (("SQLite", "sqlite"), ("PostgreSQL", "pg")):
            bursts[name] = run_server(kind, 0, args.postgres, load="burst")
            print(f"  burst {name}: {bursts[name]}", flush=True)
    lines += table(rows, bursts)
    print("\n".join(lines))
    if not args.no_write:
        write(lines, " ".join(["python3", "bench/run.py", *sys.argv[1:]]), about)


def decisions() -> list[str]:
    lines = []
    for label, kind in (("whole corpus", None), ("routine only", False), ("emergencies", True)):
        rates = [decisions_per_second(2.0, kind) for _ in range(5)]
        lines.append(f"- decisions/s in one process, {label} (median of 5 runs of 2 s): "
                     f"{statistics.median(rates):,.0f}")  # fmt: skip
        print(lines[-1], flush=True)
    return [*lines, ""]


if __name__ == "__main__":
    main()
