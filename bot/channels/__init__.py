"""What every channel that receives and sends (Telegram, X, and later ones) implements.

A channel is given what it needs and no more: the shared State (the rules in force and the
store) through `receive`, and its own routes on the web server. It never sends a reply itself
when a message arrives: the reply goes into the outbox with the message, and the sender loop
(bot/outbox.py) calls the channel's `send` within the channel's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.errors import HoldingReplyError
from bot.models import Delivery

# X's credentials, by environment variable, in tweepy's terms. Here rather than in bot.xapi, so
# that the server can tell whether X is set up without importing tweepy (about 8 MB).
X_CREDENTIALS = (
    "X_BEARER_TOKEN",  # app-only OAuth 2.0: reading mentions
    "X_API_KEY",  # OAuth 1.0a consumer key
    "X_API_SECRET",  # OAuth 1.0a consumer secret
    "X_ACCESS_TOKEN",  # OAuth 1.0a access token of the council's account
    "X_ACCESS_TOKEN_SECRET",  # OAuth 1.0a access token secret
)


class SendFailed(HoldingReplyError):
    """A send did not happen. Subclasses say whether trying again can help."""


class TryLater(SendFailed):
    """A network error, a 5xx or a rate limit: try again, after retry_after seconds if given."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Undeliverable(SendFailed):
    """Trying again cannot help (the person blocked the bot, the chat is gone): a dead letter."""


class MaybePosted(SendFailed):
    """The request went out and no answer came back: the platform may have posted it, so the
    post is marked "unknown" for a person to check rather than tried again."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How fast a channel may send, from this process."""

    per_second: float  # everything the channel sends
    per_recipient_seconds: float  # the least time between two sends to one chat or person


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can do, for the inbox and the checks."""

    max_length: int  # characters in one message
    threads: bool  # replies can sit under the message they answer
    groups: bool  # it hears group conversations (and then only when addressed)
    posts: bool = False  # it publishes announcements (bot.channels.posting.Poster)


class Channel(Protocol):
    name: str
    limits: Limits
    capabilities: Capabilities

    def routes(self) -> list[web.RouteDef]:
        """Webhook routes to add to the server (none for a channel that polls)."""
        ...

    async def start(self) -> None:
        """Begin receiving (start polling, say hello to the platform). Idempotent."""
        ...

    async def stop(self) -> None:
        """Stop receiving and close connections; what was received is already stored."""
        ...

    async def send(self, delivery: Delivery) -> str | None:
        """Send one reply; return the platform's id for it. Raise TryLater or Undeliverable."""
        ...


# A channel that can also post announcements implements bot.channels.posting.Poster's `post`
# and says so in capabilities.posts; the publisher (bot/publisher.py) is its only caller.
