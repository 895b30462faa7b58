"""`python -m bot announce ...`: write, import, list, approve, cancel, suspend and resume
announcements from the command line. Errors are raised as HoldingReplyError; bot.cli turns them
into messages and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.announcement import Announcement, AnnouncementError, NewAnnouncement
from bot.announcements import NotWritten, approve, compose
from bot.channels.posting import LIMITS
from bot.check import load, rules_path
from bot.config import Rules
from bot.errors import StoreError
from bot.server import auto_migrate, database_url
from bot.store import Store, open_store

RECENT = timedelta(days=7)  # `announce list` shows what was due this long ago, and everything later
COLUMNS = ("when", "channels", "text")


def _by(args: argparse.Namespace) -> str:
    return str(getattr(args, "by", None) or getpass.getuser())


def _rules(args: argparse.Namespace) -> Rules:
    return load(rules_path(args.rules)).rules


async def _with_store(run: Callable[[Store], Any]) -> Any:
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        return await run(store)


def announcement_json(a: Announcement, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": a.id,
        "when": a.due_at.astimezone(zone).isoformat(timespec="minutes"),
        "text": a.text,
        "written_by": a.written_by,
        "approved_by": a.approved_by,
        "notice": a.notice,
        "clock_rules_changed": a.drifted(),
        "channels": {
            p.channel: {
                "state": p.state,
                # Published, but found on the account after the server stopped mid-publish.
                "found_by_check": p.found_by_check,
                "text": p.text,
                "link": p.link,
                "platform_id": p.platform_id,
                "error": p.error,
            }
            for p in a.posts
        },
    }


def _describe(a: Announcement, zone: ZoneInfo) -> list[str]:
    local = a.due_at.astimezone(zone)
    lines = [f"{a.id:>5}  {local:%a %d %b %Y %H:%M}  {a.text[:60]!r}  by {a.written_by}"]
    if a.drifted():
        lines.append(
            f"       the clock rules of {a.zone} changed: it was written for {a.wall_time}"
        )
    for p in a.posts:
        where = f"  {p.link}" if p.link else ""
        why = f"  ({p.error})" if p.error and p.state != "published" else ""
        lines.append(f"       {p.channel:<9} {p.state_words}{where}{why}")
    return lines


async def _add(args: argparse.Namespace) -> int:
    rules = _rules(args)
    now = datetime.now(UTC)
    versions = {name: getattr(args, f"{name}_text") or "" for name in LIMITS}
    new = compose(
        rules, when=args.at, channels=args.channels, text=args.text, versions=versions,
        by=_by(args), now=now,
    )  # fmt: skip
    aid = await _with_store(lambda store: store.add_announcement(new, now))
    waiting = " (waiting for a second admin to approve it)" if new.state == "approval" else ""
    print(f"Announcement {aid} scheduled for {new.wall_time} {new.zone}{waiting}.")
    return 0


async def _list(args: argparse.Namespace) -> int:
    zone = _rules(args).timezone

    async def run(store: Store) -> None:
        found = await store.announcements(datetime.now(UTC) - RECENT)
        suspended = await store.suspension()
        if args.json:
            body = {
                "suspended": None if suspended is None else suspended.reason,
                "announcements": [announcement_json(a, zone) for a in found],
            }
            print(json.dumps(body, ensure_ascii=False, indent=2))
            return
        if suspended is not None:
            print(f"SUSPENDED by {suspended.suspended_by}: {suspended.reason}")
        for a in found:
            print("\n".join(_describe(a, zone)))
        if not found:
            print("No announcements due in the last 7 days or later.")

    await _with_store(run)
    return 0


async def _cancel(args: argparse.Namespace) -> int:
    channels = await _with_store(
        lambda store: store.cancel_announcement(args.id, _by(args), datetime.now(UTC))
    )
    if not channels:
        raise AnnouncementError(
            f"announcement {args.id} has nothing left to cancel (published, or no such id)"
        )
    print(f"Announcement {args.id} cancelled on {', '.join(channels)}.")
    return 0


async def _publish(args: argparse.Namespace) -> int:
    channels = await _with_store(
        lambda store: store.republish_announcement(args.id, _by(args), datetime.now(UTC))
    )
    if not channels:
        raise AnnouncementError(
            f"announcement {args.id} has nothing held, missed, unknown or failed to publish"
        )
    print(f"Announcement {args.id} will be published now on {', '.join(channels)}.")
    return 0


async def _approve(args: argparse.Namespace) -> int:
    await _with_store(lambda store: approve(store, args.id, args.by, datetime.now(UTC)))
    print(f"Announcement {args.id} approved by {args.by}.")
    return 0


async def _suspend(args: argparse.Namespace) -> int:
    done = await _with_store(
        lambda store: store.suspend_announcements(args.reason, _by(args), datetime.now(UTC))
    )
    if not done:
        raise AnnouncementError("announcements are already suspended")
    print("Announcements suspended: nothing will be published until `announce resume`.")
    return 0


async def _resume(args: argparse.Namespace) -> int:
    async def run(store: Store) -> int:
        if await store.suspension() is None:
            raise AnnouncementError("announcements are not suspended")
        return await store.resume_announcements(_by(args), datetime.now(UTC))

    held = await _with_store(run)
    print(
        f"Announcements resumed. {held} post{'s' if held != 1 else ''} fell due while suspended "
        "and wait for a person: `announce publish ID` or `announce cancel ID`."
    )
    return 0


def read_csv(path: Path, rules: Rules, by: str, now: datetime) -> list[NewAnnouncement]:
    """Every line checked; raise NotImported listing every problem by line and column."""
    problems: list[str] = []
    out: list[NewAnnouncement] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            own = {f"{name}_text" for name in LIMITS}
            for column in COLUMNS:
                if column not in header:
                    problems.append(f"{path}: line 1: the column {column!r} is missing")
            for column in header:
                if column not in COLUMNS and column not in own:
                    problems.append(
                        f"{path}: line 1: column {column!r} is not one of "
                        f"{', '.join([*COLUMNS, *sorted(own)])}"
                    )
            if problems:
                raise NotImported(problems)
            for row in reader:
                line = reader.line_num
                cells = {k.strip().lower(): (v or "") for k, v in row.items() if k is not None}
                try:
                    out.append(
                        compose(
                            rules,
                            when=cells["when"],
                            channels=cells["channels"],
                            text=cells["text"],
                            by=by,
                            now=now,
                            versions={n: cells.get(f"{n}_text", "") for n in LIMITS},
                        )
                    )
                except NotWritten as exc:
                    problems += [f"{path}: line {line}, column {m.field}: {m.message}"
                                 for m in exc.mistakes]  # fmt: skip
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnouncementError(f"{path} cannot be read as a UTF-8 CSV file: {exc}") from None
    if problems:
        raise NotImported(problems)
    if not out:
        raise AnnouncementError(f"{path} has no announcements below its header line")
    return out


class NotImported(AnnouncementError):
    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        s = "s" if count != 1 else ""
        super().__init__(
            "\n".join([*problems, f"{count} problem{s} found; nothing was scheduled."])
        )


async def _import(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    found = read_csv(Path(args.file), _rules(args), _by(args), now)

    try:  # one transaction: a database error at any line stores none of them
        ids: list[int] = await _with_store(lambda store: store.add_announcements(found, now))
    except StoreError as exc:
        raise AnnouncementError(
            f"{exc}\nNothing was scheduled from {args.file}: an import is stored whole or not "
            "at all. Import the file again once the database is back."
        ) from None
    print(
        f"Scheduled {len(ids)} announcement{'s' if len(ids) != 1 else ''}: {ids[0]} to {ids[-1]}."
    )
    return 0


def cmd_announce(args: argparse.Namespace) -> int:
    run = {
        "add": _add,
        "list": _list,
        "cancel": _cancel,
        "publish": _publish,
        "approve": _approve,
        "suspend": _suspend,
        "resume": _resume,
        "import": _import,
    }[args.action]
    return int(asyncio.run(run(args)))


def add_parser(sub: Any, rules_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    s = sub.add_parser("announce", help="scheduled announcements on every channel that can post")
    actions = s.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="schedule one")
    a.add_argument("--at", required=True, metavar="TIME", help="local time, e.g. 2027-12-24T09:00")
    a.add_argument("--channels", required=True, metavar="LIST", help="e.g. x,telegram")
    for name in LIMITS:
        a.add_argument(f"--{name}-text", metavar="TEXT", help=f"{name}'s own version")
    a.add_argument("--by", metavar="USER", help="who wrote it (default: you)")
    a.add_argument("text", metavar="TEXT")
    a = actions.add_parser("list", help="upcoming and recent, with each channel's state")
    a.add_argument("--json", action="store_true")
    for name, text in (
        ("cancel", "cancel what is not yet published"),
        ("publish", "publish now what was held, missed, unknown or failed"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("id", type=int, metavar="ID")
        a.add_argument("--by", metavar="USER")
    a = actions.add_parser("approve", help="approve one written by someone else (admins)")
    a.add_argument("id", type=int, metavar="ID")
    a.add_argument("--by", required=True, metavar="USER", help="your inbox username")
    a = actions.add_parser("suspend", help="hold every announcement, organisation-wide")
    a.add_argument("--reason", required=True, metavar="TEXT")
    a.add_argument("--by", metavar="USER")
    a = actions.add_parser("resume", help="end the suspension")
    a.add_argument("--by", metavar="USER")
    a = actions.add_parser("import", help="schedule many from a CSV: when,channels,text")
    a.add_argument("file", metavar="FILE.csv")
    a.add_argument("--by", metavar="USER")
    for p in actions.choices.values():
        rules_arg(p)
    s.set_defaults(func=cmd_announce)
