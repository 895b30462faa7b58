"""The decision: a pure function of the message, the rules, what we know of the sender, and now.

It returns a value and does nothing else; the web channel and the store act on it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot import when
from bot.config import Category, Rules
from bot.danger import danger, plain_signs, searched_signs, signs
from bot.durations import Promise
from bot.language import detect_language, fixed_language
from bot.models import POSSIBLE, Decision, Message, SenderState
from bot.phrases import PhraseGroup, Prepared, prepare
from bot.responses import Responses, weekly_as_times
from bot.schedule import ClosedDay, Schedule
from bot.typical import NOTHING, Typical
from bot.urgency import features, signals, urgency

# Longest sender name a reply repeats back; a display name is not a place for an essay.
NAME_LIMIT = 40

# A sender we have never answered before.
NO_HISTORY = SenderState()

# Stands for the reference in a drafted reply until the store assigns one. Random per process
# and in Unicode's private use area, so no name or text a citizen sends can contain it.
REFERENCE_SLOT = f"\ue000{secrets.token_hex(4)}\ue000"


# A Decision's fields but held_back, in order.
_Fields = tuple[
    bool,
    datetime | None,
    datetime | None,
    str | None,
    str | None,
    str | None,
    str,
    str | None,
    str | None,
    str | None,
]


def _firsts(closed: tuple[ClosedDay, ...]) -> tuple[ClosedDay | None, ClosedDay | None]:
    """The first bank holiday and the first other closed day."""
    holiday = closure = None
    for day in closed:
        if day.bank_holiday:
            holiday = holiday or day
        else:
            closure = closure or day
    return holiday, closure


class Match(NamedTuple):  # a NamedTuple: made for most messages, and faster to make
    category: Category
    phrase: str  # what matched; for a possible emergency it starts with POSSIBLE


class Matcher:
    """The categories of one kind ([[emergency]], [[redirect]] or [[team]]), matched together."""

    def __init__(self, categories: tuple[Category, ...], group: PhraseGroup, kind: int) -> None:
        self.categories = categories
        self.group, self.kind = group, kind  # the group has every kind; this is the kind-th
        self.by_name = {c.name: c for c in categories}

    def first(self, prepared: Prepared) -> Match | None:
        """The first category, in rules.toml order, with a phrase in the message."""
        return self.match(self.group.firsts(prepared)[self.kind])

    def match(self, found: tuple[int, str] | None) -> Match | None:
        """What PhraseGroup.firsts found for this kind, as a Match."""
        return None if found is None else Match(self.categories[found[0]], found[1])

    def named(self, name: str) -> Category | None:
        """The category of this name; if the rules renamed or removed it, the first answered
        with emergency-999 stands in, so a danger is never dropped for want of a name."""
        return self.by_name.get(name) or next(
            (c for c in self.categories if c.response == "emergency-999"), None
        )

    def decide(
        self, prepared: Prepared, found: tuple[int, str] | None, welsh: bool
    ) -> Match | None:
        """The emergency, certain or possible, from the phrases of rules.toml, the built-in
        danger words (bot/danger.py) and the learned weights (bot/urgency.py) together.

        A phrase, or danger words with a sign that it is happening now, make an emergency unless
        the weights read the message as ordinary ("our team is on fire this season"). Otherwise
        the weights decide: high, an emergency; middling, a possible one.
        """
        phrase = self.match(found)
        words = None if phrase else danger(prepared)  # a phrase says enough, and costs less
        model = urgency()
        said = signals(phrase and phrase.category.name, words, [])
        stems = prepared.layout.stems
        score = model.quick(stems, said, welsh)
        veto, low, high = model.cuts["cy" if welsh else "en"]
        rule = phrase is not None or (words is not None and words[2])
        cuts: tuple[float, ...] = (veto,) if rule else (low, high)
        shape: list[str] = []
        if any(score + model.sign_loss < cut <= score + model.sign_gain for cut in cuts):
            # the signs can change the decision: first those marking found, then, if they
            # still can, those that need a search (each sign is there once: no set needed)
            weight = model.single.get
            shape = plain_signs(prepared)
            score += sum([weight(f, 0.0) for f in shape])
            gain, loss = model.searched_gain, model.searched_loss
            if any(score + loss < cut <= score + gain for cut in cuts):
                searched = searched_signs(prepared)
                score += sum([weight(f, 0.0) for f in searched])
                shape += searched
        if rule:
            if score < cuts[0]:
                return None
            if phrase is not None:
                return phrase
            category = self.named(words[0]) if words else None
            return None if category is None or words is None else Match(category, words[1])
        if score < cuts[0]:
            return None
        feats = features(prepared, said + shape, welsh)  # for the few flagged: which and why
        category = self.named((words and words[0]) or model.category(feats) or "")
        if category is None:
            return None
        why = model.telling(feats)
        return Match(category, why if score >= cuts[1] else POSSIBLE + why)


class Triage:
    """Decides for one set of rules and templates; holds only caches derived from them."""

    def __init__(self, rules: Rules, responses: Responses) -> None:
        self.rules = rules
        self.responses = responses
        self._hours: dict[tuple[int, str, bool], str] = {}
        self._both_hours: dict[tuple[int, str], tuple[str, str]] = {}
        kinds = (rules.emergencies, rules.redirects, rules.teams)
        # one index for all three: a message's words are looked up once, not once a kind
        group = PhraseGroup([c.phrases for cs in kinds for c in cs], [len(cs) for cs in kinds])
        self.emergencies = Matcher(rules.emergencies, group, 0)
        self.redirects = Matcher(rules.redirects, group, 1)
        self.teams = Matcher(rules.teams, group, 2)
        self.group = group
        self._plans: dict[tuple[str, str | None], tuple[Schedule, Promise, str]] = {}
        self._language = fixed_language(rules.languages)  # None: each message is read

    def plan(self, channel: str, team: str | None) -> tuple[Schedule, Promise]:
        """The schedule and promise that apply to a channel and team, worked out once."""
        schedule, promise, _ = self._plan(channel, team)
        return schedule, promise

    def _plan(self, channel: str, team: str | None) -> tuple[Schedule, Promise, str]:
        """plan(), and the promise in words."""
        found = self._plans.get((channel, team))
        if found is None:
            promise = self.rules.promise_for(channel, team)
            found = (self.rules.schedule_for(channel, team), promise, str(promise))
            self._plans[(channel, team)] = found
        return found

    def hours_text(self, schedule: Schedule, language: str, short: bool = False) -> str:
        key = (id(schedule), language, short)
        text = self._hours.get(key)
        if text is None:
            text = when.say_hours(weekly_as_times(schedule.weekly), language, short=short)
            self._hours[key] = text
        return text

    def _hours_both(self, schedule: Schedule, language: str) -> tuple[str, str]:
        """hours_text, long and short, in one look-up."""
        key = (id(schedule), language)
        both = self._both_hours.get(key)
        if both is None:
            both = self._both_hours[key] = (
                self.hours_text(schedule, language),
                self.hours_text(schedule, language, short=True),
            )
        return both

    def decide(
        self,
        message: Message,
        state: SenderState = NO_HISTORY,
        reference: str = "",
        now: datetime | None = None,
        typical: Typical = NOTHING,
    ) -> Decision:
        """Everything triage decides for one message, as one value. `typical` is the latest
        measure of how long replies have taken (bot.typical), for templates that say it."""
        at = now or message.received_at
        fields = self._draft(message, at, typical)
        return self._finish(fields, state, reference, at, message.no_reply)

    def draft(
        self, message: Message, now: datetime | None = None, typical: Typical = NOTHING
    ) -> Decision:
        """The decision before the store is asked about the sender: the reply is rendered with
        REFERENCE_SLOT for the reference, and no cooldown is applied yet.

        This is nearly all the work, and it runs before the write transaction; `finish`, which
        runs inside it, is only a comparison and a string replacement.
        """
        return Decision(*self._draft(message, now or message.received_at, typical))

    def _draft(self, message: Message, at: datetime, typical: Typical = NOTHING) -> _Fields:
        """draft()'s fields, in order: decide() makes one Decision, not two (each costs more
        than a tenth of what it takes to match a message)."""
        rules = self.rules
        prepared = prepare(message.text)
        emergencies, redirects, teams = self.group.firsts(prepared)
        language = (
            message.language
            if message.language in rules.languages
            else self._language or detect_language(message.text, rules.languages)
        )
        emergency = self.emergencies.decide(prepared, emergencies, language == "cy")
        redirect = self.redirects.match(redirects) if redirects else None
        team = self.teams.match(teams) if teams else None
        team_name = team.category.name if team else None

        schedule, promise, _ = self._plan(message.channel, team_name)
        staffed, opens_at, reply_by = schedule.outlook(at, promise)
        holiday = closure = None
        if opens_at is not None:
            holiday, closure = _firsts(self.closed_days(schedule, at, opens_at, language))

        template = self.template_for(
            emergency, redirect, team, staffed, holiday, closure, schedule, at
        )
        context = self.context(
            message,
            REFERENCE_SLOT,
            at,
            schedule,
            staffed,
            reply_by,
            opens_at,
            holiday,
            closure,
            emergency,
            redirect,
            team_name,
            typical.for_(message.channel, team_name),
        )
        first = emergency or redirect or team
        reply = self.render(template, message.channel, language, context, schedule)
        return (
            staffed,
            reply_by,
            opens_at,
            emergency.category.name if emergency else None,
            redirect.category.name if redirect else None,
            team_name,
            language,
            template,
            reply,
            first.phrase if first else None,
        )

    def finish(
        self,
        draft: Decision,
        state: SenderState,
        reference: str,
        at: datetime,
        no_reply: str | None = None,
    ) -> Decision:
        """Apply what the store knows of the sender, the message's reference, and the channel's
        reason for not answering it automatically (Message.no_reply), if it has one."""
        d = draft  # taken field by field: dataclasses.replace costs more than the rest of this
        fields = (d.staffed, d.reply_by, d.opens_at, d.emergency, d.redirect, d.team, d.language,
                  d.template, d.reply, d.matched)  # fmt: skip
        return self._finish(fields, state, reference, at, no_reply)

    def _finish(
        self,
        fields: _Fields,
        state: SenderState,
        reference: str,
        at: datetime,
        no_reply: str | None = None,
    ) -> Decision:
        (
            staffed,
            reply_by,
            opens_at,
            emergency,
            redirect,
            team,
            language,
            template,
            reply,
            matched,
        ) = fields
        held_back = no_reply or self.held_back(
            state, template or "", at, emergency is not None, redirect is not None
        )
        if held_back is not None:
            template, reply = None, None
        else:
            reply = (reply or "").replace(REFERENCE_SLOT, reference)
        return Decision(staffed, reply_by, opens_at, emergency, redirect, team, language,
                        template, reply, matched, held_back)  # fmt: skip

    def closed_days(
        self, schedule: Schedule, at: datetime, opens_at: datetime | None, language: str
    ) -> tuple[ClosedDay, ...]:
        if opens_at is None:
            return ()
        return schedule.closed_until(at, opens_at, timedelta(days=60), language)

    @staticmethod
    def template_for(
        emergency: Match | None,
        redirect: Match | None,
        team: Match | None,
        staffed: bool,
        holiday: ClosedDay | None,
        closure: ClosedDay | None,
        schedule: Schedule,
        at: datetime,
    ) -> str:
        """holiday and closure: the first of each kind of closed day from today on (see
        closed_days), so a bank holiday today can only be the first."""
        for match in (emergency, redirect):
            if match and match.category.response:
                return match.category.response
        if team and team.category.response:
            return team.category.response
        if staffed:
            return "acknowledgement"
        if closure is not None:
            return "closure"
        if holiday is not None and holiday.day == schedule.local_date(at):
            return "bank-holiday"
        return "out-of-hours"

    def held_back(
        self, state: SenderState, template: str, at: datetime, emergency: bool, redirect: bool
    ) -> str | None:
        """Why no reply is sent, or None. Emergencies are always answered, whatever came before."""
        if emergency:
            return None
        if state.opted_out:
            return "opted-out"
        last = state.last_ack_at
        if last is None or at - last >= self.rules.cooldown:
            return None
        # Within the cooldown a redirect is still said once: it tells the person something new.
        if redirect and state.last_ack_template != template:
            return None
        return "cooldown"

    def context(
        self,
        message: Message,
        reference: str,
        at: datetime,
        schedule: Schedule,
        staffed: bool,
        reply_by: datetime | None,
        opens_at: datetime | None,
        holiday: ClosedDay | None,
        closure: ClosedDay | None,
        emergency: Match | None,
        redirect: Match | None,
        team: str | None,
        typical_reply: str | None = None,
    ) -> dict[str, Any]:
        sender = message.sender_name
        name = (sender.strip()[:NAME_LIMIT] or None) if sender else None
        return {
            "organisation": self.rules.name,
            "channel": message.channel,
            "reference": reference,
            "name": name,
            "staffed": staffed,
            "now": at,
            "reply_by": reply_by,
            "opens_at": opens_at,
            "promise": self._plan(message.channel, team)[2],
            "holiday": holiday,
            "closure": closure,
            "emergency": emergency.category.name if emergency else None,
            "redirect": redirect.category.name if redirect else None,
            "team": team,
            "typical_reply": typical_reply,
        }

    def render(
        self,
        template: str,
        channel: str,
        language: str,
        context: dict[str, Any],
        schedule: Schedule,
    ) -> str:
        """One language, or every language in the order of `languages` when bilingual."""
        if not self.rules.bilingual:  # the holiday and closure are already in this language
            context["language"] = language
            context["organisation"] = self.rules.name_in(language)
            context["hours"], context["hours_short"] = self._hours_both(schedule, language)
            return self.responses.render(language, template, channel, context)
        return "\n\n".join(
            self.render_one(template, channel, lang, context, schedule)
            for lang in self.rules.languages
        )

    def render_one(
        self,
        template: str,
        channel: str,
        language: str,
        context: dict[str, Any],
        schedule: Schedule,
    ) -> str:
        context["language"] = language
        context["organisation"] = self.rules.name_in(language)
        for key in ("holiday", "closure"):  # say the holiday or closure in this reply's language
            if context.get(key) is not None:
                context[key] = schedule.closed_reason(context[key].day, language) or context[key]
        context["hours"], context["hours_short"] = self._hours_both(schedule, language)
        return self.responses.render(language, template, channel, context)

    def explain(self, text: str) -> list[str]:
        """Why the message is or is not an emergency, and what else matched, in words for comms
        staff (`python -m bot preview`): the same steps as Matcher.decide, told."""
        prepared = prepare(text)
        emergencies, redirects, teams = self.group.firsts(prepared)
        language = self._language or detect_language(text, self.rules.languages)
        welsh = language == "cy"
        phrase = self.emergencies.match(emergencies)
        words = None if phrase else danger(prepared)
        model = urgency()
        said = signals(phrase and phrase.category.name, words, signs(prepared))
        feats = features(prepared, said, welsh)
        reading = model.read(feats)
        limits = model.thresholds["cy" if welsh else "en"]
        lines = []
        if phrase is not None:
            lines.append(f'the phrase "{phrase.phrase}" of emergency "{phrase.category.name}"')
        if words is not None:
            how = "with a sign that it is happening now" if words[2] else "alone"
            lines.append(f'danger words "{words[1]}" of "{words[0]}" (bot/danger.py), {how}')
        lines.append(f"the learned weights: it {reading.explain()}")
        rule = phrase is not None or (words is not None and words[2])
        p = reading.probability
        if rule and p < limits["veto"]:
            verdict = (
                f"not an emergency: the words around it read as ordinary (below {limits['veto']})"
            )
        elif rule:
            verdict = "an emergency"
        elif p >= limits["high"]:
            verdict = f"an emergency: the weights are at or above {limits['high']}"
        elif p >= limits["low"]:
            verdict = (
                f"a possible emergency: the weights are between {limits['low']} and"
                f" {limits['high']}; the reply leads with the emergency line and the team is"
                " alerted to read it at once"
            )
        else:
            verdict = f"not an emergency: no phrase, and the weights are below {limits['low']}"
        lines.insert(0, verdict)
        for kind, matcher, found in (
            ("redirect", self.redirects, redirects),
            ("team", self.teams, teams),
        ):
            match = matcher.match(found)
            if match is not None:
                lines.append(f'{kind} "{match.category.name}": its phrase "{match.phrase}"')
        return lines

    def bio(self, channel: str, now: datetime, languages: Sequence[str] | None = None) -> str:
        """The one-line profile text for a channel, in every language the rules name (or in
        `languages`)."""
        rules = self.rules
        schedule = rules.schedule_for(channel)
        staffed = schedule.is_staffed(now)
        message = Message(channel, "", "", "", now)
        context = self.context(
            message,
            "",
            now,
            schedule,
            staffed,
            schedule.reply_by(now, rules.promise_for(channel)),
            None if staffed else schedule.next_opening(now),
            None,
            None,
            None,
            None,
            None,
        )
        return " ".join(
            self.render_one("bio", channel, lang, context, schedule)
            for lang in (languages or rules.languages)
        )
