"""Prometheus metrics: what came in and went out, the queue and the outbox, how long things take.

Each app has its own registry (never prometheus_client's global one), so tests and two apps in one
process do not share counters. Counters and histograms are this process's; the queue and outbox
gauges are read from the store when /metrics is scraped, so every process reports the same values.
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import AbstractRoute
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.store import Store

PREFIX = "holding_reply_"
PENDING_LIMIT = 10_000  # outbox rows read per scrape; at this value the gauge means "at least"
UNMATCHED = "unmatched"  # the route label of a request no route matched (404, 405)

# A decision takes well under a millisecond; a request a few milliseconds (BENCHMARKS.md).
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A platform answers a send in a fraction of a second; webhooks give up at 20 s, the sender at 90.
SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0)


class Metrics:
    """The metrics of one app, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_received = Counter(
            PREFIX + "messages_received",
            "Messages received, by channel; outcome is stored, or duplicate (already stored).",
            ["channel", "outcome"],
            registry=r,
        )
        self.replies_sent = Counter(
            PREFIX + "replies_sent",
            "Replies and alerts the platform accepted, by channel and kind (auto, human, alert).",
            ["channel", "kind"],
            registry=r,
        )
        self.delivery_failures = Counter(
            PREFIX + "delivery_failures",
            "Failed sends, by channel; kind is retry (tried again later) or dead (given up).",
            ["channel", "kind"],
            registry=r,
        )
        self.queue_open = Gauge(
            PREFIX + "queue_open", "Messages open in the team's queue.", registry=r
        )
        self.outbox_pending = Gauge(
            PREFIX + "outbox_pending",
            f"Replies and alerts waiting to be sent (counted up to {PENDING_LIMIT}).",
            registry=r,
        )
        self.outbox_oldest_pending = Gauge(
            PREFIX + "outbox_oldest_pending_seconds",
            "Age of the oldest reply or alert still waiting to be sent; 0 when none is.",
            registry=r,
        )
        self.outbox_overdue = Gauge(
            PREFIX + "outbox_overdue_seconds",
            "How long the longest-due pending send has been due; 0 when the sender keeps up.",
            registry=r,
        )
        self.decision = Histogram(
            PREFIX + "decision_seconds",
            "Time to decide on one message (triage), excluding the database.",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.request = Histogram(
            PREFIX + "request_seconds",
            "HTTP request latency, by route (its pattern, such as /inbox/{reference}).",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.send = Histogram(
            PREFIX + "send_seconds",
            "Time a platform took to answer one send, by channel and route (an alert's route, "
            "such as slack:WASTE; a reply's channel).",
            ["channel", "route"],
            buckets=SEND_BUCKETS,
            registry=r,
        )
        self.sends_in_flight = Gauge(
            PREFIX + "sends_in_flight",
            "Sends this process is waiting on now, by channel and route.",
            ["channel", "route"],
            registry=r,
        )
        self.send_oldest_in_flight = Gauge(
            PREFIX + "send_oldest_in_flight_seconds",
            "How long this process has waited on its oldest unanswered send, by channel and "
            "route; 0 when none is waiting.",
            ["channel", "route"],
            registry=r,
        )
        # Children by label values, so the hot path does no labels() lookup (a lock, a tuple).
        self._received: dict[tuple[str, str], Counter] = {}
        self._sent: dict[tuple[str, str], Counter] = {}
        self._failed: dict[tuple[str, str], Counter] = {}
        self._routes: dict[AbstractRoute, Histogram] = {}
        self._sends: dict[tuple[str, str], Histogram] = {}
        self._sending: dict[tuple[str, str], dict[int, float]] = {}  # id -> when it started
        self._unmatched = self.request.labels(UNMATCHED)

    def received(self, channel: str, duplicate: bool) -> None:
        outcome = "duplicate" if duplicate else "stored"
        _child(self._received, self.messages_received, channel, outcome).inc()

    def sent(self, channel: str, kind: str) -> None:
        _child(self._sent, self.replies_sent, channel, kind).inc()

    def failed(self, channel: str, dead: bool) -> None:
        _child(self._failed, self.delivery_failures, channel, "dead" if dead else "retry").inc()

    def send_started(self, channel: str, route: str, delivery_id: int) -> None:
        self._sending.setdefault((channel, route), {})[delivery_id] = time.monotonic()

    def send_finished(self, channel: str, route: str, delivery_id: int, seconds: float) -> None:
        self._sending.get((channel, route), {}).pop(delivery_id, None)
        key = (channel, route)
        child = self._sends.get(key)
        if child is None:
            child = self._sends[key] = self.send.labels(channel, route)
        child.observe(seconds)

    def route(self, request: web.Request) -> Histogram:
        """The request histogram for the route that matched, labelled by its pattern."""
        route = request.match_info.route
        child = self._routes.get(route)
        if child is None:
            resource = route.resource
            if resource is None:  # not found or method not allowed: a new object every time
                return self._unmatched
            child = self._routes[route] = self.request.labels(resource.canonical)
        return child

    def middleware(self) -> Middleware:
        @web.middleware
        async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                return await handler(request)
            finally:
                self.route(request).observe(time.perf_counter() - started)

        return timed

    async def exposition(self, store: Store, now: datetime) -> bytes:
        """The text format, with the queue and outbox read from the store now."""
        counts = await store.counts()
        pending = await store.deliveries("pending", PENDING_LIMIT)
        self.queue_open.set(counts["open"])
        self.outbox_pending.set(len(pending))
        oldest = min((d.created_at for d in pending), default=now)
        due = min((d.next_attempt_at for d in pending), default=now)
        self.outbox_oldest_pending.set(max(0.0, (now - oldest).total_seconds()))
        self.outbox_overdue.set(max(0.0, (now - due).total_seconds()))
        started = time.monotonic()
        for (channel, route), sending in self._sending.items():
            first = min(sending.values(), default=started)
            self.sends_in_flight.labels(channel, route).set(len(sending))
            self.send_oldest_in_flight.labels(channel, route).set(started - first)
        return generate_latest(self.registry)


def _child(cache: dict[tuple[str, str], Counter], metric: Counter, a: str, b: str) -> Counter:
    key = (a, b)
    child = cache.get(key)
    if child is None:
        child = cache[key] = metric.labels(a, b)
    return child


def authorised(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries the bearer token, compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
