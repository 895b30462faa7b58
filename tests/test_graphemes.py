"""Grapheme clusters counted as Bluesky and Mastodon count them, checked against the `regex`
module's \\X (a full UAX #29 segmentation), and never fewer where ours is approximate."""

from __future__ import annotations

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.graphemes import graphemes, mastodon_length
from bot.channels.posting import too_long

WELSH_FLAG = "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f"


def reference(text: str) -> int:
    return len(regex.findall(r"\X", text))


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Closed on Monday.", 17),
        ("Ar gau ddydd Llun. Gŵyl y banc.", 31),
        ("Ar gau ddydd Llun. Gw\u0302yl y banc.", 31),  # ŵ as w and a combining circumflex
        ("👍🏽", 1),  # a skin tone
        ("👨‍👩‍👧", 1),  # a family, joined
        ("🇬🇧🇫🇷", 2),  # two flags from four regional indicators
        (WELSH_FLAG, 1),  # a black flag and six tags
        ("❤️", 1),  # an emoji and its presentation selector
        ("a\r\nb", 3),
        ("한국어", 3),
        ("\u1100\u1161\u11a8", 1),  # a Hangul syllable from its letters
    ],
)
def test_what_a_reader_sees_as_one_counts_one(text: str, count: int) -> None:
    assert graphemes(text) == count == reference(text)


# Characters whose classes this module has exactly, mixed freely.
ALPHABET = [
    "a", "Z", " ", ".", "\n", "\r", "\t", "é", "ŵ", "ß", "\u0301", "\u0302", "\u0308",
    "\u200d", "\u200c", "\ufe0f", "👍", "🏽", "👨", "👩", "❤", "☃", "🇬", "🇧", "🇫",
    "🏴", "\U000e0067", "\U000e007f", "\u1100", "\u1161", "\u11a8", "가", "각", "ก", "\u0e33",
    "\u0600", "1", "©", "\u00ad", "中", "ا", "\u0651",
]  # fmt: skip


@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join))
def test_the_count_matches_a_full_segmentation(text: str) -> None:
    assert graphemes(text) == reference(text)


@given(st.text(max_size=60))
def test_the_count_is_never_lower_than_a_full_segmentation(text: str) -> None:
    assert graphemes(text) >= reference(text)


def test_bluesky_takes_300_of_them() -> None:
    assert too_long("bluesky", "👨‍👩‍👧" * 300) is None  # 2,400 code points, 300 clusters
    why = too_long("bluesky", "a" * 301)
    assert why is not None and why.startswith("301 of 300 characters")


def test_mastodon_counts_a_link_as_23_and_a_remote_name_as_its_local_part() -> None:
    assert mastodon_length("See https://www.anytown.gov.uk/a/very/long/path/indeed") == 4 + 23
    assert mastodon_length("Thanks @jo@example.org!") == len("Thanks @jo!")
