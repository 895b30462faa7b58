"""Loading rules.toml with its templates, and checking both as `python -m bot check` does."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from bot import when
from bot.config import CHANNELS, Rules, load_rules
from bot.durations import say_duration
from bot.errors import Problem, RulesError
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
    enabled = [c for c in CHANNELS if rules.channel(c).enabled and c in rules.channels]
    for language, name, channel, path in responses.files():
        if language not in rules.languages:
            continue
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
        problems.extend(_check_file(triage, language, name, channel, path, enabled))
    return problems


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
        if channel is None and (path.parent / f"{name}.{chan}.txt").exists():
            continue  # this channel has its own variant, checked on its own
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
    day = date(2027, 9, 29)
    names = [c.name for c in (*rules.emergencies, *rules.redirects, *rules.teams)] or ["x"]
    promises = [str(rules.promise)] + [str(t.promise) for t in rules.teams if t.promise]
    out = []
    for moment in sample_moments(now):
        for staffed in (True, False):
            out.append(
                {
                    "organisation": rules.name,
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
                    "closure": ClosedDay(day + timedelta(days=1), longest, bank_holiday=False),
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
    templates = sum(1 for f in triage.responses.files() if f[0] in rules.languages)
    lines.append(f"  Templates: {templates} checked")
    return "\n".join(lines)
