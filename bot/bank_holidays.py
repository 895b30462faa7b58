"""Bank holiday calendars: gov.uk's list for the three UK nations, the holidays package elsewhere.

For England and Wales, Scotland and Northern Ireland the authority is gov.uk's own list, shipped
in `bot/data/govuk-bank-holidays.json` (the format of https://www.gov.uk/bank-holidays.json, so a
fresh download can replace it as it is). Years outside that file come from the `holidays`
package, reshaped to say what gov.uk would say. Any other country comes from `holidays` as it is.

The shipped file is gov.uk's list of 2012-2027 plus one entry announced after that copy was taken:
Scotland's "World Cup bank holiday" on Monday 15 June 2026 (Royal Proclamation of 3 February 2026;
gov.uk lists it under "scotland" only). Without it a Scottish desk would promise replies that day.
"""

# gov.uk writes its titles with curly apostrophes (U+2019); they are kept as gov.uk writes them.

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any

# The UK nations gov.uk publishes, with the holidays package's subdivision for each.
UK_NATIONS: dict[str, tuple[str, str]] = {
    "england-and-wales": ("ENG", "England and Wales"),
    "scotland": ("SCT", "Scotland"),
    "northern-ireland": ("NIR", "Northern Ireland"),
}
NONE = "none"

# gov.uk's Welsh titles, from its Welsh page https://www.gov.uk/gwyliau-banc (the strings come
# from alphagov/frontend config/locales/cy.yml, "bank_holidays"). Keyed by gov.uk's English title,
# curly apostrophes and all. A title missing here is shown in English in Welsh replies too.
WELSH_NAMES: dict[str, str] = {
    "New Year’s Day": "Dydd Calan",
    "2nd January": "2il o Ionawr",
    "Good Friday": "Gwener y Groglith",
    "Easter Monday": "Llun y Pasg",
    "Early May bank holiday": "Gŵyl banc dechrau Mai",
    "Early May bank holiday (VE day)": "Gŵyl banc dechrau Mai (diwrnod VE)",
    "Spring bank holiday": "Gŵyl banc y gwanwyn",
    "Summer bank holiday": "Gŵyl banc yr haf",
    "Christmas Day": "Dydd Nadolig",
    "Boxing Day": "Dydd San Steffan",
    "St Andrew’s Day": "Gŵyl Andreas",
    "St Patrick’s Day": "Gŵyl Sant Padrig",
    "Battle of the Boyne (Orangemen’s Day)": "Brwydr y Boyne (Dydd yr Orenwyr)",
    "Queen’s Diamond Jubilee": "Jiwbilî Ddiemwnt y Frenhines",
    "Platinum Jubilee bank holiday": "Gŵyl banc Jiwbilî Blatinwm",
    "Bank Holiday for the State Funeral of Queen Elizabeth II": (
        "Gŵyl y Banc ar gyfer Angladd Gwladol y Frenhines Elizabeth II"
    ),
    "Bank holiday for the coronation of King Charles III": (
        "Gŵyl y banc ar gyfer coroni Brenin Siarl III"
    ),
    # "World Cup bank holiday" (Scotland 2026): gov.uk's Welsh page had no title for it when this
    # was written, so it stays in English rather than guess.
}

# The holidays package's English names for the UK, as gov.uk writes them. Names not listed
# (royal weddings, the 1999 millennium holiday, the Golden and Silver Jubilees...) are kept.
_GOVUK_TITLES: dict[str, str] = {
    "New Year's Day": "New Year’s Day",
    "New Year Holiday": "2nd January",
    "May Day": "Early May bank holiday",
    "Spring Bank Holiday": "Spring bank holiday",
    "Summer Bank Holiday": "Summer bank holiday",
    "Late Summer Bank Holiday": "Summer bank holiday",
    "Saint Andrew's Day": "St Andrew’s Day",
    "Saint Patrick's Day": "St Patrick’s Day",
    "Battle of the Boyne": "Battle of the Boyne (Orangemen’s Day)",
    "Diamond Jubilee of Elizabeth II": "Queen’s Diamond Jubilee",
    "Platinum Jubilee of Elizabeth II": "Platinum Jubilee bank holiday",
    "State Funeral of Queen Elizabeth II": (
        "Bank Holiday for the State Funeral of Queen Elizabeth II"
    ),
    "Coronation of Charles III": "Bank holiday for the coronation of King Charles III",
    "Scotland's participation in the FIFA World Cup final": "World Cup bank holiday",
}
_OBSERVED = " (observed)"

# Near misses that difflib would not find, keyed by the spec lower-cased with only letters kept.
_NEAR_MISSES: dict[str, str] = {
    **dict.fromkeys(
        [
            "england",
            "wales",
            "englandandwales",
            "englandwales",
            "eng",
            "wls",
            "gbeng",
            "gbwls",
            "ukeng",
            "ukwls",
            "cymru",
            "cymrualloegr",
            "ew",
        ],
        "england-and-wales",
    ),
    **dict.fromkeys(["scot", "sct", "gbsct", "uksct", "alba", "yralban"], "scotland"),
    **dict.fromkeys(
        ["ni", "nir", "gbnir", "uknir", "northernireland", "ulster", "norniron"],
        "northern-ireland",
    ),
}
_WHOLE_UK = {"uk", "gb", "gbr", "unitedkingdom", "greatbritain", "britain"}


def describe_specs() -> str:
    """One line of help: the values `bank_holidays` accepts."""
    return (
        '"england-and-wales", "scotland", "northern-ireland", "none" (no bank holidays), '
        "or a country code the holidays package knows, optionally with a subdivision "
        '(for example "IE", "US-CA", "DE-BY")'
    )


class BankHolidays:
    """The bank holidays of one place, by local date. Years load on first use and stay cached.

    Reads need no lock: a year's table is built completely before it is published in `_years`,
    and a dict lookup is atomic, so several threads may share one calendar.
    """

    def __init__(self, spec: str, label: str, load_year: Callable[[int], Mapping[date, str]]):
        self.spec = spec
        self.label = label
        self._load_year = load_year
        self._years: dict[int, dict[date, tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BankHolidays({self.spec!r})"

    def _year(self, year: int) -> dict[date, tuple[str, str]]:
        table = self._years.get(year)
        if table is None:
            with self._lock:
                table = self._years.get(year)
                if table is None:
                    table = {
                        day: (name, WELSH_NAMES.get(name, name))
                        for day, name in self._load_year(year).items()
                    }
                    self._years[year] = table
        return table

    def name_on(self, day: date, language: str = "en") -> str | None:
        """The holiday's name on this local date, or None. Welsh ("cy") where known."""
        if isinstance(day, datetime):
            # A datetime never equals a date, so the lookup would quietly miss; and which local
            # date a UTC instant falls on is the caller's question, not ours.
            raise TypeError(f"name_on takes a local date, not a datetime: {day!r}")
        names = self._year(day.year).get(day)
        if names is None:
            return None
        return names[1] if language == "cy" else names[0]

    def between(self, start: date, end: date, language: str = "en") -> list[tuple[date, str]]:
        """Every holiday from start to end, both included, in date order."""
        index = 1 if language == "cy" else 0
        found: list[tuple[date, str]] = []
        for year in range(start.year, end.year + 1):
            for day, names in self._year(year).items():
                if start <= day <= end:
                    found.append((day, names[index]))
        found.sort()
        return found


def load_bank_holidays(spec: str) -> BankHolidays:
    """The calendar named by rules.toml's `bank_holidays`; ValueError, with a hint, if unknown."""
    if spec in UK_NATIONS:
        _govuk()  # read the shipped file now, so a broken install fails at startup
        return BankHolidays(spec, f"{UK_NATIONS[spec][1]} bank holidays", _uk_loader(spec))
    if spec == NONE:
        return BankHolidays(spec, "no bank holidays", lambda year: {})
    country, _, subdiv = spec.partition("-")
    supported = _countries()
    if country in supported and country != "GB" and (not subdiv or subdiv in supported[country]):
        return BankHolidays(spec, _country_label(country, subdiv), _country_loader(country, subdiv))
    raise ValueError(_unknown_spec_message(spec))


# --- gov.uk's list ----------------------------------------------------------------------------

GovUk = dict[str, tuple[range, dict[int, dict[date, str]]]]


def parse_govuk(data: Mapping[str, Any]) -> GovUk:
    """gov.uk's bank-holidays.json as {division: (years covered, {year: {date: title}})}."""
    out: GovUk = {}
    for division in UK_NATIONS:
        by_year: dict[int, dict[date, str]] = {}
        for event in data[division]["events"]:
            day = date.fromisoformat(event["date"])
            by_year.setdefault(day.year, {})[day] = event["title"]
        out[division] = (range(min(by_year), max(by_year) + 1), by_year)
    return out


@cache
def _govuk() -> GovUk:
    text = resources.files("bot").joinpath("data/govuk-bank-holidays.json").read_text("utf-8")
    return parse_govuk(json.loads(text))


def _uk_loader(nation: str) -> Callable[[int], Mapping[date, str]]:
    covered, by_year = _govuk()[nation]

    def load(year: int) -> Mapping[date, str]:
        if year in covered:
            return by_year.get(year, {})
        return fallback_year(nation, year)

    return load


def _package() -> ModuleType:
    """The holidays package, imported on first use: gov.uk's file covers the years a UK desk
    needs, and the package (with dateutil) is about 5 MB of memory a process never uses then."""
    import holidays

    return holidays


def fallback_year(nation: str, year: int) -> dict[date, str]:
    """One year of a UK nation's bank holidays from the holidays package, as gov.uk would list it.

    Used for years gov.uk's file does not cover. Two differences are smoothed out:
    - holidays lists a holiday on its weekend date *and* on the substitute weekday ("Christmas
      Day" on Saturday 25 December 2027, "Christmas Day (observed)" on Monday 27th). Only the
      substitute is a bank holiday - banks and offices are shut that Monday, not on top of the
      weekend - and gov.uk lists only the substitute. A desk staffed at weekends must stay open
      on the Saturday, so the weekend original is dropped whenever a substitute exists.
    - its names differ ("May Day", "Saint Andrew's Day"); they are renamed to gov.uk's titles.
      Where two holidays share a substitute day (Scotland when 1 January is a Sunday), the
      substitute takes the name, as gov.uk has done since 2023.
    """
    subdiv = UK_NATIONS[nation][0]
    source = _package().country_holidays("GB", subdiv=subdiv, years=year, language="en_GB")
    entries = {day: source.get_list(day) for day in source if day.year == year}
    substituted = {
        name.removesuffix(_OBSERVED)
        for names in entries.values()
        for name in names
        if name.endswith(_OBSERVED)
    }
    out: dict[date, str] = {}
    for day, names in sorted(entries.items()):
        if day.weekday() >= 5:
            names = [n for n in names if n.endswith(_OBSERVED) or n not in substituted]
        if not names:
            continue
        names.sort(key=lambda n: not n.endswith(_OBSERVED))  # a substitute's name first
        base = names[0].removesuffix(_OBSERVED)
        out[day] = _GOVUK_TITLES.get(base, base)
    return out


# --- other countries --------------------------------------------------------------------------


@cache
def _countries() -> dict[str, list[str]]:
    countries: dict[str, list[str]] = _package().list_supported_countries(include_aliases=False)
    return countries


def _country_loader(country: str, subdiv: str) -> Callable[[int], Mapping[date, str]]:
    holidays = _package()
    cls = getattr(holidays, country)
    # English names where the package has them ("en_IE" for Ireland), else its own language.
    default: str = cls.default_language or ""
    language: str | None = None
    if default.startswith("en"):
        language = default
    elif "en_GB" in cls.supported_languages:
        language = "en_GB"
    elif "en_US" in cls.supported_languages:
        language = "en_US"

    def load(year: int) -> Mapping[date, str]:
        # Countries are taken as the package gives them, observed days and all: only the UK's
        # substitute rule is known well enough here to reshape.
        source = holidays.country_holidays(
            country, subdiv=subdiv or None, years=year, language=language
        )
        return {day: name for day, name in source.items() if day.year == year}

    return load


def _country_label(country: str, subdiv: str) -> str:
    from babel import Locale  # only needed for the label; Babel is slow to import

    name = Locale("en", "GB").territories.get(country, country)
    return f"{name} ({subdiv}) public holidays" if subdiv else f"{name} public holidays"


# --- errors -----------------------------------------------------------------------------------


def _unknown_spec_message(spec: str) -> str:
    hint = _suggestion(spec)
    hint = f" {hint}" if hint else ""
    return f"{spec!r} is not a bank holiday calendar.{hint} Accepted: {describe_specs()}."


def _suggestion(spec: str) -> str:
    key = re.sub(r"[^a-z]", "", spec.lower())
    whole_uk = spec.upper().startswith(("GB-", "UK-")) and key not in _NEAR_MISSES
    if key in _WHOLE_UK or whole_uk:
        return (
            "The UK has three bank holiday calendars: use 'england-and-wales', "
            "'scotland' or 'northern-ireland'."
        )
    if key in _NEAR_MISSES:
        return f"Did you mean '{_NEAR_MISSES[key]}'?"
    ours = {re.sub(r"[^a-z]", "", name): name for name in [*UK_NATIONS, NONE]}
    close = difflib.get_close_matches(key, ours, n=1, cutoff=0.75)
    if close:
        return f"Did you mean '{ours[close[0]]}'?"
    supported = _countries()
    country, _, subdiv = spec.strip().upper().partition("-")
    country = _alias(country)
    if country in supported and country != "GB":
        if not subdiv:
            return f"Did you mean '{country}'?"
        subdivs = supported[country]
        if subdiv in subdivs:
            return f"Did you mean '{country}-{subdiv}'?"
        if not subdivs:
            return f"The holidays package has no subdivisions for {country}: use '{country}'."
        return f"The holidays package knows these {country} subdivisions: {', '.join(subdivs)}."
    return ""


def _alias(code: str) -> str:
    """A three-letter country code as the two-letter one, when the holidays package knows it."""
    holidays = _package()
    if len(code) == 3 and code in holidays.list_supported_countries(include_aliases=True):
        try:
            return str(holidays.country_holidays(code).country)
        except (NotImplementedError, AttributeError, KeyError):
            return code
    return code
