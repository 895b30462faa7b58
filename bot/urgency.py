"""How much a message reads as an emergency happening now: a weight for each word and pair of
words, learned from the tuning part of the triage corpus (tests/data/triage/train.py).

The weights add up to a score; a high score is an emergency, a middling one a possible
emergency, a very low one overrules a danger word or phrase used in an ordinary way ("our team
is on fire this season"). It explains itself: the words that weighed most, either way. The
weights ship in bot/data/urgency.json (a few hundred kilobytes); nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import pairwise, repeat
from operator import add
from pathlib import Path
from typing import Any

from bot.wording import Prepared

WEIGHTS = Path(__file__).parent / "data" / "urgency.json"
_SKIP = frozenset({"", ".", ","})
# Words too common to tell anything alone, whose weights would only learn how the corpus's
# writers wrote ("and" is in more emergencies than questions): they count in pairs only, with
# a word that is not one of them. Stems ("~he" is the family of he, she, they).
_WORDS = """a an the and or but so of to in on at by for from as with it its this that there is
    are am be i me my our we you your ~he ~him his their up out just realli"""
_NEUTRAL = frozenset(_WORDS.split())


# Welsh mutates a word's first letters (trywanu -> ei drywanu, cyllell -> gyda chyllell): a
# Welsh word also counts as its radical forms, found by undoing each mutation it may show.
_UNMUTATE = (("ngh", "c"), ("mh", "p"), ("nh", "t"), ("ch", "c"), ("ph", "p"), ("th", "t"),
             ("dd", "d"), ("ng", "g"), ("g", "c"), ("b", "p"), ("d", "t"), ("f", "b"), ("f", "m"),
             ("l", "ll"), ("r", "rh"), ("m", "b"), ("n", "d"))  # fmt: skip


@lru_cache(maxsize=4096)
def _radical_features(stem: str) -> tuple[str, ...]:
    """The "cy:" features of one Welsh stem, worked out once a word (most words repeat)."""
    return tuple("cy:" + r for r in radicals(stem)) if len(stem) > 3 else ()


def radicals(word: str) -> list[str]:
    """The forms a Welsh word may be a mutation of (itself not included)."""
    out = [radical + word[len(start) :] for start, radical in _UNMUTATE if word.startswith(start)]
    if word[:1] in "aeiouwyâêîôûŵŷ":
        out.append("g" + word)  # the soft mutation drops a g: "gwaed" -> "waed"
    return out


def features(prepared: Prepared, signals: Iterable[str] = (), welsh: bool = False) -> list[str]:
    """The message's word stems, each pair of stems in a row (not across a sentence), and the
    signals that the rules found (signals(), bot.danger.signs); for a Welsh message, the radical
    forms of its words too. A feature counts once however often it occurs, as in training
    (Urgency.score); Urgency.quick scores a message without making this list."""
    stems = prepared.layout.stems
    out = [s for s in stems if s not in _SKIP and s not in _NEUTRAL]
    if welsh:
        out.extend([f for s in out[:] for f in _radical_features(s)])
    out += [
        f"{a} {b}"
        for a, b in pairwise(stems)  # a pair across a break has "", "." or "," in it
        if a not in _SKIP and b not in _SKIP and not (a in _NEUTRAL and b in _NEUTRAL)
    ]
    out.extend(signals)
    return out


def signals(phrase: str | None, found: tuple[str, str, bool] | None, signs: list[str]) -> list[str]:
    """What the rules found, as features: the category of a rules.toml phrase that matched, the
    emergency and certainty of built-in danger words, and the message's shape."""
    out = list(signs)
    if phrase is not None:
        out += ["#phrase", "#phrase:" + phrase]
    if found is not None:
        out += ["#danger:" + ("certain" if found[2] else "possible"), "#danger:" + found[0]]
    return out


# The shape signs bot.danger.signs can give: those read off the marked message, and those
# searched for (bot.danger.plain_signs and searched_signs).
PLAIN = ("#calm", "#figure", "#if")
SEARCHED = ("#ask", "#now", "#quiet")
SIGNS = PLAIN + SEARCHED


def chance(score: float) -> float:
    """A log-odds as a probability."""
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))


def odds(probability: float) -> float:
    """A probability as a log-odds."""
    p = min(max(probability, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


@dataclass(frozen=True, slots=True)
class Reading:
    """What the weights make of one message."""

    probability: float  # that it is an emergency happening now, as the weights estimate it
    category: str | None  # the [[emergency]] it reads most like, when asked for
    reasons: tuple[tuple[str, float], ...]  # the words that weighed most, either way

    def explain(self) -> str:
        said = ", ".join(f'"{f}" {w:+.1f}' for f, w in self.reasons) or "no telling words"
        return f"reads as an emergency with probability {self.probability:.2f} ({said})"


class Urgency:
    """The learned weights, loaded once. Methods take a message's features() list."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.bias = float(data["bias"])
        # the weights, split for quick(): single features, and pairs of stems by the pair
        self.single: dict[str, float] = {}
        self.pairs: dict[tuple[str, str], float] = {}
        for f, w in data["weights"].items():
            a, space, b = f.partition(" ")
            if space:
                self.pairs[(a, b)] = w
            else:
                self.single[f] = w
        # per language: at or above "high" an emergency, at or above "low" a possible one;
        # below "veto" a phrase or danger word is overruled (used in an ordinary way)
        self.thresholds: dict[str, dict[str, float]] = data["thresholds"]
        # the same as log-odds, to compare with a score: (veto, low, high)
        self.cuts: dict[str, tuple[float, float, float]] = {
            lang: (odds(t["veto"]), odds(t["low"]), odds(t["high"]))
            for lang, t in self.thresholds.items()
        }
        self.categories: list[str] = data["categories"]
        # feature -> its row of weights, one a category, in one flat table of 4-byte floats
        # (a dict of tuples cost a megabyte and a half in every server)
        k = len(self.categories)
        self.rows: dict[str, int] = {}
        self.table = array("f", bytes(4 * k * len(data["by_category"])))
        for n, (f, row) in enumerate(data["by_category"].items()):  # "3:0.28 9:-0.1"
            self.rows[f] = n * k
            for pair in row.split():
                i, _, w = pair.partition(":")
                self.table[n * k + int(i)] = float(w)

        # how far the shape signs (bot.danger.signs) can move a score, up and down: a message
        # whose decision they cannot change is decided without working them out; and how far
        # the searched ones alone can, once the plain ones are known
        shape = [self.single.get(f, 0.0) for f in SIGNS]
        self.sign_gain = sum(w for w in shape if w > 0)
        self.sign_loss = sum(w for w in shape if w < 0)
        searched = [self.single.get(f, 0.0) for f in SEARCHED]
        self.searched_gain = sum(w for w in searched if w > 0)
        self.searched_loss = sum(w for w in searched if w < 0)

    def weight(self, feature: str) -> float:
        """The weight of one feature ("help", "not breath", "#now"); 0 for one without."""
        a, space, b = feature.partition(" ")
        return self.pairs.get((a, b), 0.0) if space else self.single.get(feature, 0.0)

    def score(self, found: list[str]) -> float:
        """The log-odds that the message is an emergency: one look-up a distinct feature (a
        feature is there or not, as in training: "help help help" is one "help")."""
        return self.bias + sum([self.weight(f) for f in set(found)])

    def quick(self, stems: tuple[str, ...], said: Iterable[str], welsh: bool = False) -> float:
        """score(features(...)) of a message's stems and signals, without building the feature
        strings: the request path. Equal to score() (tests/test_urgency.py checks it on the
        tuning part); the skipped and commonest words have no weight of their own, nor pairs
        across a break, so a look-up of every distinct stem and pair finds exactly those."""
        single = self.single.get
        words = set(stems)
        total = self.bias + sum(map(single, words, repeat(0.0)))
        total += sum(map(self.pairs.get, set(pairwise(stems)), repeat(0.0)))
        if welsh:
            forms = {f for s in words if s not in _NEUTRAL for f in _radical_features(s)}
            total += sum(map(single, forms, repeat(0.0)))
        return total + sum(map(single, set(said), repeat(0.0)))

    def probability(self, found: list[str]) -> float:
        """That the message is an emergency, as the weights estimate it."""
        return chance(self.score(found))

    def category(self, found: list[str]) -> str | None:
        """The [[emergency]] name whose words the message shares most."""
        k = len(self.categories)
        if not k:
            return None
        totals = [0.0] * k
        table, get = self.table, self.rows.get
        for f in found:
            at = get(f)
            if at is not None:  # a row at a time, added in C
                totals = list(map(add, totals, table[at : at + k]))
        return self.categories[max(range(len(totals)), key=totals.__getitem__)]

    def reasons(self, found: list[str], top: int = 5) -> list[tuple[str, float]]:
        """The features that weighed most, either way."""
        weighed = [(f, w) for f in dict.fromkeys(found) if (w := self.weight(f))]
        weighed.sort(key=lambda fw: -abs(fw[1]))
        return weighed[:top]

    def telling(self, found: list[str]) -> str:
        """The words that made it read as an emergency, for `matched`: "collaps + not breath"."""
        return " + ".join([f for f, w in self.reasons(found, 8) if w > 0][:3]) or "the weights"

    def read(self, found: list[str]) -> Reading:
        """The probability, the category and the reasons: for preview, not the request path."""
        return Reading(self.probability(found), self.category(found), tuple(self.reasons(found)))


@cache
def urgency() -> Urgency:
    return Urgency(json.loads(WEIGHTS.read_text(encoding="utf-8")))
