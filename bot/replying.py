"""How a person's reply from the inbox can go back on the item's channel, and sending it.

Most channels take any reply. Facebook, Instagram and WhatsApp have Meta's windows
(bot.windows): the inbox shows which applies before anyone writes, and refuses a reply that
Meta would refuse. A comment can be answered publicly (under it) or privately (one private reply
per comment). On WhatsApp after 24 hours the team's reply is recorded and the approved template
named in rules.toml goes instead, asking the person to write back so the reply can follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import Outgoing, QueueItem
from bot.web import State
from bot.windows import COMMENT, META_CHANNELS, is_comment, private_reply_window, window

OTHER_WAYS = (
    "Wait until they write again: their next message opens a new window.",
    "If they gave a phone number or email address in their messages, contact them there.",
    "If they also commented on a post, answer the comment publicly.",
)


# What Meta accepts in one message: longer replies would be refused, so the inbox says so first.
META_LIMITS = {"facebook": 2000, "instagram": 1000, "whatsapp": 4096}


def max_length(channel: str, default: int) -> int:
    return min(default, META_LIMITS.get(channel, default))


@dataclass(frozen=True, slots=True)
class Options:
    """What the reply form offers for one item."""

    sendable: bool  # a reply typed now can go (or, on WhatsApp, the template instead)
    hint: str | None  # the window that applies, in words, until when
    closed: str | None  # why nothing can be sent now
    other_ways: tuple[str, ...] = ()
    comment: bool = False  # offer "publicly" and "privately"
    private_ok: bool = True
    template: str | None = None  # WhatsApp: the template sent instead of the reply


async def options(state: State, item: QueueItem) -> Options:
    if item.channel not in META_CHANNELS or item.conversation is None:
        return Options(sendable=True, hint=None, closed=None)
    now = state.clock()
    tz = state.triage.rules.timezone
    if is_comment(item.platform_id):
        private = private_reply_window(item.received_at, now)
        private_ok = private.open and item.auto_reply is None
        hint = (
            "Reply publicly (under their comment, for everyone to see) or privately (one "
            "private message per comment, within 7 days of it)."
        )
        if not private_ok:
            hint = (
                "Reply publicly, under their comment. A private reply is no longer possible: "
                + (
                    "Meta allows one per comment and it was used for the automatic reply."
                    if private.open
                    else "Meta allows it only within 7 days of the comment."
                )
            )
        return Options(True, hint, None, comment=True, private_ok=private_ok)
    last = max(
        [item.received_at]
        + [h.received_at for h in await state.store.history(item) if not is_comment(h.platform_id)]
    )
    rule = window(item.channel, last, now, human=True)
    until = f"{rule.closes_at.astimezone(tz):%a %-d %b, %H:%M}" if rule.closes_at else ""
    if rule.how == "response":
        return Options(True, f"You can reply on {item.channel} until {until}.", None)
    if rule.how == "human_agent":
        return Options(
            True,
            f"Their last message was over 24 hours ago: Meta allows only a person's reply, sent "
            f"with its HUMAN_AGENT tag, until {until}. Write it in your own words.",
            None,
        )
    if rule.how == "template":
        template = state.triage.rules.channel("whatsapp").template
        if template:
            return Options(
                True,
                "Their last message was over 24 hours ago, so WhatsApp allows only an approved "
                f"template. Your reply is recorded and the template “{template}” is sent, asking "
                "them to write back; answer their new message with your reply.",
                None,
                template=template,
            )
        return Options(
            False,
            None,
            "Their last message was over 24 hours ago: WhatsApp allows only an approved template, "
            "and rules.toml names none ([channels.whatsapp] template).",
            OTHER_WAYS[:2],
        )
    return Options(
        False, None, f"You can no longer reply on {item.channel}: {rule.rule}.", OTHER_WAYS
    )


async def send(state: State, item: QueueItem, text: str, by: str, how: str) -> Options:
    """Record the reply and put it in the outbox as `how` ("private" or "public") allows; return
    the options it was sent under (not sendable: nothing was recorded)."""
    found = await options(state, item)
    now = state.clock()
    if not found.sendable:
        return found
    if found.comment and (how == "public" or not found.private_ok):
        await state.store.record_human_reply(item.reference, text, by, now)
        comment_id = item.thread or item.platform_id.removeprefix(COMMENT)
        await state.store.enqueue(
            Outgoing(item.channel, f"public:{comment_id}", "human", text, item.id), now
        )
    elif found.template and item.conversation is not None:
        await state.store.record_human_reply(item.reference, text, by, now)
        await state.store.enqueue(
            Outgoing(item.channel, f"template:{item.conversation}", "human", text, item.id), now
        )
    else:
        await state.store.send_human_reply(item.reference, text, by, now)
    state.wake()
    return found
