"""Rules versions end to end: the real CLI and real servers, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from bot.responses import SHIPPED
from tests.conftest import ROOT, copy_rules
from tests.test_cli import run
from tests.test_server import Server

MONDAY = 'monday = "09:00-17:00"'
# Three days ahead, local time: the closure covers today whatever the time of day.
UNTIL = f"{date.today() + timedelta(days=3)}T09:00"


def own_copy(tmp_path: Path) -> Path:
    """The shipped rules.toml and one template of the team's own (a copy of the shipped
    closure reply) in tmp_path, as a team's own repository has them."""
    (tmp_path / "responses" / "en").mkdir(parents=True)
    shutil.copy(SHIPPED / "en" / "closure.txt", tmp_path / "responses" / "en" / "closure.txt")
    shutil.copy(ROOT / "rules.toml", tmp_path / "rules.toml")
    return tmp_path / "rules.toml"


def test_push_history_restore_and_pull_from_the_command_line(database: str, tmp_path: Path) -> None:
    rules = own_copy(tmp_path)
    env = {"DATABASE_URL": database, "RULES_FILE": str(rules)}
    empty = run("rules", "history", env=env)
    assert empty.returncode == 0 and "No version is stored yet" in empty.stdout

    first = run("rules", "push", "--note", "from git", env=env)
    assert first.returncode == 0, first.stderr
    assert "Stored version 1" in first.stdout
    assert "Nothing to store: version 1 is the same" in run("rules", "push", env=env).stdout

    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace(MONDAY, 'monday = "9-5"'), encoding="utf-8")
    bad = run("rules", "push", env=env)
    line = text.splitlines().index(MONDAY) + 1
    assert bad.returncode == 1
    assert f"rules.toml:{line}: hours.monday: '9-5' is not a time range" in bad.stderr
    assert "nothing was changed" in bad.stderr

    rules.write_text(text.replace(MONDAY, 'monday = "10:00-17:00"'), encoding="utf-8")
    second = run("rules", "push", "--note", "later on Mondays", "--by", "Jo Smith", env=env)
    assert "Stored version 2" in second.stdout, second.stderr
    restored = run("rules", "restore", "1", "--by", "Sam", env=env)
    assert "Stored version 3, the same as version 1" in restored.stdout, restored.stderr
    assert run("rules", "restore", "9", env=env).returncode == 1

    history = json.loads(run("rules", "history", "--json", env=env).stdout)
    assert [(h["version"], h["author"], h["source"]) for h in history] == [
        (3, "Sam", "restore"),
        (2, "Jo Smith", "file"),
        (1, "the rules file", "file"),
    ]
    assert history[1]["note"] == "later on Mondays" and history[1]["changed"] == "rules.toml"
    assert "restored version 1" in history[0]["note"]

    out = tmp_path / "pulled"
    pulled = run("rules", "pull", str(out), env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert (out / "rules.toml").read_text(encoding="utf-8") == text
    assert (out / "responses" / "en" / "closure.txt").read_text(encoding="utf-8") == (
        SHIPPED / "en" / "closure.txt"
    ).read_text(encoding="utf-8")


def test_close_and_end_from_the_command_line(database: str, tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    env = {"DATABASE_URL": database, "RULES_FILE": str(rules)}
    closed = run(
        "close", "--until", UNTIL, "--reason", "severe weather", "--by", "Jo Smith",
        env=env,
    )  # fmt: skip
    assert closed.returncode == 0, closed.stderr
    assert re.search(
        r"^Jo Smith closed the desk until 9am on \w+ \d+ \w+: severe weather", closed.stdout
    )
    assert run("close", "--until", "2001-01-01T09:00", "--reason", "x", env=env).returncode == 1
    ended = run("close", "--end", "--by", "Jo Smith", env=env)
    assert "Jo Smith ended the closure early (closed for severe weather)" in ended.stdout
    history = json.loads(run("rules", "history", "--json", env=env).stdout)
    assert [h["source"] for h in history] == ["closure", "closure", "file"]


def test_two_servers_on_one_database_follow_a_closure_within_five_seconds(
    database: str, tmp_path: Path
) -> None:
    """On PostgreSQL as on a PaaS with two dynos; on SQLite as two processes on one server."""
    rules = copy_rules(tmp_path)
    one = Server(tmp_path, rules, database)
    two = Server(tmp_path, rules, database)
    try:
        env = {"DATABASE_URL": database, "RULES_FILE": str(rules)}
        closed = run(
            "close", "--until", UNTIL, "--reason", "a flood at the office",
            "--message", "Please use the web form.", env=env,
        )  # fmt: skip
        assert closed.returncode == 0, closed.stderr
        stored = time.monotonic()
        waiting = {one.port: one, two.port: two}
        count = 0
        while waiting and time.monotonic() - stored < 5:
            for port, server in list(waiting.items()):
                count += 1
                status, body = server.request(
                    "/api/messages", {"sender": f"s{count}", "text": "Is the tip open?"}
                )
                assert status == 202, body
                if "We're closed for a flood at the office" in (body["reply"] or ""):
                    assert "Please use the web form." in body["reply"]
                    del waiting[port]
            time.sleep(0.1)
        assert not waiting, f"not followed within 5 s by {list(waiting)}"
    finally:
        one.stop()
        two.stop()


def test_a_restart_keeps_what_was_saved_and_a_deploy_of_changed_files_replaces_it(
    tmp_path: Path,
) -> None:
    """Whichever changed last wins: the browser's change survives a restart with the same files;
    files changed by a deploy become the newest version when the process starts."""
    rules = copy_rules(tmp_path)
    database = f"sqlite:///{tmp_path}/restart.sqlite3"
    env = {"DATABASE_URL": database, "RULES_FILE": str(rules)}

    def sources() -> list[tuple[int, str]]:
        found = json.loads(run("rules", "history", "--json", env=env).stdout)
        return [(h["version"], h["source"]) for h in found]

    Server(tmp_path, rules, database).stop()
    assert sources() == [(1, "file")]
    assert run("close", "--until", UNTIL, "--reason", "snow", env=env).returncode == 0
    server = Server(tmp_path, rules, database)  # the daily restart, same files
    try:
        status, body = server.request("/api/messages", {"sender": "a", "text": "hello"})
        assert status == 202 and "We're closed for snow" in body["reply"]
    finally:
        server.stop()
    assert sources() == [(2, "closure"), (1, "file")]

    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("Anytown Borough Council", "Anytown Council"), encoding="utf-8")
    server = Server(tmp_path, rules, database)  # a deploy with changed files
    try:
        status, body = server.request("/api/messages", {"sender": "b", "text": "hello"})
        assert status == 202 and "Anytown Council" in body["reply"], body
    finally:
        server.stop()
    assert sources() == [(3, "file"), (2, "closure"), (1, "file")]
