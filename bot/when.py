"""Saying times and dates as a person would: "1pm on Tuesday 6 May", "1yh ddydd Mawrth 6 Mai".

English follows the GOV.UK style guide: "9am", "5:30pm", "midday", "midnight" (never "12pm" or
"12am"), day names in full, "Tuesday 6 May", no leading zeros and no commas.

Every function takes local values: aware datetimes already in the organisation's zone, or local
dates. Words come from tables built once per language (Babel's locale data is slow to read, and
these run for every reply), so a call is a few lookups and one f-string.

Welsh choices, each checked against Babel's `cy` locale (CLDR) and Welsh public bodies' usage:
- "9yb", "5:30yh": CLDR's wide am/pm markers for cy are "yb" (y bore) and "yh" (yr hwyr), written
  straight after the time as English writes "am"/"pm". Many Welsh councils write "am"/"pm" even
  in Welsh text; "yb"/"yh" is the Welsh form and the one CLDR gives.
- "hanner dydd", "hanner nos": the everyday Welsh words for midday and midnight. CLDR's cy data
  has "canol dydd" / "canol nos" for its noon/midnight day periods; both pairs are correct, and
  "hanner dydd" / "hanner nos" are what notices and timetables usually say.
- Day names are CLDR's ("Dydd Mawrth") with "dydd" in lower case mid-sentence ("dydd Mawrth"),
  as Welsh writes it; month names keep their capital ("6 Mai").
- "ddydd Mawrth": a time expression used adverbially takes the soft mutation (dydd -> ddydd),
  so "on Tuesday" is "ddydd Mawrth": "1yh ddydd Mawrth 6 Mai", "ar agor ddydd Llun". After the
  preposition "i" (to) the mutation is the same: "dydd Llun i ddydd Iau". After "a" (and) there
  is none for "dydd": "dydd Sadwrn a dydd Sul".
- "a" becomes "ac" before a vowel sound; a time starting 1 (un), 8 (wyth) or 11 (un ar ddeg) is
  read with one, so "9yb i 12:30yh ac 1:30yh i 5yh".
"""

# Short forms (for bios, where space is tight) join ranges with an en dash, U+2013.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

LANGUAGES = ("en", "cy")
_MIDNIGHT = time(0)


@dataclass(frozen=True, slots=True)
class _Words:
    times: tuple[str, ...]  # by minute of the day: times[9 * 60] == "9am"
    days: tuple[str, ...]  # Monday first: "Tuesday" / "dydd Mawrth"
    on_days: tuple[str, ...]  # used adverbially: "on Tuesday" / "ddydd Mawrth"
    to_days: tuple[str, ...]  # after "to": "Thursday" / "ddydd Iau"
    short_days: tuple[str, ...]  # "Tue" / "Maw"
    months: tuple[str, ...]  # months[5] == "May" / "Mai"; months[0] unused
    today: str
    tomorrow: str
    tonight: str
    last_night: str
    to: str
    and_: str
    and_before_vowel: str
    every_day: str
    day_and_night: str  # a range from midnight to midnight
    always: str  # every day, midnight to midnight
    not_staffed: str


def _times(am: str, pm: str, midday: str, midnight: str) -> tuple[str, ...]:
    out = []
    for minute_of_day in range(24 * 60):
        hour, minute = divmod(minute_of_day, 60)
        if minute == 0 and hour in (0, 12):
            out.append(midnight if hour == 0 else midday)
            continue
        marker = am if hour < 12 else pm
        clock = str(hour % 12 or 12) if minute == 0 else f"{hour % 12 or 12}:{minute:02d}"
        out.append(clock + marker)
    return tuple(out)


def _babel_names(locale: str) -> tuple[list[str], list[str], list[str]]:
    """Wide day names (Monday first), abbreviated day names and wide month names (1-based)."""
    from babel import Locale  # imported on first use: slow, and needed once per language

    loc = Locale.parse(locale)
    wide = loc.days["format"]["wide"]
    short = loc.days["format"]["abbreviated"]
    months = loc.months["format"]["wide"]
    return (
        [wide[i] for i in range(7)],
        [short[i] for i in range(7)],
        ["", *(months[i] for i in range(1, 13))],
    )


# Babel's en_GB names, written out: reading Babel's locale data costs a process about 1.5 MB
# and is only needed for Welsh (tests/test_when.py checks these against Babel).
ENGLISH_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ENGLISH_SHORT_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ENGLISH_MONTHS = ("", "January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")  # fmt: skip


def _english() -> _Words:
    days, short, months = ENGLISH_DAYS, ENGLISH_SHORT_DAYS, ENGLISH_MONTHS
    return _Words(
        times=_times("am", "pm", "midday", "midnight"),
        days=tuple(days),
        on_days=tuple(f"on {d}" for d in days),
        to_days=tuple(days),
        short_days=tuple(short),
        months=tuple(months),
        today="today",
        tomorrow="tomorrow",
        tonight="tonight",
        last_night="last night",
        to="to",
        and_="and",
        and_before_vowel="and",
        every_day="every day",
        day_and_night="24 hours",
        always="24 hours every day",
        not_staffed="not staffed",
    )


def _welsh() -> _Words:
    from babel import Locale

    periods = Locale.parse("cy").day_periods["format"]["wide"]
    wide, short, months = _babel_names("cy")
    days = [d[:1].lower() + d[1:] for d in wide]  # "Dydd Mawrth" -> "dydd Mawrth"
    mutated = ["d" + d for d in days]  # soft mutation: "dydd Mawrth" -> "ddydd Mawrth"
    return _Words(
        times=_times(periods["am"], periods["pm"], "hanner dydd", "hanner nos"),
        days=tuple(days),
        on_days=tuple(mutated),
        to_days=tuple(mutated),
        short_days=tuple(short),
        months=tuple(months),
        today="heddiw",
        tomorrow="yfory",
        tonight="heno",
        last_night="neithiwr",
        to="i",
        and_="a",
        and_before_vowel="ac",
        every_day="bob dydd",
        day_and_night="24 awr",
        always="24 awr bob dydd",
        not_staffed="heb staff",
    )


_BUILDERS = {"en": _english, "cy": _welsh}
_WORDS: dict[str, _Words] = {}


def _words(language: str) -> _Words:
    words = _WORDS.get(language)
    if words is None:
        if language not in _BUILDERS:
            raise ValueError(f"language {language!r} is not supported: use one of {LANGUAGES}")
        # Two threads may build the same table at once; both results are equal, so no lock.
        words = _WORDS[language] = _BUILDERS[language]()
    return words


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime in the organisation's zone: {value!r}")


def say_time(moment: datetime | time, language: str) -> str:
    """ "9am", "5:30pm", "midday", "midnight" / "9yb", "5:30yh", "hanner dydd", "hanner nos".

    Seconds are dropped, not rounded: 4:59:59pm is "4:59pm".
    """
    if isinstance(moment, datetime):
        _aware(moment, "moment")
    return _words(language).times[moment.hour * 60 + moment.minute]


def say_weekday(day: date, language: str) -> str:
    """ "Tuesday" / "dydd Mawrth"."""
    return _words(language).days[day.weekday()]


def say_date(day: date, today: date, language: str) -> str:
    """ "Tuesday 6 May", with the year when it is not this year: "Friday 1 January 2027"."""
    w = _words(language)
    text = f"{w.days[day.weekday()]} {day.day} {w.months[day.month]}"
    return text if day.year == today.year else f"{text} {day.year}"


def say_day(day: date, today: date, language: str) -> str:
    """ "today", "tomorrow" or "Tuesday 6 May" / "heddiw", "yfory", "dydd Mawrth 6 Mai"."""
    w = _words(language)
    ahead = day.toordinal() - today.toordinal()
    if ahead == 0:
        return w.today
    if ahead == 1:
        return w.tomorrow
    return say_date(day, today, language)


def say_when(moment: datetime, now: datetime, language: str) -> str:
    """ "4pm today", "9:30am tomorrow", "1pm on Tuesday 6 May" / "1yh ddydd Mawrth 6 Mai".

    Midnight at the start of tomorrow is "midnight tonight": "midnight tomorrow" is read both
    ways. Further ahead, "midnight on Tuesday 6 May" means the start of that day, the reading
    that makes a promise early rather than late if someone takes it as the end of the day.
    """
    if moment.tzinfo is None or now.tzinfo is None:  # the checks, only called when they fail
        _aware(moment, "moment")
        _aware(now, "now")
    w = _WORDS.get(language) or _words(language)
    minute_of_day = moment.hour * 60 + moment.minute
    said = w.times[minute_of_day]
    ahead = moment.toordinal() - now.toordinal()
    if ahead == 0:
        return f"{said} {w.last_night if minute_of_day == 0 else w.today}"
    if ahead == 1:
        return f"{said} {w.tonight if minute_of_day == 0 else w.tomorrow}"
    text = f"{said} {w.on_days[moment.weekday()]} {moment.day} {w.months[moment.month]}"
    return text if moment.year == now.year else f"{text} {moment.year}"


Weekly = Mapping[int, Sequence[tuple[time, time]]]


def say_hours(weekly: Weekly, language: str, short: bool = False) -> str:
    """Staffed hours in one line: "Monday to Thursday 9am to 5pm, Friday 9am to 4:30pm".

    Keys are 0 (Monday) to 6 (Sunday); a missing key or an empty list is a closed day. A range
    whose end is not after its start crosses midnight ("10pm to 2am"); midnight to midnight is
    "24 hours". `short=True` is for bios: "Mon–Thu 9am–5pm, Fri 9am–4:30pm".
    """
    w = _words(language)
    unknown = sorted(set(weekly) - set(range(7)))
    if unknown:
        raise ValueError(f"weekday keys must be 0 (Monday) to 6 (Sunday), got {unknown}")
    days = [tuple(sorted(weekly.get(d, ()))) for d in range(7)]
    if not any(days):
        return w.not_staffed
    if all(d == days[0] for d in days):
        if days[0] == ((_MIDNIGHT, _MIDNIGHT),):
            return w.always
        return f"{w.every_day} {_ranges(w, days[0], short)}"
    parts = []
    first = 0
    while first < 7:
        last = first
        while last + 1 < 7 and days[last + 1] == days[first]:
            last += 1
        if days[first]:
            parts.append(f"{_day_span(w, first, last, short)} {_ranges(w, days[first], short)}")
        first = last + 1
    return ", ".join(parts)


def _day_span(w: _Words, first: int, last: int, short: bool) -> str:
    if short:
        return (
            w.short_days[first] if first == last else f"{w.short_days[first]}–{w.short_days[last]}"
        )
    if first == last:
        return w.days[first]
    if last == first + 1:
        return f"{w.days[first]} {w.and_} {w.days[last]}"
    return f"{w.days[first]} {w.to} {w.to_days[last]}"


def _ranges(w: _Words, ranges: Sequence[tuple[time, time]], short: bool) -> str:
    said = []
    for start, end in ranges:
        if start == end == _MIDNIGHT:
            said.append(w.day_and_night)
        elif short:
            said.append(f"{_clock(w, start)}–{_clock(w, end)}")
        else:
            said.append(f"{_clock(w, start)} {w.to} {_clock(w, end)}")
    if short or len(said) == 1:
        return ", ".join(said)
    last = said[-1]
    joiner = w.and_before_vowel if _vowel_sound(last) else w.and_
    return f"{', '.join(said[:-1])} {joiner} {last}"


def _clock(w: _Words, moment: time) -> str:
    return w.times[moment.hour * 60 + moment.minute]


def _vowel_sound(said: str) -> bool:
    """Whether a Welsh time is read starting with a vowel: un (1), wyth (8), un ar ddeg (11)."""
    hour = said.split(":", 1)[0].rstrip("abcdefghijklmnopqrstuvwxyz ")
    return hour in ("1", "8", "11")
