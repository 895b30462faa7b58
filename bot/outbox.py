"""The sender loop: takes due replies from the outbox and sends them through their channels.

Every process runs one. A claim leases rows to this process (another process skips them), so
two dynos never hold the same reply; a process killed mid-send loses its lease when it runs out
and the reply is sent by whoever claims it next. That is the one case where a reply can go twice
(the platform accepted it, the process died before recording it). A process still sending renews
its leases, so a slow platform never makes a live process lose a reply to another.

One slow target delays only its own sends. A target is a channel and a recipient: one chat, or
one alert route such as slack:WASTE. Each claimed row is sent by its target's own task, and the
loop claims again as soon as it has room, without waiting for the rest: a webhook that takes 20
seconds holds up the next alert to that webhook, and nothing else. What stays bounded, however
slowly a target answers: one send at a time per target (the rows behind it wait in the table,
not in memory: a claim skips targets this process is busy with), a few per channel (so a hung
platform cannot pile up tasks or connections), and every send gives up after SEND_SECONDS.

Limits are kept per channel: an overall rate, and a least interval between two sends to one
recipient (Telegram: about 30 a second overall, 1 a second per chat). A rate limit answer from
the platform (429, RetryAfter) reschedules that reply for the time the platform gives; other
temporary failures back off exponentially; a permanent one is a dead letter for the team.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from bot.channels import Channel, Limits, TryLater, Undeliverable
from bot.errors import StoreError
from bot.metrics import Metrics
from bot.models import Delivery
from bot.store import Store

log = logging.getLogger("bot.outbox")

LEASE = timedelta(minutes=2)  # renewed every quarter while this process still holds the row
BATCH = 10
IDLE_SECONDS = 0.5  # how often to look when nobody says there is something new
MAX_ATTEMPTS = 8  # then the reply is a dead letter: about 4 hours of backing off
MAX_BACKOFF = 30 * 60.0
# A send still unanswered after this is given up and tried again later. Every client gives up
# sooner on its own (webhooks 20 s, Telegram about 30 s, X two requests of 30 s): this is for
# the one that does not, and it keeps each send well inside its lease.
SEND_SECONDS = 90.0
SLOW_SECONDS = 5.0  # a send taking longer is logged while it waits, naming its route
MAX_PER_CHANNEL = 16  # rows one process holds for one channel; a claim can add up to BATCH - 1

Target = tuple[str, str]  # (channel, recipient)


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


def route_of(delivery: Delivery) -> str:
    """How logs and metrics name where a send goes: an alert's route as rules.toml writes it
    (slack:WASTE), a reply's channel alone (never the person's chat or account)."""
    if delivery.kind == "alert":
        return f"{delivery.channel}:{delivery.recipient}"
    return delivery.channel


def per_channel(limits: Limits) -> int:
    """How many rows one process may hold for a channel: what it may send in about two
    seconds, at least one and at most MAX_PER_CHANNEL (X: 1, email: 4, Telegram: 16)."""
    return max(1, min(MAX_PER_CHANNEL, math.ceil(limits.per_second * 2)))


class Sender:
    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        holder: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: Metrics | None = None,
        *,
        lease: timedelta = LEASE,
        send_seconds: float = SEND_SECONDS,
        slow_seconds: float = SLOW_SECONDS,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.channels = dict(channels)
        self.holder = holder
        self.clock = clock
        self.lease = lease
        self.send_seconds = send_seconds
        self.slow_seconds = slow_seconds
        self.paces = {name: Pace(c.limits) for name, c in self.channels.items()}
        self.caps = {name: per_channel(c.limits) for name, c in self.channels.items()}
        self._queues: dict[Target, deque[Delivery]] = {}  # claimed, waiting for their turn
        self._workers: dict[Target, asyncio.Task[None]] = {}  # one per target being sent to
        self._held: dict[str, int] = {}  # rows held (queued or sending), by channel
        self._renewed_at = 0.0
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Something new in the outbox, or a target free again: look now, not at the next tick."""
        self._wake.set()

    async def run(self) -> None:
        """Until stop() or cancelled: claim what is due whenever there is room, never waiting
        for sends under way; at stop, let them finish."""
        try:
            while not self._stopping:
                self._wake.clear()  # before the claim: a wake during it is not lost
                claimed = 0
                try:
                    claimed = len(await self._claim())
                    await self._renew()
                except StoreError as exc:
                    log.warning(
                        "outbox paused: the database is unavailable", extra={"error": str(exc)}
                    )
                if claimed < BATCH and not self._stopping:
                    with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for:
                        async with asyncio.timeout(IDLE_SECONDS):  # see Alerter.run
                            await self._wake.wait()
            if self._workers:  # stopping: the sends under way finish (stop() bounds the wait)
                await asyncio.wait(list(self._workers.values()))
        finally:
            workers = list(self._workers.values())
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

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
        """Claim what is due and send it, waiting for those sends; return how many were
        claimed. (run() does not wait: this is for tests and one-off runs.)"""
        due = await self._claim()
        targets = {(d.channel, d.recipient) for d in due}
        await asyncio.gather(*(self._workers[t] for t in targets if t in self._workers))
        return len(due)

    def _skip(self) -> list[tuple[str, str | None]]:
        """What a claim must leave alone: whole channels this process holds enough of, and
        each target it is sending to (its next row waits its turn in the table)."""
        full = {c for c, n in self._held.items() if n >= self.caps.get(c, MAX_PER_CHANNEL)}
        skip: list[tuple[str, str | None]] = [(c, None) for c in sorted(full)]
        skip += [t for t in self._workers if t[0] not in full]
        return skip

    async def _claim(self) -> list[Delivery]:
        due = await self.store.claim_deliveries(
            self.holder, self.clock(), self.lease, BATCH, self._skip()
        )
        for delivery in due:  # emergencies first: workers start, and take their pace, in order
            target = (delivery.channel, delivery.recipient)
            self._queues.setdefault(target, deque()).append(delivery)
            self._held[delivery.channel] = self._held.get(delivery.channel, 0) + 1
            if target not in self._workers:
                self._workers[target] = asyncio.create_task(self._work(target))
        return due

    async def _work(self, target: Target) -> None:
        """Send a target's claimed rows one after another."""
        queue = self._queues[target]
        try:
            while queue and not self._stopping:
                delivery = queue.popleft()
                try:
                    await self.deliver(delivery)
                except StoreError as exc:  # its lease runs out and it is tried again
                    log.warning(
                        "outbox paused: the database is unavailable", extra={"error": str(exc)}
                    )
                except Exception:
                    log.exception("the sender failed", extra={"delivery": delivery.id})
                finally:
                    self._held[delivery.channel] -= 1
        finally:  # stopping: what is left is still leased, and released at shutdown
            for delivery in self._queues.pop(target, ()):
                self._held[delivery.channel] -= 1
            del self._workers[target]
            self._wake.set()  # the target is free: its next row can be claimed now

    async def _renew(self) -> None:
        """While this process holds rows, keep their leases far from running out."""
        now = time.monotonic()
        if not self._workers or now - self._renewed_at < self.lease.total_seconds() / 4:
            return
        self._renewed_at = now
        await self.store.renew_leases(self.holder, self.clock() + self.lease)

    async def deliver(self, delivery: Delivery) -> None:
        channel = self.channels.get(delivery.channel)
        extra: dict[str, object] = {
            "delivery": delivery.id,
            "channel": delivery.channel,
            "route": route_of(delivery),
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
        started = self.clock()  # Meta's time for the reply falls between this and sent_at
        try:
            platform_id = await self._send(channel, delivery, extra)
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
        await self.store.delivered(delivery.id, self.clock(), platform_id, started)
        log.info("reply sent", extra=extra)

    async def _send(
        self, channel: Channel, delivery: Delivery, extra: dict[str, object]
    ) -> str | None:
        """channel.send, timed (the metrics, and a log line while it is slow) and given up
        after send_seconds."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        route = str(extra["route"])

        def still_waiting() -> None:
            seconds = round(loop.time() - started, 1)
            log.warning("send slow: still waiting", extra={**extra, "seconds": seconds})

        slow = loop.call_later(self.slow_seconds, still_waiting)
        self.metrics.send_started(delivery.channel, route, delivery.id)
        deadline = asyncio.timeout(self.send_seconds)
        try:
            async with deadline:
                return await channel.send(delivery)
        except TimeoutError:
            if not deadline.expired():
                raise  # the channel's own, not ours
            raise TryLater(f"no answer within {self.send_seconds:g} s") from None
        finally:
            slow.cancel()
            seconds = loop.time() - started
            self.metrics.send_finished(delivery.channel, route, delivery.id, seconds)
            extra["seconds"] = round(seconds, 3)

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
