"""Prometheus metrics at /metrics: the real app over a real SQLite store, and the real sender."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.channels.telegram import ROUTE, TelegramChannel, TelegramSettings
from bot.models import Outgoing
from bot.outbox import Sender
from bot.store import Store
from bot.web import State, make_app
from tests.conftest import Clock
from tests.fakes.telegram import FakeTelegram

Client = TestClient  # type: ignore[type-arg]
TOKEN = "metrics-t0ken_for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "s3cret-webhook_token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def client(aiohttp_client: Any, state: State, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    return await aiohttp_client(make_app(state))


async def scrape(client: Client) -> Samples:
    response = await client.get("/metrics", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def post(client: Client, body: dict[str, str]) -> int:
    response = await client.post("/api/messages", data=json.dumps(body))
    return response.status


async def test_without_a_token_configured_there_is_no_metrics_page(
    aiohttp_client: Any, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    client = await aiohttp_client(make_app(state))
    assert (await client.get("/metrics", headers=AUTH)).status == 404


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer wrong"],
)
async def test_a_missing_or_wrong_token_is_refused(client: Client, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.get("/metrics", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "holding_reply" not in await response.text()


async def test_messages_are_counted_as_stored_or_duplicate(client: Client) -> None:
    before = await scrape(client)
    assert (
        value(before, "holding_reply_messages_received_total", channel="web", outcome="stored") == 0
    )
    assert (
        await post(client, {"sender": "ann@example.org", "text": "A question", "id": "m1"}) == 202
    )
    assert (
        await post(client, {"sender": "ann@example.org", "text": "A question", "id": "m1"}) == 202
    )
    assert await post(client, {"sender": "bob@example.org", "text": "My bin", "id": "m2"}) == 202

    after = await scrape(client)
    name = "holding_reply_messages_received_total"
    assert value(after, name, channel="web", outcome="stored") == 2
    assert value(after, name, channel="web", outcome="duplicate") == 1
    assert value(after, "holding_reply_decision_seconds_count") == 3
    assert 0 < value(after, "holding_reply_decision_seconds_sum") < 3


async def test_requests_are_timed_by_route_pattern_never_by_raw_path(client: Client) -> None:
    await post(client, {"sender": "a", "text": "hello"})
    await post(client, {"sender": "b", "text": "hello"})
    await client.get("/inbox/ABCD-1234")  # refused (not logged in), timed all the same
    await client.get("/inbox/WXYZ-9876")
    await client.get("/no/such/page/1")
    await client.get("/no/such/page/2")

    samples = await scrape(client)
    count = "holding_reply_request_seconds_count"
    assert value(samples, count, route="/api/messages") == 2
    assert value(samples, count, route="/inbox/{reference}") == 2
    assert value(samples, count, route="unmatched") == 2
    routes = {dict(labels).get("route") for name, labels in samples if name == count}
    assert not any(r and ("ABCD" in r or "/no/such" in r) for r in routes), routes


async def test_the_queue_gauge_is_the_stores_count(client: Client, store: Store) -> None:
    for n in range(3):
        await post(client, {"sender": f"person{n}", "text": "A question", "id": f"q{n}"})
    [first, *_] = await store.open_items()
    await store.mark_done(first.reference, "tester", first.received_at)

    samples = await scrape(client)
    counts = await store.counts()
    assert counts["open"] == 2
    assert value(samples, "holding_reply_queue_open") == counts["open"]


async def test_the_outbox_gauges_show_a_pending_reply_and_its_age(
    client: Client, store: Store, clock: Clock
) -> None:
    samples = await scrape(client)
    assert value(samples, "holding_reply_outbox_pending") == 0
    assert value(samples, "holding_reply_outbox_oldest_pending_seconds") == 0

    await store.enqueue(Outgoing("telegram", "42", "auto", "Thanks"), clock.now)
    clock.now += timedelta(minutes=3)
    samples = await scrape(client)
    assert value(samples, "holding_reply_outbox_pending") == 1
    assert value(samples, "holding_reply_outbox_oldest_pending_seconds") == 180
    assert value(samples, "holding_reply_outbox_overdue_seconds") == 180


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as running:
        yield running


async def test_sends_and_failed_sends_are_counted_by_channel_and_kind(
    fake: FakeTelegram,
    state: State,
    clock: Clock,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    env = {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": fake.base_url,
    }
    channel = TelegramChannel(state, TelegramSettings(env))
    sender = Sender(state.store, {"telegram": channel}, "test", clock=clock, metrics=state.metrics)
    app = make_app(state)
    app.router.add_routes(channel.routes())
    client = await aiohttp_client(app)
    await channel.start()
    try:
        await asyncio.wait_for(channel.ready.wait(), 10)
        url = str(client.make_url(ROUTE))
        fake.fail_next("sendMessage", "500")  # the first reply is retried...
        assert await fake.deliver(fake.text_message("Where do I pay council tax?"), url, SECRET)
        await sender.once()
        clock.now += timedelta(seconds=5)
        await sender.once()  # ...and then sent
        fake.fail_next("sendMessage", "403-blocked")  # the second is a dead letter
        clock.now += timedelta(days=1)  # beyond the cooldown: a second automatic reply
        assert await fake.deliver(fake.text_message("Hello again?"), url, SECRET)
        await sender.once()
    finally:
        await channel.stop()

    samples = await scrape(client)
    failures = "holding_reply_delivery_failures_total"
    assert value(samples, failures, channel="telegram", kind="retry") == 1
    assert value(samples, failures, channel="telegram", kind="dead") == 1
    assert value(samples, "holding_reply_replies_sent_total", channel="telegram", kind="auto") == 1
    received = "holding_reply_messages_received_total"
    assert value(samples, received, channel="telegram", outcome="stored") == 2
    assert value(samples, "holding_reply_request_seconds_count", route=ROUTE) == 2
    assert len(fake.sent) == 1


async def test_two_apps_in_one_process_keep_their_own_counts(
    aiohttp_client: Any, triage: Any, store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    one = await aiohttp_client(make_app(State(triage, store, clock=clock)))
    two = await aiohttp_client(make_app(State(triage, store, clock=clock)))
    await post(one, {"sender": "a", "text": "hello"})
    name = "holding_reply_messages_received_total"
    assert value(await scrape(one), name, channel="web", outcome="stored") == 1
    assert value(await scrape(two), name, channel="web", outcome="stored") == 0
