"""The built-in wording that phrase matching knows: text speak, word families, figures of speech.

bot/phrases.py uses these tables; comms staff never need to edit them, but a developer widening
what the matcher understands (a new bit of text speak, a new word family) does it here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Set as AbstractSet
from itertools import accumulate, chain
from operator import itemgetter
from typing import NamedTuple


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _table(pairs: str, sep: str = "_") -> dict[str, str]:
    """ "a=b c=d_e" -> {"a": "b", "c": "d e"}."""
    return {k: v.replace(sep, " ") for k, v in (p.split("=") for p in pairs.split())}


LAUGH_EMOJI = re.compile("[\U0001f602\U0001f923\U0001f606\U0001f639\U0001f61c\U0001f61d]")
LAUGH_WORD = re.compile(r"(?:a?h[ae]){2,}h*|lo+l[lo]*|lmf?a+o+|rofl|jk")
# Text speak, and contractions written without their apostrophe.
SPEAK = _table(
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
    " dieing=dying jus=just tryna=trying_to sumthin=something summat=something sumfin=something"
    " smth=something nuffin=nothing bout=about wen=when hav=have luv=love bf=boyfriend"
    " gf=girlfriend cudnt=could_not dnt=do_not 2=to"
)
# Words ending in -in that are not an -ing with its g dropped ("pourin", "sparkin").
NOT_DROPPED_G = _set(
    "begin within robin cousin cabin basin margin latin satin toxin resin raisin violin origin"
    " vitamin muffin puffin coffin pumpkin napkin dolphin goblin admin cumin martin austin kevin"
    " justin dustin assassin bulletin javelin mandolin insulin aspirin gremlin muslin griffin"
    " pippin dublin berlin merlin franklin baldwin darwin edwin irwin gavin calvin colin caitlin"
    " penguin"
)
NOT_BASE = _table("ca=can wo=will sha=shall ai=is")  # can't, won't, shan't, ain't
TAILS = _table("s=is re=are ve=have ll=will d=would m=am")
IRREGULAR = _table("die=di dying=di lie=li lying=li tie=ti tying=ti")
FAMILIES = _table(  # word families: a member in a phrase matches any member in a message
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
FAMILY = {w: key for key, words in FAMILIES.items() for w in words.split()}
VOWELS = frozenset("aeiouy")
LITTLE = _set("a an the is was were are be been being one really actually even any")
NEGATORS = _set("no not never noone nobody nothing none without")
MODALS, PERFECT, PAST_VERBS = (
    _set("nearly almost could"),
    _set("has have just is"),
    _set("was were had"),
)
QUESTION = _set("what who how where when which why should can could do does did is are will")
HOW, REPORT, BREAKS = _set("how who where what"), _set("report contact"), _set(". ,")
ASKING = {  # a clause opening like this asks about something rather than reporting it
    k: frozenset(v.split())
    for k, v in _table(
        "is=it_there_this_that_the are=there_the_these_those_you do=you_they does=the_it_anyone"
        " can=i_we_you could=i_we how=do_can_many_much_often_long where=can_do_is_are"
        " who=do_can_is_should when=will_is_does_are_do what=is_are why=is_are_do_does"
        " will=you_the have=you has=the_anyone"
    ).items()
}
STOP = (
    LITTLE
    | NEGATORS
    | _set(  # never looked up first: in too many messages
        "i me my you your he she it we they him her his our their them to of in on at by for with"
        " and or but so if as this that there here have has had do does did can will would could"
        " should just get got please hi hello what when where how who why which from up out about"
        " some all am its ~he ~him"
    )
)
COMMON = STOP | _set(  # looked up first only when a phrase has nothing rarer
    "someone somebody anyone everyone something anything thing come coming came go going gone"
    " went know think see seen look looking like want need make take took taken give say said"
    " tell call ring time day week night today tonight now still again new old good bad big"
    " little very right left down over off into near next back front side top around outside"
    " inside behind way also too more much many lot loads keep keeps help thanks sorry bit"
    " might must two three hour hours minute minutes year years street road hand head"
)
TOPIC_WORDS = (  # a word just after an emergency word that makes it a topic, not an event
    "crime awareness prevention training campaign course safety station service brigade alarm"
    " detector extinguisher drill door exit blanket hydrant engine officer risk hazard regulation"
    " certificate inspection check test policy strategy statistic figure rate amnesty bin arch"
    " poster leaflet talk workshop event week day month appeal charity fundraiser support group"
    " team plan warning alert defence map insurance grant pit cooker meter bill supply engineer"
    " appliance resilience scheme forum volunteer trainer class lesson film movie show refuge"
    " helpline escape force info information counsellor counselling range star sharpening stall"
)

# Built-in patterns on whole words in a row; "a|b" means a or b. Each kind is ";"-separated.
BUILTIN = {
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
    " train wreck; bleeding money|dry;"
    " bleeding|flaming|blooming ridiculous|joke|disgrace|hell|typical|useless|"
    "nightmare|shambles|council|stupid|awful|annoying|cheek|liberty|idiots|hopeless",
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
    " yesterday; on monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    " night|morning|afternoon|evening; in january|february|march|april|may|june|july|august|"
    "september|october|november|december",
    "recent": "last night; this morning; earlier today; overnight;"
    " on monday|tuesday|wednesday|thursday|friday|saturday|sunday",  # past with "was" or "had"
    "ongoing": "right now; at the moment; as we speak; just now; currently; happening now;"
    " still missing|inside|burning|trapped|alight; still not home|back|answering;"
    " not come|came|been home|back; not been seen; just started|starting;"
    " started|starting again; doing it again",
}

CLAUSE, SENTENCE = 1, 1000  # a comma starts a new clause; a full stop, a new sentence
PUNCT = bytes(  # every byte but letters, digits, ' and * becomes a space; . and , mark breaks
    b
    if chr(b).isalnum() or chr(b) in "'*"
    else 46
    if chr(b) in ".!?\n"
    else 44
    if chr(b) in ",;:()[]"
    else 32
    for b in range(256)
)
QUOTES = str.maketrans(
    dict.fromkeys("\u2018\u2019\u02bc\u00b4\u2032", "'") | dict.fromkeys("\u2013\u2014", " , ")
)
NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_URL = re.compile(r"https?://\S+|www\.\S+")
_YEAR = re.compile(r"\b(?:in|during) (?:19|20)\d\d\b")
_COMBINING = re.compile(r"[\u0300-\u036f]")

_Pattern = tuple[frozenset[str], ...]
_MARKED: dict[str, list[tuple[str, _Pattern, int]]] = {}  # word -> (kind, pattern, its place)
for _kind, _texts in BUILTIN.items():  # each pattern is found through its least common word
    for _text in _texts.split(";"):
        _pat = tuple(frozenset(alts.split("|")) for alts in _text.split())
        _at = max(
            range(len(_pat)), key=lambda k: (_pat[k].isdisjoint(STOP), min(map(len, _pat[k])), k)
        )
        for _word in _pat[_at]:
            _MARKED.setdefault(_word, []).append((_kind, _pat, _at))
_MARKERS = frozenset(_MARKED) | {"lol"}


def fold(text: str) -> str:
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def stem(w: str) -> str:
    """A light English stemmer: one stem for "stab", "stabs", "stabbed" and "stabbing"."""
    if w in IRREGULAR or len(w) <= 3 or not w.isalpha():
        return IRREGULAR.get(w, w)
    if w.endswith("ies"):
        w = w[:-3] + "i"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for end in ("ied", "ed", "ing"):
        rest = w[: -len(end)]
        if w.endswith(end) and end == "ied" and len(w) >= 4:
            w = rest + "i"
            break
        if w.endswith(end) and not w.endswith("eed") and len(rest) >= 3 and VOWELS & set(rest):
            undouble = len(rest) > 3 and rest[-1] == rest[-2] and rest[-1] not in "lszaeiouy"
            w = rest[:-1] if undouble else rest
            break
    if len(w) > 3 and w.endswith("e"):
        return w[:-1]
    return w[:-1] + "i" if len(w) > 3 and w.endswith("y") and w[-2] not in VOWELS else w


TOPIC = frozenset(map(stem, TOPIC_WORDS.split()))


def expand(tok: str) -> list[str]:
    """Contractions and text speak: "isn't" -> ["is", "not"], "u" -> ["you"]."""
    tok = tok.strip("'*")
    if tok in SPEAK:
        return SPEAK[tok].split()
    if LAUGH_WORD.fullmatch(tok):
        return ["lol"]
    if "'" not in tok:
        if len(tok) >= 5 and tok.endswith("in") and tok[-3] not in "aeiouy" and tok.isalpha():
            return [tok if tok in NOT_DROPPED_G else tok + "g"]  # "comin" is "coming"
        return [tok] if tok else []
    head, _, tail = tok.partition("'")
    if tail == "t" and head.endswith("n"):
        return [*expand(NOT_BASE.get(head[:-1], head[:-1])), "not"]
    return [*expand(head), TAILS[tail]] if tail in TAILS else [*expand(head), *expand(tail)]


# A token's words, stems, look-up keys (stems, and "=word" for words as written), how far each
# word moves the clause count, the look-up keys of its little words, and both kinds of keys.
_Token = tuple[
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[int, ...],
    tuple[str, ...],
    tuple[str, ...],
]
_CACHE: dict[bytes, _Token] = {
    b".": ((".",), ("",), (), (SENTENCE,), (), ()),  # punctuation takes a slot of its own
    b",": ((",",), ("",), (), (CLAUSE,), (), ()),
}
_KEYS_OF, _MOVES_OF, _EVERY_OF = itemgetter(2), itemgetter(3), itemgetter(5)


def learn(tok: bytes) -> _Token:
    """Words, stems and look-up keys of one token of a message; kept, as most words recur."""
    known = _CACHE.get(tok)
    if known is not None:
        return known
    words = tuple(expand(tok.decode()))
    stems = tuple(FAMILY.get(w) or stem(w) for w in words)
    keys = [s for s in stems if s not in STOP] + ["=" + w for w in words if w not in STOP]
    little = [k for w, s in zip(words, stems, strict=True) if w in STOP for k in ("=" + w, s)]
    if len(_CACHE) > 20_000:  # a bound on memory (a few MB); answers never depend on the cache
        _CACHE.pop(next(k for k in _CACHE if k not in (b".", b",")), None)
    kept, small = tuple(keys), tuple(little)
    both = kept + small if kept and small else kept or small  # most tokens: one, shared
    _CACHE[tok] = found = (words, stems, kept, (0,) * len(words), small, both)
    return found


def slips(w: str) -> set[str]:
    """Misspellings of w that still count as w (see the module docstring)."""
    n, out = len(w), set()
    for i in range(1, n if n >= 5 and w.isalpha() else 0):
        c = w[i]
        if (c in VOWELS or n >= 7 or c == w[i - 1]) and i < n - 1:
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
            self._every = frozenset(chain.from_iterable(map(_EVERY_OF, self._tokens)))
        return self._every

    def among(self, keys: frozenset[str]) -> frozenset[str]:
        """Those of keys in `every`; found without making `every` if it is not made yet."""
        if self._every is None:
            return keys.intersection(chain.from_iterable(map(_EVERY_OF, self._tokens)))
        return keys.intersection(self._every)

    @property
    def layout(self) -> Layout:
        """The message word by word, as teams and redirects see it."""
        if self._layout is None:
            if not self._tokens:
                return Layout((), (), ())
            tokens = self._tokens
            words = tuple([w for t in tokens for w in t[0]])
            if "." in words or "," in words:  # only the tokens "." and "," move the clause
                clauses = tuple(accumulate(chain.from_iterable(map(_MOVES_OF, tokens))))
            else:
                clauses = (0,) * len(words)
            self._layout = Layout(words, tuple([s for t in tokens for s in t[1]]), clauses)
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
        laughing = LAUGH_EMOJI.search(t) is not None
        t = NON_ASCII.sub(" ", fold(t.translate(QUOTES)))
    if "http" in t or "www." in t:
        t = _URL.sub(" ", t)
    split = t.encode().translate(PUNCT).replace(b".", b" . ").replace(b",", b" , ").split()
    try:  # most words of a message were seen before
        tokens = list(map(_CACHE.__getitem__, split))
    except KeyError:
        tokens = list(map(learn, split))
    keys = frozenset(chain.from_iterable(map(_KEYS_OF, tokens)))
    dated = ("19" in t or "20" in t) and _YEAR.search(t) is not None
    return Prepared(tokens, keys, laughing or dated)


def _mark(layout: Layout, calm: bool) -> Layout:
    """Find the built-in patterns; take figures of speech out; say whether the message is calm."""
    words, stems, clauses = layout.words, layout.stems, layout.clauses
    hits = _MARKERS.intersection(words)
    if not hits:
        return (
            layout
            if calm == layout.calm and not layout.muted
            else Layout(words, stems, clauses, calm)
        )
    spans: dict[str, list[tuple[int, int]]] = {}  # by kind, for the kinds found
    for i in positions(words, hits):
        for kind, pattern, place in _MARKED.get(words[i], ()):
            start, end = i - place, i - place + len(pattern)
            if (
                0 <= start < end <= len(words)
                and clauses[start] == clauses[end - 1]
                and all(map(frozenset.__contains__, pattern, words[start:end]))
            ):
                spans.setdefault(kind, []).append((start, end))
    if not calm and "ongoing" not in spans:
        past = spans.get("past", [])
        if "recent" in spans and not PAST_VERBS.isdisjoint(words):
            past = past + spans["recent"]
        calm = any(start == 0 or words[start - 1] != "since" for start, _ in past)
    muted = [start for start, _ in spans.get("future", ())]
    # a clause's slots are in a row: its first slot is where its number first appears
    muted += [clauses.index(clauses[start]) for start, _ in spans.get("clause", ())]
    calm = calm or "lol" in hits or "hedge" in spans
    if "figurative" in spans:  # otherwise the words stay the very same tuples, as phrases expect
        out, cut = list(words), list(stems)
        for start, end in spans["figurative"]:
            out[start:end] = cut[start:end] = [""] * (end - start)
        words, stems = tuple(out), tuple(cut)
    return Layout(words, stems, clauses, calm, tuple(muted))


def positions(seq: tuple[str, ...], keys: AbstractSet[str]) -> list[int]:
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
