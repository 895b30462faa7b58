"""The floors the end-to-end benchmark is compared with: a bare aiohttp handler that parses the
same JSON and stores each message with one INSERT (one commit per message).

Usage: python bench/floor.py PORT DB [SYNCHRONOUS] [decide|reply]
       python bench/floor.py PORT postgresql://... [decide]

DB is an SQLite file (WAL mode, `PRAGMA synchronous` = SYNCHRONOUS, FULL by default), or a
postgresql:// URL: then each message is one INSERT through an asyncpg pool of 5 connections (the
size of Holding Reply's default pool), with the server's `synchronous_commit` as it is (on by
default: the INSERT returns once the commit is on disk).

With `decide` (also on PostgreSQL: `floor.py PORT URL decide`), each request also makes the
decision Holding Reply makes (Triage.decide on the shipped rules.toml) and answers with its
reply: the most that any server which decides on the event loop, as it must to answer with the
reply, can do on one core with this floor's storage.

With `reply` (SQLite only), each request does all that `decide` does except the decision
itself: it builds the same Message and answers with a reply of the same length, decided once
at the start. What `reply` costs over the bare floor is what answering costs before any
deciding: the part of a bare request's budget that no decision, however fast, can have.
"""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = "CREATE TABLE IF NOT EXISTS messages (id {key}, platform_id TEXT, sender TEXT, text TEXT)"


def sqlite_app(path: str, synchronous: str, mode: str) -> web.Application:
    deciding = mode in ("decide", "reply")
    if deciding:
        from bot.check import load
        from bot.models import Message, SenderState

        triage, nobody = load(ROOT / "rules.toml"), SenderState()
        sample = Message("web", "0", "sample", "hello, are you open?", datetime.now(UTC))
        fixed = triage.decide(sample, nobody, "ABCD-EFGH")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(TABLE.format(key="INTEGER PRIMARY KEY"))

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        db.execute(
            "INSERT INTO messages (platform_id, sender, text) VALUES (?, ?, ?)",
            (body.get("id"), body["sender"], body["text"]),
        )
        if not deciding:
            return web.json_response({"id": body.get("id")}, status=202)
        now = datetime.now(UTC)
        message = Message("web", uuid.uuid4().hex, body["sender"], body["text"], now)
        decision = fixed if mode == "reply" else triage.decide(message, nobody, "ABCD-EFGH")
        return web.json_response({"id": body.get("id"), "reply": decision.reply}, status=202)

    app = web.Application()
    app.router.add_post("/api/messages", handle)
    return app


def postgres_app(url: str, deciding: bool) -> web.Application:
    import asyncpg

    pool: asyncpg.Pool
    if deciding:
        from bot.check import load
        from bot.models import Message, SenderState

        triage, nobody = load(ROOT / "rules.toml"), SenderState()

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(url, min_size=5, max_size=5)
        await pool.execute(TABLE.format(key="BIGSERIAL PRIMARY KEY"))
        yield
        await pool.close()

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        await pool.execute(
            "INSERT INTO messages (platform_id, sender, text) VALUES ($1, $2, $3)",
            body.get("id"), body["sender"], body["text"],
        )  # fmt: skip
        if not deciding:
            return web.json_response({"id": body.get("id")}, status=202)
        message = Message("web", uuid.uuid4().hex, body["sender"], body["text"], datetime.now(UTC))
        decision = triage.decide(message, nobody, "ABCD-EFGH")
        return web.json_response({"id": body.get("id"), "reply": decision.reply}, status=202)

    app = web.Application()
    app.cleanup_ctx.append(lifetime)
    app.router.add_post("/api/messages", handle)
    return app


def main() -> None:
    port, db = int(sys.argv[1]), sys.argv[2]
    if db.startswith(("postgres://", "postgresql://")):
        app = postgres_app(db, deciding=sys.argv[3:] == ["decide"])
    else:
        synchronous = sys.argv[3] if len(sys.argv) > 3 else "FULL"
        app = sqlite_app(db, synchronous, mode=sys.argv[4] if len(sys.argv) > 4 else "")
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
