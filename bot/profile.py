"""Profiles that keep themselves current: each channel's profile text from the bio template.

Set by `profile sync`, and by each server daily and after each rules change, on the channels it
runs; nothing else of any profile is touched:
- Telegram: the description (shown before anyone writes, up to 512 characters) and short
  description (on the bot's profile page and in shares, 120), per language, through the Bot API;
- Bluesky: the profile's description (256 graphemes), every language in one text; the profile
  record is read, only its description changed, and written back with a compare-and-swap
  (bot/channels/bluesky_account.py), so an avatar changed meanwhile is kept;
- Mastodon: the profile's note (500 characters), every language in one text; no other field is
  sent, and nothing at all when the note already says it.
Where a platform's API does not let the organisation set its profile (X for most access
levels, the Facebook Page's intro, Instagram, WhatsApp), `profile show` prints the text to paste
and where it goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.channels.fitting import shorten
from bot.channels.graphemes import graphemes, mastodon_length
from bot.triage import Triage
from bot.web import State

log = logging.getLogger("bot.profile")

DESCRIPTION = 512  # Telegram's limits, in characters
SHORT_DESCRIPTION = 120
BLUESKY_DESCRIPTION = 256  # graphemes
MASTODON_NOTE = 500  # counted as Mastodon counts a status: a link is 23
EVERY = timedelta(days=1)
CHECK_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Paste:
    channel: str
    where: str
    most: int  # characters the field takes


# Where each platform's profile text is pasted by hand, and how long it may be.
BY_HAND = (
    Paste("x", "x.com → Profile → Edit profile → Bio", 160),
    Paste("facebook", "the Page → Edit details → Intro (bio)", 101),
    Paste("instagram", "Instagram → Edit profile → Bio", 150),
    Paste("whatsapp", "WhatsApp Manager → Phone numbers → Profile → About", 139),
)


def telegram_texts(triage: Triage, now: datetime) -> dict[str, str]:
    """The description per language code; "" (the default, for any other language) is the
    first language's."""
    rules = triage.rules
    texts = {lang: triage.bio("telegram", now, [lang]) for lang in rules.languages}
    return {"": texts[rules.languages[0]], **texts}


async def sync_telegram(bot: Any, triage: Triage, now: datetime) -> list[str]:
    """Set the description and short description in each language; return what was set."""
    done = []
    for language, text in telegram_texts(triage, now).items():
        code = language or None
        await bot.set_my_description(description=text[:DESCRIPTION], language_code=code)
        await bot.set_my_short_description(
            short_description=text[:SHORT_DESCRIPTION], language_code=code
        )
        done.append(language or "default")
    return done


def bluesky_text(triage: Triage, now: datetime) -> str:
    """Bluesky's profile description: the bio in every language, within 256 graphemes."""
    return shorten(triage.bio("bluesky", now), BLUESKY_DESCRIPTION, graphemes)


def mastodon_text(triage: Triage, now: datetime) -> str:
    """Mastodon's profile note: the bio in every language, within 500 characters."""
    return shorten(triage.bio("mastodon", now), MASTODON_NOTE, mastodon_length)


# A channel's profile setter: given the rules and the time, set its texts; say what was done.
Setter = Callable[[Triage, datetime], Awaitable[str]]


def telegram_setter(bot: Any) -> Setter:
    async def set_texts(triage: Triage, now: datetime) -> str:
        done = await sync_telegram(bot, triage, now)
        return f"description and short description set ({', '.join(done)})"

    return set_texts


def bluesky_setter(channel: Any) -> Setter:
    """`channel` has set_description (bot.channels.bluesky.BlueskyChannel)."""

    async def set_text(triage: Triage, now: datetime) -> str:
        changed = await channel.set_description(bluesky_text(triage, now))
        return "profile description set" if changed else "profile description already current"

    return set_text


def mastodon_setter(channel: Any) -> Setter:
    """`channel` has set_note (bot.channels.mastodon.MastodonChannel)."""

    async def set_text(triage: Triage, now: datetime) -> str:
        changed = await channel.set_note(mastodon_text(triage, now))
        return "profile note set" if changed else "profile note already current"

    return set_text


def setters(channels: Mapping[str, Any]) -> dict[str, Setter]:
    """The profile setters of the running channels that can set their own profile."""
    found: dict[str, Setter] = {}
    if "telegram" in channels:
        found["telegram"] = telegram_setter(channels["telegram"].app.bot)
    if "bluesky" in channels:
        found["bluesky"] = bluesky_setter(channels["bluesky"])
    if "mastodon" in channels:
        found["mastodon"] = mastodon_setter(channels["mastodon"])
    return found


def show(triage: Triage, now: datetime) -> list[str]:
    """What to paste where, for the channels whose profile Holding Reply cannot set."""
    lines = []
    for paste in BY_HAND:
        text = triage.bio(paste.channel, now)
        over = len(text) - paste.most
        note = f" ({over} characters too long: shorten the bio template)" if over > 0 else ""
        lines += [f"{paste.channel}: paste into {paste.where}{note}", f"  {text}", ""]
    for language, text in telegram_texts(triage, now).items():
        lines.append(f"telegram ({language or 'default'}): set by `profile sync`")
        lines.append(f"  {text}")
    lines += [
        "",
        "bluesky: set by `profile sync` (the profile's description)",
        f"  {bluesky_text(triage, now)}",
        "",
        "mastodon: set by `profile sync` (the profile's note)",
        f"  {mastodon_text(triage, now)}",
    ]
    return lines


async def keep_current(state: State, setters: Mapping[str, Setter]) -> None:
    """Until cancelled: set each channel's profile texts daily, and whenever the rules change.
    A channel that fails is tried again a minute later; the others are not set again for it."""
    synced_for: dict[str, object] = {}
    synced_at: dict[str, datetime] = {}
    while True:
        now = state.clock()
        for name, setter in setters.items():
            last = synced_at.get(name)
            if last is not None and now - last < EVERY and state.triage is synced_for.get(name):
                continue
            try:
                done = await setter(state.triage, now)
                synced_for[name], synced_at[name] = state.triage, now
                log.info("profile set", extra={"channel": name, "done": done})
            except Exception as exc:  # the platform or the network: try again next time
                log.warning("profile not set", extra={"channel": name, "error": str(exc)})
        await asyncio.sleep(CHECK_SECONDS)
