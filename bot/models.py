"""The values that pass between modules: a message in, a decision, a queue item."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

# Crockford's base32: no I, L, O or U, so a reference read aloud over the phone survives.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SCRAMBLE = 0x9E3779B97F  # odd, so multiplication modulo 2**40 is a bijection
_MASK = (1 << 40) - 1
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # ten bits at a time


def _spelled(n: int) -> str:
    """40 bits as "XXXX-XXXX"."""
    return (
        _PAIRS[n >> 30]
        + _PAIRS[(n >> 20) & 1023]
        + "-"
        + _PAIRS[(n >> 10) & 1023]
        + _PAIRS[n & 1023]
    )


def new_reference() -> str:
    """A short random reference for a new message, like "7K3F-9QXA": 40 random bits.

    It says nothing about the message's place in the queue (how many came before it), and two
    databases do not issue the same ones. It is not unique by itself: the store checks it
    against the messages' unique index and draws again on a collision (rare: about one chance
    in two thousand for a new message in a store of half a billion).
    """
    return _spelled(secrets.randbits(40))


def reference_for(item_id: int) -> str:
    """The reference messages were given before references became random: a fixed, reversible
    scramble of the row id. Messages stored then keep theirs (it is stored with them); only
    tools that fill a database with made-up messages still use it (bench/report.py)."""
    return _spelled((item_id * _SCRAMBLE) & _MASK)


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound message from a citizen, as every channel hands it to the core."""

    channel: str  # one of bot.config.CHANNELS: "web", "telegram", "x", "facebook"...
    platform_id: str  # the platform's id for the message; idempotency key with channel
    sender: str  # the platform's id for the sender
    text: str
    received_at: datetime  # aware, UTC
    sender_name: str | None = None
    # Where the automatic reply goes, for channels that send it later through the outbox (a
    # Telegram chat id, an X user id): None for the web, which answers in the response itself.
    conversation: str | None = None
    thread: str | None = None  # the platform's message to reply under, if the reply threads
    # Why the channel may not answer this message automatically (X's automation rules: "quote
    # post", "older than 24 hours"...), or None. Triage still decides everything else; no reply
    # is sent or recorded, and the sender's cooldown does not start.
    no_reply: str | None = None
    # The language the sender chose (the Welsh form at /cy/): the reply is in it whatever words
    # the message uses. None: triage reads the message to tell.
    language: str | None = None
    # The message as the platform delivered it, kept for the team beside the text triage reads
    # (a raw mail: every header and part). Stored with the message, in the same transaction.
    original: bytes | None = None


@dataclass(frozen=True, slots=True)
class SenderState:
    """What the store remembers about one sender on one channel, read inside the transaction."""

    last_ack_at: datetime | None = None  # aware UTC: when we last sent an automatic reply
    last_ack_template: str | None = None
    opted_out: bool = False


# How `matched` starts for a possible emergency: danger words without a sign that it is
# happening now, or with only half of what makes it certain (bot/danger.py).
POSSIBLE = "possible: "


@dataclass(frozen=True, slots=True)
class Decision:
    """What triage decided for one message. Pure data: acting on it is someone else's job."""

    staffed: bool
    reply_by: datetime | None  # aware UTC; None when no staffed time is ever scheduled
    opens_at: datetime | None  # aware UTC; next opening when closed, None when staffed
    emergency: str | None
    redirect: str | None
    team: str | None
    language: str
    template: str | None  # None when the cooldown (or an opt-out) holds the reply back
    reply: str | None
    matched: str | None = None  # the phrase that set emergency, redirect or team
    held_back: str | None = None  # why no reply: "cooldown", "opted-out" or Message.no_reply

    @property
    def possible(self) -> bool:
        """A possible emergency: answered and alerted as one, for a person to look at at once.
        Said by `matched`, which is stored, so the queue and reports know it too."""
        return self.matched is not None and self.matched.startswith(POSSIBLE)


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One message as the team sees it in the queue."""

    id: int
    reference: str
    channel: str
    platform_id: str
    sender: str
    sender_name: str | None
    text: str
    received_at: datetime
    staffed: bool
    reply_by: datetime | None
    emergency: str | None
    redirect: str | None
    team: str | None
    language: str
    template: str | None
    auto_reply: str | None
    done_at: datetime | None = None
    done_by: str | None = None
    first_human_reply_at: datetime | None = None
    conversation: str | None = None  # where a reply goes back on the platform
    thread: str | None = None  # the platform message a reply sits under
    assigned_to: int | None = None  # the user who claimed it
    held_back: str | None = None  # why no automatic reply was sent (Decision.held_back)
    possible: bool = False  # a possible emergency (Decision.possible); emergency names it


def new_item(item_id: int, reference: str, message: Message, decision: Decision) -> QueueItem:
    """The queue item a newly stored message becomes, with its datetimes in UTC."""
    d = decision
    return QueueItem(
        id=item_id,
        reference=reference,
        channel=message.channel,
        platform_id=message.platform_id,
        sender=message.sender,
        sender_name=message.sender_name,
        text=message.text,
        received_at=message.received_at.astimezone(UTC),
        staffed=d.staffed,
        reply_by=d.reply_by.astimezone(UTC) if d.reply_by else None,
        emergency=d.emergency,
        redirect=d.redirect,
        team=d.team,
        language=d.language,
        template=d.template,
        auto_reply=d.reply,
        conversation=message.conversation,
        thread=message.thread,
        held_back=d.held_back,
        possible=d.possible,
    )


@dataclass(frozen=True, slots=True)
class Ingested:
    """The result of storing a message: the queue item, and whether it was already there."""

    item: QueueItem
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredReply:
    """A reply kept in the store: the automatic one, or one a person sent."""

    message_id: int
    kind: str  # "auto" or "human"
    template: str | None
    text: str
    author: str | None
    created_at: datetime
    # What the platform said became of it, where it says (WhatsApp, Messenger, Instagram).
    delivered_at: datetime | None = None
    read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Everything held about one sender on one channel: the answer to a subject access request."""

    channel: str
    sender: str
    state: SenderState | None  # None when nothing is remembered about the sender
    items: list[QueueItem]
    replies: list[StoredReply]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A reply or alert to send through a channel: what goes into the outbox."""

    channel: str
    recipient: str  # the platform's id for whom it goes to: a chat, a user, a group
    kind: str  # "auto", "human" or "alert"
    text: str
    message_id: int | None = None  # the message it answers, if any
    priority: int = 0  # 1 for emergencies: sent before everything else
    reply_to: str | None = None  # the platform's message to thread under


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox, as a sender loop or the team sees it."""

    id: int
    message_id: int | None
    channel: str
    recipient: str
    kind: str
    text: str
    priority: int
    state: str  # "pending", "sent" or "dead" (given up: the team must act)
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    platform_message_id: str | None
    created_at: datetime
    sent_at: datetime | None
    reply_to: str | None = None
    reference: str | None = None  # the message's, for the team and the logs


@dataclass(frozen=True, slots=True)
class User:
    """A person on the team who logs in to the inbox."""

    id: int
    username: str
    display_name: str
    role: str  # "admin" (sees everything, manages people) or "agent" (sees their teams' items)
    teams: tuple[str, ...]
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class Note:
    """A note the team keeps on a message; never sent to the citizen."""

    id: int
    message_id: int
    author: str
    text: str
    created_at: datetime
