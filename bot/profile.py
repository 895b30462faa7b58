"""Profiles that keep themselves current: each channel's profile text from the bio template.

Telegram's description (shown before anyone writes, up to 512 characters) and short description
(on the bot's profile page and in shares, 120) are set per language through the Bot API, and
nothing else of the bot's profile is touched. Where a platform's API does not let the
organisation set its profile (X for most access levels, the Facebook Page's intro, Instagram,
WhatsApp), `profile show` prints the text to paste and where it goes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.triage import Triage
from bot.web import State

log = logging.getLogger("bot.profile")

DESCRIPTION = 512  # Telegram's limits, in characters
SHORT_DESCRIPTION = 120
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
    return lines


async def keep_current(state: State, bot: Any) -> None:
    """Until cancelled: sync Telegram's texts daily, and whenever the rules change."""
    synced_for: object = None
    synced_at: datetime | None = None
    while True:
        now = state.clock()
        stale = synced_at is None or now - synced_at >= EVERY
        if stale or state.triage is not synced_for:
            try:
                await sync_telegram(bot, state.triage, now)
                synced_for, synced_at = state.triage, now
                log.info("telegram profile set", extra={"languages": state.triage.rules.languages})
            except Exception as exc:  # the platform or the network: try again next time
                log.warning("telegram profile not set", extra={"error": str(exc)})
        await asyncio.sleep(CHECK_SECONDS)
