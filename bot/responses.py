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
from jinja2 import nodes
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


# Rendered replies kept for reuse: they differ by template, channel, time to the minute and
# name, so a thousand cover a busy minute, in under a megabyte; the memo is emptied when full.
MEMO_SIZE = 1024

# What a template may contain for its rendering to be a function of the variables it names
# (and nothing else, such as a {% set %} or an {% include %} of another file): what the shipped
# templates use, and expressions like them. Anything else is rendered every time.
_PURE = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.If,
    nodes.Not, nodes.And, nodes.Or, nodes.Filter, nodes.Test, nodes.Getattr, nodes.Getitem,
    nodes.Compare, nodes.Operand, nodes.Concat, nodes.CondExpr, nodes.Tuple, nodes.List,
)  # fmt: skip
# Filters that say a time to the minute, or a day: two times in the same local minute read the
# same through them. when, day and date also read today's date (from `now`) and all of them the
# reply's language.
_BY_MINUTE = frozenset({"when", "time", "day", "date", "weekday"})
_DATED = frozenset({"when", "day", "date"})
_MISSING = object()
_MINUTE = object()  # marks a time counted by its minute in a memo key


def _day_around(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime, date]:
    """The local date of `now`, and instants from and before which it is that date (at most
    the whole day: where midnight is skipped or repeated, a later instant is looked up again)."""
    today = now.astimezone(tz).date()
    start = datetime.combine(today, time(0), tz)
    end = datetime.combine(today + timedelta(days=1), time(0), tz)
    return start, end, today


@dataclass(frozen=True, slots=True)
class _Reads:
    """What one template's output depends on: its variables, each exactly or only to the local
    minute (a datetime shown only through _BY_MINUTE filters, or only tested for being there),
    and whether it says a day relative to today."""

    exact: tuple[str, ...]
    by_minute: tuple[str, ...]
    dated: bool
    filtered: bool


def _reads(source: str, env: jinja2.Environment) -> _Reads | None:
    """_Reads of a template's source, or None when its output may depend on anything else."""
    tree = env.parse(source)
    exact: set[str] = set()
    shown: set[str] = set()
    dated = filtered = False
    todo: list[tuple[nodes.Node, nodes.Node | None]] = [(tree, None)]
    while todo:
        node, parent = todo.pop()
        if not isinstance(node, _PURE):
            return None
        if isinstance(node, nodes.Filter):
            if node.name not in env.filters or node.name == "random":
                return None
            filtered = filtered or node.name in _BY_MINUTE
            dated = dated or node.name in _DATED
        if isinstance(node, nodes.Name):
            if node.ctx != "load":
                return None
            minute = (
                isinstance(parent, nodes.Filter)
                and parent.name in _BY_MINUTE
                and parent.node is node
                and not parent.args
                and not parent.kwargs
            ) or (isinstance(parent, (nodes.If, nodes.CondExpr)) and parent.test is node)
            (shown if minute else exact).add(node.name)
        todo.extend((child, node) for child in node.iter_child_nodes())
    if "now" in shown:  # used as it is, not only through the filters: to the microsecond
        exact.add("now")
    return _Reads(tuple(sorted(exact)), tuple(sorted(shown - exact)), dated, filtered)


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
        layers: dict[str, jinja2.BaseLoader] = {
            "own": jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            "shipped": jinja2.FileSystemLoader(str(shipped)),
        }
        self._layers = layers
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
        self._ready: dict[
            tuple[str, str, str], tuple[jinja2.Template, dict[str, Any], _Reads | None]
        ] = {}
        self._memo: dict[tuple[Any, ...], str] = {}
        self._sources: dict[tuple[str, str, str], str] = {}
        self._today: tuple[datetime, datetime, date] | None = None  # see _memo_key

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
                        template, source = self._load(layer, f"{language}/{file}")
                    except jinja2.TemplateNotFound:
                        continue
                    self._cache[key] = template
                    self._sources[key] = source
                    return template
            raise jinja2.TemplateNotFound(f"{language}/{name}.txt", ", ".join(tried))
        return template

    def _load(self, layer: str, name: str) -> tuple[jinja2.Template, str]:
        """A template of one layer compiled, as Environment.get_template would (without its
        cache: find() keeps its own), with its source, which render() reads once to know
        what the reply depends on."""
        env = self.env
        source, filename, uptodate = self._layers[layer].get_source(env, name)
        code = env.compile(source, name, filename)
        return env.template_class.from_code(env, code, env.make_globals(None), uptodate), source

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
            source = self._sources.get(key)
            reads = _reads(source, self.env) if source is not None else None
            ready = self._ready[key] = (template, dict(template.globals), reads)
        template, globals_, reads = ready
        memo = self._memo_key(key, reads, context) if reads is not None else None
        if memo is not None:
            said = self._memo.get(memo)
            if said is not None:
                return said
        # What template.new_context(context, shared=True) makes, without two calls on the way:
        # shared uses `context` as it is instead of copying it over the environment's globals,
        # a third of the cost of a render. Templates have no use for those globals, and `check`
        # renders through here too, so a template that tried would fail there.
        env = self.env
        run = env.context_class(env, context, template.name, template.blocks, globals_)
        said = env.concat(template.root_render_func(run)).strip()
        if memo is not None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[memo] = said
        return said

    def _memo_key(
        self, key: tuple[str, str, str], reads: _Reads, context: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """What the reply depends on, as a key for the memo; None if it cannot be one. Each
        value follows its type (True and 1 are equal keys but print differently), a datetime
        its zone too (equal instants print differently in two zones). A time said to the
        minute counts by its UTC minute, which is its local minute: every zone's offset has
        been a whole number of minutes since 1972."""
        get = context.get
        parts: list[Any] = [key]
        for name in reads.exact:
            value = get(name, _MISSING)
            kind = value.__class__
            parts += (kind, value, value.tzinfo) if kind is datetime else (kind, value)
        for name in reads.by_minute:
            value = get(name, _MISSING)
            if value.__class__ is datetime and value.tzinfo is not None:
                parts += (_MINUTE, int(value.timestamp()) // 60)
            else:
                parts += (value.__class__, value)
        if reads.filtered:  # the filters read the language, and some of them today's date
            now = get("now")
            if now.__class__ is not datetime or now.tzinfo is None:
                return None
            parts.append(get("language", "en"))
            if reads.dated:
                day = self._today
                if day is None or not day[0] <= now < day[1]:
                    day = self._today = _day_around(now, self.timezone)
                parts.append(day[2])
        try:
            hash(memo := tuple(parts))
        except TypeError:
            return None
        return memo

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
