"""Reply templates: responses/<lang>/<name>.txt, with per-channel variants <name>.<channel>.txt.

Two layers, as Django and Datasette find templates: the organisation's own folders first, then
the templates that ship inside the package (bot/default_responses/), so a rules.toml anywhere
works with no templates of its own, and one file of its own overrides one shipped file.

Templates are rendered with Jinja2's sandbox and StrictUndefined, so a comms officer's typo in a
variable name is an error at `check` time, never a blank in a reply to a citizen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from bot import when
from bot.durations import TimeRange

# The templates that ship with Holding Reply: the last place every lookup falls back to.
SHIPPED = Path(__file__).resolve().parent / "default_responses"
_LAYERS = ("own", "shipped")  # the loader's prefixes, searched in this order

# Longest reply each channel accepts, in characters.
CHANNEL_LIMITS: dict[str, int] = {
    "web": 4000,
    "telegram": 4096,
    "x": 280,
    "facebook": 2000,
    "instagram": 1000,
    "whatsapp": 4096,
    "mastodon": 500,  # most instances' limit; the channel reads its own and cuts to fit
    "bluesky": 300,  # graphemes
}

# Templates every language must have, whatever the rules say.
REQUIRED = ("acknowledgement", "out-of-hours", "closure", "bank-holiday", "bio")

# The variables a template may use, with what they hold. `check` renders every template with
# each of these set to its longest plausible value; the README lists them.
VARIABLES: dict[str, str] = {
    "organisation": "The organisation's name.",
    "channel": (
        'The channel the message came in on: "web", "telegram", "x", "facebook", "instagram", '
        '"whatsapp", "email", "mastodon", "bluesky".'
    ),
    "reference": 'The message\'s short reference, e.g. "7K3F-9QXA".',
    "name": "The sender's name if the channel gives one, else nothing.",
    "staffed": "True when a person is at the desk now.",
    "now": "When the message arrived.",
    "reply_by": "When a person will have replied, by the promise; use with |when.",
    "opens_at": "When the desk next opens (nothing when it is open now).",
    "promise": 'The promise in words, e.g. "4 working hours".',
    "hours": 'The staffed hours in words: "Monday to Friday 9am to 5pm".',
    "hours_short": 'The staffed hours for a profile: "Mon–Fri 9am–5pm".',
    "holiday": "The first bank holiday before the desk reopens: .day and .reason.",
    "closure": "The first closure day before the desk reopens: .day and .reason.",
    "emergency": "The emergency category, or nothing.",
    "redirect": "The redirect category, or nothing.",
    "team": "The team the message is routed to, or nothing.",
    "language": 'The reply\'s language: "en" or "cy".',
    "typical_reply": (
        'How long replies have lately taken, in staffed time, as a promise is written: "3 working'
        " hours\"; the median of the last four weeks, for the message's team (or"
        " its channel, for a message with no team)."
        " Nothing until at least 20 messages have had a reply: use it inside {% if %}."
    ),
}


def weekly_as_times(weekly: Sequence[Sequence[TimeRange]]) -> dict[int, list[tuple[time, time]]]:
    def t(minutes: int) -> time:
        minutes %= 24 * 60
        return time(minutes // 60, minutes % 60)

    return {i: [(t(r.start), t(r.end)) for r in day] for i, day in enumerate(weekly)}


@dataclass(frozen=True, slots=True)
class TemplateFile:
    """One template file: responses/en/out-of-hours.x.txt is ("en", "out-of-hours", "x")."""

    language: str
    name: str
    channel: str | None  # the channel of a variant; None for the plain template
    path: Path
    shipped: bool  # one of Holding Reply's own, rather than the organisation's

    @property
    def relative(self) -> str:
        return f"{self.language}/{self.path.name}"


class Responses:
    """The templates of one rules file, compiled once and cached.

    `dirs` are the organisation's folders, searched in order (a folder that does not exist is
    skipped); `shipped` is searched after all of them. For a reply in a language on a channel,
    the first of these that exists is used: the channel's variant in the organisation's folders,
    the plain template in them, the shipped variant, the shipped plain template. So an
    organisation's out-of-hours.txt is used on X too, in place of the shipped out-of-hours.x.txt
    (`check` then makes sure it fits in 280 characters).
    """

    def __init__(self, dirs: Sequence[Path], timezone: ZoneInfo, shipped: Path = SHIPPED) -> None:
        self.dirs = tuple(dirs)
        self.shipped = shipped
        self.timezone = timezone
        layers = {
            "own": jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            "shipped": jinja2.FileSystemLoader(str(shipped)),
        }
        self.env = SandboxedEnvironment(
            loader=jinja2.PrefixLoader(layers),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            # No trim_blocks: a newline after {% endif %} at the end of a line is kept, as a
            # comms officer reading the file expects; paragraphs stay apart.
            trim_blocks=False,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self.env.filters.update(self._filters())
        self._cache: dict[tuple[str, str, str], jinja2.Template] = {}
        # for render: each template with its globals as a plain dict, which a new context
        # copies the keys of far faster than the ChainMap the template holds
        self._ready: dict[tuple[str, str, str], tuple[jinja2.Template, dict[str, Any]]] = {}

    # --- filters: how templates say times -----------------------------------------------------

    def _filters(self) -> dict[str, Callable[..., str]]:
        tz = self.timezone

        def local(value: datetime | date) -> datetime | date:
            return value.astimezone(tz) if isinstance(value, datetime) else value

        # The latest `now` and its local time: a reply's filters share one `now`. One slot,
        # replaced whole, so threads sharing it at worst convert again.
        latest: list[tuple[datetime | None, datetime | None]] = [(None, None)]

        def ctx(context: Any) -> tuple[datetime, str]:
            # context.get(key, default) without its three calls: the template's own variables
            # first, then the ones it was rendered with
            own, given = context.vars, context.parent
            now = own.get("now", given.get("now")) or datetime.now(UTC)
            seen, local_now = latest[0]
            if seen is not now or local_now is None:
                local_now = now.astimezone(tz)
                latest[0] = (now, local_now)
            return local_now, own.get("language", given.get("language", "en"))

        @jinja2.pass_context
        def when_(context: Any, value: datetime) -> str:
            now, lang = ctx(context)
            return when.say_when(value.astimezone(tz), now, lang)

        @jinja2.pass_context
        def time_(context: Any, value: datetime) -> str:
            return when.say_time(value.astimezone(tz), ctx(context)[1])

        @jinja2.pass_context
        def day_(context: Any, value: datetime | date) -> str:
            now, lang = ctx(context)
            d = local(value)
            return when.say_day(d.date() if isinstance(d, datetime) else d, now.date(), lang)

        @jinja2.pass_context
        def date_(context: Any, value: datetime | date) -> str:
            now, lang = ctx(context)
            d = local(value)
            return when.say_date(d.date() if isinstance(d, datetime) else d, now.date(), lang)

        @jinja2.pass_context
        def weekday_(context: Any, value: datetime | date) -> str:
            d = local(value)
            return when.say_weekday(d.date() if isinstance(d, datetime) else d, ctx(context)[1])

        return {"when": when_, "time": time_, "day": day_, "date": date_, "weekday": weekday_}

    # --- finding and rendering ---------------------------------------------------------------

    def find(self, language: str, name: str, channel: str) -> jinja2.Template:
        """The organisation's channel variant, else its plain template, else the shipped
        variant, else the shipped plain template. Raises jinja2.TemplateNotFound."""
        key = (language, name, channel)
        template = self._cache.get(key)
        if template is None:
            tried = []
            for layer in _LAYERS:
                for file in (f"{name}.{channel}.txt", f"{name}.txt"):
                    tried.append(f"{layer}/{language}/{file}")
                    try:
                        template = self.env.get_template(tried[-1])
                    except jinja2.TemplateNotFound:
                        continue
                    self._cache[key] = template
                    return template
            raise jinja2.TemplateNotFound(f"{language}/{name}.txt", ", ".join(tried))
        return template

    def source(self, language: str, name: str, channel: str) -> Path | None:
        """The file a reply in `language` on `channel` would use, or None if there is none."""
        try:
            filename = self.find(language, name, channel).filename
        except jinja2.TemplateNotFound:
            return None
        return Path(filename) if filename else None

    def render(self, language: str, name: str, channel: str, context: dict[str, Any]) -> str:
        key = (language, name, channel)
        ready = self._ready.get(key)
        if ready is None:
            template = self.find(language, name, channel)
            ready = self._ready[key] = (template, dict(template.globals))
        template, globals_ = ready
        # What template.new_context(context, shared=True) makes, without two calls on the way:
        # shared uses `context` as it is instead of copying it over the environment's globals,
        # a third of the cost of a render. Templates have no use for those globals, and `check`
        # renders through here too, so a template that tried would fail there.
        env = self.env
        run = env.context_class(env, context, template.name, template.blocks, globals_)
        return env.concat(template.root_render_func(run)).strip()

    def names(self, language: str) -> set[str]:
        """Every template with a plain version (`<name>.txt`) for a language.

        Channel variants are optional extras: without the plain version, a channel that has
        no variant would have nothing to send.
        """
        out: set[str] = set()
        for d in (*self.dirs, self.shipped):
            folder = d / language
            if folder.is_dir():
                out.update(
                    p.name[: -len(".txt")] for p in folder.glob("*.txt") if p.name.count(".") == 1
                )
        return out

    def files(self) -> list[TemplateFile]:
        """Every template file, the organisation's first; of two with the same language and
        file name, only the first folder's (a shipped file the organisation overrides is not
        listed)."""
        seen: dict[str, TemplateFile] = {}
        for d, shipped in [*((d, False) for d in self.dirs), (self.shipped, True)]:
            for path in sorted(d.glob("*/*.txt")):
                rel = f"{path.parent.name}/{path.name}"
                if rel in seen:
                    continue
                parts = path.name[: -len(".txt")].split(".")
                channel = parts[1] if len(parts) > 1 else None
                seen[rel] = TemplateFile(path.parent.name, parts[0], channel, path, shipped)
        return list(seen.values())


def sample_moments(now: datetime) -> list[datetime]:
    """Reply-by times whose wording is among the longest a template will ever show."""
    base = now.replace(minute=0, second=0, microsecond=0)
    out = [base + timedelta(days=400 + 31 * m, hours=3, minutes=30) for m in range(12)]
    return [m.replace(hour=11, minute=45) for m in out]
