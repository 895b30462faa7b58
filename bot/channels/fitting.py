"""Fitting a reply into a platform's length limit without losing the message's reference.

Each platform measures length its own way (X weighs most non-Latin symbols two; Bluesky counts
graphemes; Mastodon characters), so the measure is passed in. A reply that does not fit is cut
at a word boundary with "…", never cutting the sentence that holds the reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Measure = Callable[[str], int]

REFERENCE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
_SENTENCE_END = re.compile(r"[.!?:;]\s+|\n")


def shorten(text: str, budget: int, measure: Measure = len) -> str:
    """`text` cut at a word boundary, with "…", to measure at most `budget`."""
    text = text.strip()
    if measure(text) <= budget:
        return text
    words = text.split(" ")
    while words:
        words.pop()
        cut = " ".join(words).rstrip(" ,;:-–") + "…"
        if measure(cut) <= budget:
            return cut
    return ""


def fit(text: str, limit: int, prefix: str = "", measure: Measure = len) -> str:
    """`prefix` + `text` within `limit`, the sentence holding the reference kept whole."""
    full = prefix + text
    if measure(full) <= limit:
        return full
    budget = limit - measure(prefix)
    found = list(REFERENCE.finditer(text))
    if not found:
        return prefix + shorten(text, budget, measure)
    ref = found[-1]
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, ref.start())]
    start = ends[-1] if ends else 0
    keep = text[start:].strip()
    if measure(keep) > budget // 2:  # a long tail after the reference may go
        keep = text[start : ref.end()].strip()
    head = shorten(text[:start], budget - measure(keep) - 1, measure)
    return prefix + (f"{head} {keep}" if head else keep)
