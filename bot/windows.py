"""Meta's messaging windows: whether, and how, a reply may go on Facebook, Instagram or WhatsApp.

A pure function of the channel, when the person last wrote, now, and who is replying. The
channels enforce it when they send (a reply may wait in the outbox); the inbox shows it before a
person writes. The rules, as Meta publishes them:

- Messenger Platform and Instagram Messaging, "standard messaging": a business may answer within
  24 hours of the person's last message (messaging_type RESPONSE). From 24 hours to 7 days only a
  human agent may answer, and only with the HUMAN_AGENT tag (messaging_type MESSAGE_TAG): a
  person's own words, never an automated message or a template. After 7 days nothing may be sent
  until the person writes again.
  https://developers.facebook.com/docs/messenger-platform/policy/policy-overview#24hours_window
  https://developers.facebook.com/docs/messenger-platform/send-messages/message-tags (HUMAN_AGENT)
- Private replies to a comment: one per comment, within 7 days of the comment.
  https://developers.facebook.com/docs/messenger-platform/discovery/private-replies
- WhatsApp Business Platform, the customer service window: free-form messages within 24 hours
  of the person's last message; after it, only an approved template message.
  https://developers.facebook.com/docs/whatsapp/pricing#customer-service-windows
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

STANDARD = timedelta(hours=24)
HUMAN_AGENT = timedelta(days=7)
PRIVATE_REPLY = timedelta(days=7)
META_CHANNELS = ("facebook", "instagram", "whatsapp")
COMMENT = "comment:"  # platform ids and recipients of comments start with this


@dataclass(frozen=True, slots=True)
class Window:
    """What may be sent now. `how`: "response" (inside 24 hours), "human_agent" (the tag),
    "template" (WhatsApp: an approved template only), or "closed"."""

    how: str
    closes_at: datetime | None  # when `how` stops applying; None when closed
    rule: str  # the rule that applies, as the inbox and a dead letter say it

    @property
    def open(self) -> bool:
        return self.how != "closed"


def window(channel: str, last_message_at: datetime, now: datetime, *, human: bool) -> Window:
    """The window for a reply on `channel` to someone whose last message came at last_message_at.

    `human`: a person's own words from the inbox (the HUMAN_AGENT tag may carry them), rather
    than an automatic reply. A window is open up to, not including, its closing second.
    """
    age = now - last_message_at
    standard_end = last_message_at + STANDARD
    if age < STANDARD:
        return Window("response", standard_end, "inside the 24-hour standard messaging window")
    if channel == "whatsapp":
        return Window(
            "template",
            None,
            "more than 24 hours since their last message: WhatsApp's customer service window "
            "has closed, so only an approved template message can be sent",
        )
    if human and age < HUMAN_AGENT:
        return Window(
            "human_agent",
            last_message_at + HUMAN_AGENT,
            "more than 24 hours since their last message: Meta allows a person's reply, with "
            "the HUMAN_AGENT tag, until 7 days have passed",
        )
    if human:
        return Window(
            "closed",
            None,
            "more than 7 days since their last message: Meta allows no reply on this channel "
            "until they write again",
        )
    return Window(
        "closed",
        None,
        "more than 24 hours since their last message: Meta allows no automatic reply outside "
        "the 24-hour standard messaging window",
    )


def private_reply_window(commented_at: datetime, now: datetime) -> Window:
    """A private reply to a comment: within 7 days of the comment (and once: Meta enforces it)."""
    if now - commented_at < PRIVATE_REPLY:
        return Window("response", commented_at + PRIVATE_REPLY, "a private reply to a comment")
    return Window(
        "closed",
        None,
        "more than 7 days since the comment: Meta allows no private reply; answer it publicly",
    )


def is_comment(platform_id: str) -> bool:
    return platform_id.startswith(COMMENT)
