"""Scheduled work that must run once however many processes share the database.

Each process tries every JOB_SECONDS; the store's claim (a lease, taken with row locks) lets one
of them run a due job. A process killed mid-job holds its lease until the lease runs out, and
then another process takes the job over; a process that stops cleanly releases it at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from bot import typical
from bot.errors import StoreError
from bot.web import State

log = logging.getLogger("bot.jobs")

JOB_SECONDS = 60.0  # how often each process looks for due jobs
PURGE_EVERY = timedelta(hours=1)
PURGE_LEASE = timedelta(minutes=10)  # far longer than a purge takes; a dead holder's lease ends


def holder_name() -> str:
    """Who holds a lease: this host and process, unique even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def purge(state: State, holder: str) -> bool:
    """Blank messages older than [data] keep_messages, if it is due and this process wins it."""
    now = datetime.now(UTC)
    if not await state.store.claim_job("purge", holder, now, PURGE_EVERY, PURGE_LEASE):
        return False
    keep = state.triage.rules.keep_messages
    try:
        count = await state.store.purge(now - keep, now)
    except BaseException:
        await asyncio.shield(state.store.release_jobs(holder))
        raise
    await state.store.finish_job("purge", holder, datetime.now(UTC))
    log.info("purged", extra={"job": "purge", "messages": count, "keep_days": keep.days})
    return True


async def measure_typical(state: State) -> None:
    """This process's own measure of how long replies have lately taken (bot.typical)."""
    now = datetime.now(UTC)
    measured = state.typical.measured_at
    if measured is not None and now - measured < typical.REFRESH:
        return
    state.typical = await typical.measure(state.store, state.triage.rules, now)
    log.info(
        "typical reply times measured",
        extra={"channels": dict(sorted(state.typical.channels.items()))},
    )


async def run_jobs(state: State, holder: str) -> None:
    """Until cancelled: run each due job that no other process has claimed, and refresh this
    process's measure of typical reply times."""
    while True:
        for job in (lambda: purge(state, holder), lambda: measure_typical(state)):
            try:
                await job()
            except StoreError as exc:
                log.warning("job skipped: the database is unavailable", extra={"error": str(exc)})
            except Exception:
                log.exception("job failed")
        await asyncio.sleep(JOB_SECONDS)
