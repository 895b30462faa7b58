"""Phrase matching for rules.toml: finds emergencies, redirects and teams in a citizen's message.

How a phrase in rules.toml is matched, for the people who write them:
- Letter case, punctuation, emoji and curly or straight apostrophes don't matter. "isn't" is
  read as "is not", "cant" as "can not", "he's" as "he is", "u" as "you", "pls" as "please",
  "ppl" as "people", "bc" as "because", and so on.
- Word endings don't matter: "stab" also matches "stabbed", "stabbing" and "stabs". But in
  emergencies a word written with -ing is not past: "smashing" does not match "smashed"; and one
  written with -ed is not a plain noun: "crushed" does not match "crush", "bottled" not "bottle".
  Irregular forms are different words: write "took" and "taken" both if you want both.
- A word of 5 or more letters also matches with one slip: a vowel left out ("brething"), a letter
  doubled or undoubled ("stabbbed", "colapsed"), two letters swapped ("breathign"); in words of
  7 or more letters a consonant left out ("unconcious"); in words of 8 or more letters a vowel
  wrong ("ambulence"). The first letter must be right. A slip never turns "crash" into "cash".
- Some words stand for their family (FAMILIES in bot/wording.py): "child" also matches kid, toddler,
  baby, boy, girl, son, daughter; "man" also woman, guy, lad, lady, mum, dad, neighbour, cyclist;
  "car" also van, lorry, bus; "river" also canal, sea, lake, pond; "house" also home, flat;
  "he" also she, they; "him" also her, them.
- The words of a phrase must come in this order, with at most 3 other words between them, in
  the same sentence and not across a comma: "taken tablets" matches "taken a load of tablets".
  "a", "an" and "the" in a phrase may be left out by the writer of the message.
- A word ending in * matches every word that starts with it: "suicid*" matches "suicide" and
  "suicidal". At least 3 letters must come before the *.
- `unless`: a match is ignored when one of these phrases (its words in a row) overlaps it or is at
  most 4 words away.
- Emergency phrases also ignore what is not a real emergency happening now: figures of speech
  ("this queue is killing me", "dying to know", "the gig was fire"), jokes (😂, lol, haha),
  "not urgent" or "not an emergency", events "last week", "in 2019" or "months ago", questions
  such as "is it illegal to carry a knife?" or "what do I do if I smell gas?", "nearly", "almost"
  or "could" just before, "no" or "not" just before ("no fire", "nobody was hurt"), "a bit" just
  after, and a topic word just after ("fire safety", "knife crime", "suicide prevention").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, KeysView, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, groupby
from sys import intern
from typing import Any, TypeVar

from bot.wording import (
    ASKING,
    BREAKS,
    COMMON,
    FAMILIES,
    FAMILY,
    HOW,
    LITTLE,
    MODALS,
    NEGATORS,
    NON_ASCII,
    PERFECT,
    PUNCT,
    QUESTION,
    QUOTES,
    REPORT,
    SENTENCE,
    STOP,
    TOPIC,
    Layout,
    Prepared,
    fold,
    learn,
    positions,
    prepare,
    slips,
    stem,
)

__all__ = ["Layout", "PhraseGroup", "PhraseSet", "Prepared", "phrase_problem", "prepare"]

_T = TypeVar("_T")
MAX_GAP = 3  # other words allowed between two words of a phrase
UNLESS_NEAR = 4  # an `unless` phrase this many words or fewer from a match cancels it


_NOT_PHRASE = re.compile(r"[^\w\s'\u2018\u2019*-]|_")


@dataclass(frozen=True, slots=True)
class _Word:
    forms: frozenset[str]  # stems that match, misspellings included
    spelt: frozenset[str] = frozenset()  # the word as written, and its misspellings
    prefix: str = ""  # for "word*"
    keys: frozenset[str] = frozenset()  # look-up keys of a little word (else: see _keys)
    ending: str = ""  # "ing": "smashing" does not match "smashed"; "ed": "crushed" not "crush"


@dataclass(frozen=True, slots=True)
class _Phrase:
    text: str  # as written in rules.toml
    words: tuple[_Word, ...]
    negated: bool  # starts with "not" or "no": a negation before it is part of it
    rest: tuple[frozenset[str], ...]  # keys of words beyond the two indexed: each must be there
    simple: bool  # one word, no ending rule: being there is matching


@dataclass(slots=True, eq=False)  # compared and hashed by identity
class _Group:
    singles: tuple[int, ...]  # phrases with one telling word
    pairs: dict[str, tuple[int, ...]]  # phrases by the keys of their second telling word
    seconds: frozenset[str]


# For a look-up key in a PhraseGroup: phrases (numbered as in the group) with one telling word,
# and the keys of the second telling words of the others, with those phrases by their second key.
_Entry = tuple[tuple[int, ...], frozenset[str], dict[str, tuple[int, ...]]]


def _once(share: dict[Any, Any], value: _T) -> _T:
    """The value, or an equal one already kept in share."""
    found: _T = share.setdefault(value, value)
    return found


def _compile(text: str, emergency: bool = True) -> list[_Word]:
    t = NON_ASCII.sub(" ", fold(text.casefold().translate(QUOTES)))
    out: list[_Word] = []
    for tok in t.encode().translate(PUNCT).replace(b".", b" ").replace(b",", b" ").split():
        if tok.endswith(b"*"):
            out.append(_Word(frozenset(), prefix=tok.decode().strip("'*")))
            continue
        ws, ss, *_ = learn(tok)
        out.extend(_word(w, s, emergency) for w, s in zip(ws, ss, strict=True))
    kept = [w for w in out if w.spelt.isdisjoint(("a", "an", "the"))]
    return kept or out


@lru_cache(maxsize=8192)  # one _Word for each word, shared by every phrase and set that has it
def _word(w: str, s: str, emergency: bool) -> _Word:
    spelt, forms = frozenset({w, *slips(w)}), frozenset({s, *slips(s)})
    keys = frozenset({"=" + w, s}) if w in STOP else frozenset()  # others': made when needed
    ending = next((e for e in ("ing", "ed") if w.endswith(e) and s != w), "")
    return _Word(forms, spelt, "", keys, ending if emergency else "")


def _keys(w: _Word) -> frozenset[str]:
    """A word's look-up keys, as in _Token: its forms, and "=" and each spelling. Made while
    indexing, not kept with the word: they are most of its size, and the index has them."""
    if w.keys or w.prefix:
        return w.keys
    return w.forms.union([intern("=" + x) for x in w.spelt])


def _order(words: Sequence[_Word]) -> list[_Word]:
    """A phrase's words but word*, the most telling first (see _rank)."""
    return sorted((w for w in words if not w.prefix), key=_rank, reverse=True)


def _merged(a: _Word, b: _Word) -> frozenset[str]:
    """The keys kept for a word merged from two: a little word's keep those of both."""
    return _keys(a) | _keys(b) if a.keys or b.keys else frozenset()


def _rank(w: _Word) -> int:
    """How rarely a word turns up in messages: little words -1, common 0, families 1-2, others 3."""
    if not w.spelt.isdisjoint(STOP):
        return -1
    if not w.forms.isdisjoint(FAMILIES):
        return 2 if w.forms & {"~water", "~vehicle"} else 1
    return 0 if not (w.spelt.isdisjoint(COMMON) and w.forms.isdisjoint(COMMON)) else 3


class PhraseSet:
    """The phrases of one category of rules.toml, indexed once, then matched against messages.

    emergency=True (the default) ignores figurative, joking, hedged, past and hypothetical uses
    (see the module docstring); pass emergency=False for teams and redirects.
    """

    def __init__(
        self, phrases: Sequence[str], unless: Sequence[str] = (), *, emergency: bool = True
    ) -> None:
        compiled: dict[tuple[object, ...], tuple[str, list[_Word]]] = {}
        for text in phrases:  # phrases that are the same once families apply are merged
            words = _compile(text, emergency)
            shape = tuple((w.forms, w.prefix, w.ending) for w in words)
            if words and shape in compiled:
                first, seen = compiled[shape]
                merged = [
                    _Word(a.forms, a.spelt | b.spelt, a.prefix, _merged(a, b), a.ending)
                    for a, b in zip(seen, words, strict=True)
                ]
                compiled[shape] = first, merged
            elif words:
                compiled[shape] = text, words
        self._phrases: list[_Phrase] = []
        self._always: list[int] = []  # phrases of little words or word*: tried on every message
        for idx, (text, words) in enumerate(compiled.values()):
            order = _order(words)
            negated = not words[0].spelt.isdisjoint(NEGATORS)
            simple = len(words) == 1 and not words[0].ending and not words[0].prefix
            rest = tuple(_keys(w) for w in order[2:])
            self._phrases.append(_Phrase(text, tuple(words), negated, rest, simple))
            if not order or order[0].spelt & STOP:
                self._always.append(idx)
        # Its own index is made when find() is first called: the sets of rules.toml are matched
        # through a PhraseGroup, whose index is merged from theirs, so they never keep one.
        self._made: dict[str, tuple[_Group, ...]] | None = None
        self._unless = PhraseSet(unless, emergency=False) if unless else None
        self._emergency = emergency

    def _make_index(self) -> dict[str, tuple[_Group, ...]]:
        """The phrases by their least common word (a group for each), then their next."""
        groups: dict[frozenset[str], tuple[list[int], dict[str, list[int]]]] = {}
        always = set(self._always)
        for idx, phrase in enumerate(self._phrases):
            if idx in always:
                continue
            order = _order(phrase.words)
            singles, pairs = groups.setdefault(_keys(order[0]), ([], {}))
            if len(order) == 1:
                singles.append(idx)
            for second in _keys(order[1]) if len(order) > 1 else ():
                pairs.setdefault(second, []).append(idx)
        index: dict[str, list[_Group]] = {}
        share: dict[Any, Any] = {}  # equal tuples and sets are kept once: most of the memory
        for keys, (singles, pairs) in groups.items():
            shared = {second: _once(share, tuple(found)) for second, found in pairs.items()}
            group = _Group(tuple(singles), shared, _once(share, frozenset(shared)))
            for key in keys:
                index.setdefault(key, []).append(group)
        return {key: _once(share, tuple(found)) for key, found in index.items()}

    @property
    def _index(self) -> dict[str, tuple[_Group, ...]]:
        if self._made is None:
            self._made = self._make_index()
        return self._made

    @property
    def _keys(self) -> KeysView[str]:
        return self._index.keys()

    @property
    def keys(self) -> KeysView[str]:
        """The look-up keys of its phrases: a message with none of them can only match `always`."""
        return self._keys

    @property
    def always(self) -> bool:
        """Whether some phrase (of little words, or with word*) is tried on every message."""
        return bool(self._always)

    def find(self, prepared: Prepared) -> str | None:
        """The first phrase (as written) that the message matches, or None."""
        if self._keys.isdisjoint(prepared.keys) and not self._always:
            return None
        return self._first(self._candidates(prepared), prepared)

    def _first(self, candidates: Sequence[int], prepared: Prepared) -> str | None:
        """The first of these phrases (indices, in order) that the message matches, or None."""
        blocked: list[tuple[int, int]] | None = None
        emergency, unless, phrases = self._emergency, self._unless, self._phrases
        layout: Layout | None = None
        for idx in candidates:
            phrase = phrases[idx]
            if phrase.rest and any(map(prepared.every.isdisjoint, phrase.rest)):
                continue
            if phrase.simple and not emergency and not unless:
                return phrase.text
            p = layout = layout or prepared.layout
            if emergency:  # marking figures of speech only ever takes matches away
                found = _occurrences(phrase.words, p)
                if not found:
                    continue
                marked = prepared.marked
                if marked.calm:
                    return None
                if marked.words is not p.words:  # some figure of speech was taken out
                    found = _occurrences(phrase.words, marked)
                p = marked
            else:
                found = _occurrences(phrase.words, p)
            for occ in found:
                if blocked is None:
                    blocked = unless._spans(prepared) if unless else []
                if blocked and any(_near(occ, span, p.clauses) for span in blocked):
                    continue
                if not emergency or not _vetoed(phrase, occ, p):
                    return phrase.text
        return None

    def _candidates(self, prepared: Prepared) -> Sequence[int]:
        hits = self._keys & prepared.keys
        if not hits:
            return self._always
        groups = set(chain.from_iterable([self._index[key] for key in hits]))
        if len(groups) == 1 and not self._always:
            (only,) = groups
            if not only.pairs:
                return only.singles
        found = set(self._always)
        for group in groups:
            found.update(group.singles)
            if group.pairs:
                for second in group.seconds.intersection(prepared.every):
                    found.update(group.pairs[second])
        return sorted(found)

    def _spans(self, prepared: Prepared) -> list[tuple[int, int]]:
        """(first, last) slot of every occurrence, words in a row (for `unless`)."""
        if not self._always and self._keys.isdisjoint(prepared.keys):
            return []
        layout = prepared.layout
        return [
            (occ[0], occ[-1])
            for idx in self._candidates(prepared)
            for occ in _occurrences(self._phrases[idx].words, layout, 0)
        ]


class PhraseGroup:
    """Several PhraseSets (a kind of category, in rules.toml order) matched in one pass.

    first() returns exactly what calling find() on each set in order would: a set is only asked
    when the message has one of its look-up keys, or when it has phrases tried on every message.
    The sets' indexes are merged into one, so a message's keys are looked up once for them all.

    kinds: how many of the sets, in order, are of each kind (say emergencies, then redirects,
    then teams); firsts() answers for each kind as first() would for a group of its sets alone.
    """

    def __init__(self, sets: Sequence[PhraseSet], kinds: Sequence[int] = ()) -> None:
        self._sets = tuple(sets)
        kinds = tuple(kinds) or (len(self._sets),)
        if sum(kinds) != len(self._sets):
            raise ValueError(f"kinds {kinds} do not add up to the {len(self._sets)} sets")
        self._starts = tuple(sum(kinds[:k]) for k in range(len(kinds)))  # each kind's first set
        self._kind_of = tuple(k for k, size in enumerate(kinds) for _ in range(size))
        # a phrase is known by one int, its set's number shifted left, then its own number
        self._shift = max((len(s._phrases) for s in self._sets), default=0).bit_length()
        reached: dict[str, list[tuple[int, tuple[_Group, ...]]]] = {}
        for n, phrases in enumerate(self._sets):
            own = phrases._made if phrases._made is not None else phrases._make_index()
            for key, groups in own.items():
                reached.setdefault(key, []).append((n << self._shift, groups))
        for key in [k for k in reached if _stem_of(k, STOP) in reached]:
            # A message with the word has its stem's key too: when that key reaches every group
            # this one does, this one is not needed (a third of the keys; less memory, fewer
            # look-ups, and fewer words reaching one entry twice)
            if _reach(reached[key]) <= _reach(reached[_stem_of(key, STOP)]):
                del reached[key]
        share: dict[Any, Any] = {}
        made: dict[tuple[tuple[int, tuple[_Group, ...]], ...], int] = {}  # keys of a word lead
        entries: list[_Entry] = []  # to the same groups: an entry for each, known by its number
        self._index: dict[str, int] = {}
        for key, found in reached.items():
            number = made.get(reach := tuple(found))
            if number is None:
                number = made[reach] = len(entries)
                entries.append(_entry(reach, share))
            self._index[key] = number
        self._entries = tuple(entries)
        # every second key: a message's are found in this one set, not in each entry's
        self._seconds = frozenset(chain.from_iterable(seconds for _, seconds, _ in entries))
        self._always = tuple(n << self._shift | i for n, s in enumerate(sets) for i in s._always)

    def first(self, prepared: Prepared) -> tuple[int, str] | None:
        """(index of the first set that matches, the phrase as written), or None."""
        for start, found in zip(self._starts, self.firsts(prepared), strict=True):
            if found is not None:
                return start + found[0], found[1]
        return None

    def firsts(self, prepared: Prepared) -> list[tuple[int, str] | None]:
        """For each kind, (index within the kind of the first set that matches, the phrase as
        written), or None."""
        out: list[tuple[int, str] | None] = [None] * len(self._starts)
        found = list(self._always)
        reached = set(map(self._index.get, prepared.keys))  # one look-up a key
        reached.discard(None)
        seconds_here: frozenset[str] | None = None
        for number in reached:  # in any order: found is sorted below
            singles, seconds, pairs = self._entries[number]  # type: ignore[index]
            found += singles
            if seconds:
                if seconds_here is None:
                    seconds_here = prepared.among(self._seconds)
                if seconds_here:
                    for second in seconds.intersection(seconds_here):
                        found += pairs[second]
        if not found:
            return out
        codes = sorted(set(found)) if len(found) > 1 else found
        shift, mask = self._shift, (1 << self._shift) - 1
        runs: Iterable[tuple[int, Iterable[int]]]
        if codes[-1] >> shift == (n := codes[0] >> shift):  # most often, one set has them all
            runs = [(n, codes)]
        else:
            runs = groupby(codes, lambda code: code >> shift)  # sets in order
        for n, run in runs:
            kind = self._kind_of[n]
            if out[kind] is None:
                match = self._sets[n]._first([code & mask for code in run], prepared)
                if match is not None:
                    out[kind] = n - self._starts[kind], match
        return out


def _entry(reached: Sequence[tuple[int, tuple[_Group, ...]]], share: dict[Any, Any]) -> _Entry:
    """What a key leads to in a PhraseGroup: phrases with one telling word, and by second key."""
    singles: list[int] = []
    pairs: dict[str, list[int]] = {}
    for base, groups in reached:
        for group in groups:
            singles.extend(base | idx for idx in group.singles)
            for second, indices in group.pairs.items():
                pairs.setdefault(second, []).extend(base | idx for idx in indices)
    for second, codes in list(pairs.items()):  # as in PhraseGroup: the stem finds these too
        implied = _stem_of(second)
        if implied in pairs and set(codes) <= set(pairs[implied]):
            del pairs[second]
    table = {second: _once(share, tuple(codes)) for second, codes in pairs.items()}
    return _once(share, tuple(singles)), _once(share, frozenset(table)), table


def _reach(found: list[tuple[int, tuple[_Group, ...]]]) -> set[tuple[int, _Group]]:
    return {(base, group) for base, groups in found for group in groups}


def _stem_of(key: str, little: AbstractSet[str] = frozenset()) -> str:
    """For "=word", the key of its stem, which every message with the word has; else "".

    A message's look-up keys (Prepared.keys) leave little words out: pass STOP for those.
    Prepared.every has little words: a stem that is one is there only when the word is too.
    """
    if not key.startswith("="):
        return ""
    word = key[1:]
    found = FAMILY.get(word) or stem(word)
    if word not in STOP and found in STOP:
        return ""  # learn() keeps this stem nowhere
    return "" if word in little or found in little else found


def _near(occ: tuple[int, ...], span: tuple[int, int], clauses: tuple[int, ...]) -> bool:
    """Whether an `unless` occurrence overlaps or is close to a match, in the same sentence."""
    first, last = occ[0], occ[-1]
    if clauses[first] // SENTENCE != clauses[span[0]] // SENTENCE:
        return False
    return span[0] - last <= UNLESS_NEAR + 1 and first - span[1] <= UNLESS_NEAR + 1


def _occurrences(words: Sequence[_Word], p: Layout, gap: int = MAX_GAP) -> list[tuple[int, ...]]:
    """Each way the words occur in order, at most `gap` words apart, within one clause."""
    stems, spelt, clauses = p.stems, p.words, p.clauses
    hits: list[tuple[tuple[str, ...], frozenset[str]]] = []  # where to look, and for what
    for w in words:  # first whether every word is there at all, which is cheap
        if w.prefix:
            hits.append((spelt, frozenset()))
        elif hit := w.forms.intersection(stems):
            hits.append((stems, hit))
        elif hit := w.spelt.intersection(spelt):  # a slip in a word's ending ("breathng")
            hits.append((spelt, hit))
        else:
            return []
    places: list[list[int]] = []
    once = True  # every word at one place: at most one way
    for w, (seq, hit) in zip(words, hits, strict=True):
        if w.prefix:
            found = [i for i, x in enumerate(spelt) if x.startswith(w.prefix) and x[0].isalnum()]
        elif len(hit) == 1 and seq.count(key := next(iter(hit))) == 1:
            found = [seq.index(key)]
        else:
            found = positions(seq, hit)
        if w.ending:
            if w.ending == "ing":
                found = [i for i in found if spelt[i] in w.spelt or not spelt[i].endswith("ed")]
            else:
                found = [
                    i for i in found if spelt[i] in w.spelt or spelt[i].endswith(("ed", "ing"))
                ]
        if len(found) != 1:
            if not found:
                return []
            once = False
        places.append(found)
    if once:
        last = places[0][0]
        for (i,) in places[1:]:
            if not (last < i <= last + gap + 1 and clauses[i] == clauses[last]):
                return []
            last = i
        return [tuple([found[0] for found in places])]
    out: list[tuple[int, ...]] = [(i,) for i in places[0]]
    for later in places[1:]:  # extend each partial occurrence by the next word
        out = [
            (*occ, i)
            for occ in out
            for i in later
            if occ[-1] < i <= occ[-1] + gap + 1 and clauses[i] == clauses[occ[-1]]
        ]
    return out


def _vetoed(phrase: _Phrase, occ: tuple[int, ...], p: Layout) -> bool:
    """Whether this occurrence of an emergency phrase is not a real emergency now."""
    words, clauses = p.words, p.clauses
    first = occ[0]
    clause = clauses[first]
    if p.muted and any(m <= first and clauses[m] == clause for m in p.muted):
        return True
    negation = not phrase.negated
    for k in range(first - 1, max(first - 5, -1), -1):  # "nearly hit", "nobody was hurt"
        if clauses[k] != clause:
            break
        if words[k] in MODALS or (negation and first - k <= 3 and words[k] in NEGATORS):
            return True
        negation = negation and words[k] in LITTLE
        if words[k] == "had" and (k == 0 or words[k - 1] not in PERFECT):  # "had a stroke"
            return True
    after = words[occ[-1] + 1 : occ[-1] + 3]
    if after[:1] == ("slightly",) or after in (("a", "bit"), ("a", "little")):
        return True  # "sparking a bit"
    if any(i + 1 < len(words) and i + 1 not in occ and p.stems[i + 1] in TOPIC for i in occ):
        return True  # "fire safety", "knife crime", "suicide prevention"
    start = clauses.index(clause)  # a clause's slots are in a row; this is its first
    start += words[start] in BREAKS  # "is it illegal to carry a knife?", "what do I do if…"
    opener, between = words[start], words[start + 1 : first]
    if opener == "if" or (start + 1 < len(words) and words[start + 1] in ASKING.get(opener, ())):
        return True
    return opener in QUESTION and (
        "if" in between or (opener in HOW and not REPORT.isdisjoint(between))
    )


def phrase_problem(phrase: str) -> str | None:
    """None if the phrase is usable, otherwise what is wrong with it (for `python -m bot check`)."""
    text = phrase.strip()
    written = re.findall(r"[^\s\-]+", text)
    bad = sorted(set(_NOT_PHRASE.findall(text)))
    stars = [tok for tok in written if "*" in tok]
    if not text:
        return "is empty: write a word or a few words, or remove it"
    if bad:
        return (
            f"contains {', '.join(repr(c) for c in bad)}: a phrase can only have letters, digits,"
            " spaces, hyphens, apostrophes, and * at the end of a word"
        )
    for tok in stars:
        if "*" in tok.rstrip("*") or tok.count("*") > 1:
            return f"has * inside {tok!r}: a * can only end a word, as in 'suicid*'"
        if len(tok.strip("'*")) < 3:
            return f"has {tok!r}: write at least 3 letters before the *"
    words = _compile(text)
    if not words:
        return "has no letters or digits"
    if len(written) == 1 and len(written[0].strip("'*")) <= 2:
        return (
            f"is a single word of {len(written[0].strip(chr(39)))} letter(s), which would match"
            " far too many messages: use a longer word or a few words"
        )
    if not stars and all(w.spelt & STOP for w in words):
        return (
            "only has little words such as 'the', 'is', 'my' or 'not', which are in almost every"
            " message: add a word that says what the message is about"
        )
    return None
