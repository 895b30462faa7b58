"""The floor the end-to-end benchmark is compared with: a bare aiohttp handler that parses the
same JSON and does one SQLite insert per message in WAL mode (one commit per message).

Usage: python bench/floor.py PORT DB_PATH [SYNCHRONOUS] [decide]

With `decide`, each request also makes the decision Holding Reply makes (Triage.decide on the
shipped rules.toml) and answers with its reply: the most that any server which decides on the
event loop, as it must to answer with the reply, can do on one core with this floor's storage.
"""

from __future__ import annotations

import sqlite3
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    synchronous = sys.argv[3] if len(sys.argv) > 3 else "FULL"
    deciding = sys.argv[4:] == ["decide"]
    if deciding:
        from bot.check import load
        from bot.models import Message, SenderState

        triage, nobody = load(ROOT / "rules.toml"), SenderState()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, platform_id TEXT, "
        "sender TEXT, text TEXT)"
    )

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
        decision = triage.decide(message, nobody, "ABCD-EFGH")
        return web.json_response({"id": body.get("id"), "reply": decision.reply}, status=202)

    app = web.Application()
    app.router.add_post("/api/messages", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
