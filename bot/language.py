"""Tells Welsh messages from English ones, so a bilingual body can answer in the same language.

Counts the common words of each language in the message: articles, pronouns, particles,
greetings and the words people use to a council. Place names ("Llanfair", "Aberystwyth") are
not words of either list, so "bins in Llanfair not collected" stays English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-zâêîôûŵŷäëïöüẅÿáéíóúẃý]+")

# Common Welsh words, with their usual mutated forms ("bin" -> "min", "casglu" -> "gasglu").
# Words that are also English words ("a", "i", "am", "man", "hi", "dim", "tan") are left out.
_WELSH = frozenset(
    str.split(
        """
    mae maen yn yr ydy ydw ydi ydych ydyn yw oes oedd roedd bydd fydd bod fod wedi ddim
    heb gyda gydag efo gan wrth dros drwy trwy mewn ger rhwng ond neu hefyd iawn fawr mawr
    bach diolch bore prynhawn noswaith nos helo shwmae sut pryd beth ble lle pam pwy faint
    fy dy ei eu ein eich chi ni nhw fe fo hwn hon hyn yma yna rhaid angen eisiau isio moyn
    gallu allwch gallwch alla plis os gwelwch dda yfory heddiw ddoe wythnos diwrnod amser
    rhywun rhywbeth unrhyw popeth llawer dwi rwy rydw rydyn dych ydyw sydd oherwydd achos
    cyngor gyngor nghyngor chyngor treth dreth swyddfa agor ar gau casglu gasglu nghasglu
    biniau miniau finiau sbwriel ailgylchu gwastraff parcio cynllunio tai tŷ stryd ffordd
    heol lôn lon tân ambiwlans heddlu argyfwng helpwch brys gwaith cartref plentyn plant
    cymraeg saesneg sori croeso hwyl cyn ôl ol eto nawr rŵan rwan mis blwyddyn
    """
    )
)
_ENGLISH = frozenset(
    str.split(
        """
    the and is are was were not my your you to of in on for it this that with have has be
    been can will when what where how why who please there they we our at from but do does
    an as by if no or so up out just get any me he she her his him them its thanks
    thank hello hi bin bins collected collection council tax street road week today still
    """
    )
)
_WELSH_ENDINGS = ("'r", "'n", "'i", "'w")  # mae'r, dwi'n, i'w: Welsh elisions


def fixed_language(languages: Sequence[str]) -> str | None:
    """What detect_language says of every text, when it does not read the text; else None."""
    return None if "cy" in languages else (languages[0] if languages else "en")


def detect_language(text: str, languages: Sequence[str]) -> str:
    """ "cy" when the text reads as Welsh and "cy" is one of `languages`, else the first one."""
    default = languages[0] if languages else "en"
    if "cy" not in languages:
        return default
    welsh, english = _counts(text)
    return "cy" if welsh > english else default


def welsh_or_none(text: str) -> str | None:
    """ "cy" for a text that reads as Welsh, to mark it so on an English page; else None."""
    return "cy" if detect_language(text, ("en", "cy")) == "cy" else None


def _counts(text: str) -> tuple[int, int]:
    """How many common Welsh words, and how many common English words, the text has."""
    lowered = text.lower().replace("\u2019", "'")
    welsh = english = 0
    for word in _WORD.findall(lowered):
        if word in _WELSH:
            welsh += 1
        elif word in _ENGLISH:
            english += 1
    welsh += sum(lowered.count(e + " ") for e in _WELSH_ENDINGS)
    return welsh, english


_PARAGRAPH = re.compile(r"\n\s*\n")


def split_bilingual(reply: str, languages: Sequence[str]) -> list[tuple[str, str]]:
    """A bilingual reply (each language's text in the order of `languages`, a blank line
    between them) as (language, text) blocks, so a page can mark each with its language.

    The reply is stored as one text, so the split is found again: of the blank lines between
    paragraphs, the one where the paragraphs before read most as the first language and those
    after as the second. A reply with no such place (one paragraph, or no Welsh or English
    words) stays one block in the first language.
    """
    text = reply.strip()
    if len(languages) != 2 or "cy" not in languages:
        return [(languages[0] if languages else "en", text)]
    paragraphs = _PARAGRAPH.split(text)
    leans = []  # > 0: reads as the first language; < 0: as the second
    for paragraph in paragraphs:
        welsh, english = _counts(paragraph)
        leans.append(welsh - english if languages[0] == "cy" else english - welsh)
    best, best_score = 0, 0
    for k in range(1, len(paragraphs)):
        before, after = leans[:k], leans[k:]
        if sum(before) <= 0 or sum(after) >= 0:
            continue
        score = sum(before) - sum(after)
        if score > best_score:
            best, best_score = k, score
    if not best:
        return [(languages[0], text)]
    seps = _PARAGRAPH.findall(text)  # kept as written, so the blocks are the reply's own text
    return [
        (languages[0], _rejoin(paragraphs[:best], seps[: best - 1])),
        (languages[1], _rejoin(paragraphs[best:], seps[best:])),
    ]


def _rejoin(paragraphs: list[str], seps: list[str]) -> str:
    out = paragraphs[0]
    for paragraph, sep in zip(paragraphs[1:], seps, strict=True):
        out += sep + paragraph
    return out
