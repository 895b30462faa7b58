"""Counting as Bluesky and Mastodon count: grapheme clusters, what a reader sees as one character
(é written as e and an accent, 👍🏽, 👨‍👩‍👧, 🇬🇧, and the Welsh flag, a black flag and six tags).

Python's standard library cannot split text into grapheme clusters and no library that can is a
dependency, so `graphemes` follows Unicode's rules for extended grapheme clusters (UAX #29,
GB3-GB13) with each character's class taken from unicodedata. Where the class is approximated
it errs towards a break, so the count is never lower than the platform's and a text accepted
when it is written is not refused for its length when it is posted:
- Extend is every combining mark (Mn, Me), zero-width non-joiner, emoji skin tones, tags and the
  half-width kana marks; SpacingMark every Mc but the few Myanmar and Tai Tham ones UAX #29
  excludes; Prepend the Arabic number signs and the few others (all rare in posts).
- Extended_Pictographic (only used to join emoji with a zero-width joiner) is the emoji blocks
  taken whole, not character by character.
- Indic conjuncts (GB9c, Unicode 15.1) are not joined: a Hindi or Bengali conjunct counts two.
- Characters newer than this Python's Unicode tables count one each.
tests/test_graphemes.py checks the count against the `regex` module's \\X segmentation.
"""

from __future__ import annotations

import re
import unicodedata

_CR, _LF, _CONTROL, _EXTEND, _ZWJ, _RI, _PREPEND, _SPACING = range(8)
_L, _V, _T, _LV, _LVT, _PICTO, _OTHER = range(8, 15)

# fmt: off
_PREPEND_CHARS = frozenset((
    *range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x0D4E, 0x110BD, 0x110CD,
    0x111C2, 0x111C3, 0x1193F, 0x11941, 0x11A3A, *range(0x11A84, 0x11A8A), 0x11D46, 0x11F02,
))
_NOT_SPACING = frozenset((
    0x102B, 0x102C, 0x1038, *range(0x1062, 0x1065), *range(0x1067, 0x106E), 0x1083,
    *range(0x1087, 0x108D), 0x108F, *range(0x109A, 0x109D), 0x1A61, 0x1A63, 0x1A64,
    0xAA7B, 0xAA7D, 0x11720, 0x11721,
))
_PICTO_SINGLE = frozenset((
    0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x231A, 0x231B, 0x2328, 0x23CF, 0x24C2,
    0x25AA, 0x25AB, 0x25B6, 0x25C0, 0x2934, 0x2935, 0x2B50, 0x2B55, 0x3030, 0x303D,
    0x3297, 0x3299, *range(0x2194, 0x219A), 0x21A9, 0x21AA, *range(0x23E9, 0x23F4),
    *range(0x23F8, 0x23FB), *range(0x25FB, 0x25FF), *range(0x2B05, 0x2B08), 0x2B1B, 0x2B1C,
))
# fmt: on


def _class(c: str) -> int:
    cp = ord(c)
    if cp < 0x7F:  # the common case, quickly
        return _CR if cp == 13 else _LF if cp == 10 else _CONTROL if cp < 32 else _OTHER
    if cp == 0x200D:
        return _ZWJ
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or cp in (0x200C, 0xFF9E, 0xFF9F):
        return _EXTEND
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    if cp in _PREPEND_CHARS:
        return _PREPEND
    if cp in _PICTO_SINGLE or 0x2600 <= cp <= 0x27BF or 0x1F000 <= cp <= 0x1FFFD:
        return _PICTO
    category = unicodedata.category(c)
    if category in ("Mn", "Me"):
        return _EXTEND
    if (category == "Mc" and cp not in _NOT_SPACING) or cp in (0x0E33, 0x0EB3):
        return _SPACING
    if category in ("Cc", "Zl", "Zp", "Cf"):
        return _CONTROL
    return _OTHER


_HANGUL_JOINS = {
    _L: (_L, _V, _LV, _LVT),
    _LV: (_V, _T),
    _V: (_V, _T),
    _LVT: (_T,),
    _T: (_T,),
}


def graphemes(text: str) -> int:
    """How many grapheme clusters `text` has (never fewer than Bluesky or Mastodon count)."""
    if text.isascii():  # every ASCII character but CR LF is one cluster
        return len(text) - text.count("\r\n")
    count = 0
    before = -1  # the previous character's class; -1 at the start
    emoji_zwj = False  # GB11: an emoji, any Extend, then a ZWJ just before
    in_emoji = False  # an emoji followed by Extend only, so far
    odd_ri = False  # GB12/13: an odd number of regional indicators just before
    for c in text:
        now = _class(c)
        if before == -1:
            joins = False
        elif before == _CR and now == _LF:
            joins = True
        elif before in (_CR, _LF, _CONTROL) or now in (_CR, _LF, _CONTROL):
            joins = False
        elif now in _HANGUL_JOINS.get(before, ()) or now in (_EXTEND, _ZWJ, _SPACING):
            joins = True  # GB6-GB9a: Hangul syllables, combining marks, joiners
        elif before == _PREPEND or (now == _PICTO and emoji_zwj):
            joins = True  # GB9b, GB11
        elif now == _RI and before == _RI:
            joins = odd_ri
        else:
            joins = False
        if not joins:
            count += 1
        emoji_zwj = in_emoji and now == _ZWJ
        in_emoji = now == _PICTO or (in_emoji and now == _EXTEND)
        odd_ri = now == _RI and not (before == _RI and odd_ri)
        before = now
    return count


_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w/@])@(\w+)@[\w.-]+\w", re.ASCII)


def mastodon_length(text: str) -> int:
    """The length Mastodon counts against an instance's limit (StatusLengthValidator): grapheme
    clusters, with each link counted as 23 and @name@instance as @name."""
    counted = _MENTION.sub(lambda m: f"@{m.group(1)}", _URL.sub("x" * 23, text))
    return graphemes(counted)
