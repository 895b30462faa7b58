"""Grapheme clusters counted as Bluesky and Mastodon count them: what a reader sees as one
character counts one, and the cheap ASCII path agrees with the full segmentation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.graphemes import graphemes, mastodon_length
from bot.channels.posting import too_long

WELSH_FLAG = "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f"


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
    assert graphemes(text) == count


def test_bluesky_takes_300_of_them() -> None:
    assert too_long("bluesky", "👨‍👩‍👧" * 300) is None  # 2,400 code points, 300 clusters
    why = too_long("bluesky", "a" * 301)
    assert why is not None and why.startswith("301 of 300 characters")


def test_mastodon_counts_a_link_as_23_and_a_remote_name_as_its_local_part() -> None:
    assert mastodon_length("See https://www.anytown.gov.uk/a/very/long/path/indeed") == 4 + 23
    assert mastodon_length("Thanks @jo@example.org!") == len("Thanks @jo!")


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_is_counted_as_the_full_segmentation_counts_it(text: str) -> None:
    assert graphemes(text) == graphemes(text + "é") - 1
