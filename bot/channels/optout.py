"""STOP and START: a person turning automatic replies off and on, read the same on every channel
that takes them (X, Bluesky, Mastodon, Facebook, Instagram, WhatsApp; Telegram has /stop and
/start, bot.channels.telegram).

A message is a command only when its whole text, after any @names at its start, is STOP or
START, in any case, with or without a full stop or "!": "@AnytownCouncil stop." is one, "stop
the roadworks" and "please stop" are messages for the team. There is no Welsh command word: the
project has none to match, and guessing one could swallow a real message. A command is recorded
against (channel, sender) and is not queued for the team; triage then holds back every automatic
reply to an opted-out sender except an emergency's (bot.triage.Triage.held_back).
"""

from __future__ import annotations

import logging
import re

from bot.store import Store

log = logging.getLogger("bot.optout")

_COMMAND = re.compile(r"(stop|start)[.!]?", re.IGNORECASE)
# X's @name, Mastodon's @name@instance and Bluesky's @handle.example.org.
_LEADING_NAMES = re.compile(r"^(?:\s*@[\w.-]+(?:@[\w.-]+)?)+\s*")


def command(text: str) -> str | None:
    """ "stop" or "start" when that is all the message says, after any leading @names."""
    match = _COMMAND.fullmatch(_LEADING_NAMES.sub("", text).strip())
    return match.group(1).lower() if match else None


async def obey(store: Store, channel: str, sender: str, text: str) -> bool:
    """Record STOP or START from `sender`; False, with nothing recorded, for any other text.

    True means the message was a command and must not be queued: the caller drops it."""
    found = command(text)
    if found is None:
        return False
    await store.set_opted_out(channel, sender, found == "stop")
    log.info("opt-out changed", extra={"channel": channel, "command": found})
    return True
