"""Running as on a PaaS dyno: migrations, crashes, database outages, restarts, several processes.

Every test runs the real server (`python -m bot`) as a subprocess, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.store import open_store
from tests.conftest import ROOT, copy_rules
from tests.postgres import SERVER, fresh_database, require
from tests.test_cli import run
from tests.test_server import Server

NOW_UTC = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return copy_rules(tmp_path)


def post(port: int, body: dict[str, Any], timeout: float = 10) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/messages",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, {**json.loads(e.read()), "retry-after": e.headers.get("Retry-After")}


async def stored(database: str) -> dict[str, str]:
    """platform id -> reference of every message in the database."""
    async with open_store(database) as store:
        return {i.platform_id: i.reference for i in await store.open_items(include_done=True)}


def test_procfile_migrates_in_the_release_phase_and_serves_on_port() -> None:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    assert "release: python -m bot migrate" in lines
    assert "web: python -m bot serve" in lines


def test_the_app_manifest_asks_for_postgresql_and_explains_its_variables() -> None:
    from tests.test_docs import environment_variables

    manifest = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
    assert any(a["plan"].startswith("heroku-postgresql") for a in manifest["addons"])
    assert manifest["formation"]["web"]["quantity"] >= 1
    # The platform sets PORT and the add-on sets DATABASE_URL; the rest are offered here, and
    # each one offered is explained in the README's table.
    assert environment_variables() - {"PORT", "DATABASE_URL"} <= set(manifest["env"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in manifest["env"])
    assert all(v["description"] for v in manifest["env"].values())
    assert (ROOT / ".python-version").read_text(encoding="utf-8").strip() == "3.11"
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["."]


def test_migrate_applies_the_schema_once(database: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database}
    first = run("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    from bot.store.queries import migrations

    every = migrations("sqlite")
    assert "".join(f"applied {name}\n" for _, name, _ in every) in first.stdout
    assert f"up to date (version {len(every)})" in first.stdout
    again = run("migrate", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "applied" not in again.stdout


def test_with_auto_migrate_off_an_unmigrated_database_is_refused(
    database: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database, "AUTO_MIGRATE": "0"}
    refused = run("queue", env=env, cwd=tmp_path)
    assert refused.returncode == 3
    assert "Run `python -m bot migrate`" in refused.stderr
    assert run("migrate", env=env, cwd=tmp_path).returncode == 0
    assert run("queue", env=env, cwd=tmp_path).returncode == 0


def test_every_accepted_message_survives_kill_9(database: str, rules: Path, tmp_path: Path) -> None:
    """Clients send a stream; the server is killed mid-stream; every 202 is in the store."""
    server = Server(tmp_path, rules, database)
    accepted: dict[str, str] = {}  # platform id -> reference answered with 202
    failed: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(10_000):
            platform_id = f"c{n}-{i}"
            try:
                status, body = post(
                    server.port, {"sender": f"s{n}-{i}", "text": "bin", "id": platform_id}
                )
            except OSError:
                with lock:
                    failed.append(platform_id)
                return
            assert status == 202, body
            with lock:
                accepted[platform_id] = body["reference"]

    with ThreadPoolExecutor(8) as pool:
        clients = [pool.submit(client, n) for n in range(8)]
        deadline = time.monotonic() + 30
        while len(accepted) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.proc.kill()  # SIGKILL: no shutdown, no flush, no goodbye
        server.proc.wait()
        for c in clients:
            c.result()

    assert len(accepted) >= 300
    assert failed  # the kill happened mid-stream, with requests in flight
    kept = asyncio.run(stored(database))
    lost = {pid: ref for pid, ref in accepted.items() if kept.get(pid) != ref}
    assert not lost, f"{len(lost)} of {len(accepted)} accepted messages lost"

    # The senders retry what got no answer: each is stored once, with one reference.
    again = Server(tmp_path, rules, database)
    try:
        for platform_id in failed:
            n, i = platform_id[1:].split("-")
            status, body = post(
                again.port, {"sender": f"s{n}-{i}", "text": "bin", "id": platform_id}
            )
            assert status == 202
            if platform_id in kept:  # stored before the kill, though the answer never left
                assert body["reference"] == kept[platform_id]
    finally:
        again.stop()
    final = asyncio.run(stored(database))
    assert set(final) == set(accepted) | set(failed) | set(kept)


def test_two_servers_on_one_database_store_each_delivery_once(
    database: str, rules: Path, tmp_path: Path
) -> None:
    """Two dynos behind one router: a platform redelivers to the other one; one queue."""
    one = Server(tmp_path, rules, database)
    two = Server(tmp_path, rules, database)
    try:
        bodies = [{"sender": f"s{i % 5}", "text": "my bin", "id": f"m{i}"} for i in range(60)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda job: post(job[0].port, job[1]),
                    [(s, b) for b in bodies for s in (one, two)],
                )
            )
        assert {status for status, _ in answers} == {202}
        by_id: dict[str, set[str]] = {}
        for _, body in answers:
            by_id.setdefault(body["id"], set()).add(body["reference"])
        assert all(len(refs) == 1 for refs in by_id.values())  # both servers gave one answer
        health = one.request("/healthz")[1]["queue"]
        assert health["open"] == 60
        # Five senders, one acknowledgement each: the cooldown held across the processes.
        replied = [body for _, body in answers if body["reply"] is not None]
        assert len({body["reference"] for body in replied}) == 5
    finally:
        one.stop()
        two.stop()


def test_sigterm_twice_finishes_what_is_in_flight_and_exits_cleanly(
    database: str, rules: Path, tmp_path: Path
) -> None:
    server = Server(tmp_path, rules, database)
    results: list[tuple[int, dict[str, Any]] | OSError] = []

    def send(i: int) -> None:
        try:
            results.append(post(server.port, {"sender": f"s{i}", "text": "bin", "id": f"m{i}"}))
        except OSError as e:  # refused: the server had stopped listening
            results.append(e)

    with ThreadPoolExecutor(16) as pool:
        for i in range(400):
            pool.submit(send, i)
            if i == 200:
                server.proc.send_signal(signal.SIGTERM)
                server.proc.send_signal(signal.SIGTERM)  # platforms may send it more than once
        began = time.monotonic()
        server.proc.wait(timeout=30)
    assert time.monotonic() - began < 10
    assert server.proc.returncode == 0
    ok = [
        body for r in results if not isinstance(r, OSError) for status, body in [r] if status == 202
    ]
    kept = asyncio.run(stored(database))
    assert all(kept.get(body["id"]) == body["reference"] for body in ok)
    assert any(line.get("event") == "stopped" for line in server.lines)


def _can_stop_postgres() -> str | None:
    if not SERVER.startswith(("postgresql://127.0.0.1", "postgres://127.0.0.1")):
        return f"the test PostgreSQL {SERVER} is not this machine's"
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        return "stopping PostgreSQL needs pg_ctlcluster and root"
    return None


def _cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return [version, "main"]


@pytest.fixture
def postgres_control() -> Iterator[None]:
    require()
    why = _can_stop_postgres()
    if why is not None:
        pytest.skip(why)
    yield
    # Whatever happened in the test, PostgreSQL is left running.
    subprocess.run(["pg_ctlcluster", *_cluster(), "start"], capture_output=True, timeout=60)
    subprocess.run(["pg_isready", "-h", "127.0.0.1", "-t", "30"], capture_output=True, timeout=60)


def test_when_postgresql_stops_the_server_answers_503_and_recovers_by_itself(
    rules: Path, tmp_path: Path, postgres_control: None
) -> None:
    for database in fresh_database():
        server = Server(tmp_path, rules, database)
        try:
            assert post(server.port, {"sender": "a", "text": "bin", "id": "before"})[0] == 202
            subprocess.run(
                ["pg_ctlcluster", *_cluster(), "stop", "-m", "fast"], check=True, timeout=60
            )

            status, body = post(server.port, {"sender": "a", "text": "bin", "id": "during"})
            assert status == 503
            assert body["retry-after"] == "5"
            assert "try again" in body["error"]
            health = urllib.request.Request(f"http://127.0.0.1:{server.port}/healthz")
            with pytest.raises(urllib.error.HTTPError) as down:
                urllib.request.urlopen(health, timeout=10)
            assert down.value.code == 503

            subprocess.run(["pg_ctlcluster", *_cluster(), "start"], check=True, timeout=60)
            deadline = time.monotonic() + 20
            while True:  # the platform retries "during" until it gets a 2xx
                status, body = post(server.port, {"sender": "a", "text": "bin", "id": "during"})
                if status == 202 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status == 202, body
            assert server.proc.poll() is None  # the same process, never restarted
        finally:
            server.stop()
            assert set(asyncio.run(stored(database))) == {"before", "during"}


async def seed(database: str) -> dict[str, str]:
    """Alice's old, done message; her recent one; Bob's. Returns name -> reference."""
    from bot.models import Decision, Message

    def decide(state: object, reference: str) -> Decision:
        return Decision(True, None, None, None, None, "waste", "en", "ack", f"Ref {reference}")

    now = datetime.now(UTC)
    refs = {}
    async with open_store(database) as store:
        for name, sender, age in (("old", "alice", 100), ("new", "alice", 1), ("bob", "bob", 100)):
            message = Message("web", name, sender, f"{name} text", now - timedelta(days=age))
            refs[name] = (await store.ingest(message, decide)).item.reference
        await store.mark_done(refs["old"], "sam", now - timedelta(days=99))
        await store.mark_done(refs["bob"], "sam", now - timedelta(days=99))
    return refs


def test_export_and_erase_one_person_from_the_command_line(database: str, tmp_path: Path) -> None:
    refs = asyncio.run(seed(database))
    env = {"DATABASE_URL": database}

    exported = run("export", "--channel", "web", "--sender", "alice", env=env)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert [m["reference"] for m in data["messages"]] == [refs["old"], refs["new"]]
    assert [m["text"] for m in data["messages"]] == ["old text", "new text"]
    assert data["messages"][0]["replies"][0]["text"] == f"Ref {refs['old']}"
    assert data["automatic_replies"]["opted_out"] is False

    unconfirmed = run("erase", "--channel", "web", "--sender", "alice", env=env)
    assert unconfirmed.returncode == 1
    assert "would erase 2 messages" in unconfirmed.stderr and "--yes" in unconfirmed.stderr
    assert json.loads(run("export", "--channel", "web", "--sender", "alice", env=env).stdout)[
        "messages"
    ]

    erased = run("erase", "--channel", "web", "--sender", "alice", "--yes", env=env)
    assert erased.returncode == 0, erased.stderr
    assert "Erased 2 messages" in erased.stdout
    after = json.loads(run("export", "--channel", "web", "--sender", "alice", env=env).stdout)
    assert after["messages"] == [] and after["automatic_replies"] is None
    bob = json.loads(run("export", "--channel", "web", "--sender", "bob", env=env).stdout)
    assert [m["text"] for m in bob["messages"]] == ["bob text"]


def purges(*servers: Server) -> list[dict[str, Any]]:
    return [line for s in servers for line in s.lines if line.get("event") == "purged"]


def test_the_purge_runs_once_across_two_servers_and_keeps_the_counts(
    database: str, rules: Path, tmp_path: Path
) -> None:
    refs = asyncio.run(seed(database))
    one = Server(tmp_path, rules, database)
    two = Server(tmp_path, rules, database)
    try:
        deadline = time.monotonic() + 20
        while not (events := purges(one, two)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events, "neither server purged"
        assert events[0]["messages"] == 2  # Alice's old one and Bob's; the recent one stays
        assert events[0]["keep_days"] == 90
        time.sleep(1)
        assert len(purges(one, two)) == 1
        assert one.request("/healthz")[1]["queue"] == {"open": 1, "done": 2, "replies": 3}
    finally:
        one.stop()
        two.stop()

    async def texts() -> dict[str, str]:
        async with open_store(database) as store:
            return {name: (await store.get(ref)).text for name, ref in refs.items()}  # type: ignore[union-attr]

    assert asyncio.run(texts()) == {"old": "", "new": "new text", "bob": ""}


def test_when_sqlite_is_locked_the_server_answers_503_and_recovers_by_itself(
    rules: Path, tmp_path: Path
) -> None:
    """SQLite's outage: another program (a backup, a migration) holds the write lock too long."""
    import sqlite3

    path = tmp_path / "queue.sqlite3"
    server = Server(tmp_path, rules, f"sqlite:///{path}")
    try:
        assert post(server.port, {"sender": "a", "text": "bin", "id": "before"})[0] == 202
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            status, body = post(server.port, {"sender": "a", "text": "bin", "id": "during"}, 30)
            assert status == 503
            assert body["retry-after"] == "5"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        status, body = post(server.port, {"sender": "a", "text": "bin", "id": "during"})
        assert status == 202, body
        assert server.proc.poll() is None  # the same process
    finally:
        server.stop()
    assert set(asyncio.run(stored(f"sqlite:///{path}"))) == {"before", "during"}


def test_the_team_sees_dead_letters_and_can_send_them_again(database: str) -> None:
    from bot.models import Outgoing

    async def seed_dead() -> int:
        async with open_store(database) as store:
            d = await store.enqueue(Outgoing("telegram", "42", "auto", "Thank you"), NOW_UTC)
            await store.claim_deliveries("p", NOW_UTC, timedelta(minutes=1))
            await store.give_up(d.id, "p", "Forbidden: bot was blocked by the user")
            return d.id

    dead = asyncio.run(seed_dead())
    env = {"DATABASE_URL": database}
    listed = run("outbox", "--dead", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "dead" in listed.stdout and "bot was blocked by the user" in listed.stdout
    [row] = json.loads(run("outbox", "--json", env=env).stdout)
    assert (row["id"], row["state"], row["channel"]) == (dead, "dead", "telegram")

    assert run("outbox", "--retry", str(dead), env=env).returncode == 0
    again = run("outbox", "--retry", str(dead), env=env)
    assert again.returncode == 1 and "not a dead letter" in again.stderr
    [row] = json.loads(run("outbox", "--json", env=env).stdout)
    assert (row["state"], row["attempts"]) == ("pending", 0)


def test_people_are_managed_from_the_command_line_and_no_password_is_kept_or_shown(
    database: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database}
    password = "correct horse battery staple"

    def user(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "user", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
            cwd=ROOT,
        )

    added = user("add", "Sam", "--name", "Sam Jones", "--role", "admin", "--password-stdin",
                 stdin=password + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    agent = user("add", "jo", "--team", "waste", "--password-stdin", stdin=password + "\n")
    assert agent.returncode == 0, agent.stderr
    typo = user("add", "kim", "--team", "wastes", "--password-stdin", stdin=password + "\n")
    assert typo.returncode == 1 and 'Did you mean "waste"?' in typo.stderr
    weak = user("add", "kim", "--password-stdin", stdin="kim12345\n")
    assert weak.returncode == 1 and "at least 12" in weak.stderr
    twice = user("add", "jo", "--password-stdin", stdin=password + "\n")
    assert twice.returncode == 1 and "already a user called 'jo'" in twice.stderr

    listed = json.loads(user("list", "--json").stdout)
    assert [(u["username"], u["role"], u["teams"]) for u in listed] == [
        ("jo", "agent", ["waste"]),
        ("sam", "admin", []),
    ]
    assert user("disable", "jo").returncode == 0
    assert json.loads(user("list", "--json").stdout)[0]["disabled_at"] is not None
    reset = user("reset-password", "sam", "--password-stdin", stdin="another long passphrase\n")
    assert reset.returncode == 0, reset.stderr

    async def hashes() -> list[str]:
        async with open_store(database) as store:
            return [(await store.user(name))[1] for name in ("sam", "jo")]  # type: ignore[index]

    kept = asyncio.run(hashes())
    assert all(h.startswith("scrypt$") for h in kept)
    outputs = "".join(r.stdout + r.stderr for r in (added, agent, typo, weak, twice, reset))
    assert password not in outputs and password not in "".join(kept)
