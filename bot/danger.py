"""Danger words with signs that it is happening now: emergencies that no phrase in rules.toml names.

Phrase lists catch what people usually write ("not breathing", "smell of gas"); people in trouble
also write things nobody listed ("my dad's gone grey and can't get his words out"). So, after the
[[emergency]] phrases, Holding Reply also looks for *danger words* (word families: "bleed" is
also "bleeding" and "bled") and treats a message as an emergency when, in the same sentence
(for a sign of now, the sentence before or after will do),

- a danger word comes with a sign that it is happening now: "now", "right now", "tonight",
  "help", "please hurry", "can hear", "I can see", "won't stop", "is ...ing" ("is shaking"); or
- two kinds of danger word of the same emergency come together: "crushing" and "chest",
  "stinks" and "rotten eggs", "toddler" and "on his own".

It stays silent on what emergency phrases ignore too (jokes, "not urgent", events "last week",
figures of speech), on questions about services ("how do I report…", "is that legal"), on a
danger word with "no" or "nobody" just before it ("no smoke", "nobody hurt"), with a topic word
just after it ("smoke alarm", "fire safety"), after "if" in its clause, and on sentences about
animals, bonfires, boilers and the like (QUIET below).

The lists are built in: comms staff keep adding phrases to rules.toml, which always come first.
"""

from __future__ import annotations

from itertools import chain

from bot.wording import (
    COMMON,
    FAMILY,
    LITTLE,
    NEGATORS,
    SENTENCE,
    STOP,
    TOPIC,
    Layout,
    Prepared,
    expand,
    positions,
    stem,
)

__all__ = ["danger"]

# Each emergency (named as in rules.toml) has kinds of danger word. A kind without a mark counts
# with a sign of now, or paired with any other kind of the same emergency. A kind marked "+" only
# counts in a pair (with an unmarked or another "+" kind); one marked "@" (who or where) only
# pairs with an unmarked kind. A presence sign may be in the next or previous sentence. Words are
# stemmed ("bleeding" is "bleed"); "a_b" is two words in a row; "~child" is a whole family
# (bot/wording.py FAMILIES): kid, toddler, baby, boy, girl, son, daughter.
CONCEPTS: dict[str, dict[str, str]] = {
    "gas": {
        "+smell": "smell smelt stink stinks reek whiff fumes hissing hiss roaring",
        "gas": "gas rotten_egg rotten_eggs eggs sulphur monoxide",
        "+appliance": "cooker hob oven pipe",
        "+feeling": "dizzy headache headaches drowsy",
    },
    "power": {
        "+cable": "cable cables wire wires pylon telegraph_pole power_line",
        "live": "sparking sparks fizzing arcing",
        "+fallen": "across_the_road across_the_path on_the_road on_the_pavement",
    },
    "self-harm": {
        "end": "suicide suicidal overdose noose end_it end_things end_my_life not_wake_up"
        " not_be_here not_here_anymore wasnt_here not_here goodbye goodbyes last_night_alive"
        " point_of_me make_sure_of_it can_not_keep_doing can_not_do_this",
        "+farewell": "sorry_mum sorry_dad sorry_for_everything goodbye_everyone love_you_all",
        "+means": "pills tablets packet paracetamol rope bridge ledge railings letter letters"
        " blade razor roof multi_storey",
        "+standing": "standing_on on_the_edge on_the_ledge",
    },
    "flood": {
        "+water": "water flood flooding floodwater river brook beck stream sewage",
        "rising": "underwater burst_its_banks burst_through pouring_in pouring_through coming_in"
        " rising",
        "+inside": "living_room kitchen ground_floor downstairs front_door back_door"
        " under_the_door stuck_upstairs stuck",
    },
    "domestic-abuse": {
        "threat": "hit_me hurting_me hurt_me kill_me finish_me finish_me_off got_me_by"
        " by_the_hair by_the_throat round_my_throat around_my_throat throttling strangling"
        " choking_me let_me_out let_me_leave locked_me smashed_my_phone burn_the_house",
        "hiding": "hiding hid barricaded whispering",
        "@him": "~he boyfriend husband partner ex gone_mad raging drunk",
    },
    "child-at-risk": {
        "@child": "~child year_old toddler baby",
        "alone": "on_his_own on_her_own on_their_own by_himself by_herself alone unattended"
        " no_one_with nobody_with wandering window_ledge ledge balcony carriageway motorway"
        " hot_car parked_car can_not_find_her_mum can_not_find_his_mum",
        "hurt": "hitting_it hitting_him hitting_her shaking_the screaming",
    },
    "missing-person": {
        "@who": "~child ~person dementia alzheimers alzheimer year_old",
        "gone": "missing not_back not_home not_in_her_bed not_in_his_bed meant_to_be_home"
        " can_not_see_him can_not_see_her anywhere phone_is_off phone_off not_answering"
        " wandered",
    },
    "medical": {
        "breathing": "breath breathing breathe gasping gurgling wheezing choking throat_is_closing"
        " closing_up",
        "+swallowed": "swallowed drank eaten",
        "+poison": "battery batteries button_battery bleach magnet magnets",
        "conscious": "unconscious collapsed unresponsive floppy limp lifeless keeled"
        " fainted not_waking not_talking wake_up not_moving",
        "colour": "gone_grey turned_grey grey_and turning_blue gone_blue funny_colour clammy"
        " pale sweating_buckets sweating",
        "fit": "seizure convulsing shaking twitching",
        "pain": "crushing agony chest_pain numb",
        "speech": "slurring slurred words_out talking_rubbish talking_nonsense one_side"
        " face_has_gone gone_funny no_sense",
        "blood": "blood bleeding bleed",
        "head": "hit_her_head hit_his_head banged_his_head banged_her_head lying_there",
        "+fall": "fallen fell",
        "+down": "gone_down went_down",
        "@body": "chest face head heart arm lips ~person took_something burning_up",
    },
    "fire": {
        "fire": "fire flames alight blaze ablaze smoke smoking glow gone_up lit_it lit_the"
        " catching_the on_fire burning",
        "@place": "~home garage roof window field kitchen dryer tumble_dryer flat heat spreading"
        " heading",
    },
    "crime-in-progress": {
        "breaking": "kicked_in kicking_in forced_open breaking_in break_in glass_breaking"
        " balaclava balaclavas intruder burglar burglars siphoning cash_machine",
        "inside": "someone_is_in someone_is_inside someone_in_the_house going_through torches"
        " loading",
        "@place": "~home shop door car cars garage",
    },
    "danger-to-life": {
        "weapon": "knife machete cleaver meat_cleaver golf_club bat screwdriver hammer axe crowbar"
        " bottle weapon gun",
        "violence": "laying_into lay_into set_about attacking beating punching kicking stabbing"
        " swinging been_glassed got_glassed threatening fighting",
        "water": "in_the_river in_the_canal in_the_sea into_the_canal into_the_river"
        " not_coming_back_up can_not_get_out",
        "@hurt": "on_the_floor lying_there shouting screaming crying underneath trapped",
    },
    "vulnerable-person": {
        "confused": "confused not_know_what_day not_know_where nightdress"
        " nightie pyjamas dressing_gown slippers pants calling_out",
        "+cold": "freezing shivering",
        "@who": "elderly old_lady old_man old_woman neighbour ~person dementia",
        "unseen": "on_the_floor not_been_seen bad_smell flies not_come_to_the_door not_answering",
    },
}

# Kinds of danger word that, alone, make a possible emergency: answered with the emergency line
# and alerted, for a person to look at at once.
POSSIBLE = frozenset({"end", "breathing", "conscious", "fit", "weapon", "violence", "threat"})

# Signs that it is happening now, anywhere in the sentence ("a_b" is two words in a row).
NOW = (
    "now right_now currently at_the_moment as_we_speak tonight help quick quickly hurry urgent"
    " urgently asap immediately as_i_type still just can_hear can_see can_smell i_hear will_not"
    " can_not getting_worse getting_stronger anywhere everywhere"
)
BE = frozenset({"is", "are", "am"})  # "is shaking", "are laying into": a progressive
# A sentence with one of these words is about something harmless (in the words or stems).
QUIET = (
    "bonfire bbq barbecue chimney cigarette vape candle firework fireworks rubbish waste calendar"
    " collection leaves"
    " fox cat dog bird pigeon seagull gull badger hedgehog deer wasp rat rats mouse mice"
    " alarm drill test boiler works bill supply meter_reading hospital doctor appointment"
    " website form app login account film movie game match tv episode book"
)
# Asking about a service: a clause opening "how do", "is there", "can i" (not "can you").
ASKS = (
    "how_do how_can how_long how_much how_often who_do who_can who_should where_can where_do"
    " where_is when_will when_is when_does when_do is_there is_that is_it are_there can_i"
    " can_we could_i do_you does_anyone does_the does_it"
)


def _cues(text: str) -> list[tuple[str, ...]]:
    """ "gone_down smoke" -> [("gon", "down"), ("smok",)]: stems, word by word."""
    out = []
    for cue in text.split():
        words = chain.from_iterable(expand(w) for w in cue.split("_"))
        out.append(tuple(w if w.startswith("~") else FAMILY.get(w) or stem(w) for w in words))
    return out


_COMMON = COMMON | frozenset(map(stem, COMMON))


def _index(cues: list[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    """Cues by their least common stem (messages' keys leave little words out)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for cue in cues:
        rare = [s for s in cue if s not in _COMMON] or [s for s in cue if s not in STOP] or cue
        out.setdefault(rare[0], []).append(cue)
    return out


_Cue = tuple[str, str, int]  # emergency, kind of danger word, _LEVEL of the kind
_LEVEL = {"+": 1, "@": 2}  # a danger word 0, "+" pairs with any other kind, "@" with danger
_CUES: dict[str, list[tuple[tuple[str, ...], _Cue, int]]] = {}  # the key's place in the cue
for _name, _kinds in CONCEPTS.items():
    for _kind, _words in _kinds.items():
        for _key, _listed in _index(_cues(_words)).items():
            _CUES.setdefault(_key, []).extend(
                (cue, (_name, _kind, _LEVEL.get(_kind[0], 0)), cue.index(_key)) for cue in _listed
            )
for _key, _listed1 in _CUES.items():  # "husband" and "partner" are both ~person: one cue
    _CUES[_key] = list(dict.fromkeys(_listed1))
# Look-up keys a message needs for each cue: "@" words alone never decide, so they are left out.
_NEEDS: dict[str, list[tuple[frozenset[str], frozenset[str]]]] = {}  # words; little words
for _key, _listed2 in _CUES.items():
    for _cue, _what, _ in _listed2:
        if _what[2] < 2:
            _NEEDS.setdefault(_key, []).append(
                (frozenset(s for s in _cue if s not in STOP), frozenset(_cue) & STOP)
            )
_KEYS = frozenset(_NEEDS)
_NOW = _index(_cues(NOW))
_QUIET = _index(_cues(QUIET))
_ASKS = frozenset(tuple(a.split("_")) for a in ASKS.split())
_OPENERS = frozenset(first for first, _ in _ASKS)
_CUE_KEYS = frozenset(_CUES)
_ORDER = {name: n for n, name in enumerate(CONCEPTS)}
# "not" before these is the danger itself: "not breathing", "not moving", "not answering"
_LITTLE = LITTLE | NEGATORS
_NOT_OK = frozenset(["breath", "wak", "mov", "answer", "back", "home", "seen", "know", "com"])


def _at(stems: tuple[str, ...], i: int, cue: tuple[str, ...]) -> int:
    """Where the cue ends if its stems are at i (a little word may come between two), else 0."""
    if i < 0 or stems[i] != cue[0]:
        return 0
    for s in cue[1:]:
        i += 1
        if i < len(stems) and stems[i] != s and stems[i] in LITTLE:
            i += 1
        if i >= len(stems) or stems[i] != s:
            return 0
    return i + 1


def _found(p: Layout, index: dict[str, list[tuple[str, ...]]], skip: set[int]) -> set[int]:
    """The sentences in which some cue of index occurs (not at the slots in skip)."""
    out, stems, words = set(), p.stems, p.words
    keys = index.keys()
    at = positions(stems, keys & stems) + positions(words, keys & words)
    for i in sorted(set(at)) if at else ():
        s = stems[i]
        for cue in index.get(s) or index.get(words[i]) or ():
            start = i - cue.index(s) if s in cue else i
            if start not in skip and _at(stems, start, cue):
                out.add(p.clauses[i] // SENTENCE)
    return out


def _asking(p: Layout) -> set[int]:
    """Sentences with a clause that asks about a service."""
    words, clauses, out = p.words, p.clauses, set()
    openers = _OPENERS.intersection(words)
    for i in positions(words, openers) if openers else ():
        start = i == 0 or clauses[i - 1] != clauses[i] or words[i - 1] in (".", ",")
        if start and i + 1 < len(words) and (words[i], words[i + 1]) in _ASKS:
            out.add(clauses[i] // SENTENCE)
    return out


def _vetoed(p: Layout, i: int, cue: tuple[str, ...], end: int, iffy: bool) -> bool:
    """Whether a danger word at i is negated, hypothetical or a topic; iffy: "if" in the text."""
    words, clauses = p.words, p.clauses
    for k in range(i - 1, max(i - 4, -1), -1):  # "no smoke", "nobody was hurt", "isn't bleeding"
        if clauses[k] != clauses[i] or words[k] not in _LITTLE:
            break
        if words[k] in NEGATORS and (words[k] != "not" or cue[0] not in _NOT_OK):
            return True
    if p.muted and any(m <= i and clauses[m] == clauses[i] for m in p.muted):
        return True  # "someone will get hurt"
    if iffy and "if" in words[clauses.index(clauses[i]) : i]:  # "if I smell gas"; a clause's
        return True  # slots are in a row, and this is its first
    return end < len(words) and p.stems[end] in TOPIC  # "fire safety", "smoke alarm"


def _needed(prepared: Prepared) -> bool:
    """Whether the message has every word of some cue that can decide (most messages have not)."""
    keys = prepared.keys
    found = _KEYS.intersection(keys)
    if found:
        every = prepared.every
        for key in found:
            for words, little in _NEEDS[key]:
                if words <= keys and little <= every:
                    return True
    return False


def danger(prepared: Prepared) -> tuple[str, str, bool] | None:
    """(emergency name as in rules.toml, the words that made it one, certain), or None.

    Certain: a danger word with a sign that it is happening now, or two kinds of word of the
    same emergency in a sentence. Not certain (a possible emergency): a danger word alone.
    For a message no [[emergency]] phrase matched; cheap when the message has no danger word.
    """
    if not _needed(prepared):
        return None
    p = prepared.marked
    if p.calm:
        return None
    stems, words, clauses = p.stems, p.words, p.clauses
    hits: list[tuple[int, str, _Cue]] = []  # sentence, words as written, what they are
    used: set[int] = set()
    found, iffy = _CUE_KEYS.intersection(stems), "if" in words
    for i in positions(stems, found) if found else ():
        s = stems[i]
        for cue, what, place in _CUES[s]:
            start = i - place
            end = i + 1 if len(cue) == 1 else _at(stems, start, cue)
            if end and not _vetoed(p, start, cue, end, iffy):
                hits.append((clauses[start] // SENTENCE, " ".join(words[start:end]), what))
                used.update(range(start, end))
    if not hits:
        return None
    quiet = _found(p, _QUIET, used) | _asking(p)
    now: set[int] | None = None
    best: tuple[int, str, str] | None = None
    maybe: tuple[str, str] | None = None  # the first danger word alone, for a possible one
    for sentence, text, (name, kind, level) in hits:
        if sentence in quiet or (best is not None and _ORDER[name] >= best[0]):
            continue
        said = None
        if not level:
            now = _found(p, _NOW, used) | _progressive(p) if now is None else now
            said = text if now & {sentence - 1, sentence, sentence + 1} else None
            if said is None and maybe is None and kind in POSSIBLE:
                maybe = (name, text)
        if said is None:
            said = next(
                (f"{text} + {h[1]}" for h in hits
                 if h[0] == sentence and h[2][0] == name and h[2][1] != kind
                 and (not level or not h[2][2] or level + h[2][2] == 2)),
                None,
            )  # fmt: skip
        if said is not None:
            best = (_ORDER[name], name, said)
    if best is not None:
        return best[1], best[2], True
    return None if maybe is None else (maybe[0], maybe[1], False)


def _progressive(p: Layout) -> set[int]:
    """Sentences with "is/are/am ...ing" ("he is shaking", "they are laying into")."""
    words, out = p.words, set()
    found = BE.intersection(words)
    for i in positions(words, found) if found else ():
        for k in (i + 1, i + 2):
            if k < len(words) and words[k].endswith("ing") and words[k] != "going":
                out.add(p.clauses[i] // SENTENCE)
    return out


def signs(prepared: Prepared) -> list[str]:
    """Signs of the message's shape, for bot/urgency.py: told as a joke, hedge or past event
    (#calm), asking about a service (#ask), something happening now (#now), about something
    harmless (#quiet), a figure of speech taken out (#figure), a hypothetical clause (#if)."""
    return plain_signs(prepared) + searched_signs(prepared)


# The signs plain_signs gives (read off the marked message) and those searched_signs looks for.
PLAIN_SIGNS = ("#calm", "#figure", "#if")
SEARCHED_SIGNS = ("#ask", "#now", "#quiet")


def plain_signs(prepared: Prepared) -> list[str]:
    """The signs that marking the message already found: nearly free."""
    p = prepared.marked
    out = ["#calm"] if p.calm else []
    if "" in p.words:
        out.append("#figure")
    if p.muted:
        out.append("#if")
    return out


def searched_signs(prepared: Prepared) -> list[str]:
    """The signs that need the message searched for cues."""
    p = prepared.marked
    out = ["#ask"] if _asking(p) else []
    if _found(p, _NOW, set()) or _progressive(p):
        out.append("#now")
    if _found(p, _QUIET, set()):
        out.append("#quiet")
    return out
