"""Posting announcements: what a channel that can post implements, and how each counts length.

A channel posts when it has `post` (the `Poster` protocol) and its name is in LIMITS. Lengths
are counted here, without the channel's client library, so an announcement is checked when it
is written (by the CLI, the inbox, a CSV import) and not when it fails. A channel added later
(Bluesky, Mastodon) joins with a line in LIMITS and a `post` method; nothing else changes. One
that can also look for its own recent posts implements `find` (the `Finder` protocol), so a post
whose fate is unknown after a crash is checked on the account instead of left for a person.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.channels.graphemes import graphemes, mastodon_length

# X counts a URL as 23 characters whatever its length; these are what it would link.
_URL = re.compile(r"https?://\S+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/\S*)?", re.IGNORECASE)
# twitter-text v3: code points in these ranges weigh 1, every other one 2.
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def weighted_length(text: str) -> int:
    """The length X counts against 280: URLs 23, most non-Latin symbols and emoji 2."""
    length = 0
    for part in _URL.split(text):
        length += sum(1 if any(lo <= ord(c) <= hi for lo, hi in _LIGHT) else 2 for c in part)
    return length + 23 * len(_URL.findall(text))


def utf16_length(text: str) -> int:
    """Telegram counts UTF-16 code units: an emoji outside the BMP is two."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class Limit:
    most: int
    length: Callable[[str], int]
    counts: str  # how the platform counts, for a message


LIMITS: dict[str, Limit] = {
    "x": Limit(280, weighted_length, "X's weighted characters (a link is 23, an emoji 2)"),
    "telegram": Limit(4096, utf16_length, "characters"),
    "facebook": Limit(63206, len, "characters"),
    "bluesky": Limit(300, graphemes, "characters (Bluesky counts 👍🏽 or é as one)"),
    # Most instances' limit; a running Mastodon channel puts its own instance's here.
    "mastodon": Limit(500, mastodon_length, "characters (a link is 23)"),
}


@dataclass(frozen=True, slots=True)
class Posted:
    """What the platform gave back for a post."""

    platform_id: str
    link: str | None


@runtime_checkable
class Poster(Protocol):
    """A channel that can post to its own account. Raise TryLater (nothing was posted, try
    again), Undeliverable (the platform refused it: say why in plain words) or MaybePosted."""

    name: str

    async def post(self, text: str) -> Posted: ...


@runtime_checkable
class Finder(Protocol):
    """A channel that can tell whether a post is on its account: after a process died (or got
    no answer) between the platform accepting a post and the post being recorded, the publisher
    asks rather than posting again blindly. Raise TryLater when the platform cannot be asked."""

    async def find(self, text: str, since: datetime) -> Posted | None:
        """The post on the account with this exact text, created at or after `since`, or None."""
        ...


def same_text(ours: str, theirs: str) -> bool:
    """Whether a post the account shows is the one we sent: platforms hand back links shortened
    (X's t.co), HTML entities escaped and whitespace trimmed, so those are compared loosely."""

    def plain(text: str) -> str:
        return " ".join(_URL.sub("<link>", html.unescape(text)).split())

    return plain(ours) == plain(theirs)


def too_long(channel: str, text: str) -> str | None:
    """Why `text` is too long for `channel`, or None."""
    limit = LIMITS[channel]
    used = limit.length(text)
    if used <= limit.most:
        return None
    return f"{used} of {limit.most} {limit.counts}: {used - limit.most} too many"
