"""Saying times, dates and weekly hours in English and Welsh."""

# Short forms use en dashes (U+2013) on purpose.

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.when import say_date, say_day, say_hours, say_time, say_weekday, say_when

LONDON = ZoneInfo("Europe/London")


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("hour", "minute", "en", "cy"),
    [
        (0, 0, "midnight", "hanner nos"),
        (0, 30, "12:30am", "12:30yb"),
        (1, 5, "1:05am", "1:05yb"),
        (9, 0, "9am", "9yb"),
        (11, 59, "11:59am", "11:59yb"),
        (12, 0, "midday", "hanner dydd"),
        (12, 15, "12:15pm", "12:15yh"),
        (13, 0, "1pm", "1yh"),
        (17, 30, "5:30pm", "5:30yh"),
        (23, 59, "11:59pm", "11:59yh"),
    ],
)
def test_say_time(hour: int, minute: int, en: str, cy: str) -> None:
    moment = at(2026, 5, 5, hour, minute)
    assert say_time(moment, "en") == en
    assert say_time(moment, "cy") == cy
    assert say_time(time(hour, minute), "en") == en


def test_say_time_drops_seconds() -> None:
    assert say_time(at(2026, 5, 5, 16, 59) + timedelta(seconds=59), "en") == "4:59pm"


@pytest.mark.parametrize(
    ("day", "today", "en", "cy"),
    [
        (date(2025, 5, 6), date(2025, 5, 2), "Tuesday 6 May", "dydd Mawrth 6 Mai"),
        (
            date(2027, 1, 1),
            date(2026, 12, 31),
            "Friday 1 January 2027",
            "dydd Gwener 1 Ionawr 2027",
        ),
        (
            date(2026, 12, 31),
            date(2027, 1, 1),
            "Thursday 31 December 2026",
            "dydd Iau 31 Rhagfyr 2026",
        ),
        (date(2026, 2, 1), date(2026, 1, 1), "Sunday 1 February", "dydd Sul 1 Chwefror"),
        (date(2026, 8, 29), date(2026, 1, 1), "Saturday 29 August", "dydd Sadwrn 29 Awst"),
    ],
)
def test_say_date(day: date, today: date, en: str, cy: str) -> None:
    assert say_date(day, today, "en") == en
    assert say_date(day, today, "cy") == cy


@pytest.mark.parametrize(
    ("day", "today", "en", "cy"),
    [
        (date(2026, 5, 5), date(2026, 5, 5), "today", "heddiw"),
        (date(2026, 5, 6), date(2026, 5, 5), "tomorrow", "yfory"),
        (date(2027, 1, 1), date(2026, 12, 31), "tomorrow", "yfory"),
        (date(2026, 5, 7), date(2026, 5, 5), "Thursday 7 May", "dydd Iau 7 Mai"),
        (date(2026, 5, 4), date(2026, 5, 5), "Monday 4 May", "dydd Llun 4 Mai"),
    ],
)
def test_say_day(day: date, today: date, en: str, cy: str) -> None:
    assert say_day(day, today, "en") == en
    assert say_day(day, today, "cy") == cy


@pytest.mark.parametrize(
    ("weekday", "en", "cy"),
    [
        (0, "Monday", "dydd Llun"),
        (1, "Tuesday", "dydd Mawrth"),
        (2, "Wednesday", "dydd Mercher"),
        (3, "Thursday", "dydd Iau"),
        (4, "Friday", "dydd Gwener"),
        (5, "Saturday", "dydd Sadwrn"),
        (6, "Sunday", "dydd Sul"),
    ],
)
def test_say_weekday(weekday: int, en: str, cy: str) -> None:
    day = date(2026, 5, 4) + timedelta(days=weekday)  # Monday 4 May 2026
    assert say_weekday(day, "en") == en
    assert say_weekday(day, "cy") == cy


NOW = at(2026, 5, 1, 16, 0)  # Friday 1 May 2026, 4pm


@pytest.mark.parametrize(
    ("moment", "now", "en", "cy"),
    [
        (at(2026, 5, 1, 17), NOW, "5pm today", "5yh heddiw"),
        (at(2026, 5, 1, 12), NOW, "midday today", "hanner dydd heddiw"),
        (at(2026, 5, 2, 9, 30), NOW, "9:30am tomorrow", "9:30yb yfory"),
        (at(2026, 5, 5, 13), NOW, "1pm on Tuesday 5 May", "1yh ddydd Mawrth 5 Mai"),
        (at(2026, 5, 4, 9), NOW, "9am on Monday 4 May", "9yb ddydd Llun 4 Mai"),
        # across midnight: 11:30pm now, so 8am is tomorrow, and 30 minutes later is "today"
        (at(2026, 5, 2, 8), at(2026, 5, 1, 23, 30), "8am tomorrow", "8yb yfory"),
        (at(2026, 5, 2, 0, 30), at(2026, 5, 2, 0, 1), "12:30am today", "12:30yb heddiw"),
        (at(2026, 5, 2, 0, 0), at(2026, 5, 1, 23, 30), "midnight tonight", "hanner nos heno"),
        (at(2026, 5, 1, 0, 0), NOW, "midnight last night", "hanner nos neithiwr"),
        (at(2026, 5, 5, 0, 0), NOW, "midnight on Tuesday 5 May", "hanner nos ddydd Mawrth 5 Mai"),
        # year boundary
        (at(2027, 1, 1, 9), at(2026, 12, 31, 16), "9am tomorrow", "9yb yfory"),
        (
            at(2027, 1, 4, 9),
            at(2026, 12, 31, 16),
            "9am on Monday 4 January 2027",
            "9yb ddydd Llun 4 Ionawr 2027",
        ),
        # clock change: Sunday 29 March 2026, 1am becomes 2am
        (at(2026, 3, 30, 9), at(2026, 3, 29, 0, 30), "9am tomorrow", "9yb yfory"),
        (at(2026, 10, 25, 1, 30), at(2026, 10, 24, 23), "1:30am tomorrow", "1:30yb yfory"),
    ],
)
def test_say_when(moment: datetime, now: datetime, en: str, cy: str) -> None:
    assert say_when(moment, now, "en") == en
    assert say_when(moment, now, "cy") == cy


def test_say_when_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        say_when(datetime(2026, 5, 1, 9), NOW, "en")
    with pytest.raises(ValueError, match="aware"):
        say_when(NOW, datetime(2026, 5, 1, 9), "en")


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'fr'"):
        say_when(NOW, NOW, "fr")


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 12, 31, 23, 59),
        timezones=st.just(LONDON),
        allow_imaginary=False,
    ),
    now=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 12, 31, 23, 59),
        timezones=st.just(LONDON),
        allow_imaginary=False,
    ),
    language=st.sampled_from(["en", "cy"]),
)
def test_say_when_never_raises_and_always_says_the_hour(
    moment: datetime, now: datetime, language: str
) -> None:
    said = say_when(moment, now, language)
    assert said.startswith(say_time(moment, language) + " ")
    if moment.minute == 0 and moment.hour in (0, 12):
        words = {("en", 0): "midnight", ("en", 12): "midday"}
        words |= {("cy", 0): "hanner nos", ("cy", 12): "hanner dydd"}
        assert said.startswith(words[language, moment.hour])
    else:
        assert said.startswith(str(moment.hour % 12 or 12))
    if moment.date() - now.date() > timedelta(days=1):
        assert str(moment.day) in said
        assert (str(moment.year) in said) == (moment.year != now.year)


def weekdays(
    ranges: list[tuple[time, time]], days: range = range(5)
) -> dict[int, list[tuple[time, time]]]:
    return {d: ranges for d in days}


NINE_TO_FIVE = [(time(9), time(17))]
SPLIT = [(time(9), time(12, 30)), (time(13, 30), time(17))]
ALL_DAY = [(time(0), time(0))]


@pytest.mark.parametrize(
    ("weekly", "en", "en_short", "cy", "cy_short"),
    [
        (
            weekdays(NINE_TO_FIVE, range(4)) | {4: [(time(9), time(16, 30))]},
            "Monday to Thursday 9am to 5pm, Friday 9am to 4:30pm",
            "Mon–Thu 9am–5pm, Fri 9am–4:30pm",
            "dydd Llun i ddydd Iau 9yb i 5yh, dydd Gwener 9yb i 4:30yh",
            "Llun–Iau 9yb–5yh, Gwen 9yb–4:30yh",
        ),
        (
            weekdays(NINE_TO_FIVE),
            "Monday to Friday 9am to 5pm",
            "Mon–Fri 9am–5pm",
            "dydd Llun i ddydd Gwener 9yb i 5yh",
            "Llun–Gwen 9yb–5yh",
        ),
        (
            weekdays(SPLIT, range(1)),
            "Monday 9am to 12:30pm and 1:30pm to 5pm",
            "Mon 9am–12:30pm, 1:30pm–5pm",
            "dydd Llun 9yb i 12:30yh ac 1:30yh i 5yh",
            "Llun 9yb–12:30yh, 1:30yh–5yh",
        ),
        (
            {0: [(time(8), time(10)), (time(12), time(13)), (time(14), time(16))]},
            "Monday 8am to 10am, midday to 1pm and 2pm to 4pm",
            "Mon 8am–10am, midday–1pm, 2pm–4pm",
            "dydd Llun 8yb i 10yb, hanner dydd i 1yh a 2yh i 4yh",
            "Llun 8yb–10yb, hanner dydd–1yh, 2yh–4yh",
        ),
        (
            {5: [(time(10), time(16))], 6: [(time(10), time(16))]},
            "Saturday and Sunday 10am to 4pm",
            "Sat–Sun 10am–4pm",
            "dydd Sadwrn a dydd Sul 10yb i 4yh",
            "Sad–Sul 10yb–4yh",
        ),
        (
            {0: NINE_TO_FIVE, 2: NINE_TO_FIVE},
            "Monday 9am to 5pm, Wednesday 9am to 5pm",
            "Mon 9am–5pm, Wed 9am–5pm",
            "dydd Llun 9yb i 5yh, dydd Mercher 9yb i 5yh",
            "Llun 9yb–5yh, Mer 9yb–5yh",
        ),
        (
            {4: [(time(18), time(0))], 5: [(time(22), time(2))]},
            "Friday 6pm to midnight, Saturday 10pm to 2am",
            "Fri 6pm–midnight, Sat 10pm–2am",
            "dydd Gwener 6yh i hanner nos, dydd Sadwrn 10yh i 2yb",
            "Gwen 6yh–hanner nos, Sad 10yh–2yb",
        ),
        (
            weekdays(ALL_DAY) | {5: NINE_TO_FIVE},
            "Monday to Friday 24 hours, Saturday 9am to 5pm",
            "Mon–Fri 24 hours, Sat 9am–5pm",
            "dydd Llun i ddydd Gwener 24 awr, dydd Sadwrn 9yb i 5yh",
            "Llun–Gwen 24 awr, Sad 9yb–5yh",
        ),
        (
            weekdays(ALL_DAY, range(7)),
            "24 hours every day",
            "24 hours every day",
            "24 awr bob dydd",
            "24 awr bob dydd",
        ),
        (
            weekdays(NINE_TO_FIVE, range(7)),
            "every day 9am to 5pm",
            "every day 9am–5pm",
            "bob dydd 9yb i 5yh",
            "bob dydd 9yb–5yh",
        ),
        ({}, "not staffed", "not staffed", "heb staff", "heb staff"),
        ({0: [], 6: []}, "not staffed", "not staffed", "heb staff", "heb staff"),
    ],
)
def test_say_hours(
    weekly: dict[int, list[tuple[time, time]]], en: str, en_short: str, cy: str, cy_short: str
) -> None:
    assert say_hours(weekly, "en") == en
    assert say_hours(weekly, "en", short=True) == en_short
    assert say_hours(weekly, "cy") == cy
    assert say_hours(weekly, "cy", short=True) == cy_short


def test_say_hours_sorts_ranges_and_refuses_bad_days() -> None:
    assert say_hours({0: list(reversed(SPLIT))}, "en") == "Monday 9am to 12:30pm and 1:30pm to 5pm"
    with pytest.raises(ValueError, match=r"\[7\]"):
        say_hours({7: NINE_TO_FIVE}, "en")


def test_the_english_names_written_out_are_babels() -> None:
    """English days and months are written out (Babel's locale data is only read for Welsh):
    they must stay exactly what Babel's en_GB says."""
    from bot.when import ENGLISH_DAYS, ENGLISH_MONTHS, ENGLISH_SHORT_DAYS, _babel_names

    days, short, months = _babel_names("en_GB")
    assert (list(ENGLISH_DAYS), list(ENGLISH_SHORT_DAYS), list(ENGLISH_MONTHS)) == (
        days,
        short,
        months,
    )
