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
- Some words stand for their family (see _FAMILIES below): "child" also matches kid, toddler,
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
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from typing import NamedTuple

MAX_GAP = 3  # other words allowed between two words of a phrase
UNLESS_NEAR = 4  # an `unless` phrase this many words or fewer from a match cancels it
_CLAUSE, _SENTENCE = 1, 1000  # a comma starts a new clause; a full stop, a new sentence


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _table(pairs: str, sep: str = "_") -> dict[str, str]:
    """ "a=b c=d_e" -> {"a": "b", "c": "d e"}."""
    return {k: v.replace(sep, " ") for k, v in (p.split("=") for p in pairs.split())}


_PUNCT = bytes(  # every byte but letters, digits, ' and * becomes a space; . and , mark breaks
    b if chr(b).isalnum() or chr(b) in "'*" else
    46 if chr(b) in ".!?\n" else 44 if chr(b) in ",;:()[]" else 32
    for b in range(256)
)  # fmt: skip
_QUOTES = str.maketrans(
    dict.fromkeys("\u2018\u2019\u02bc\u00b4\u2032", "'") | dict.fromkeys("\u2013\u2014", " , ")
)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_NOT_PHRASE = re.compile(r"[^\w\s'\u2018\u2019*-]|_")
_URL = re.compile(r"https?://\S+|www\.\S+")
_YEAR = re.compile(r"\b(?:in|during) (?:19|20)\d\d\b")
_COMBINING = re.compile(r"[\u0300-\u036f]")
_LAUGH_EMOJI = re.compile("[\U0001f602\U0001f923\U0001f606\U0001f639\U0001f61c\U0001f61d]")
_LAUGH_WORD = re.compile(r"(?:a?h[ae]){2,}h*|lo+l[lo]*|lmf?a+o+|rofl|jk")

# Text speak, and contractions written without their apostrophe.
_SPEAK = _table(
    "u=you ya=you ur=your yr=year yrs=years r=are pls=please plz=please plse=please im=i_am"
    " ive=i_have cant=can_not cannot=can_not dont=do_not doesnt=does_not didnt=did_not"
    " isnt=is_not wasnt=was_not werent=were_not arent=are_not hasnt=has_not havent=have_not"
    " hadnt=had_not wont=will_not wouldnt=would_not couldnt=could_not shouldnt=should_not"
    " aint=is_not hes=he_is shes=she_is theres=there_is thats=that_is whats=what_is"
    " wheres=where_is youre=you_are theyre=they_are ppl=people bc=because bcos=because"
    " bcoz=because cos=because coz=because cuz=because b4=before 2day=today 2nite=tonight"
    " 2night=tonight tonite=tonight nite=night gonna=going_to gunna=going_to wanna=want_to"
    " gotta=got_to dunno=do_not_know idk=i_do_not_know rn=right_now atm=at_the_moment"
    " tho=though thru=through n=and nd=and abt=about sum1=someone some1=someone sumone=someone"
    " no1=noone any1=anyone every1=everyone wiv=with ambo=ambulance fone=phone hubby=husband"
    " mam=mum mom=mum mummy=mum bro=brother sis=sister lil=little wat=what wot=what hlp=help"
    " halp=help neighbor=neighbour neighbors=neighbours mins=minutes hrs=hours yday=yesterday"
    " coulda=could_have shoulda=should_have children=child kids=kid men=man women=woman"
    " dieing=dying"
)
_NOT_BASE = _table("ca=can wo=will sha=shall ai=is")  # can't, won't, shan't, ain't
_TAILS = _table("s=is re=are ve=have ll=will d=would m=am")
_IRREGULAR = _table("die=di dying=di lie=li lying=li tie=ti tying=ti")
_FAMILIES = _table(  # word families: a member in a phrase matches any member in a message
    "~child=child,kid,toddler,baby,infant,boy,girl,son,daughter,youngster"
    " ~person=man,woman,guy,bloke,lad,lady,fella,chap,gentleman,person,pensioner,teenager,teen,"
    "youth,mum,dad,mother,father,nan,gran,granny,grandad,grandma,grandpa,husband,wife,partner,"
    "brother,sister,uncle,aunt,auntie,boyfriend,girlfriend,friend,mate,neighbour,cyclist,"
    "pedestrian,rider,driver,passenger,jogger,walker"
    " ~vehicle=car,van,lorry,truck,bus,coach,taxi,motorbike,moped,tractor,vehicle,hgv"
    " ~water=river,canal,sea,lake,pond,reservoir,stream,brook,quarry,harbour,dock,water"
    " ~home=house,home,flat,bungalow,property,maisonette,apartment ~he=he,she,they"
    " ~him=him,his,her,them,their",
    ",",
)
_FAMILY = {w: key for key, words in _FAMILIES.items() for w in words.split()}
_VOWELS = frozenset("aeiouy")
_LITTLE = _set("a an the is was were are be been being one really actually even any")
_NEGATORS = _set("no not never noone nobody nothing none without")
_MODALS, _PERFECT, _PAST_VERBS = (
    _set("nearly almost could"),
    _set("has have just is"),
    _set("was were had"),
)
_QUESTION = _set("what who how where when which why should can could do does did is are will")
_HOW, _REPORT, _BREAKS = _set("how who where what"), _set("report contact"), _set(". ,")
_ASKING = {  # a clause opening like this asks about something rather than reporting it
    k: frozenset(v.split())
    for k, v in _table(
        "is=it_there_this_that_the are=there_the_these_those_you do=you_they does=the_it_anyone"
        " can=i_we_you could=i_we how=do_can_many_much_often_long where=can_do_is_are"
        " who=do_can_is_should when=will_is_does_are_do what=is_are why=is_are_do_does"
        " will=you_the have=you has=the_anyone"
    ).items()
}
_STOP = (
    _LITTLE
    | _NEGATORS
    | _set(  # never looked up first: in too many messages
        "i me my you your he she it we they him her his our their them to of in on at by for with"
        " and or but so if as this that there here have has had do does did can will would could"
        " should just get got please hi hello what when where how who why which from up out about"
        " some all am its ~he ~him"
    )
)
_COMMON = _STOP | _set(  # looked up first only when a phrase has nothing rarer
    "someone somebody anyone everyone something anything thing come coming came go going gone"
    " went know think see seen look looking like want need make take took taken give say said"
    " tell call ring time day week night today tonight now still again new old good bad big"
    " little very right left down over off into near next back front side top around outside"
    " inside behind way also too more much many lot loads keep keeps help thanks sorry bit"
    " might must two three hour hours minute minutes year years street road hand head"
)
_TOPIC_WORDS = (  # a word just after an emergency word that makes it a topic, not an event
    "crime awareness prevention training campaign course safety station service brigade alarm"
    " detector extinguisher drill door exit blanket hydrant engine officer risk hazard regulation"
    " certificate inspection check test policy strategy statistic figure rate amnesty bin arch"
    " poster leaflet talk workshop event week day month appeal charity fundraiser support group"
    " team plan warning alert defence map insurance grant pit cooker meter bill supply engineer"
    " appliance resilience scheme forum volunteer trainer class lesson film movie show refuge"
    " helpline escape force info information counsellor counselling range star sharpening stall"
)

# Built-in patterns on whole words in a row; "a|b" means a or b. Each kind is ";"-separated.
_BUILTIN = {
    "figurative": "killing|kills|killed me|us|it; dying to|for; to die for; die|died|dying"
    " laughing|of; bored|scared|sick|worried|frightened to death; death trap|traps; dead"
    " end|easy|good|nice|funny|quiet|busy|slow|loss|keen|heat|set|tired|centre|cheap|on;"
    " phone|battery|batteries|laptop|tablet|ipad is|was|are|has dead|died; phone|battery|laptop"
    " dead|died; dead phone|battery|batteries; was|were|so|pure|proper|absolute|straight fire;"
    " is|was|are|were murder; absolute|bloody murder; murder on; you are|were on fire;"
    " gave|give|giving|gives me|us|you|him|her|them|someone a heart attack; going to have a"
    " heart attack|stroke; drowning in debt|debts|paperwork|work|bills|emails|admin|letters|forms;"
    " stab|stabbed|stabbing in the back; a stab at; knife and fork; cost|costs|costing a bomb;"
    " bath bomb|bombs; like a bomb; going|went|gone up in smoke; smoke and mirrors; playing|play"
    " with fire; fire away; under fire; accident waiting to happen; break a leg; over my dead"
    " body; fire and rescue; car crash of|interview; what a car crash; absolute|total car crash;"
    " train wreck",
    "future": "someone|somebody|people|anyone|kid|child will|could|would|might|gonna;"
    " someone|somebody|people|anyone|kid|child is|are going to; before someone|somebody|anyone|a;"
    " waiting for someone|somebody to",
    "clause": "one day; eventually; sooner or later; at some point",
    "hedge": "not|non|nothing urgent|emergency|emergancy; no rush|hurry|urgency;"
    " not an|a|that|very|super|too|really|particularly urgent|emergency; not|non life threatening;"
    " when you get a chance; a replacement; a new one|bin; replace my|the bin; is|it out now;"
    " been put out; all fine|ok|okay|good now; under control; noone|nobody hurt|injured;"
    " noone|nobody was|is|got|has hurt|injured",
    "past": "days|weeks|months|years|week|month|year|while ago; the other day|night|week;"
    " last week|month|year|weekend|summer|winter|spring|autumn|christmas|easter; earlier this"
    " week|month|year; in the past; in my past; used to; as a child; growing up;"
    " for months|weeks|years; all the time; every night|day|week|weekend|evening|morning;"
    " yesterday",
    "recent": "last night; this morning; earlier today; overnight",  # past with "was" or "had"
    "ongoing": "right now; at the moment; as we speak; just now; currently; happening now;"
    " still missing|inside|burning|trapped|alight; still not home|back|answering;"
    " not come|came|been home|back; not been seen",
}  # fmt: skip

_Pattern = tuple[frozenset[str], ...]
_MARKED: dict[str, list[tuple[str, _Pattern, int]]] = {}  # word -> (kind, pattern, its place)
for _kind, _texts in _BUILTIN.items():  # each pattern is found through its least common word
    for _text in _texts.split(";"):
        _pat = tuple(frozenset(alts.split("|")) for alts in _text.split())
        _at = max(
            range(len(_pat)), key=lambda k: (_pat[k].isdisjoint(_STOP), min(map(len, _pat[k])), k)
        )
        for _word in _pat[_at]:
            _MARKED.setdefault(_word, []).append((_kind, _pat, _at))
_MARKERS = frozenset(_MARKED) | {"lol"}


def _fold(text: str) -> str:
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def _stem(w: str) -> str:
    """A light English stemmer: one stem for "stab", "stabs", "stabbed" and "stabbing"."""
    if w in _IRREGULAR or len(w) <= 3 or not w.isalpha():
        return _IRREGULAR.get(w, w)
    if w.endswith("ies"):
        w = w[:-3] + "i"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for end in ("ied", "ed", "ing"):
        rest = w[: -len(end)]
        if w.endswith(end) and end == "ied" and len(w) >= 4:
            w = rest + "i"
            break
        if w.endswith(end) and not w.endswith("eed") and len(rest) >= 3 and _VOWELS & set(rest):
            undouble = len(rest) > 3 and rest[-1] == rest[-2] and rest[-1] not in "lszaeiouy"
            w = rest[:-1] if undouble else rest
            break
    if len(w) > 3 and w.endswith("e"):
        return w[:-1]
    return w[:-1] + "i" if len(w) > 3 and w.endswith("y") and w[-2] not in _VOWELS else w


_TOPIC = frozenset(map(_stem, _TOPIC_WORDS.split()))


def _expand(tok: str) -> list[str]:
    """Contractions and text speak: "isn't" -> ["is", "not"], "u" -> ["you"]."""
    tok = tok.strip("'*")
    if tok in _SPEAK:
        return _SPEAK[tok].split()
    if _LAUGH_WORD.fullmatch(tok):
        return ["lol"]
    if "'" not in tok:
        return [tok] if tok else []
    head, _, tail = tok.partition("'")
    if tail == "t" and head.endswith("n"):
        return [*_expand(_NOT_BASE.get(head[:-1], head[:-1])), "not"]
    return [*_expand(head), _TAILS[tail]] if tail in _TAILS else [*_expand(head), *_expand(tail)]


# A token's words, stems, look-up keys (stems, and "=word" for words as written), how far each
# word moves the clause count, and the look-up keys of its little words.
_Token = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple[str, ...]]
_CACHE: dict[bytes, _Token] = {
    b".": ((".",), ("",), (), (_SENTENCE,), ()),  # punctuation takes a slot of its own
    b",": ((",",), ("",), (), (_CLAUSE,), ()),
}


def _learn(tok: bytes) -> _Token:
    """Words, stems and look-up keys of one token of a message; kept, as most words recur."""
    words = tuple(_expand(tok.decode()))
    stems = tuple(_FAMILY.get(w) or _stem(w) for w in words)
    keys = [s for s in stems if s not in _STOP] + ["=" + w for w in words if w not in _STOP]
    little = [k for w, s in zip(words, stems, strict=True) if w in _STOP for k in ("=" + w, s)]
    if len(_CACHE) > 20_000:  # a bound on memory (a few MB); answers never depend on the cache
        _CACHE.pop(next(k for k in _CACHE if k not in (b".", b",")), None)
    _CACHE[tok] = found = (words, stems, tuple(keys), (0,) * len(words), tuple(little))
    return found


def _slips(w: str) -> set[str]:
    """Misspellings of w that still count as w (see the module docstring)."""
    n, out = len(w), set()
    for i in range(1, n if n >= 5 and w.isalpha() else 0):
        c = w[i]
        if (c in _VOWELS or n >= 7 or c == w[i - 1]) and i < n - 1:
            out.add(w[:i] + w[i + 1 :])
        out.add(w[: i + 1] + c + w[i + 1 :])
        if i + 1 < n and w[i + 1] != c:
            out.add(w[:i] + w[i + 1] + c + w[i + 2 :])
        if n >= 8 and c in "aeiou":
            out.update(w[:i] + v + w[i + 1 :] for v in "aeiou" if v != c)
    return out - {w}


class Layout(NamedTuple):
    """A message word by word, worked out only when some phrase may match it."""

    words: tuple[str, ...]  # "" where a figure of speech was taken out; "." and "," for breaks
    stems: tuple[str, ...]
    clauses: tuple[int, ...]  # the clause of each slot: 1000 times the sentence, plus commas
    calm: bool = False  # a joke, a hedge or a past event: emergency phrases stay silent
    muted: tuple[int, ...] = ()  # slots from which the rest of the clause is hypothetical


class Prepared:
    """One message, normalised and split into words once, then given to every PhraseSet.

    Making one is cheap: the word-by-word layouts are worked out on first use, and kept.
    """

    __slots__ = ("_calm", "_every", "_layout", "_marked", "_tokens", "keys")

    def __init__(self, tokens: list[_Token], keys: frozenset[str], calm: bool) -> None:
        self._tokens, self._calm, self.keys = tokens, calm, keys  # keys: all but little words
        self._layout: Layout | None = None
        self._marked: Layout | None = None
        self._every: frozenset[str] | None = None

    @property
    def every(self) -> frozenset[str]:
        """keys, and the little words too."""
        if self._every is None:
            self._every = self.keys.union(chain.from_iterable([t[4] for t in self._tokens]))
        return self._every

    @property
    def layout(self) -> Layout:
        """The message word by word, as teams and redirects see it."""
        if self._layout is None:
            if not self._tokens:
                return Layout((), (), ())
            words, stems, _, moves, _ = zip(*self._tokens, strict=True)
            self._layout = Layout(
                tuple(chain.from_iterable(words)),
                tuple(chain.from_iterable(stems)),
                tuple(accumulate(chain.from_iterable(moves))),
            )
        return self._layout

    @property
    def marked(self) -> Layout:
        """The message as emergencies see it: figures of speech out, jokes and hedges noted."""
        if self._marked is None:
            self._marked = _mark(self.layout, self._calm)
        return self._marked

    def __repr__(self) -> str:
        return f"Prepared({' '.join(w or '_' for w in self.marked.words)!r})"


def prepare(text: str) -> Prepared:
    """Normalise and split a message once; cheap, and safe on any text."""
    t = text.casefold()
    laughing = False
    if not t.isascii():
        laughing = _LAUGH_EMOJI.search(t) is not None
        t = _NON_ASCII.sub(" ", _fold(t.translate(_QUOTES)))
    if "http" in t or "www." in t:
        t = _URL.sub(" ", t)
    split = t.encode().translate(_PUNCT).replace(b".", b" . ").replace(b",", b" , ").split()
    cache = _CACHE
    tokens = [cache.get(tok) or _learn(tok) for tok in split]
    keys = frozenset(chain.from_iterable([token[2] for token in tokens]))
    dated = ("19" in t or "20" in t) and _YEAR.search(t) is not None
    return Prepared(tokens, keys, laughing or dated)


def _mark(layout: Layout, calm: bool) -> Layout:
    """Find the built-in patterns; take figures of speech out; say whether the message is calm."""
    hits = _MARKERS.intersection(layout.words)
    if not hits:
        return layout._replace(calm=calm)
    words, stems, clauses = list(layout.words), list(layout.stems), layout.clauses
    spans: dict[str, list[tuple[int, int]]] = {kind: [] for kind in _BUILTIN}
    for i in _slots(layout.words, hits):
        for kind, pattern, place in _MARKED.get(words[i], ()):
            start, end = i - place, i - place + len(pattern)
            if (
                0 <= start < end <= len(words)
                and clauses[start] == clauses[end - 1]
                and all(map(frozenset.__contains__, pattern, words[start:end]))
            ):
                spans[kind].append((start, end))
    if not calm and not spans["ongoing"]:
        past = spans["past"] + (spans["recent"] if not _PAST_VERBS.isdisjoint(words) else [])
        calm = any(start == 0 or words[start - 1] != "since" for start, _ in past)
    muted = [start for start, _ in spans["future"]]
    for start, _ in spans["clause"]:
        while start > 0 and clauses[start - 1] == clauses[start]:
            start -= 1
        muted.append(start)
    for start, end in spans["figurative"]:
        words[start:end] = stems[start:end] = [""] * (end - start)
    calm = calm or "lol" in hits or bool(spans["hedge"])
    return layout._replace(words=tuple(words), stems=tuple(stems), calm=calm, muted=tuple(muted))


@dataclass(frozen=True, slots=True)
class _Word:
    forms: frozenset[str]  # stems that match, misspellings included
    spelt: frozenset[str] = frozenset()  # the word as written, and its misspellings
    prefix: str = ""  # for "word*"
    keys: frozenset[str] = frozenset()  # look-up keys, as in _Token
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
    singles: list[int]  # phrases with one telling word
    pairs: dict[str, list[int]]  # phrases by the keys of their second telling word
    seconds: frozenset[str] = frozenset()


def _compile(text: str, emergency: bool = True) -> list[_Word]:
    t = _NON_ASCII.sub(" ", _fold(text.casefold().translate(_QUOTES)))
    out: list[_Word] = []
    for tok in t.encode().translate(_PUNCT).replace(b".", b" ").replace(b",", b" ").split():
        if tok.endswith(b"*"):
            out.append(_Word(frozenset(), prefix=tok.decode().strip("'*")))
            continue
        ws, ss, *_ = _CACHE.get(tok) or _learn(tok)
        for w, s in zip(ws, ss, strict=True):
            spelt, forms = frozenset({w, *_slips(w)}), frozenset({s, *_slips(s)})
            keys = frozenset({"=" + w, s}) if w in _STOP else forms | {"=" + x for x in spelt}
            ending = next((e for e in ("ing", "ed") if w.endswith(e) and s != w), "")
            out.append(_Word(forms, spelt, "", keys, ending if emergency else ""))
    kept = [w for w in out if w.spelt.isdisjoint(("a", "an", "the"))]
    return kept or out


def _rank(w: _Word) -> int:
    """How rarely a word turns up in messages: little words -1, common 0, families 1-2, others 3."""
    if not w.spelt.isdisjoint(_STOP):
        return -1
    if not w.forms.isdisjoint(_FAMILIES):
        return 2 if w.forms & {"~water", "~vehicle"} else 1
    return 0 if not (w.spelt.isdisjoint(_COMMON) and w.forms.isdisjoint(_COMMON)) else 3


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
                merged = [_Word(a.forms, a.spelt | b.spelt, a.prefix, a.keys | b.keys, a.ending)
                          for a, b in zip(seen, words, strict=True)]  # fmt: skip
                compiled[shape] = first, merged
            elif words:
                compiled[shape] = text, words
        self._phrases: list[_Phrase] = []
        # phrases by their least common word (a group for each), then their next least common
        groups: dict[frozenset[str], _Group] = {}
        self._always: list[int] = []  # phrases of little words or word*: tried on every message
        for idx, (text, words) in enumerate(compiled.values()):
            order = sorted((w for w in words if not w.prefix), key=_rank, reverse=True)
            negated = not words[0].spelt.isdisjoint(_NEGATORS)
            simple = len(words) == 1 and not words[0].ending and not words[0].prefix
            rest = tuple(w.keys for w in order[2:])
            self._phrases.append(_Phrase(text, tuple(words), negated, rest, simple))
            if not order or order[0].spelt & _STOP:
                self._always.append(idx)
                continue
            group = groups.setdefault(order[0].keys, _Group([], {}))
            if len(order) == 1:
                group.singles.append(idx)
            for second in order[1].keys if len(order) > 1 else ():
                group.pairs.setdefault(second, []).append(idx)
        self._index: dict[str, list[_Group]] = {}
        for keys, group in groups.items():
            group.seconds = frozenset(group.pairs)
            for key in keys:
                self._index.setdefault(key, []).append(group)
        self._keys = frozenset(self._index)
        self._unless = PhraseSet(unless, emergency=False) if unless else None
        self._emergency = emergency

    def find(self, prepared: Prepared) -> str | None:
        """The first phrase (as written) that the message matches, or None."""
        if self._keys.isdisjoint(prepared.keys) and not self._always:
            return None
        blocked: list[tuple[int, int]] | None = None
        for idx in self._candidates(prepared):
            phrase = self._phrases[idx]
            if phrase.rest and any(map(prepared.every.isdisjoint, phrase.rest)):
                continue
            if phrase.simple and not self._emergency and not self._unless:
                return phrase.text
            p = prepared.layout
            if self._emergency:  # marking figures of speech only ever takes matches away
                if not _occurrences(phrase.words, p):
                    continue
                p = prepared.marked
                if p.calm:
                    return None
            for occ in _occurrences(phrase.words, p):
                if blocked is None:
                    blocked = self._unless._spans(prepared) if self._unless else []
                if any(_near(occ, span, p.clauses) for span in blocked):
                    continue
                if not self._emergency or not _vetoed(phrase, occ, p):
                    return phrase.text
        return None

    def _candidates(self, prepared: Prepared) -> list[int]:
        hits = self._keys.intersection(prepared.keys)
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
        layout = prepared.layout
        return [
            (occ[0], occ[-1])
            for idx in self._candidates(prepared)
            for occ in _occurrences(self._phrases[idx].words, layout, 0)
        ]


def _near(occ: tuple[int, ...], span: tuple[int, int], clauses: tuple[int, ...]) -> bool:
    """Whether an `unless` occurrence overlaps or is close to a match, in the same sentence."""
    first, last = occ[0], occ[-1]
    if clauses[first] // _SENTENCE != clauses[span[0]] // _SENTENCE:
        return False
    return span[0] - last <= UNLESS_NEAR + 1 and first - span[1] <= UNLESS_NEAR + 1


def _occurrences(words: Sequence[_Word], p: Layout, gap: int = MAX_GAP) -> list[tuple[int, ...]]:
    """Each way the words occur in order, at most `gap` words apart, within one clause."""
    stems, spelt, clauses = p.stems, p.words, p.clauses
    slots: list[list[int]] = []
    for w in words:
        if w.prefix:
            found = [i for i, x in enumerate(spelt) if x.startswith(w.prefix) and x[0].isalnum()]
        else:  # by stem; by spelling only for a slip in a word's ending ("breathng")
            hit = w.forms.intersection(stems)
            found = _slots(stems, hit) if hit else _slots(spelt, w.spelt.intersection(spelt))
            if w.ending == "ing":
                found = [i for i in found if spelt[i] in w.spelt or not spelt[i].endswith("ed")]
            elif w.ending:
                found = [
                    i for i in found if spelt[i] in w.spelt or spelt[i].endswith(("ed", "ing"))
                ]
        if not found:
            return []
        slots.append(found)
    out: list[tuple[int, ...]] = [(i,) for i in slots[0]]
    for later in slots[1:]:  # extend each partial occurrence by the next word
        out = [
            (*occ, i)
            for occ in out
            for i in later
            if occ[-1] < i <= occ[-1] + gap + 1 and clauses[i] == clauses[occ[-1]]
        ]
    return out


def _slots(seq: tuple[str, ...], keys: frozenset[str]) -> list[int]:
    """Where any of keys occurs in seq, found with C-speed searches."""
    if len(keys) == 1:
        (key,) = keys
        if seq.count(key) == 1:
            return [seq.index(key)]
    out: list[int] = []
    for key in keys:
        i = -1
        for _ in range(seq.count(key)):
            i = seq.index(key, i + 1)
            out.append(i)
    return sorted(out)


def _vetoed(phrase: _Phrase, occ: tuple[int, ...], p: Layout) -> bool:
    """Whether this occurrence of an emergency phrase is not a real emergency now."""
    words, clauses = p.words, p.clauses
    first = occ[0]
    clause = clauses[first]
    if any(m <= first and clauses[m] == clause for m in p.muted):
        return True
    negation = not phrase.negated
    for k in range(first - 1, max(first - 5, -1), -1):  # "nearly hit", "nobody was hurt"
        if clauses[k] != clause:
            break
        if words[k] in _MODALS or (negation and first - k <= 3 and words[k] in _NEGATORS):
            return True
        negation = negation and words[k] in _LITTLE
        if words[k] == "had" and (k == 0 or words[k - 1] not in _PERFECT):  # "had a stroke"
            return True
    after = words[occ[-1] + 1 : occ[-1] + 3]
    if after[:1] == ("slightly",) or after in (("a", "bit"), ("a", "little")):
        return True  # "sparking a bit"
    if any(i + 1 < len(words) and i + 1 not in occ and p.stems[i + 1] in _TOPIC for i in occ):
        return True  # "fire safety", "knife crime", "suicide prevention"
    start = first  # "is it illegal to carry a knife?", "what do I do if I smell gas?"
    while start > 0 and clauses[start - 1] == clause:
        start -= 1
    start += words[start] in _BREAKS
    opener, between = words[start], words[start + 1 : first]
    if opener == "if" or (start + 1 < len(words) and words[start + 1] in _ASKING.get(opener, ())):
        return True
    return opener in _QUESTION and (
        "if" in between or (opener in _HOW and not _REPORT.isdisjoint(between))
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
    if not stars and all(w.spelt & _STOP for w in words):
        return (
            "only has little words such as 'the', 'is', 'my' or 'not', which are in almost every"
            " message: add a word that says what the message is about"
        )
    return None
