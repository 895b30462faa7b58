"""Counting as Bluesky and Mastodon count: grapheme clusters, what a reader sees as one character
(é written as e and an accent, 👍🏽, 👨‍👩‍👧, 🇬🇧, and the Welsh flag, a black flag and six tags).

Python's standard library cannot split text into grapheme clusters; the `regex` module's `\\X`
does (Unicode's extended grapheme clusters, UAX #29, kept current with each Unicode release).
It is imported on first use, so a server that never counts for these platforms never loads it.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex


@functools.cache
def _cluster() -> regex.Pattern[str]:
    import regex  # about 2 MB: only where a Bluesky or Mastodon length is counted

    return regex.compile(r"\X")


def graphemes(text: str) -> int:
    """How many grapheme clusters `text` has, as Bluesky and Mastodon count them."""
    if text.isascii():  # every ASCII character but CR LF is one cluster
        return len(text) - text.count("\r\n")
    return sum(1 for _ in _cluster().finditer(text))


_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w/@])@(\w+)@[\w.-]+\w", re.ASCII)


def mastodon_length(text: str) -> int:
    """The length Mastodon counts against an instance's limit (StatusLengthValidator): grapheme
    clusters, with each link counted as 23 and @name@instance as @name."""
    counted = _MENTION.sub(lambda m: f"@{m.group(1)}", _URL.sub("x" * 23, text))
    return graphemes(counted)
