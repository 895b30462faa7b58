"""Polling shared by the channels that read a platform on a timer (Mastodon, Bluesky).

One process at a time reads each platform: a lease in the store (bot/jobs.py's claim) is taken
before a poll and released after, so the platform's read quota is spent once however many
processes share the database, and the next poll is due for whichever process looks first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.errors import StoreError
from bot.store import Store

log = logging.getLogger("bot.polling")


def poll_seconds(env_value: str | None, name: str, default: float) -> float:
    """NAME_POLL_SECONDS read from the environment; raise ValueError with a message to act on."""
    raw = (env_value or "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise ValueError(
            f"{name} has value {raw!r}. Expected a number of seconds between 0 and 86400, "
            f"e.g. {default:g}."
        )
    return seconds


async def leased(
    store: Store,
    job: str,
    holder: str,
    every: float,
    lease: timedelta,
    poll: Callable[[], Awaitable[float]],
) -> float:
    """Run `poll` unless another process has run it within `every` seconds or runs it now;
    return the seconds until this process should look again (`poll` returns its own wish)."""
    started = datetime.now(UTC)
    try:
        if not await store.claim_job(job, holder, started, timedelta(seconds=every), lease):
            return every
    except StoreError as exc:
        log.warning("polling paused", extra={"job": job, "error": str(exc)})
        return every
    wait = await poll()
    # Due again `wait` seconds after this poll began, for whichever process looks first.
    with contextlib.suppress(StoreError):
        await store.finish_job(job, holder, started + timedelta(seconds=wait - every))
    return wait
