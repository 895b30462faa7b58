"""The command line: serve, migrate, user, telegram, check, preview, bio, queue, outbox, export,
erase, done, reopen, replied, report, import-contacts, rules, close (the last two in
bot.rules_cli), announce (in bot/announce_cli.py) and profile (bot/profile_cli.py).

Only this module turns errors into messages and exit codes: 0 success, 1 a problem the message
explains (invalid rules, unknown reference), 2 a usage mistake, 3 the database is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import errno
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot import when
from bot.check import load, phrase_warnings, rules_path, summary
from bot.config import CHANNELS, load_rules
from bot.durations import ParseError, Promise, parse_promise
from bot.errors import HoldingReplyError, RulesError, StoreError
from bot.models import (
    Delivery,
    Message,
    PersonalData,
    QueueItem,
    SenderState,
    User,
)
from bot.moments import read_time
from bot.server import auto_migrate, database_url, serve
from bot.store import NotFound, open_store
from bot.triage import Triage
from bot.typical import NOTHING, Typical

PREVIEW_REFERENCE = "PREV-IEW0"


def cmd_check(args: argparse.Namespace) -> int:
    path = rules_path(args.rules)
    triage = load(path)
    print(summary(triage, datetime.now(UTC)))
    for warning in phrase_warnings(path):
        print(f"  warning: {warning}")
    return 0


def preview_one(
    triage: Triage, channel: str, text: str, at: datetime, typical: Promise | None = None
) -> dict[str, Any]:
    """What triage decides; with `typical`, as if that were how long the message's team (or
    channel) had lately taken to reply."""
    message = Message(channel, "preview", "preview", text, at, None)
    measured = NOTHING
    if typical is not None:
        team = triage.draft(message).team
        measured = Typical(teams={(channel, team): typical})
    decision = triage.decide(message, SenderState(), PREVIEW_REFERENCE, typical=measured)
    tz = triage.rules.timezone

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat() if value else None

    return {
        "at": iso(at),
        "channel": channel,
        "staffed": decision.staffed,
        "opens_at": iso(decision.opens_at),
        "reply_by": iso(decision.reply_by),
        "emergency": decision.emergency,
        "redirect": decision.redirect,
        "team": decision.team,
        "matched": decision.matched,
        "language": decision.language,
        "template": decision.template,
        "reply": decision.reply,
        "possible": decision.possible,
        "why": triage.explain(text),
    }


def cmd_preview(args: argparse.Namespace) -> int:
    triage = load(rules_path(args.rules))
    tz = triage.rules.timezone
    moments = [read_time(a, tz, "--at") for a in args.at] or [datetime.now(UTC)]
    typical = None
    if args.typical:
        try:
            typical = parse_promise(args.typical)
        except ParseError as exc:
            raise HoldingReplyError(f"--typical: {exc}") from None
    for at in moments:
        result = preview_one(triage, args.channel, args.text, at, typical)
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
            continue
        local = at.astimezone(tz)
        state = "staffed" if result["staffed"] else "closed"
        print(f"At {local:%A %-d %B %Y %H:%M %Z} ({state})")
        if result["reply_by"]:
            reply_by = datetime.fromisoformat(result["reply_by"])
            print(f"  reply by:  {when.say_when(reply_by, local, 'en')} ({result['reply_by']})")
        else:
            print("  reply by:  never (no staffed hours are scheduled)")
        for key in ("emergency", "redirect", "team", "matched", "language", "template"):
            print(f"  {key + ':':<10} {result[key] if result[key] is not None else '-'}")
        for n, line in enumerate(result["why"]):
            print(f"  {'why:' if n == 0 else '':<10} {line}")
        print("  reply:")
        for line in (result["reply"] or "").splitlines():
            print(f"    {line}")
        print()
    return 0


def cmd_bio(args: argparse.Namespace) -> int:
    triage = load(rules_path(args.rules))
    channels = [args.channel] if args.channel else list(triage.rules.channels) or ["web"]
    now = datetime.now(UTC)
    for channel in channels:
        text = triage.bio(channel, now)
        prefix = f"{channel}: " if len(channels) > 1 else ""
        print(prefix + text.replace("\n", " "))
    return 0


def _zone(args: argparse.Namespace) -> ZoneInfo:
    try:
        return load(rules_path(getattr(args, "rules", None))).rules.timezone
    except RulesError:
        print("warning: rules.toml is invalid; showing times in UTC", file=sys.stderr)
        return ZoneInfo("UTC")


def item_json(item: QueueItem | Delivery | User, tz: ZoneInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in item.__slots__:
        value = getattr(item, key)
        out[key] = value.astimezone(tz).isoformat() if isinstance(value, datetime) else value
    return out


async def _queue(args: argparse.Namespace, tz: ZoneInfo) -> int:
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        items = await store.open_items(include_done=args.all)
    now = datetime.now(UTC)
    if args.json:
        print(json.dumps([item_json(i, tz) for i in items], ensure_ascii=False, indent=1))
        return 0
    if not items:
        print("The queue is empty." if not args.all else "No messages stored yet.")
        return 0
    print(f"{'reference':<10} {'channel':<8} {'received':<17} {'reply by':<17} {'flag':<22} text")
    for item in items:
        due = item.reply_by.astimezone(tz).strftime("%a %d %b %H:%M") if item.reply_by else "-"
        if item.reply_by and item.reply_by < now and item.done_at is None:
            due += " !"
        flag = f"EMERGENCY {item.emergency}" if item.emergency else item.redirect or item.team or ""
        if item.done_at:
            flag = f"done by {item.done_by}"
        text = " ".join(item.text.split())
        text = text[:57] + "..." if len(text) > 60 else text
        received = item.received_at.astimezone(tz).strftime("%a %d %b %H:%M")
        columns = (item.reference, 10), (item.channel, 8), (received, 17), (due, 17), (flag, 22)
        print(" ".join(f"{value[:width]:<{width}}" for value, width in columns), text)
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    return asyncio.run(_queue(args, _zone(args)))


def _read_at(args: argparse.Namespace) -> datetime:
    """`--at` of done and replied, read as `preview --at` is: local time unless it has an offset.

    The zone comes from rules.toml; when the rules cannot be read, only a time with an offset
    can be understood, so any other is refused rather than guessed.
    """
    text = getattr(args, "at", None)
    if not text:
        return datetime.now(UTC)
    try:
        zone: ZoneInfo | None = load_rules(rules_path(args.rules)).timezone
    except RulesError:
        zone = None
    return read_time(text, zone, "--at")


async def _update(args: argparse.Namespace) -> int:
    now = _read_at(args)
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        if args.command == "done":
            item = await store.mark_done(args.reference, args.by, now)
        elif args.command == "reopen":
            item = await store.reopen(args.reference)
        else:
            item = await store.record_human_reply(args.reference, args.text or "", args.by, now)
    print(f"{item.reference}: {'done' if item.done_at else 'open'}")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    return asyncio.run(_update(args))


def personal_json(
    data: PersonalData, tz: ZoneInfo, originals: Mapping[int, bytes] | None = None
) -> dict[str, Any]:
    """originals: message id -> the message as it arrived (a raw mail), where one was kept."""
    kept = originals or {}

    def when(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat() if value else None

    state = data.state
    return {
        "channel": data.channel,
        "sender": data.sender,
        "exported_at": when(datetime.now(UTC)),
        "automatic_replies": None
        if state is None
        else {
            "last_sent_at": when(state.last_ack_at),
            "last_template": state.last_ack_template,
            "opted_out": state.opted_out,
        },
        "messages": [
            {
                **item_json(item, tz),
                "replies": [
                    {
                        "kind": r.kind,
                        "template": r.template,
                        "text": r.text,
                        "author": r.author,
                        "sent_at": when(r.created_at),
                    }
                    for r in data.replies
                    if r.message_id == item.id
                ],
                **(
                    {"original": kept[item.id].decode("utf-8", "replace")}
                    if item.id in kept
                    else {}
                ),
            }
            for item in data.items
        ],
    }


async def _personal(args: argparse.Namespace, tz: ZoneInfo) -> int:
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        data = await store.export(args.channel, args.sender)
        if args.command == "export":
            originals = {}
            for item in data.items:  # a mail as it arrived is theirs too
                raw = await store.original(item.id)
                if raw is not None:
                    originals[item.id] = raw
            print(json.dumps(personal_json(data, tz, originals), ensure_ascii=False, indent=1))
            return 0
        count = len(data.items)
        who = f"{args.sender!r} on {args.channel}"
        if not args.yes:
            print(
                f"This would erase {count} message{'s' if count != 1 else ''} from {who}, "
                "the replies to them, and what is remembered about them. It cannot be undone. "
                "Run again with --yes to erase.",
                file=sys.stderr,
            )
            return 1
        erased = await store.erase(args.channel, args.sender, datetime.now(UTC))
    # An audit line without the person's identity: erasing it is the point.
    print(f"Erased {erased} message{'s' if erased != 1 else ''} from {who}.")
    return 0


def cmd_personal(args: argparse.Namespace) -> int:
    return asyncio.run(_personal(args, _zone(args)))


async def _telegram(args: argparse.Namespace) -> int:
    from telegram import Bot

    from bot.channels.telegram import ALLOWED_UPDATES, ROUTE, TelegramSettings

    settings = TelegramSettings(os.environ)
    if not settings.token:
        raise HoldingReplyError("TELEGRAM_BOT_TOKEN is not set: ask @BotFather for one.")
    async with Bot(settings.token, base_url=settings.api_url) as bot:
        if args.action == "set-webhook":
            if not settings.public_url.startswith("https://") and not args.insecure:
                raise HoldingReplyError(
                    f"PUBLIC_URL is {settings.public_url or 'not set'}; Telegram sends webhooks "
                    "only to an https:// address, such as https://your-app.herokuapp.com"
                )
            url = settings.public_url + ROUTE
            await bot.set_webhook(
                url, secret_token=settings.secret, allowed_updates=ALLOWED_UPDATES
            )
            print(f"Telegram now sends @{bot.username}'s messages to {url}")
        else:
            info = await bot.get_webhook_info()
            print(f"bot: @{bot.username}")
            print(f"webhook: {info.url or '(none: polling)'}")
            print(f"waiting updates: {info.pending_update_count}")
            if info.last_error_message:
                print(f"last error: {info.last_error_message} at {info.last_error_date}")
    return 0


def cmd_telegram(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_telegram(args))
    except Exception as exc:
        from telegram.error import TelegramError

        if isinstance(exc, TelegramError):
            token = os.environ.get("TELEGRAM_BOT_TOKEN", "")
            text = str(exc).replace(token, "<TELEGRAM_BOT_TOKEN>") if token else str(exc)
            raise HoldingReplyError(f"Telegram said: {text}") from None
        raise


async def _outbox(args: argparse.Namespace, tz: ZoneInfo) -> int:
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        if args.retry is not None:
            if not await store.revive(args.retry, datetime.now(UTC)):
                raise HoldingReplyError(f"Delivery {args.retry} is not a dead letter.")
            print(f"Delivery {args.retry} will be sent again.")
            return 0
        states = ["dead"] if args.dead else ["dead", "pending"]
        rows = [d for state in states for d in await store.deliveries(state, limit=500)]
    if args.json:
        out = [item_json(d, tz) for d in rows]
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print("Nothing waiting to be sent, and no dead letters.")
        return 0
    print(
        f"{'id':>6} {'state':<8} {'channel':<9} {'reference':<10} {'tries':>5} {'next try':<17} why"
    )
    for d in rows:
        ref = d.reference or "-"
        when_ = (
            d.next_attempt_at.astimezone(tz).strftime("%a %d %b %H:%M")
            if d.state == "pending"
            else "-"
        )
        why = " ".join((d.last_error or "").split())[:70]
        print(f"{d.id:>6} {d.state:<8} {d.channel:<9} {ref:<10} {d.attempts:>5} {when_:<17} {why}")
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    return asyncio.run(_outbox(args, _zone(args)))


USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


def _new_password(args: argparse.Namespace) -> str:
    """From standard input with --password-stdin (one line), else asked for twice, unseen."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("New password (at least 12 characters): ")
    if getpass.getpass("The same again: ") != first:
        raise HoldingReplyError("The two passwords differ; nothing was changed.")
    return first


def _teams(args: argparse.Namespace) -> list[str]:
    known = [t.name for t in load(rules_path(getattr(args, "rules", None))).rules.teams]
    for team in args.team or []:
        if team not in (*known, "default"):
            close = difflib.get_close_matches(team, known, n=1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            raise HoldingReplyError(
                f"There is no team {team!r} in rules.toml.{hint} Teams: "
                f"{', '.join([*known, 'default'])}."
            )
    return list(args.team or [])


async def _user(args: argparse.Namespace) -> int:
    from bot.auth import check_new_password, hash_password

    now = datetime.now(UTC)
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        if args.action == "list":
            users = await store.users()
            if args.json:
                print(json.dumps([item_json(u, ZoneInfo("UTC")) for u in users], indent=1))
            elif not users:
                print("No users yet: python -m bot user add NAME --role admin")
            for u in users if not args.json else []:
                state = "disabled" if u.disabled_at else "active"
                where = ", ".join(u.teams) or ("all" if u.role == "admin" else "none")
                print(f"{u.username:<20} {u.role:<6} {state:<9} teams: {where}  ({u.display_name})")
            return 0
        username = args.username.strip().lower()
        if args.action == "add":
            if not USERNAME.fullmatch(username):
                raise HoldingReplyError(
                    f"Username {username!r}: use 2 to 64 lower-case letters, digits, '.', '_' "
                    "or '-', starting with a letter or digit."
                )
            chosen = _teams(args)
            password = _new_password(args)
            check_new_password(password, username)
            user = await store.add_user(
                username, args.name or username, args.role, hash_password(password), chosen, now
            )
            print(f"Added {user.username} ({user.role}); they can log in at /inbox.")
            return 0
        found = await store.user(username)
        if found is None:
            raise HoldingReplyError(f"There is no user called {username!r}.")
        user = found[0]
        if args.action == "disable":
            await store.disable_user(user.id, now)
            print(f"{username} can no longer log in; their sessions have ended.")
        elif args.action == "reset-password":
            password = _new_password(args)
            check_new_password(password, username)
            await store.set_password(user.id, hash_password(password))
            print(f"{username}'s password is changed; their sessions have ended.")
        else:  # teams
            await store.set_teams(user.id, _teams(args))
            print(f"{username}'s teams: {', '.join(args.team or []) or 'none'}.")
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    return asyncio.run(_user(args))


async def _migrate() -> int:
    async with open_store(database_url(), migrate=True) as store:
        for name in store.applied:
            print(f"applied {name}")
        print(f"The database schema is up to date (version {store.schema_version}).")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    return asyncio.run(_migrate())


class Progress:
    """A bar on the terminal (stderr) while a long report runs; silent when not a terminal."""

    STEPS = ("counting in the database", "working time and totals", "writing")

    def __init__(self, show: bool) -> None:
        self.show = show
        self.step = 0
        self.began = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def draw(self) -> None:
        done = self.step * 30 // len(self.STEPS)
        bar = "#" * done + "." * (30 - done)
        label = self.STEPS[min(self.step, len(self.STEPS) - 1)]
        elapsed = time.monotonic() - self.began
        print(f"\r[{bar}] {self.step}/{len(self.STEPS)} {label} ({elapsed:.1f} s)\033[K",
              end="", file=sys.stderr, flush=True)  # fmt: skip

    async def _tick(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(0.2)

    def start(self) -> None:
        if self.show:
            self._task = asyncio.get_running_loop().create_task(self._tick())

    def advance(self) -> None:
        self.step += 1
        if self.show:
            self.draw()

    async def finish(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.show:
            self.step = len(self.STEPS)
            self.draw()
            print(file=sys.stderr)


async def _report(args: argparse.Namespace) -> int:
    from bot import reports

    rules = load(rules_path(args.rules)).rules
    tz = rules.timezone
    first = read_time(args.start, tz, "--from", day=True)
    last = read_time(args.end, tz, "--to", day=True)
    start, end = first.astimezone(tz).date(), last.astimezone(tz).date()
    if end <= start:
        raise HoldingReplyError(
            f"--to {end} is not after --from {start}; --to is the first day not included, "
            "e.g. --from 2026-04-01 --to 2026-05-01 for April"
        )
    # A bar for long ranges, only when a person is watching a terminal.
    progress = Progress(sys.stderr.isatty() and (end - start).days > 31)
    progress.start()
    try:
        async with open_store(database_url(), migrate=auto_migrate()) as store:
            data = await store.report(first, last, rules.timezone)
        progress.advance()
        report = reports.build(data, rules, start, end, datetime.now(UTC))
        progress.advance()
    finally:
        await progress.finish()
    if args.format == "csv":
        out = reports.to_csv(report)
    elif args.format == "html":
        out = reports.to_html(report).encode("utf-8")
    else:
        out = (json.dumps(reports.to_json(report), ensure_ascii=False, indent=1) + "\n").encode()
    if args.out:
        try:
            Path(args.out).write_bytes(out)
        except OSError as e:
            raise HoldingReplyError(f"Cannot write the report to {args.out}: {e}") from e
        print(f"Wrote the {args.format.upper()} report to {args.out}.", file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(out)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    return asyncio.run(_report(args))


async def _import_contacts(args: argparse.Namespace) -> int:
    from bot.reports import read_contacts

    contacts = read_contacts(Path(args.file))
    async with open_store(database_url(), migrate=auto_migrate()) as store:
        count = await store.import_contacts(contacts, datetime.now(UTC))
    days = sorted({c.day for c in contacts})
    print(
        f"Imported {count} row{'s' if count != 1 else ''} ({days[0]} to {days[-1]}); "
        "rows for the same date and channel were replaced."
    )
    return 0


def cmd_import_contacts(args: argparse.Namespace) -> int:
    return asyncio.run(_import_contacts(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from bot import logs

    logs.setup()
    port = args.port or int(os.environ.get("PORT") or 8080)
    try:
        asyncio.run(serve(args.host, port, rules_path(args.rules), database_url()))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise HoldingReplyError(
            f"Port {port} is already in use: is Holding Reply already running? "
            "Stop it, or choose another port with --port or PORT."
        ) from None
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bot",
        description=(
            "Holding Reply: honest automatic first replies, and one queue for the team. "
            "Without a command, runs the server."
        ),
    )
    sub = p.add_subparsers(dest="command")

    def rules_arg(s: argparse.ArgumentParser) -> None:
        s.add_argument(
            "--rules", metavar="FILE", help="rules file (default: $RULES_FILE or ./rules.toml)"
        )

    s = sub.add_parser("serve", help="run the server (the default)")
    rules_arg(s)
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=int, help="port (default: $PORT or 8080)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("user", help="people who use the inbox: add, list, disable, reset-password")
    rules_arg(s)
    s.add_argument("action", choices=["add", "list", "disable", "reset-password", "teams"])
    s.add_argument("username", nargs="?", default="")
    s.add_argument("--name", help="their name as colleagues see it (add)")
    s.add_argument("--role", choices=["admin", "agent"], default="agent", help="(add)")
    s.add_argument(
        "--team", action="append", help="a [[team]] name, or default; repeat for several"
    )
    s.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    s.add_argument("--json", action="store_true", help="(list)")
    s.set_defaults(func=cmd_user)

    s = sub.add_parser("migrate", help="bring the database schema up to date (the release step)")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("telegram", help="set up the Telegram bot: set-webhook, webhook-info")
    s.add_argument("action", choices=["set-webhook", "webhook-info"])
    s.add_argument("--insecure", action="store_true", help=argparse.SUPPRESS)  # tests: http://
    s.set_defaults(func=cmd_telegram)

    s = sub.add_parser("check", help="validate rules.toml and every template")
    rules_arg(s)
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("preview", help="say what the bot would answer to TEXT")
    rules_arg(s)
    s.add_argument("--channel", default="web", choices=list(CHANNELS))
    s.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="WHEN",
        help="ISO 8601; local time when it has no offset; may be repeated",
    )
    s.add_argument("--json", action="store_true", help="one JSON object a line")
    s.add_argument(
        "--typical",
        metavar="TIME",
        help='as if replies had lately taken this long ("3 working hours"), to read typical_reply',
    )
    s.add_argument("text", metavar="TEXT")
    s.set_defaults(func=cmd_preview)

    s = sub.add_parser("bio", help="print the one-line profile text for each channel")
    rules_arg(s)
    s.add_argument("--channel", choices=list(CHANNELS))
    s.set_defaults(func=cmd_bio)

    s = sub.add_parser("queue", help="list open messages, the most overdue first")
    rules_arg(s)
    s.add_argument("--json", action="store_true")
    s.add_argument("--all", action="store_true", help="include messages marked done")
    s.set_defaults(func=cmd_queue)

    for name, text in (
        ("export", "print everything held about one person, as JSON (subject access request)"),
        ("erase", "erase one person's messages and what is remembered about them"),
    ):
        s = sub.add_parser(name, help=text)
        rules_arg(s)
        s.add_argument("--channel", required=True, choices=list(CHANNELS))
        s.add_argument("--sender", required=True, help="their address, handle or id")
        if name == "erase":
            s.add_argument("--yes", action="store_true", help="really erase: it cannot be undone")
        s.set_defaults(func=cmd_personal)

    s = sub.add_parser("outbox", help="replies waiting to be sent, and dead letters")
    rules_arg(s)
    s.add_argument("--dead", action="store_true", help="only the dead letters")
    s.add_argument("--json", action="store_true")
    s.add_argument("--retry", type=int, metavar="ID", help="send a dead letter again")
    s.set_defaults(func=cmd_outbox)

    s = sub.add_parser("done", help="mark a message done")
    s.add_argument("reference")
    s.add_argument("--by", required=True, help="who dealt with it")
    s.set_defaults(func=cmd_update)
    s = sub.add_parser("reopen", help="reopen a message marked done")
    s.add_argument("reference")
    s.set_defaults(func=cmd_update)
    s = sub.add_parser("replied", help="record that a person replied (outside Holding Reply)")
    rules_arg(s)
    s.add_argument("reference")
    s.add_argument("--by", required=True)
    s.add_argument("--text", help="what was said (optional)")
    s.add_argument(
        "--at",
        metavar="WHEN",
        help="when, ISO 8601; local time when it has no offset (default: now)",
    )
    s.set_defaults(func=cmd_update)

    s = sub.add_parser("report", help="figures for a date range, as JSON, CSV or HTML")
    rules_arg(s)
    s.add_argument(
        "--from", dest="start", required=True, metavar="DATE", help="first day (YYYY-MM-DD)"
    )
    s.add_argument("--to", dest="end", required=True, metavar="DATE", help="first day NOT included")
    s.add_argument("--format", choices=["json", "csv", "html"], default="json")
    s.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser(
        "import-contacts", help="import daily contacts of other channels (CSV: date,channel,count)"
    )
    s.add_argument("file", metavar="FILE.csv")
    s.set_defaults(func=cmd_import_contacts)

    from bot.rules_cli import add_parsers  # rules push/pull/history/restore, close

    add_parsers(sub)

    from bot.announce_cli import add_parser as add_announce
    from bot.profile_cli import add_profile_parser

    add_announce(sub, rules_arg)
    add_profile_parser(sub, rules_arg)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        args = parser().parse_args(["serve", *(argv or [])])
    try:
        return int(args.func(args))
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(
            f"{count} problem{'s' if count != 1 else ''} found; nothing was changed.",
            file=sys.stderr,
        )
        return 1
    except StoreError as exc:
        print(f"database unavailable: {exc}", file=sys.stderr)
        return 3
    except NotFound as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except HoldingReplyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
