"""The command line for rules versions: rules push, pull, history, restore; close (and --end).

`close` ends a closure with `close --end`, not with a `reopen` command: `reopen REFERENCE`
already reopens a message marked done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import closing
from bot.check import rules_path
from bot.errors import HoldingReplyError
from bot.server import auto_migrate, database_url
from bot.store import RulesVersion, Store, open_store
from bot.triage import Triage
from bot.versions import FILE_AUTHOR, load_files, read_files, save, summary_of

CLI_AUTHOR = "the command line"


def parse_until(text: str, triage: Triage, now: datetime) -> datetime:
    """ISO 8601, or HH:MM (the next such time); local time unless an offset is given."""
    zone = triage.rules.timezone
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if clock:
        local = now.astimezone(zone)
        try:
            moment = local.replace(
                hour=int(clock[1]), minute=int(clock[2]), second=0, microsecond=0
            )
        except ValueError:
            raise HoldingReplyError(f"--until {text!r} is not a time of day") from None
        if moment <= local:
            moment += timedelta(days=1)
        return moment.astimezone(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise HoldingReplyError(
            f"--until {text!r} is not a time; expected 09:00 (the next 9am) or "
            "2026-12-24T09:00 (local time)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


async def _newest(store: Store, rules: Path) -> tuple[RulesVersion, Triage]:
    """The version in force, storing the files as the first one when there is none."""
    newest = await store.rules_version()
    if newest is None:
        files = await asyncio.to_thread(read_files, rules)
        await save(store, files, author=FILE_AUTHOR, note="the first version, from the files",
                   source="file", based_on=0, at=datetime.now(UTC))  # fmt: skip
        newest = await store.rules_version()
        assert newest is not None
    with tempfile.TemporaryDirectory(prefix="holding-reply-") as folder:
        triage = await asyncio.to_thread(load_files, newest.files, Path(folder))
    return newest, triage


def _local(version: RulesVersion, triage: Triage | None) -> str:
    zone = triage.rules.timezone if triage else UTC
    return version.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


async def _rules(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        if args.action == "push":
            path = rules_path(args.file or args.rules)
            files = await asyncio.to_thread(read_files, path)
            newest = await store.rules_version()
            if newest is not None and newest.files == files:
                print(f"Nothing to store: version {newest.id} is the same as {path}.")
                return 0
            version, _ = await save(
                store, files, author=args.by or FILE_AUTHOR, note=args.note or "",
                source="file", based_on=newest.id if newest else 0, at=now,
            )  # fmt: skip
            print(f"Stored version {version.id} from {path}; every process uses it within 5 s.")
            return 0
        if args.action == "pull":
            newest = await store.rules_version()
            if newest is None:
                raise HoldingReplyError(
                    "No version is stored yet: python -m bot rules push stores the first."
                )
            into = Path(args.file or rules_path(args.rules).parent)
            outside = []
            for name, text in sorted(newest.files.items()):
                target = into / name
                if not target.resolve().is_relative_to(into.resolve()):
                    outside.append(name)  # a folder rules.toml names above this one
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            written = len(newest.files) - len(outside)
            print(f"Wrote version {newest.id} ({written} files) to {into}.")
            if outside:
                print(
                    f"Not written, as they are outside {into}: {len(outside)} templates in "
                    f"{sorted({n.rsplit('/', 2)[0] for n in outside})}."
                )
            return 0
        if args.action == "history":
            versions = await store.rules_versions(limit=args.limit + 1)
            shown = versions[: args.limit]
            triage = None
            if versions:
                with tempfile.TemporaryDirectory(prefix="holding-reply-") as tmp:
                    try:
                        triage = await asyncio.to_thread(load_files, versions[0].files, Path(tmp))
                    except HoldingReplyError:
                        triage = None
            rows: list[dict[str, Any]] = []
            for i, v in enumerate(shown):
                before = versions[i + 1].files if i + 1 < len(versions) else None
                rows.append({
                    "version": v.id, "at": v.created_at.isoformat(), "author": v.author,
                    "source": v.source, "note": v.note, "changed": summary_of(before, v.files),
                })  # fmt: skip
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=1))
                return 0
            if not rows:
                print("No version is stored yet: python -m bot rules push stores the first.")
            for v, row in zip(shown, rows, strict=True):
                note = f": {row['note']}" if row["note"] else ""
                print(f"{v.id:>4}  {_local(v, triage)}  {v.author} ({v.source}){note}")
                print(f"      changed {row['changed']}")
            return 0
        # restore
        old = await store.rules_version(args.file and int(args.file))
        if old is None:
            raise HoldingReplyError(
                f"There is no version {args.file}: see python -m bot rules history."
            )
        latest = await store.latest_rules_version()
        version, _ = await save(
            store, old.files, author=args.by or CLI_AUTHOR,
            note=f"restored version {old.id}" + (f": {args.note}" if args.note else ""),
            source="restore", based_on=latest, at=now,
        )  # fmt: skip
        print(f"Stored version {version.id}, the same as version {old.id}.")
        return 0


def cmd_rules(args: argparse.Namespace) -> int:
    if args.action == "restore" and not (args.file or "").isdigit():
        raise HoldingReplyError("rules restore needs a version number: rules restore 12")
    return asyncio.run(_rules(args))


async def _close(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    by = args.by or CLI_AUTHOR
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        newest, triage = await _newest(store, rules_path(args.rules))
        was = closing.current(newest.files["rules.toml"])
        if args.end:
            if was is None:
                print("The desk is not closed by “Close now”; nothing changed.")
                return 0
            files = closing.reopened(dict(newest.files))
            words = closing.reopened_words(by, was)
            await save(store, files, author=by, note="ended the closure early", source="closure",
                       based_on=newest.id, at=now, announce=words)  # fmt: skip
            print(words + ".")
            return 0
        if not args.reason:
            raise HoldingReplyError("close needs --reason, e.g. --reason 'severe weather'")
        until = parse_until(args.until, triage, now) if args.until else None
        until = until or closing.default_until(triage.rules, now)
        block = closing.block(triage.rules, now, until, args.reason, args.message, by)
        words = closing.closed_words(by, until, " ".join(args.reason.split()), triage.rules, now)
        files = closing.closed(dict(newest.files), block)
        await save(store, files, author=by, note=f"closed: {args.reason}", source="closure",
                   based_on=newest.id, at=now, announce=words)  # fmt: skip
        print(words + ".")
        return 0


def cmd_close(args: argparse.Namespace) -> int:
    return asyncio.run(_close(args))


def add_parsers(sub: Any) -> None:
    """`rules` and `close`, added to the command line's subcommands."""
    s = sub.add_parser("rules", help="rules versions in the database: push, pull, history, restore")
    s.add_argument("action", choices=["push", "pull", "history", "restore"])
    s.add_argument(
        "file",
        nargs="?",
        metavar="FILE|DIR|VERSION",
        help="push: the rules file (default: $RULES_FILE or ./rules.toml); pull: the folder to "
        "write to (default: the rules file's); restore: the version number",
    )
    s.add_argument("--rules", metavar="FILE", help=argparse.SUPPRESS)
    s.add_argument("--note", help="why (push, restore)")
    s.add_argument("--by", help="who, as the history and the announcement say it")
    s.add_argument("--json", action="store_true", help="(history)")
    s.add_argument("--limit", type=int, default=50, help="(history) how many, newest first")
    s.set_defaults(func=cmd_rules)

    s = sub.add_parser("close", help="close the desk now until a time; --end ends it early")
    s.add_argument("--rules", metavar="FILE", help="the files for a first version, if none")
    s.add_argument(
        "--until",
        metavar="TIME",
        help="09:00 (the next 9am) or 2026-12-24T09:00, local time (default: the next opening)",
    )
    s.add_argument("--reason", help="what replies say: 'severe weather'")
    s.add_argument("--message", help="one more sentence for the replies (optional)")
    s.add_argument("--by", help="who, as the announcement says it")
    s.add_argument("--end", action="store_true", help="end the closure now")
    s.set_defaults(func=cmd_close)
