"""rules.toml, read into frozen values; every mistake is reported with its file, line and key.

The table `KEYS` below is the one list of what rules.toml may contain. The README documents each
entry, and a test fails when one is missing there.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.bank_holidays import BankHolidays, load_bank_holidays
from bot.durations import (
    ParseError,
    Promise,
    TimeRange,
    parse_duration,
    parse_promise,
    parse_ranges,
)
from bot.errors import Problem, RulesError
from bot.phrases import PhraseSet, phrase_problem
from bot.schedule import Closure, Schedule, SpecialHours
from bot.tomlfile import Key, TomlDocument, read_toml

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CHANNELS = (
    "web", "telegram", "x", "facebook", "instagram", "whatsapp", "email", "mastodon", "bluesky",
)  # fmt: skip
LANGUAGES = ("en", "cy")

# Every key rules.toml accepts, with a one-line description. `<day>` stands for a day name and
# `<name>` for a channel name. The README must mention each of these (tests/test_docs.py).
KEYS: dict[str, str] = {
    "organisation.name": "The organisation's name, as replies say it.",
    "organisation.name_cy": "The organisation's name in Welsh, for Welsh pages and replies.",
    "organisation.timezone": "IANA timezone of the staffed hours, e.g. Europe/London.",
    "organisation.bank_holidays": "Which bank holidays close the desk.",
    "organisation.languages": 'Reply languages, e.g. ["en"] or ["en", "cy"].',
    "organisation.bilingual": "Send every reply in all the languages at once.",
    "organisation.responses": (
        "Folder(s) of your own reply templates, relative to rules.toml; any template not found"
        " there is the one shipped with Holding Reply."
    ),
    "hours.<day>": "Staffed ranges on that day of the week.",
    "closures.from": "First closed date of a closure.",
    "closures.to": "Last closed date of a closure.",
    "closures.reason": "What the closure is called in replies.",
    "closures.reason_cy": "The closure's name in Welsh replies (optional).",
    "closures.message": "One more sentence the closure's replies add (optional).",
    "special_hours.date": "The date with different hours.",
    "special_hours.hours": "That date's ranges, or closed.",
    "special_hours.reason": "Why that date is different (optional).",
    "promise.first_reply": "How soon a person replies, in working time.",
    "acknowledgement.cooldown": "At most one acknowledgement per sender per channel in this time.",
    "data.keep_messages": "How long message text and senders' identities are kept.",
    "channels.<name>.enabled": "Whether the channel is switched on.",
    "channels.<name>.hours": "The channel's own staffed hours (a table of days).",
    "channels.<name>.bank_holidays": "The channel's own bank holidays.",
    "channels.<name>.promise": "The channel's own first-reply promise.",
    "channels.<name>.template": (
        "WhatsApp only: the approved template the inbox can send after the 24-hour window."
    ),
    "channels.<name>.template_language": 'That template\'s language code, e.g. "en_GB".',
    "emergency.name": "The emergency category's name.",
    "emergency.phrases": "Phrases that mean this emergency.",
    "emergency.unless": "Phrases that cancel a match (optional).",
    "emergency.response": "The template that answers it.",
    "redirect.name": "The redirect's name.",
    "redirect.phrases": "Phrases that mean it.",
    "redirect.unless": "Phrases that cancel a match (optional).",
    "redirect.response": "The template that answers it.",
    "team.name": "The team's name.",
    "team.phrases": "Phrases that route a message to the team.",
    "team.unless": "Phrases that cancel a match (optional).",
    "team.promise": "The team's own first-reply promise (optional).",
    "team.hours": "The team's own staffed hours (optional table of days).",
    "team.response": "The team's own acknowledgement template (optional).",
    "team.alerts": 'Where the team\'s alerts go (optional): routes such as "email:...".',
    "alerts.emergency": "Where emergencies go at once: the team on duty's routes.",
    "alerts.default": "Where alerts go for messages with no team, or a team with no routes.",
    "alerts.batch": "A team's new messages are collected this long into one alert.",
    "alerts.before_breach": "Warn this long before a reply falls due and none has been sent.",
    "alerts.excerpt": "How many characters of each message an alert quotes (0: none).",
    "announcements.approval": "An announcement is published only once a second admin approves it.",
    "announcements.notice_before": (
        "How far ahead of a closure, bank holiday or special hours its notice is drafted, in"
        ' working days: "2 working days".'
    ),
    "announcements.late_limit": (
        "A post the server could not publish on time is published late up to this long after; "
        "later it is marked missed and the team is alerted."
    ),
    "costs.face_to_face": "Cost of one face-to-face contact, in pounds (reports).",
    "costs.phone": "Cost of one telephone contact, in pounds (reports).",
    "costs.online": "Cost of one online contact, in pounds: social channels count as online.",
    "costs.<name>": "Cost of one contact on another imported channel, e.g. costs.email.",
    "costs.source": "Where the cost figures come from, as the report names it.",
}

# Where an alert can go: `kind:target` in a list of routes.
ROUTE_KINDS = ("email", "telegram", "slack", "teams")
ROUTE_HELP = (
    'expected routes such as "email:waste@anytown.gov.uk", "telegram:-1001234567890", '
    '"slack:WASTE" or "teams:WASTE"'
)
_EMAIL = re.compile(r"[^@\s:]+@[^@\s:]+\.[^@\s:]+")
_CHAT = re.compile(r"-?[0-9]{1,20}")
_WEBHOOK_NAME = re.compile(r"[A-Z0-9_]{1,64}")
MAX_EXCERPT = 500


@dataclass(frozen=True, slots=True)
class Route:
    """Where one alert goes: `email:<address>`, `telegram:<chat id>`, `slack:<NAME>` or
    `teams:<NAME>`; a webhook's URL is a secret, kept in SLACK_WEBHOOK_<NAME> or
    TEAMS_WEBHOOK_<NAME>, never in rules.toml."""

    kind: str
    target: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"

    @property
    def variable(self) -> str | None:
        """The environment variable holding a webhook's URL (None for email and Telegram)."""
        if self.kind in ("slack", "teams"):
            return f"{self.kind.upper()}_WEBHOOK_{self.target}"
        return None


@dataclass(frozen=True, slots=True)
class AlertRules:
    """The [alerts] table: emergency and default routes, and when team alerts go."""

    emergency: tuple[Route, ...] = ()
    default: tuple[Route, ...] = ()
    batch: timedelta = timedelta(minutes=5)
    before_breach: timedelta = timedelta(hours=1)
    excerpt: int = 0


@dataclass(frozen=True, slots=True)
class AnnouncementRules:
    """The [announcements] table: approval by a second admin, and how late is too late."""

    approval: bool = False
    late_limit: timedelta = timedelta(hours=2)
    notice_before: int = 2  # working days; 0: no notices are drafted from the calendar


SOCITM = (
    "Socitm (Society of IT Management), cost per contact figures often quoted in UK local "
    "government channel-shift business cases"
)
_CONTACT_CHANNEL = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True, slots=True)
class Costs:
    """The [costs] table: pounds per contact on each channel, and where the figures come from.

    Social channels (web, Telegram, X, Mastodon, Bluesky) are priced as `online`, unless given
    their own figure."""

    unit: Mapping[str, float] = field(
        default_factory=lambda: {"face_to_face": 8.62, "phone": 2.83, "online": 0.15}
    )
    source: str = SOCITM

    def of(self, channel: str) -> float | None:
        if channel in self.unit:
            return self.unit[channel]
        # Imported email (other mailboxes) has no price unless [costs] email gives one: the
        # Socitm "online" figure is for web self-service, not mail a person answers.
        social = channel in CHANNELS and channel != "email"
        return self.unit.get("online") if social else None


@dataclass(frozen=True, slots=True)
class Category:
    """An [[emergency]], [[redirect]] or [[team]] entry, with its phrases compiled."""

    name: str
    phrases: PhraseSet
    response: str | None
    promise: Promise | None = None
    hours: tuple[tuple[TimeRange, ...], ...] | None = None
    alerts: tuple[Route, ...] = ()  # a team's alert routes


@dataclass(frozen=True, slots=True)
class ChannelRules:
    name: str
    enabled: bool = True
    hours: tuple[tuple[TimeRange, ...], ...] | None = None
    bank_holidays: str | None = None
    promise: Promise | None = None
    # WhatsApp only: the approved message template sent after the 24-hour customer service
    # window, by its name in WhatsApp Manager, and its language code there.
    template: str | None = None
    template_language: str = "en_GB"


@dataclass(frozen=True)
class Rules:
    """The whole of rules.toml, checked. Build schedules with `schedule_for`."""

    path: Path
    name: str
    timezone: ZoneInfo
    bank_holidays: str
    languages: tuple[str, ...]
    bilingual: bool
    response_dirs: tuple[Path, ...]
    hours: tuple[tuple[TimeRange, ...], ...]
    closures: tuple[Closure, ...]
    special_hours: Mapping[date, SpecialHours]
    promise: Promise
    cooldown: timedelta
    keep_messages: timedelta  # text and identities of done messages older than this are purged
    channels: Mapping[str, ChannelRules]
    emergencies: tuple[Category, ...]
    redirects: tuple[Category, ...]
    teams: tuple[Category, ...]
    alerts: AlertRules = AlertRules()
    costs: Costs = Costs()
    announcements: AnnouncementRules = AnnouncementRules()
    name_cy: str | None = None  # the name on Welsh pages and in Welsh replies
    _schedules: dict[tuple[str | None, str | None], Schedule] = field(
        default_factory=dict, compare=False, repr=False
    )
    _calendars: dict[str, BankHolidays] = field(default_factory=dict, compare=False, repr=False)

    def calendar(self, spec: str) -> BankHolidays:
        if spec not in self._calendars:
            self._calendars[spec] = load_bank_holidays(spec)
        return self._calendars[spec]

    def name_in(self, language: str) -> str:
        """The organisation's name as a page or reply in `language` says it."""
        return self.name_cy if language == "cy" and self.name_cy else self.name

    def channel(self, name: str) -> ChannelRules:
        return self.channels.get(name) or ChannelRules(name)

    def team(self, name: str | None) -> Category | None:
        return next((t for t in self.teams if t.name == name), None)

    def schedule_for(self, channel: str, team: str | None = None) -> Schedule:
        """Hours: the team's, else the channel's, else the organisation's."""
        key = (channel, team)
        cached = self._schedules.get(key)
        if cached is not None:
            return cached
        chan = self.channel(channel)
        found = self.team(team)
        hours = (found.hours if found else None) or chan.hours or self.hours
        schedule = Schedule(
            self.timezone,
            hours,
            self.calendar(chan.bank_holidays or self.bank_holidays),
            self.closures,
            self.special_hours,
        )
        self._schedules[key] = schedule
        return schedule

    def alert_routes(self) -> set[Route]:
        """Every route rules.toml names, to check at start that each can be used."""
        found = {*self.alerts.emergency, *self.alerts.default}
        for team in self.teams:
            found.update(team.alerts)
        return found

    def promise_for(self, channel: str, team: str | None = None) -> Promise:
        """Precedence: team, then channel, then organisation."""
        found = self.team(team)
        return (found.promise if found else None) or self.channel(channel).promise or self.promise


class _Reader:
    """Walks the TOML data, collecting every problem instead of stopping at the first."""

    def __init__(self, doc: TomlDocument) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def fail(self, key: Key, message: str) -> None:
        self.problems.append(self.doc.problem(key, message))

    def table(self, key: Key, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"expected a table ([{'.'.join(map(str, key))}]), got {value!r}")
            return {}
        for name in value:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
                hint = (
                    f'; did you mean "{close[0]}"?' if close else f"; allowed: {', '.join(allowed)}"
                )
                self.fail((*key, name), f"unknown key {name!r}{hint}")
        return value

    def text(self, key: Key, value: Any, *, required: bool = True) -> str | None:
        if value is None:
            if required:
                self.fail(key, "missing; this key is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(key, f"expected text in quotes, got {value!r}")
            return None
        return value

    def boolean(self, key: Key, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false (no quotes), got {value!r}")
            return default
        return value

    def day(self, key: Key, value: Any) -> date | None:
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(key, f'expected a date written "YYYY-MM-DD", got {value!r}')
        return None

    def parsed(self, key: Key, value: Any, parse: Any, default: Any = None) -> Any:
        text = self.text(key, value, required=default is None)
        if text is None:
            return default
        try:
            return parse(text)
        except ParseError as exc:
            self.fail(key, str(exc))
            return default

    def weekly(self, key: Key, value: Any) -> tuple[tuple[TimeRange, ...], ...]:
        days = self.table(key, value, DAYS)
        return tuple(
            self.parsed((*key, d), days[d], parse_ranges, ()) if d in days else () for d in DAYS
        )

    def phrases(self, key: Key, value: Any, *, required: bool) -> tuple[str, ...]:
        if value is None and not required:
            return ()
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            self.fail(
                key,
                f'expected a list of phrases in quotes, e.g. ["bin", "recycling"], got {value!r}',
            )
            return ()
        for index, phrase in enumerate(value):
            problem = phrase_problem(phrase)
            if problem:
                self.fail((*key, index), f"{phrase!r}: {problem}")
        return tuple(value)

    def holidays(self, key: Key, value: Any) -> str | None:
        spec = self.text(key, value, required=False)
        if spec is None:
            return None
        try:
            load_bank_holidays(spec)
        except ValueError as exc:
            self.fail(key, str(exc))
            return None
        return spec

    def routes(self, key: Key, value: Any) -> tuple[Route, ...]:
        """A list of alert routes, each `kind:target`, checked one by one."""
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"{ROUTE_HELP}, in a list in square brackets; got {value!r}")
            return ()
        out: list[Route] = []
        for index, text in enumerate(value):
            route = self.route((*key, index), text.strip())
            if route is not None and route in out:
                self.fail((*key, index), f"{text!r} is listed twice")
            elif route is not None:
                out.append(route)
        return tuple(out)

    def route(self, key: Key, text: str) -> Route | None:
        kind, colon, target = text.partition(":")
        kind, target = kind.strip().lower(), target.strip()
        if not colon:
            hint = f'; did you mean "email:{text}"?' if _EMAIL.fullmatch(text) else ""
            self.fail(key, f"{text!r} does not say where it goes; {ROUTE_HELP}{hint}")
            return None
        if kind not in ROUTE_KINDS:
            close = difflib.get_close_matches(kind, ROUTE_KINDS, n=1, cutoff=0.6)
            hint = f'did you mean "{close[0]}:{target}"?' if close else ROUTE_HELP
            self.fail(key, f"{text!r}: unknown kind of route {kind!r}; {hint}")
            return None
        if kind == "email" and not _EMAIL.fullmatch(target):
            self.fail(key, f"{text!r}: {target!r} is not an email address")
            return None
        if kind == "telegram" and not _CHAT.fullmatch(target):
            self.fail(
                key,
                f"{text!r}: expected a Telegram chat id, a number such as -1001234567890 "
                "(a group's id starts with -)",
            )
            return None
        if kind in ("slack", "teams") and not _WEBHOOK_NAME.fullmatch(target):
            name = re.sub(r"[^A-Z0-9_]", "_", target.upper())
            hint = f'; did you mean "{kind}:{name}"?' if name.strip("_") else ""
            self.fail(
                key,
                f"{text!r}: after {kind}: comes a name in capital letters, digits and _, "
                f"such as {kind}:WASTE; the webhook's address then goes in the environment "
                f"variable {kind.upper()}_WEBHOOK_WASTE, never in this file{hint}",
            )
            return None
        return Route(kind, target)


def load_rules(path: str | os.PathLike[str]) -> Rules:
    """Read and check rules.toml; raise RulesError listing every problem found."""
    doc = read_toml(Path(path))
    r = _Reader(doc)
    data = r.table(
        (),
        doc.data,
        (
            "organisation",
            "hours",
            "closures",
            "special_hours",
            "promise",
            "acknowledgement",
            "data",
            "channels",
            "emergency",
            "redirect",
            "team",
            "alerts",
            "costs",
            "announcements",
        ),
    )

    org = r.table(
        ("organisation",),
        data.get("organisation", {}),
        (
            "name",
            "name_cy",
            "timezone",
            "bank_holidays",
            "languages",
            "bilingual",
            "responses",
        ),
    )
    name = r.text(("organisation", "name"), org.get("name")) or "?"
    name_cy = r.text(("organisation", "name_cy"), org.get("name_cy"), required=False)
    timezone = ZoneInfo("UTC")
    tz_name = r.text(("organisation", "timezone"), org.get("timezone", "Europe/London"))
    if tz_name:
        try:
            timezone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            r.fail(
                ("organisation", "timezone"),
                f'{tz_name!r} is not a timezone; expected an IANA name such as "Europe/London"',
            )
    bank = r.holidays(
        ("organisation", "bank_holidays"), org.get("bank_holidays", "england-and-wales")
    )
    languages = org.get("languages", ["en"])
    if not (isinstance(languages, list) and languages and all(x in LANGUAGES for x in languages)):
        r.fail(
            ("organisation", "languages"),
            f"expected a list of language codes from {list(LANGUAGES)}, "
            f'e.g. ["en"], got {languages!r}',
        )
        languages = ["en"]
    bilingual = r.boolean(("organisation", "bilingual"), org.get("bilingual"), False)
    if bilingual and len(languages) < 2:
        r.fail(("organisation", "bilingual"), 'needs two languages, e.g. languages = ["en", "cy"]')
    # The default folder may be missing (the shipped templates are used); one named in the
    # file must exist, so that a typo in its name is not silently ignored.
    dirs = org.get("responses", "responses")
    named = "responses" in org
    if isinstance(dirs, str):
        dirs = [dirs]
    if not (isinstance(dirs, list) and dirs and all(isinstance(d, str) for d in dirs)):
        r.fail(
            ("organisation", "responses"), f"expected a folder name or a list of them, got {dirs!r}"
        )
        dirs = ["responses"]
    response_dirs = tuple((doc.path.parent / d).resolve() for d in dirs)
    for d, resolved in zip(dirs, response_dirs, strict=True):
        if named and not resolved.is_dir():
            r.fail(("organisation", "responses"), f"folder {d!r} not found (looked for {resolved})")

    hours = r.weekly(("hours",), data.get("hours", {}))

    closures: list[Closure] = []
    for i, item in enumerate(_array(r, ("closures",), data.get("closures", []))):
        c = r.table(("closures", i), item, ("from", "to", "reason", "reason_cy", "message"))
        start = r.day(("closures", i, "from"), c.get("from"))
        end = r.day(("closures", i, "to"), c.get("to", c.get("from")))
        reason = r.text(("closures", i, "reason"), c.get("reason"))
        reason_cy = r.text(("closures", i, "reason_cy"), c.get("reason_cy"), required=False)
        message = r.text(("closures", i, "message"), c.get("message"), required=False)
        if start and end and end < start:
            r.fail(("closures", i, "to"), f"{end} is before from = {start}; both ends are included")
        if start and end and reason:
            closures.append(Closure(start, end, reason, reason_cy, message))

    special: dict[date, SpecialHours] = {}
    for i, item in enumerate(_array(r, ("special_hours",), data.get("special_hours", []))):
        s = r.table(("special_hours", i), item, ("date", "hours", "reason"))
        day = r.day(("special_hours", i, "date"), s.get("date"))
        ranges = r.parsed(("special_hours", i, "hours"), s.get("hours"), parse_ranges)
        reason = r.text(("special_hours", i, "reason"), s.get("reason"), required=False)
        if day in special:
            r.fail(("special_hours", i, "date"), f"{day} is listed twice")
        if day is not None and ranges is not None:
            special[day] = SpecialHours(day, ranges, reason)

    promise_table = r.table(("promise",), data.get("promise", {}), ("first_reply",))
    promise = r.parsed(
        ("promise", "first_reply"),
        promise_table.get("first_reply", "4 working hours"),
        parse_promise,
    )
    ack = r.table(("acknowledgement",), data.get("acknowledgement", {}), ("cooldown",))
    cooldown = r.parsed(
        ("acknowledgement", "cooldown"), ack.get("cooldown", "12 hours"), parse_duration
    )

    kept = r.table(("data",), data.get("data", {}), ("keep_messages",))
    keep_messages = r.parsed(
        ("data", "keep_messages"), kept.get("keep_messages", "90 days"), parse_duration
    )
    if keep_messages < timedelta(days=1):
        r.fail(
            ("data", "keep_messages"),
            f'{kept.get("keep_messages")!r} is too short: keep messages for at least "1 day", '
            "so the team can answer them",
        )

    channels: dict[str, ChannelRules] = {}
    for cname, value in r.table(("channels",), data.get("channels", {"web": {}}), CHANNELS).items():
        if cname not in CHANNELS:
            continue
        key: Key = ("channels", cname)
        ch = r.table(
            key,
            value,
            ("enabled", "hours", "bank_holidays", "promise", "template", "template_language"),
        )
        if cname != "whatsapp":
            for only in ("template", "template_language"):
                if only in ch:
                    r.fail((*key, only), "only [channels.whatsapp] has message templates")
        channels[cname] = ChannelRules(
            cname,
            r.boolean((*key, "enabled"), ch.get("enabled"), True),
            r.weekly((*key, "hours"), ch["hours"]) if "hours" in ch else None,
            r.holidays((*key, "bank_holidays"), ch.get("bank_holidays")),
            r.parsed((*key, "promise"), ch.get("promise"), parse_promise, False) or None,
            r.text((*key, "template"), ch.get("template"), required=False) or None,
            r.text((*key, "template_language"), ch.get("template_language"), required=False)
            or "en_GB",
        )

    emergencies = _categories(r, "emergency", data, team=False)
    redirects = _categories(r, "redirect", data, team=False)
    teams = _categories(r, "team", data, team=True)
    alerts = _alerts(r, data.get("alerts", {}))
    costs = _costs(r, data.get("costs", {}))
    announce = r.table(
        ("announcements",), data.get("announcements", {}), ("approval", "late_limit")
    )
    announcements = AnnouncementRules(
        r.boolean(("announcements", "approval"), announce.get("approval"), False),
        r.parsed(
            ("announcements", "late_limit"),
            announce.get("late_limit"),
            parse_duration,
            AnnouncementRules().late_limit,
        ),
        r.parsed(
            ("announcements", "notice_before"),
            announce.get("notice_before"),
            _working_days,
            AnnouncementRules().notice_before,
        ),
    )

    if r.problems:
        raise RulesError(r.problems)
    return Rules(
        path=doc.path,
        name=name,
        timezone=timezone,
        bank_holidays=bank or "england-and-wales",
        languages=tuple(languages),
        bilingual=bilingual,
        response_dirs=response_dirs,
        hours=hours,
        closures=tuple(closures),
        special_hours=special,
        promise=promise,
        cooldown=cooldown,
        keep_messages=keep_messages,
        channels=channels,
        emergencies=emergencies,
        redirects=redirects,
        teams=teams,
        alerts=alerts,
        name_cy=(name_cy or "").strip() or None,
        costs=costs,
        announcements=announcements,
    )


def _working_days(text: str) -> int:
    found = re.fullmatch(r"\s*(\d{1,2})\s+working\s+days?\s*", text)
    if found is None:
        raise ParseError(
            f'{text!r} is not a number of working days; write it as "2 working days" '
            '("0 working days": draft no notices)'
        )
    return int(found[1])


def _costs(r: _Reader, value: Any) -> Costs:
    """Any channel name may be a key, so unknown keys are checked for shape, not listed."""
    if not isinstance(value, dict):
        r.fail(("costs",), f"expected a table ([costs]), got {value!r}")
        return Costs()
    unit = dict(Costs().unit)
    source = SOCITM
    for name, amount in value.items():
        key: Key = ("costs", name)
        if name == "source":
            source = r.text(key, amount) or SOCITM
            continue
        if not _CONTACT_CHANNEL.fullmatch(name):
            close = difflib.get_close_matches(name, [*unit, "source"], n=1, cutoff=0.6)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            r.fail(
                key,
                f"{name!r} is not a channel name: use lower-case letters, digits and _, "
                f"such as face_to_face, phone, online or email{hint}",
            )
            continue
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            r.fail(
                key,
                f"expected the cost of one contact in pounds, a number without quotes or a £ "
                f"sign such as 2.83, got {amount!r}",
            )
            continue
        unit[name] = float(amount)
    return Costs(unit, source)


def _alerts(r: _Reader, value: Any) -> AlertRules:
    allowed = ("emergency", "default", "batch", "before_breach", "excerpt")
    a = r.table(("alerts",), value, allowed)
    defaults = AlertRules()
    excerpt = a.get("excerpt", defaults.excerpt)
    if isinstance(excerpt, bool) or not isinstance(excerpt, int) or not 0 <= excerpt <= MAX_EXCERPT:
        r.fail(
            ("alerts", "excerpt"),
            f"expected a number of characters from 0 (quote nothing) to {MAX_EXCERPT}, "
            f"without quotes, got {excerpt!r}",
        )
        excerpt = defaults.excerpt
    return AlertRules(
        emergency=r.routes(("alerts", "emergency"), a.get("emergency")),
        default=r.routes(("alerts", "default"), a.get("default")),
        batch=r.parsed(("alerts", "batch"), a.get("batch"), parse_duration, defaults.batch),
        before_breach=r.parsed(
            ("alerts", "before_breach"),
            a.get("before_breach"),
            parse_duration,
            defaults.before_breach,
        ),
        excerpt=excerpt,
    )


def _array(r: _Reader, key: Key, value: Any) -> list[Any]:
    if not isinstance(value, list):
        r.fail(key, f"expected one or more [[{key[0]}]] tables, got {value!r}")
        return []
    return value


def _categories(
    r: _Reader, kind: str, data: Mapping[str, Any], *, team: bool
) -> tuple[Category, ...]:
    allowed = (
        ("name", "phrases", "unless", "promise", "hours", "response", "alerts")
        if team
        else ("name", "phrases", "unless", "response")
    )
    out: list[Category] = []
    names: set[str] = set()
    for i, item in enumerate(_array(r, (kind,), data.get(kind, []))):
        key: Key = (kind, i)
        t = r.table(key, item, allowed)
        name = r.text((*key, "name"), t.get("name"))
        if name and name in names:
            r.fail((*key, "name"), f"{name!r} is used by another [[{kind}]]; names must differ")
        names.add(name or "")
        phrases = r.phrases((*key, "phrases"), t.get("phrases"), required=True)
        unless = r.phrases((*key, "unless"), t.get("unless"), required=False)
        response = r.text((*key, "response"), t.get("response"), required=not team)
        promise = r.parsed((*key, "promise"), t.get("promise"), parse_promise, False) or None
        hours = r.weekly((*key, "hours"), t["hours"]) if "hours" in t else None
        routes = r.routes((*key, "alerts"), t.get("alerts"))
        if name:
            matcher = PhraseSet(phrases, unless, emergency=kind == "emergency")
            out.append(Category(name, matcher, response, promise, hours, routes))
    return tuple(out)
