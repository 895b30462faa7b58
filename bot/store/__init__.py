"""The store: one narrow interface for the queue of messages, and open_store to pick a database.

SQLite is for laptops and single servers; a PostgreSQL implementation of the same Protocol follows.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from bot.announcement import Announcement, LogEntry, NewAnnouncement, Post, Suspension
from bot.errors import HoldingReplyError
from bot.models import (
    Decision,
    Delivery,
    Ingested,
    Message,
    Note,
    Outgoing,
    PersonalData,
    QueueItem,
    SenderState,
    StoredReply,
    User,
)

__all__ = [
    "Contact",
    "Figures",
    "NotFound",
    "ReportData",
    "RulesVersion",
    "Stale",
    "Store",
    "open_store",
    "redact",
]


class NotFound(HoldingReplyError):
    """No message has this reference."""

    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(f"No message has the reference {reference!r}.")


class Stale(HoldingReplyError):
    """A save was based on a version that is no longer the newest: someone else saved first."""

    def __init__(self, based_on: int, latest: int) -> None:
        self.based_on = based_on
        self.latest = latest
        super().__init__(
            f"The rules changed since you opened them (you started from version {based_on}; "
            f"version {latest} has been saved since). Nothing was saved."
        )


@dataclass(frozen=True, slots=True)
class RulesVersion:
    """The whole text of rules.toml and of every template at one moment, and who saved it.

    `files` maps a path relative to rules.toml's folder ("rules.toml", "responses/en/bio.txt")
    to its text. Versions are numbered 1, 2, 3... and never change; the newest is in force."""

    id: int
    files: Mapping[str, str]
    author: str
    note: str
    source: str  # "file", "browser", "restore" or "closure"
    created_at: datetime


def rules_version_from_row(row: Any, created_at: datetime) -> RulesVersion:
    """A row of queries.RULES_* as a RulesVersion (each store reads created_at its own way)."""
    files = json.loads(row[1])
    return RulesVersion(int(row[0]), files, row[2], row[3], row[4], created_at)


def files_json(files: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(files.items())), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Contact:
    """How many contacts one other channel (phone, face_to_face, email...) had on one local date."""

    day: date
    channel: str
    count: int


@dataclass(frozen=True, slots=True)
class Figures:
    """What the database counted for one group of messages received in a report's range."""

    group: str  # "all", a channel, or a team ("default": messages no team claimed)
    messages: int = 0
    out_of_hours: int = 0  # arrived when nobody was at the desk (staffed false)
    emergencies: int = 0  # certain ones; possible emergencies are counted apart
    redirects: int = 0
    auto_replies: int = 0  # replies sent in the range, whenever their message arrived
    human_replies: int = 0
    answered: int = 0  # has a first human reply
    with_promise: int = 0  # has a reply_by
    promises_kept: int = 0  # first human reply at or before reply_by
    possible_emergencies: int = 0  # answered and alerted as emergencies, not certainly ones
    median_seconds: float | None = None  # first human reply, clock time (percentile_cont)
    p90_seconds: float | None = None


@dataclass(frozen=True)
class ReportData:
    """Everything a report needs from the store, for [start, end) in one time zone."""

    overall: Figures
    by_channel: list[Figures]
    by_team: list[Figures]
    hours: dict[tuple[int, int], int]  # (local weekday, 0 is Monday; local hour) -> messages
    open_at_start: int  # open items at the start of the range
    days: dict[date, tuple[int, int]]  # local date -> (messages received, marked done)
    # (channel, team) -> received_at and first_human_reply_at of its answered messages, as
    # seconds since 1970, alternating: working time needs the calendar, so it is computed
    # outside the database, from these pairs only.
    first_replies: dict[tuple[str, str | None], array[float]] = field(default_factory=dict)
    contacts: list[Contact] = field(default_factory=list)


class AnnouncementStore(Protocol):
    """Announcements: written, approved, claimed once per channel, and every change logged."""

    async def add_announcement(self, new: NewAnnouncement, at: datetime) -> int:
        """Store it with one post per channel, in `new.state`; return its id."""
        ...

    async def add_announcements(self, news: Sequence[NewAnnouncement], at: datetime) -> list[int]:
        """Store them all in one transaction, or none (a CSV import); return their ids."""
        ...

    async def announcement(self, aid: int) -> Announcement | None: ...

    async def notice_announcement(self, notice: str) -> Announcement | None:
        """The notice drafted from the calendar for `notice` (a closure's key), if any."""
        ...

    async def announcements(self, since: datetime, limit: int = 200) -> list[Announcement]:
        """Those due since `since`, soonest first, with their posts."""
        ...

    async def announcement_log(self, aid: int) -> list[LogEntry]: ...

    async def approve_announcement(self, aid: int, by: str, at: datetime) -> bool:
        """Approve (posts waiting for approval become scheduled), unless `by` wrote it or it is
        approved already. Whether `by` is an admin is the caller's to check."""
        ...

    async def cancel_announcement(self, aid: int, by: str, at: datetime) -> list[str]:
        """Cancel every post not published or publishing; return their channels."""
        ...

    async def republish_announcement(self, aid: int, by: str, at: datetime) -> list[str]:
        """Held, missed, unknown and failed posts are due again at `at`; return their channels."""
        ...

    async def suspension(self) -> Suspension | None: ...

    async def suspend_announcements(self, reason: str, by: str, at: datetime) -> bool:
        """Hold every post organisation-wide; False when already suspended."""
        ...

    async def resume_announcements(self, by: str, at: datetime) -> int:
        """End the suspension; what fell due meanwhile is held for a person. Return how many."""
        ...

    async def claim_posts(
        self, holder: str, at: datetime, lease: timedelta, late: timedelta, limit: int = 5
    ) -> list[Post]:
        """Mark due posts (not older than `late`) "publishing" for `holder`, and commit."""
        ...

    async def check_posts(
        self, holder: str, at: datetime, lease: timedelta, channel: str, limit: int = 5
    ) -> list[Post]:
        """Posts on `channel` whose holder's lease ran out while publishing, taken by `holder`
        for `lease` to look for them on the account; still "publishing", `checks` counted.
        Asked every round for every such channel: with none lapsed it writes nothing."""
        ...

    async def lapsed_posts(self, at: datetime) -> list[Post]:
        """Posts whose holder's lease ran out while publishing become "unknown"; returned."""
        ...

    async def missed_posts(self, at: datetime, late: timedelta) -> list[Post]:
        """Scheduled posts due longer ago than `late` become "missed"; returned."""
        ...

    async def post_published(
        self,
        post: Post,
        holder: str,
        at: datetime,
        platform_id: str | None,
        link: str | None,
        how: str | None = None,
    ) -> bool:
        """Published, by `holder`'s call or, when `how` says how (in the log), found on the
        account by a check (`found_by_check`)."""
        ...

    async def post_check_failed(
        self, post: Post, holder: str, error: str, at: datetime, then: datetime
    ) -> bool:
        """The account could not be looked at: still "publishing", looked at again at `then`."""
        ...

    async def post_unknown(self, post: Post, holder: str, error: str, at: datetime) -> bool:
        """The account could not be looked at, time after time: "unknown", for a person."""
        ...

    async def post_failed(self, post: Post, holder: str, error: str, at: datetime) -> bool: ...

    async def post_retry(
        self, post: Post, holder: str, error: str, at: datetime, then: datetime
    ) -> bool: ...


class Store(AnnouncementStore, Protocol):
    """Where every message, its decision and its replies are kept.

    Use it as an async context manager: entering opens the database and applies missing
    migrations (or, made with migrate=False, refuses a database that lacks some), leaving
    finishes pending writes and closes it. Datetimes in and out are aware UTC.
    Database failures raise bot.errors.StoreError.
    """

    applied: list[str]  # the migrations that opening applied, by file name
    schema_version: int  # once open

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def ingest(
        self, message: Message, decide: Callable[[SenderState, str], Decision]
    ) -> Ingested:
        """Store a message and its decision in one transaction.

        A message already stored (same channel and platform_id) is returned with
        duplicate=True, and decide is not called. Otherwise decide(sender_state, reference)
        is called inside the transaction; it must be pure and fast, and may run on another
        thread. If it raises, nothing is stored and the exception propagates. When the message
        has a `conversation` and the decision a reply, the reply is put in the outbox in the
        same transaction (emergencies first), for the channel to send.
        """
        ...

    async def get(self, reference: str) -> QueueItem | None: ...

    async def open_items(
        self, include_done: bool = False, limit: int | None = None
    ) -> list[QueueItem]:
        """Most overdue first: emergencies, then reply_by (none last), then received_at.

        With include_done, done items follow the open ones, in the same order.
        """
        ...

    async def mark_done(self, reference: str, by: str, at: datetime) -> QueueItem:
        """Mark an item done; an item already done keeps who did it first and when."""
        ...

    async def reopen(self, reference: str) -> QueueItem: ...

    async def record_human_reply(
        self, reference: str, text: str, by: str, at: datetime
    ) -> QueueItem:
        """Keep a reply a person sent; first_human_reply_at keeps the earliest."""
        ...

    async def counts(self) -> dict[str, int]:
        """{"open": ..., "done": ..., "replies": ...}"""
        ...

    async def set_opted_out(self, channel: str, sender: str, opted_out: bool) -> None:
        """Stop (or restart) automatic replies to one sender; their messages are still queued."""
        ...

    # Data protection (UK GDPR).

    async def purge(self, before: datetime, at: datetime) -> int:
        """Blank the text and sender of done messages received before `before`, and their
        replies' text; forget senders' cooldowns older than that (never an opt-out).
        Returns how many messages were blanked. What the reports count stays."""
        ...

    async def erase(self, channel: str, sender: str, at: datetime) -> int:
        """Blank everything that identifies one sender on one channel, open or done, and forget
        the sender. Returns how many messages were blanked."""
        ...

    async def export(self, channel: str, sender: str) -> PersonalData:
        """Everything held about one sender on one channel."""
        ...

    # Work that must happen once, however many processes share the database.

    async def claim_job(
        self, name: str, holder: str, at: datetime, every: timedelta, lease: timedelta
    ) -> bool:
        """Whether `holder` now runs the job: it is due (last finished at least `every` ago,
        or never) and nobody holds an unexpired lease. The claim is a lease until at + lease;
        a holder that dies loses it then. Call finish_job when done."""
        ...

    async def finish_job(self, name: str, holder: str, at: datetime) -> None: ...

    async def release_jobs(self, holder: str) -> None:
        """Give up every lease `holder` has, jobs and outbox rows (on shutdown), so that another
        process can take the work at once."""
        ...

    # The outbox: replies and alerts to send, each claimed by one sender at a time.

    async def enqueue(self, outgoing: Outgoing, at: datetime) -> Delivery: ...

    async def claim_deliveries(
        self,
        holder: str,
        at: datetime,
        lease: timedelta,
        limit: int = 10,
        skip: Sequence[tuple[str, str | None]] = (),
    ) -> list[Delivery]:
        """Up to `limit` due deliveries, emergencies first, leased to `holder` until at + lease.

        Rows another process holds are skipped, not waited for; rows whose lease ran out (their
        holder died) are due again. Each claim counts as an attempt. `skip` names targets the
        caller is busy with, as (channel, recipient) pairs, or (channel, None) for a whole
        channel: their rows stay where they are, for a later claim."""
        ...

    async def renew_leases(self, holder: str, until: datetime) -> int:
        """Extend every lease `holder` has on the outbox to `until` (it is still sending them);
        return how many rows it holds."""
        ...

    async def delivered(
        self,
        delivery_id: int,
        at: datetime,
        platform_message_id: str | None,
        started_at: datetime | None = None,
    ) -> bool:
        """The platform took the reply at `at`, in a send that began at `started_at`."""
        ...

    async def retry_later(self, delivery_id: int, holder: str, error: str, at: datetime) -> bool:
        """Release the lease and try again at `at`; False if `holder` no longer holds it."""
        ...

    async def not_delivered(self, channel: str, platform_message_id: str, error: str) -> bool:
        """A sent reply the platform later could not deliver becomes a dead letter; False when no
        sent reply has that id."""
        ...

    async def receipt(
        self, channel: str, platform_message_id: str, read: bool, at: datetime
    ) -> int:
        """The platform delivered the sent reply with this id at `at` or, with `read`, the person
        read it (and so every reply sent to them before it). Times only move earlier, and a
        read sets delivered too, so receipts may come late, twice or out of order. Returns how
        many replies learnt something: 0 for an id no sent reply has."""
        ...

    async def receipts_until(
        self, channel: str, recipient: str, until: datetime, read: bool, at: datetime
    ) -> int:
        """As `receipt`, for every reply sent to `recipient` whose send began by `until` (a
        watermark: Meta's time of the latest message it covers)."""
        ...

    async def give_up(self, delivery_id: int, holder: str, error: str) -> bool:
        """A permanent failure: the delivery is dead, for the team to see and act on."""
        ...

    async def revive(self, delivery_id: int, at: datetime) -> bool:
        """Try a dead letter again from `at`, with a fresh set of attempts. False if it was
        not dead."""
        ...

    async def deliveries(self, state: str, limit: int = 100) -> list[Delivery]:
        """Deliveries in one state ("pending", "sent" or "dead"), oldest first."""
        ...

    # Alerts.

    async def unalerted(self, until: datetime) -> list[QueueItem]:
        """Open items received by `until` that no team alert has included yet, oldest first."""
        ...

    async def near_breach(self, until: datetime) -> list[QueueItem]:
        """Open items with no human reply whose reply_by is at or before `until`, and no
        warning sent yet: the ones about to break (or past) their promise."""
        ...

    async def alert(
        self,
        ids: list[int],
        compose: Callable[[list[int]], list[Outgoing]],
        at: datetime,
        *,
        breach: bool = False,
    ) -> list[int]:
        """In one transaction: mark the items not yet alerted (or warned, with breach), then
        put compose(those ids) in the outbox. Returns the ids marked. A crash loses neither the
        mark nor the alert, and two processes never alert the same item."""
        ...

    async def mark_alerted(self, ids: list[int], at: datetime, *, breach: bool = False) -> int:
        """Record that an alert (or, with breach, a warning) included these; returns how many
        were not already marked, so two processes cannot both claim an item."""
        ...

    # The inbox.

    async def inbox(
        self,
        teams: list[str] | None,
        channel: str | None = None,
        status: str = "open",
        limit: int = 200,
    ) -> list[QueueItem]:
        """Items for the given teams (None: every team; "default": items with no team), most
        urgent first; status "open", "done" or "all"."""
        ...

    async def claim(self, reference: str, user_id: int | None) -> QueueItem:
        """Put someone on an item (None: nobody)."""
        ...

    async def reassign(self, reference: str, team: str | None) -> QueueItem:
        """Give an item to another team; nobody is on it any more."""
        ...

    async def add_note(self, reference: str, author: str, text: str, at: datetime) -> None: ...

    async def notes(self, reference: str) -> list[Note]: ...

    async def replies(self, reference: str) -> list[StoredReply]:
        """The automatic reply and every human one, oldest first."""
        ...

    async def history(self, item: QueueItem) -> list[QueueItem]:
        """The sender's other messages on the item's channel, newest first (at most 20)."""
        ...

    async def send_human_reply(self, reference: str, text: str, by: str, at: datetime) -> QueueItem:
        """Record a person's reply and, when the item's channel can take it back, put it in the
        outbox in the same transaction. first_human_reply_at keeps the earliest."""
        ...

    # People and sessions.

    async def add_user(
        self,
        username: str,
        display_name: str,
        role: str,
        password_hash: str,
        teams: Sequence[str],
        at: datetime,
    ) -> User:
        """Raises HoldingReplyError if the username is taken."""
        ...

    async def users(self) -> list[User]: ...

    async def user(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash, for logging in."""
        ...

    async def user_by_id(self, user_id: int) -> User | None: ...

    async def set_password(self, user_id: int, password_hash: str) -> None:
        """Also ends every session of theirs."""
        ...

    async def set_teams(self, user_id: int, teams: Sequence[str]) -> None: ...

    async def disable_user(self, user_id: int, at: datetime) -> bool:
        """Also ends every session of theirs. False if already disabled."""
        ...

    async def start_session(
        self, token_hash: str, user_id: int, csrf: str, at: datetime, expires: datetime
    ) -> None: ...

    async def session(self, token_hash: str, at: datetime) -> tuple[User, str] | None:
        """The user and the session's CSRF token, if the session is live and the user active."""
        ...

    async def end_session(self, token_hash: str) -> None: ...

    async def login_failures(self, key: str, since: datetime) -> int: ...

    async def record_login_failure(self, key: str, at: datetime) -> None: ...

    async def clear_login_failures(self, key: str, before: datetime) -> None:
        """Forget `key`'s failures, and everyone's older than `before`."""
        ...

    # Channels.

    async def get_state(self, channel: str, key: str) -> str | None:
        """A channel's own small state, such as a cursor; None if never set."""
        ...

    async def set_state(self, channel: str, key: str, value: str) -> None: ...

    async def original(self, message_id: int) -> bytes | None:
        """The message as the platform delivered it (Message.original: a raw mail), or None
        when none was kept or it has been purged or erased."""
        ...

    async def edit_text(self, channel: str, platform_id: str, text: str) -> QueueItem | None:
        """A message edited on the platform: the queue shows the new text (nothing is sent).
        None if the message was never stored."""
        ...

    # Reports.

    async def report(self, start: datetime, end: datetime, zone: ZoneInfo) -> ReportData:
        """The figures for messages received in [start, end), counted in the database; local
        dates and hours in `zone`; contacts of the local dates from start's to end's (excluded).
        """
        ...

    async def import_contacts(self, contacts: Sequence[Contact], at: datetime) -> int:
        """Store daily counts of other channels in one transaction; a (day, channel) already
        stored is replaced. Returns how many rows were written."""
        ...

    # Rules and templates, as versions.

    async def latest_rules_version(self) -> int:
        """The newest version's number; 0 when none is stored. Cheap: every process polls it."""
        ...

    async def rules_version(
        self, version: int | None = None, *, source: str | None = None
    ) -> RulesVersion | None:
        """One version; without a number, the newest (of `source`, when given)."""
        ...

    async def rules_versions(self, limit: int = 50) -> list[RulesVersion]:
        """The newest versions first."""
        ...

    async def add_rules_version(
        self,
        files: Mapping[str, str],
        author: str,
        note: str,
        source: str,
        based_on: int,
        at: datetime,
    ) -> RulesVersion:
        """Store version based_on + 1; raise Stale unless based_on is the newest (0: none yet).
        The caller has checked the files: the store keeps what it is given."""
        ...


def collect_figures(
    messages: Sequence[Any], replies: Sequence[Any], percentiles: Sequence[Any]
) -> dict[str, list[Figures]]:
    """Figures for "all", per "channel" and per "team", each list sorted by group.

    messages and replies are the rows of REPORT_MESSAGES and REPORT_REPLIES (channel, team,
    counts...), added up here; percentiles are rows (grouping, group, median, 90th)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}

    def add(channel: str, team: str | None, counts: dict[str, int]) -> None:
        for key in (("all", "all"), ("channel", channel), ("team", team or "default")):
            values = found.setdefault(key, {})
            for name, count in counts.items():
                values[name] = values.get(name, 0) + count

    names = ("messages", "out_of_hours", "emergencies", "redirects", "answered", "with_promise",
             "promises_kept", "possible_emergencies")  # fmt: skip
    for row in messages:
        add(row[0], row[1], {n: int(v or 0) for n, v in zip(names, row[2:10], strict=True)})
    for row in replies:
        add(row[0], row[1], {"auto_replies": int(row[2]), "human_replies": int(row[3])})
    for by, group, median, p90 in percentiles:
        found.setdefault((by, group), {}).update(
            median_seconds=None if median is None else float(median),
            p90_seconds=None if p90 is None else float(p90),
        )
    out: dict[str, list[Figures]] = {"all": [], "channel": [], "team": []}
    for (by, group), values in sorted(found.items()):
        out[by].append(Figures(group, **values))
    return out


_ACCEPTED = (
    "postgres://user:password@host:5432/database, sqlite:///relative/path.sqlite3, "
    "sqlite:////absolute/path.sqlite3 or sqlite://:memory:"
)


def open_store(url: str, *, synchronous: str = "FULL", migrate: bool = True) -> Store:
    """The store a DATABASE_URL names. Nothing is opened until `async with store:`.

    migrate=False: opening refuses a database whose schema is behind, instead of migrating it.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise HoldingReplyError(f"DATABASE_URL has value {url!r}. Expected {_ACCEPTED}.")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return _open_postgres(url, migrate)
    if scheme != "sqlite":
        raise HoldingReplyError(
            f"DATABASE_URL has value {redact(url)!r}: the scheme {scheme!r} is not supported. "
            f"Expected {_ACCEPTED}."
        )
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise HoldingReplyError(
            f"DATABASE_URL has the option {sorted(unknown)[0]!r}, which SQLite does not take here. "
            "The only option is ?synchronous=full (the default) or ?synchronous=normal."
        )
    if "synchronous" in options:
        # normal: faster, and safe when the process crashes, but the last transactions can be
        # lost when the machine loses power. full (the default): a 2xx means it is on disk.
        synchronous = options["synchronous"]
    if rest == ":memory:":
        path = ":memory:"
    elif rest.startswith("/") and rest not in ("/", "//"):
        # sqlite:///a/b is relative, sqlite:////a/b absolute, as in SQLAlchemy.
        path = str(Path(rest[1:]).absolute())
    else:
        raise HoldingReplyError(
            f"DATABASE_URL has value {url!r}: no database file is named. Expected {_ACCEPTED}."
        )
    from bot.store.sqlite import SQLiteStore  # here, so bot.store imports no driver

    return SQLiteStore(path, synchronous=synchronous, migrate=migrate)


def _open_postgres(url: str, migrate: bool) -> Store:
    """Our own options come off the URL; the rest (sslmode, search_path...) go to the driver."""
    base, _, query = url.partition("?")
    options = parse_qsl(query, keep_blank_values=True)
    pool_size = 5
    rest = []
    for key, value in options:
        if key == "pool_size":
            if not value.isdigit() or not 1 <= int(value) <= 100:
                raise HoldingReplyError(
                    f"DATABASE_URL has pool_size={value!r}. Expected a whole number of "
                    "connections from 1 to 100 (the default is 5)."
                )
            pool_size = int(value)
        else:
            rest.append((key, value))
    from bot.store.postgres import PostgresStore  # here, so SQLite users never import asyncpg

    dsn = base + ("?" + urlencode(rest) if rest else "")
    return PostgresStore(dsn, pool_size=pool_size, migrate=migrate)


def redact(url: str) -> str:
    """The URL without a password, so an error message can be logged safely."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"
