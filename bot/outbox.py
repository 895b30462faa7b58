"""The sender loop: takes due replies from the outbox and sends them through their channels.

Every process runs one. A claim leases rows to this process (another process skips them), so
two dynos never hold the same reply; a process killed mid-send loses its lease when it runs out
and the reply is sent by whoever claims it next. That is the one case where a reply can go twice
(the platform accepted it, the process died before recording it): the lease is far longer than
a send can take, so only a crash in that instant does it.

Limits are kept per channel: an overall rate, and a least interval between two sends to one
recipient (Telegram: about 30 a second overall, 1 a second per chat). A rate limit answer from
the platform (429, RetryAfter) reschedules that reply for the time the platform gives; other
temporary failures back off exponentially; a permanent one is a dead letter for the team.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from bot.channels import Channel, Limits, TryLater, Undeliverable
from bot.errors import StoreError
from bot.metrics import Metrics
from bot.models import Delivery
from bot.store import Store

log = logging.getLogger("bot.outbox")

LEASE = timedelta(minutes=2)  # far longer than a send may take (every client times out sooner)
BATCH = 10
IDLE_SECONDS = 1.0  # how often to look when nobody says there is something new
MAX_ATTEMPTS = 8  # then the reply is a dead letter: about 4 hours of backing off
MAX_BACKOFF = 30 * 60.0


def backoff(attempts: int) -> float:
    """Seconds before attempt number attempts + 1: 2, 4, 8... up to half an hour, with jitter."""
    return min(MAX_BACKOFF, 2.0**attempts) * random.uniform(0.8, 1.2)


class Pace:
    """Spaces sends: at most `per_second` overall, `per_recipient_seconds` apart per recipient."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._next_any = 0.0
        self._next_for: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def wait(self, recipient: str) -> None:
        async with self._lock:  # one reservation at a time, so two sends never share a slot
            now = time.monotonic()
            at = max(now, self._next_any, self._next_for.get(recipient, 0.0))
            self._next_any = at + 1.0 / self.limits.per_second
            self._next_for[recipient] = at + self.limits.per_recipient_seconds
            if len(self._next_for) > 10_000:  # forget recipients whose slot has passed
                self._next_for = {k: v for k, v in self._next_for.items() if v > now}
        if at > now:
            await asyncio.sleep(at - now)


class Sender:
    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        holder: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.channels = dict(channels)
        self.holder = holder
        self.clock = clock
        self.paces = {name: Pace(c.limits) for name, c in self.channels.items()}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Something new is in the outbox: look now rather than at the next idle tick."""
        self._wake.set()

    async def run(self) -> None:
        """Until stop() or cancelled."""
        while not self._stopping:
            try:
                sent = await self.once()
            except StoreError as exc:
                log.warning("outbox paused: the database is unavailable", extra={"error": str(exc)})
                sent = 0
            if not sent and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for:
                    async with asyncio.timeout(IDLE_SECONDS):  # see Alerter.run
                        await self._wake.wait()

    async def stop(self, task: asyncio.Task[None], seconds: float = 5.0) -> None:
        """Let the sends under way finish (up to `seconds`), claim nothing more, then release
        what this process still holds so that another process sends it at once."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), seconds)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            log.exception("the sender loop failed")

    async def once(self) -> int:
        """Claim what is due and send it; return how many were claimed."""
        due = await self.store.claim_deliveries(self.holder, self.clock(), LEASE, BATCH)
        if due:
            await asyncio.gather(*(self.deliver(d) for d in due))
        return len(due)

    async def deliver(self, delivery: Delivery) -> None:
        channel = self.channels.get(delivery.channel)
        extra = {
            "delivery": delivery.id,
            "channel": delivery.channel,
            "kind": delivery.kind,
            "attempt": delivery.attempts,
        }
        if delivery.reference is not None:
            extra["reference"] = delivery.reference
        if channel is None:  # switched off since: keep it for when it is back
            self.metrics.failed(delivery.channel, dead=False)
            await self.store.retry_later(
                delivery.id,
                self.holder,
                f"the {delivery.channel} channel is not running",
                self.clock() + timedelta(minutes=5),
            )
            return
        await self.paces[delivery.channel].wait(delivery.recipient)
        try:
            platform_id = await channel.send(delivery)
        except Undeliverable as exc:
            self.metrics.failed(delivery.channel, dead=True)
            await self.store.give_up(delivery.id, self.holder, str(exc))
            log.warning("reply undeliverable", extra={**extra, "error": str(exc)})
            return
        except TryLater as exc:
            await self._later(delivery, str(exc), exc.retry_after, extra)
            return
        except Exception as exc:  # a bug in a channel must not stop the others
            log.exception("send failed unexpectedly", extra=extra)
            await self._later(delivery, f"{type(exc).__name__}: {exc}", None, extra)
            return
        self.metrics.sent(delivery.channel, delivery.kind)
        await self.store.delivered(delivery.id, self.clock(), platform_id)
        log.info("reply sent", extra=extra)

    async def _later(
        self, delivery: Delivery, error: str, retry_after: float | None, extra: dict[str, object]
    ) -> None:
        dead = delivery.attempts >= MAX_ATTEMPTS
        self.metrics.failed(delivery.channel, dead)
        if dead:
            reason = f"gave up after {delivery.attempts} attempts: {error}"
            await self.store.give_up(delivery.id, self.holder, reason)
            log.warning("reply undeliverable", extra={**extra, "error": reason})
            return
        wait = retry_after if retry_after is not None else backoff(delivery.attempts)
        await self.store.retry_later(
            delivery.id, self.holder, error, self.clock() + timedelta(seconds=wait)
        )
        log.info("reply delayed", extra={**extra, "error": error, "retry_in_seconds": wait})
