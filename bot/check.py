"""Loading rules.toml with its templates, and checking both as `python -m bot check` does."""

from __future__ import annotations

import os
import textwrap
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from bot import catalogue, when
from bot.config import Rules, load_rules
from bot.durations import say_duration
from bot.errors import Problem, RulesError
from bot.phrases import PhraseSet, Prepared, phrase_problem, prepare
from bot.responses import CHANNEL_LIMITS, REQUIRED, VARIABLES, Responses, sample_moments
from bot.schedule import ClosedDay
from bot.triage import NAME_LIMIT, Triage

DEFAULT_RULES = "rules.toml"
LONG_NAME = "Bartholomew Fotheringham-Featherstonehaugh"[:NAME_LIMIT]
LONG_HOLIDAY = "Bank holiday for the coronation of King Charles III"


def rules_path(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("RULES_FILE") or DEFAULT_RULES)


def load(path: str | os.PathLike[str]) -> Triage:
    """Rules plus templates, checked together; raises RulesError with every problem."""
    rules = load_rules(path)
    responses = Responses(rules.response_dirs, rules.timezone)
    triage = Triage(rules, responses)
    problems = check_templates(triage)
    if problems:
        raise RulesError(problems)
    return triage


def needed_templates(rules: Rules) -> dict[str, str]:
    """Template name → the rules.toml key that needs it."""
    needed = {name: "(always needed)" for name in REQUIRED}
    for kind, categories in (
        ("emergency", rules.emergencies),
        ("redirect", rules.redirects),
        ("team", rules.teams),
    ):
        for i, category in enumerate(categories, start=1):
            if category.response:
                needed.setdefault(category.response, f"{kind}[{i}].response")
    return needed


def check_templates(triage: Triage) -> list[Problem]:
    rules, responses = triage.rules, triage.responses
    problems: list[Problem] = []
    first_dir = responses.dirs[0]
    for language in rules.languages:
        present = responses.names(language)
        for name, needed_by in needed_templates(rules).items():
            if name not in present:
                path = first_dir / language / f"{name}.txt"
                problems.append(Problem(str(path), "", f"template missing; needed by {needed_by}"))
    enabled = enabled_channels(rules)
    needed = needed_templates(rules)
    for file in responses.files():
        language, name, channel, path = file.language, file.name, file.channel, file.path
        if language not in rules.languages:
            continue
        if file.shipped and name not in needed:
            continue  # a shipped template these rules never use: nothing to check
        if channel is not None and channel not in CHANNEL_LIMITS:
            problems.append(
                Problem(
                    str(path),
                    "",
                    f"unknown channel {channel!r} in the file name; "
                    f"expected one of {', '.join(CHANNEL_LIMITS)}",
                )
            )
            continue
        if (
            file.shipped
            and channel is not None
            and responses.source(language, name, channel) != path
        ):
            continue  # the organisation's plain template is used on this channel instead
        problems.extend(_check_file(triage, language, name, channel, path, enabled))
    return problems


def enabled_channels(rules: Rules) -> list[str]:
    return [c for c in CHANNEL_LIMITS if rules.channel(c).enabled and c in rules.channels]


def _check_file(
    triage: Triage, language: str, name: str, channel: str | None, path: Path, enabled: list[str]
) -> list[Problem]:
    responses = triage.responses
    source = path.read_text(encoding="utf-8")
    try:
        ast = responses.env.parse(source)
    except TemplateSyntaxError as exc:
        return [Problem(str(path), str(exc.lineno or ""), f"template error: {exc.message}")]
    unknown = jinja2.meta.find_undeclared_variables(ast) - set(VARIABLES)
    if unknown:
        listed = ", ".join(sorted(unknown))
        return [
            Problem(str(path), "", f"unknown variable(s) {listed}; known: {', '.join(VARIABLES)}")
        ]
    problems: list[Problem] = []
    for chan in [channel] if channel else enabled:
        if channel is None and responses.source(language, name, chan) != path:
            continue  # this channel has a variant of its own, checked on its own
        longest = ""
        try:
            for context in _sample_contexts(triage, chan):
                context["language"] = language
                text = responses.render(language, name, chan, context)
                longest = max(longest, text, key=len)
        except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
            problems.append(Problem(str(path), "", f"cannot render for {chan}: {exc}"))
            continue
        limit = CHANNEL_LIMITS[chan]
        if len(longest) > limit:
            hint = f"; add a shorter {language}/{name}.{chan}.txt" if channel is None else ""
            problems.append(
                Problem(
                    str(path),
                    "",
                    f"can be {len(longest)} characters long for "
                    f"{chan}, over its limit of {limit}{hint}",
                )
            )
    return problems


def _sample_contexts(triage: Triage, channel: str) -> list[dict[str, Any]]:
    """Contexts with the longest plausible value of every variable, open and closed."""
    rules = triage.rules
    now = datetime(2026, 12, 30, 23, 59, tzinfo=UTC)
    schedule = rules.schedule_for(channel)
    reasons = [c.reason for c in rules.closures] + [LONG_HOLIDAY]
    longest = max(reasons, key=len)
    message = max((c.message or "" for c in rules.closures), key=len, default="") or None
    day = date(2027, 9, 29)
    names = [c.name for c in (*rules.emergencies, *rules.redirects, *rules.teams)] or ["x"]
    promises = [str(rules.promise)] + [str(t.promise) for t in rules.teams if t.promise]
    out = []
    for moment in sample_moments(now):
        for staffed in (True, False):
            out.append(
                {
                    "organisation": max((rules.name, rules.name_cy or ""), key=len),
                    "channel": channel,
                    "reference": "WWWW-WWWW",
                    "name": LONG_NAME,
                    "staffed": staffed,
                    "now": now,
                    "reply_by": moment,
                    "opens_at": None if staffed else moment,
                    "promise": max(promises, key=len),
                    "hours": max(
                        (triage.hours_text(schedule, lang) for lang in rules.languages), key=len
                    ),
                    "hours_short": max(
                        (triage.hours_text(schedule, lang, short=True) for lang in rules.languages),
                        key=len,
                    ),
                    "holiday": ClosedDay(day, LONG_HOLIDAY, bank_holiday=True),
                    "closure": ClosedDay(
                        day + timedelta(days=1), longest, bank_holiday=False, message=message
                    ),
                    "emergency": max(names, key=len),
                    "redirect": max(names, key=len),
                    "team": max(names, key=len),
                    "typical_reply": "55 working minutes",
                }
            )
    return out


def summary(triage: Triage, now: datetime) -> str:
    """What `check` prints when all is well: the week, the next closures, the channels."""
    rules = triage.rules
    schedule = rules.schedule_for("web")
    local_now = now.astimezone(rules.timezone)
    lines = [f"{rules.path}: OK — {rules.name}, {rules.timezone.key}"]
    lines.append(f"  Staffed: {triage.hours_text(schedule, 'en')}")
    lines.append(
        f"  First reply promised within {rules.promise}; "
        f"one acknowledgement per sender every {say_duration(rules.cooldown)}"
    )
    today = local_now.date()
    horizon = today + timedelta(days=90)
    closures = [c for c in rules.closures if c.end >= today and c.start <= horizon]
    if closures:
        lines.append("  Closures in the next 90 days:")
        for c in closures:
            span = when.say_date(c.start, today, "en")
            if c.end != c.start:
                span += f" to {when.say_date(c.end, today, 'en')}"
            lines.append(f"    {span}: {c.reason}")
    calendar = rules.calendar(rules.bank_holidays)
    holidays = calendar.between(today, horizon)
    if holidays:
        lines.append(f"  {calendar.label} in the next 90 days:")
        for day, name in holidays:
            lines.append(f"    {when.say_date(day, today, 'en')}: {name}")
    for special in sorted(rules.special_hours.values(), key=lambda s: s.day):
        if today <= special.day <= horizon:
            ranges = ", ".join(str(r) for r in special.ranges) or "closed"
            lines.append(f"  Special hours on {when.say_date(special.day, today, 'en')}: {ranges}")
    enabled = [name for name, c in rules.channels.items() if c.enabled]
    lines.append(f"  Channels: {', '.join(enabled) or 'none'}")
    lines.append(
        f"  Languages: {', '.join(rules.languages)}"
        f"{' (bilingual replies)' if rules.bilingual else ''}"
    )
    lines.append(f"  Emergencies: {', '.join(c.name for c in rules.emergencies) or 'none'}")
    lines.append(f"  Redirects: {', '.join(c.name for c in rules.redirects) or 'none'}")
    lines.append(f"  Teams: {', '.join(c.name for c in rules.teams) or 'none'}")
    lines.extend(template_lines(triage))
    if "cy" in rules.languages:
        gaps = welsh_gaps(rules)
        if gaps:
            lines.append(
                f"  Welsh strings missing ({len(gaps)}): Welsh pages and replies show the English"
                " instead of each of these"
            )
            lines.extend(f"    {gap}" for gap in gaps)
        else:
            lines.append("  Welsh pages: at /cy/, every string in Welsh")
    return "\n".join(lines)


def welsh_gaps(rules: Rules) -> list[Problem]:
    """The Welsh a Welsh page or reply would need and does not have: the comms officer's own
    wording in rules.toml, and the public pages' strings in the Welsh catalogue (.po)."""
    where = str(rules.path)
    gaps = []
    if rules.name_cy is None:
        gaps.append(
            Problem(where, "", f"organisation.name_cy: not set; Welsh pages say {rules.name!r}")
        )
    for i, closure in enumerate(rules.closures, start=1):
        if not closure.reason_cy:
            said = f"Welsh replies say {closure.reason!r}"
            gaps.append(Problem(where, "", f"closures[{i}].reason_cy: not set; {said}"))
    return gaps + catalogue.missing("cy")


def _wrapped(names: list[str]) -> str:
    return textwrap.fill(", ".join(names), width=100, initial_indent=" " * 6,
                         subsequent_indent=" " * 6, break_on_hyphens=False)  # fmt: skip


def template_lines(triage: Triage) -> list[str]:
    """Which templates replies use, and where each comes from: the organisation's folders or
    the ones shipped with Holding Reply."""
    rules, responses = triage.rules, triage.responses
    channels = enabled_channels(rules) or ["web"]
    used: dict[Path, tuple[bool, str]] = {}
    by_path = {f.path: f for f in responses.files()}
    for language in rules.languages:
        for name in needed_templates(rules):
            for channel in channels:
                path = responses.source(language, name, channel)
                file = by_path.get(path) if path is not None else None
                if file is not None:
                    used[file.path] = (file.shipped, file.relative)
    own = sorted(rel for shipped, rel in used.values() if not shipped)
    shipped = sorted(rel for is_shipped, rel in used.values() if is_shipped)
    folders = ", ".join(str(d) for d in responses.dirs)
    lines = [f"  Templates: {len(used)} in use, every one checked"]
    if own:
        lines.append(f"    Yours, from {folders}:")
        lines.append(_wrapped(own))
    else:
        lines.append(f"    Yours: none (a file in {folders} replaces the shipped one of its name)")
    if shipped:
        lines.append(
            f"    Shipped with Holding Reply, from {responses.shipped} "
            "(to change one, copy it into your folder):"
        )
        lines.append(_wrapped(shipped))
    return lines


# Ordinary messages (not emergencies, none of them a hard case) from the tuning part of the
# triage corpus, one a line: a phrase that matches many of them is too broad.
ORDINARY = Path(__file__).parent / "data" / "ordinary-messages.txt"
KINDS = (("emergency", True), ("redirect", False), ("team", False))


def ordinary_messages() -> list[Prepared]:
    return [prepare(line) for line in ORDINARY.read_text(encoding="utf-8").splitlines() if line]


def phrase_warnings(path: str | os.PathLike[str]) -> list[str]:
    """Phrases of rules.toml that can never match, or that match too many ordinary messages.

    Advice for `check`, not errors: the rules still load. A phrase can never match when its
    own category's `unless` cancels it, or when what it says is always read as harmless (a past
    event, a figure of speech, a topic such as "fire safety"). An emergency phrase is too broad
    when it matches 1% or more of the ordinary messages (and at least 3); a redirect or team
    phrase when it matches a quarter of them.
    """
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    ordinary = ordinary_messages()
    having: dict[str, set[int]] = {}  # look-up key -> the ordinary messages that have it
    for n, message in enumerate(ordinary):
        for key in message.keys:
            having.setdefault(key, set()).add(n)
    out = []
    for kind, emergency in KINDS:
        entries = data.get(kind)
        for entry in entries if isinstance(entries, list) else ():
            name, unless = entry.get("name", "?"), entry.get("unless", ())
            cancels = PhraseSet(unless, emergency=False) if unless else None
            for phrase in entry.get("phrases", ()):
                if not isinstance(phrase, str) or phrase_problem(phrase):
                    continue  # an error, which load() reports
                alone = PhraseSet([phrase], emergency=emergency)
                itself = prepare(phrase)
                where = f'{kind} "{name}": phrase "{phrase}"'
                if alone.find(itself) is None:
                    out.append(
                        f"{where} does not match a message that says just it: it is read as"
                        " harmless (a question, a past event, a figure of speech, a negation or"
                        " a topic)"
                    )
                    continue
                if cancels is not None and cancels.find(itself) is not None:
                    out.append(f"{where} can never match: its own `unless` cancels it")
                    continue
                if alone.always:
                    maybe: set[int] = set(range(len(ordinary)))
                else:
                    maybe = set().union(*(having.get(k, ()) for k in alone.keys))
                hits = sum(1 for n in maybe if alone.find(ordinary[n]) is not None)
                limit = max(3, len(ordinary) / 100) if emergency else len(ordinary) / 4
                if ordinary and hits >= limit:
                    out.append(
                        f"{where} matches {hits} of {len(ordinary)} ordinary messages: make it"
                        " longer or add an `unless`"
                    )
    return out
