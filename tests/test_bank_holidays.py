"""Bank holiday calendars against gov.uk's own list, the holidays-package fallback, and errors."""

# gov.uk writes titles with curly apostrophes (U+2019); the expected values do too.

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from pathlib import Path

import pytest

from bot.bank_holidays import (
    UK_NATIONS,
    WELSH_NAMES,
    BankHolidays,
    describe_specs,
    fallback_year,
    load_bank_holidays,
)

# A copy of https://www.gov.uk/bank-holidays.json kept for the tests, so that a broken copy in
# the package (bot/data/govuk-bank-holidays.json) is caught rather than compared with itself.
GOVUK_FILE = Path(__file__).parent / "data" / "govuk-bank-holidays-2012-2027.json"
YEARS = range(2012, 2028)

# Announced after the tests' copy was taken, and shipped in the package's copy.
ADDED_SINCE_COPY = {("scotland", date(2026, 6, 15)): "World Cup bank holiday"}

# Where the holidays package (through fallback_year) and gov.uk's copy disagree on a weekday.
FALLBACK_EXTRA_DATES = {("scotland", date(2026, 6, 15))}  # in holidays, not in the old copy
FALLBACK_OTHER_NAMES = {
    # gov.uk named the 2020 early May holiday, moved to VE day; holidays calls it "May Day".
    ("england-and-wales", date(2020, 5, 8)): "Early May bank holiday",
    ("scotland", date(2020, 5, 8)): "Early May bank holiday",
    ("northern-ireland", date(2020, 5, 8)): "Early May bank holiday",
    # 1 January on a Sunday: gov.uk named these two days the other way round in 2012 and 2017
    # than in 2023; the fallback follows 2023.
    ("scotland", date(2012, 1, 2)): "New Year’s Day",
    ("scotland", date(2012, 1, 3)): "2nd January",
    ("scotland", date(2017, 1, 2)): "New Year’s Day",
    ("scotland", date(2017, 1, 3)): "2nd January",
}


def govuk(nation: str) -> dict[date, str]:
    data = json.loads(GOVUK_FILE.read_text("utf-8"))
    return {date.fromisoformat(e["date"]): e["title"] for e in data[nation]["events"]}


@pytest.mark.parametrize("nation", list(UK_NATIONS))
def test_each_nation_is_govuk_list_2012_to_2027(nation: str) -> None:
    expected = govuk(nation)
    expected |= {day: name for (n, day), name in ADDED_SINCE_COPY.items() if n == nation}
    calendar = load_bank_holidays(nation)
    got = calendar.between(date(2012, 1, 1), date(2027, 12, 31))
    assert got == sorted(expected.items())
    for day, name in expected.items():
        assert calendar.name_on(day) == name


def test_govuk_copy_covers_what_the_tests_expect() -> None:
    for nation in UK_NATIONS:
        assert {d.year for d in govuk(nation)} == set(YEARS)


@pytest.mark.parametrize("nation", list(UK_NATIONS))
def test_fallback_agrees_with_govuk_on_every_weekday_2012_to_2027(nation: str) -> None:
    official = govuk(nation)
    fallback = {day: name for year in YEARS for day, name in fallback_year(nation, year).items()}
    assert all(day.weekday() < 5 for day in fallback), "a weekend date is never a bank holiday"
    extra = {(nation, day) for day in set(fallback) - set(official)}
    assert extra == {key for key in FALLBACK_EXTRA_DATES if key[0] == nation}
    assert set(official) <= set(fallback)
    renamed = {(nation, day): fallback[day] for day in official if fallback[day] != official[day]}
    assert renamed == {k: v for k, v in FALLBACK_OTHER_NAMES.items() if k[0] == nation}


# Worked out by hand from the rules (Easter 2030: 21 April; 2031: 13 April; 2032: 28 March).
ENGLAND_AND_WALES_LATER = {
    2030: [
        (date(2030, 1, 1), "New Year’s Day"),
        (date(2030, 4, 19), "Good Friday"),
        (date(2030, 4, 22), "Easter Monday"),
        (date(2030, 5, 6), "Early May bank holiday"),
        (date(2030, 5, 27), "Spring bank holiday"),
        (date(2030, 8, 26), "Summer bank holiday"),
        (date(2030, 12, 25), "Christmas Day"),
        (date(2030, 12, 26), "Boxing Day"),
    ],
    2031: [
        (date(2031, 1, 1), "New Year’s Day"),
        (date(2031, 4, 11), "Good Friday"),
        (date(2031, 4, 14), "Easter Monday"),
        (date(2031, 5, 5), "Early May bank holiday"),
        (date(2031, 5, 26), "Spring bank holiday"),
        (date(2031, 8, 25), "Summer bank holiday"),
        (date(2031, 12, 25), "Christmas Day"),
        (date(2031, 12, 26), "Boxing Day"),
    ],
    2032: [  # Christmas Day on a Saturday, Boxing Day on a Sunday
        (date(2032, 1, 1), "New Year’s Day"),
        (date(2032, 3, 26), "Good Friday"),
        (date(2032, 3, 29), "Easter Monday"),
        (date(2032, 5, 3), "Early May bank holiday"),
        (date(2032, 5, 31), "Spring bank holiday"),
        (date(2032, 8, 30), "Summer bank holiday"),
        (date(2032, 12, 27), "Christmas Day"),
        (date(2032, 12, 28), "Boxing Day"),
    ],
}


@pytest.mark.parametrize("year", sorted(ENGLAND_AND_WALES_LATER))
def test_years_after_govuk_list_come_from_the_fallback(year: int) -> None:
    calendar = load_bank_holidays("england-and-wales")
    assert calendar.between(date(year, 1, 1), date(year, 12, 31)) == ENGLAND_AND_WALES_LATER[year]


def test_fallback_drops_the_weekend_date_when_a_substitute_exists() -> None:
    calendar = load_bank_holidays("england-and-wales")
    assert calendar.name_on(date(2032, 12, 25)) is None  # Saturday
    assert calendar.name_on(date(2032, 12, 26)) is None  # Sunday
    scotland = load_bank_holidays("scotland")
    # 1 January 2033 is a Saturday and 2 January a Sunday: Monday and Tuesday are the holidays.
    assert scotland.between(date(2033, 1, 1), date(2033, 1, 5)) == [
        (date(2033, 1, 3), "New Year’s Day"),
        (date(2033, 1, 4), "2nd January"),
    ]


@pytest.mark.parametrize("nation", list(UK_NATIONS))
def test_christmas_2027_on_a_saturday(nation: str) -> None:
    calendar = load_bank_holidays(nation)
    assert calendar.name_on(date(2027, 12, 25)) is None
    assert calendar.name_on(date(2027, 12, 26)) is None
    assert calendar.name_on(date(2027, 12, 27)) == "Christmas Day"
    assert calendar.name_on(date(2027, 12, 28)) == "Boxing Day"


def test_scotland_has_2_january_and_st_andrews_day() -> None:
    scotland = load_bank_holidays("scotland")
    assert scotland.name_on(date(2026, 1, 2)) == "2nd January"
    assert scotland.name_on(date(2026, 11, 30)) == "St Andrew’s Day"
    assert scotland.name_on(date(2025, 11, 30)) is None  # a Sunday
    assert scotland.name_on(date(2025, 12, 1)) == "St Andrew’s Day"  # its substitute
    assert scotland.name_on(date(2026, 4, 6)) is None  # no Easter Monday in Scotland
    assert scotland.name_on(date(2026, 8, 3)) == "Summer bank holiday"  # first Monday
    england = load_bank_holidays("england-and-wales")
    assert england.name_on(date(2026, 1, 2)) is None
    assert england.name_on(date(2026, 11, 30)) is None
    assert england.name_on(date(2026, 6, 15)) is None


def test_northern_ireland_has_st_patricks_day_and_the_boyne() -> None:
    ni = load_bank_holidays("northern-ireland")
    assert ni.name_on(date(2026, 3, 17)) == "St Patrick’s Day"
    assert ni.name_on(date(2026, 7, 12)) is None  # a Sunday
    assert ni.name_on(date(2026, 7, 13)) == "Battle of the Boyne (Orangemen’s Day)"
    assert ni.name_on(date(2030, 7, 12)) == "Battle of the Boyne (Orangemen’s Day)"  # fallback
    assert load_bank_holidays("england-and-wales").name_on(date(2026, 3, 17)) is None


@pytest.mark.parametrize(
    ("spec", "day", "name"),
    [
        ("IE", date(2027, 2, 1), "Saint Brigid's Day"),
        ("IE", date(2026, 3, 17), "Saint Patrick's Day"),
        ("US-CA", date(2026, 3, 31), "Cesar Chavez Day"),
        ("US-CA", date(2026, 7, 4), "Independence Day"),
        ("DE-BY", date(2026, 1, 6), "Epiphany"),
    ],
)
def test_other_countries_load_from_the_holidays_package(spec: str, day: date, name: str) -> None:
    calendar = load_bank_holidays(spec)
    assert calendar.spec == spec
    assert calendar.name_on(day) == name
    assert calendar.name_on(date(2026, 3, 4)) is None


def test_labels() -> None:
    assert load_bank_holidays("england-and-wales").label == "England and Wales bank holidays"
    assert load_bank_holidays("scotland").label == "Scotland bank holidays"
    assert load_bank_holidays("northern-ireland").label == "Northern Ireland bank holidays"
    assert load_bank_holidays("IE").label == "Ireland public holidays"
    assert load_bank_holidays("US-CA").label == "United States (CA) public holidays"


def test_none_is_an_empty_calendar() -> None:
    calendar = load_bank_holidays("none")
    assert calendar.name_on(date(2026, 12, 25)) is None
    assert calendar.between(date(2020, 1, 1), date(2030, 12, 31)) == []


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("england", "Did you mean 'england-and-wales'?"),
        ("wales", "Did you mean 'england-and-wales'?"),
        ("England and Wales", "Did you mean 'england-and-wales'?"),
        ("scotlnd", "Did you mean 'scotland'?"),
        ("Scotland", "Did you mean 'scotland'?"),
        ("GB-SCT", "Did you mean 'scotland'?"),
        ("northern ireland", "Did you mean 'northern-ireland'?"),
        ("GB-NIR", "Did you mean 'northern-ireland'?"),
        ("uk", "The UK has three bank holiday calendars"),
        ("GB", "The UK has three bank holiday calendars"),
        ("ie", "Did you mean 'IE'?"),
        ("IRL", "Did you mean 'IE'?"),
        ("us-ca", "Did you mean 'US-CA'?"),
        ("US-XX", "The holidays package knows these US subdivisions: AK, AL"),
        ("IE-D", "no subdivisions for IE"),
    ],
)
def test_unknown_specs_name_the_value_and_suggest(spec: str, hint: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_bank_holidays(spec)
    message = str(caught.value)
    assert repr(spec) in message
    assert hint in message
    assert describe_specs() in message


def test_unknown_spec_without_a_near_miss_still_lists_what_is_accepted() -> None:
    with pytest.raises(ValueError, match=r"england-and-wales.*IE"):
        load_bank_holidays("zz-top")


def test_describe_specs_is_one_line() -> None:
    text = describe_specs()
    assert "\n" not in text
    for value in ("england-and-wales", "scotland", "northern-ireland", "none", "US-CA"):
        assert value in text


def test_welsh_names() -> None:
    calendar = load_bank_holidays("england-and-wales")
    cases = {
        date(2026, 1, 1): "Dydd Calan",
        date(2026, 4, 3): "Gwener y Groglith",
        date(2026, 4, 6): "Llun y Pasg",
        date(2026, 5, 4): "Gŵyl banc dechrau Mai",
        date(2026, 5, 25): "Gŵyl banc y gwanwyn",
        date(2026, 8, 31): "Gŵyl banc yr haf",
        date(2026, 12, 25): "Dydd Nadolig",
        date(2026, 12, 28): "Dydd San Steffan",
        date(2022, 9, 19): "Gŵyl y Banc ar gyfer Angladd Gwladol y Frenhines Elizabeth II",
        date(2023, 5, 8): "Gŵyl y banc ar gyfer coroni Brenin Siarl III",
        date(2022, 6, 3): "Gŵyl banc Jiwbilî Blatinwm",
        date(2012, 6, 5): "Jiwbilî Ddiemwnt y Frenhines",
        date(2020, 5, 8): "Gŵyl banc dechrau Mai (diwrnod VE)",
        date(2031, 12, 25): "Dydd Nadolig",  # from the fallback
    }
    for day, welsh in cases.items():
        assert calendar.name_on(day, "cy") == welsh
    assert calendar.name_on(date(2026, 12, 25), "en") == "Christmas Day"
    assert calendar.between(date(2026, 12, 24), date(2026, 12, 31), "cy") == [
        (date(2026, 12, 25), "Dydd Nadolig"),
        (date(2026, 12, 28), "Dydd San Steffan"),
    ]


def test_every_govuk_title_has_a_welsh_name() -> None:
    titles = {t for nation in UK_NATIONS for t in govuk(nation).values()}
    assert titles - set(WELSH_NAMES) == set()


def test_title_without_welsh_name_stays_english_in_welsh() -> None:
    scotland = load_bank_holidays("scotland")
    assert scotland.name_on(date(2026, 6, 15), "cy") == "World Cup bank holiday"


def test_between_is_inclusive_and_crosses_years() -> None:
    calendar = load_bank_holidays("england-and-wales")
    assert calendar.between(date(2027, 12, 27), date(2028, 1, 3)) == [
        (date(2027, 12, 27), "Christmas Day"),
        (date(2027, 12, 28), "Boxing Day"),
        (date(2028, 1, 3), "New Year’s Day"),  # 1 January 2028 is a Saturday
    ]
    assert calendar.between(date(2026, 12, 26), date(2026, 12, 24)) == []


def test_name_on_refuses_a_datetime() -> None:
    with pytest.raises(TypeError, match="local date"):
        load_bank_holidays("scotland").name_on(datetime(2026, 12, 25, 9, 0))


def test_years_load_once_and_threads_agree() -> None:
    calls: list[int] = []

    def load(year: int) -> dict[date, str]:
        calls.append(year)
        return {date(year, 12, 25): "Christmas Day"}

    calendar = BankHolidays("test", "test", load)
    results: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(calendar.name_on(date(2040, 12, 25))))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["Christmas Day"] * 16
    assert calls == [2040]
