"""The sender loop: one slow target delays nobody else, emergencies go first, a hung target stays
bounded and visible, and a send slower than its lease keeps it.

Real stores on SQLite and on PostgreSQL, two senders with a store each (as two processes have),
real Slack and Teams webhook channels posting to a local webhook server that can be made slow,
and the Telegram channel talking to the fake Bot API; all on loopback ports the OS picks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.alerts import SMTP_THREADS, EmailChannel, WebhookChannel
from bot.channels import Channel
from bot.channels.telegram import TelegramChannel, TelegramSettings
from bot.models import Delivery, Outgoing
from bot.outbox import Sender
from bot.store import Store, open_store
from bot.triage import Triage
from bot.web import State
from tests.fakes.receivers import WebhookReceiver
from tests.fakes.telegram import FakeTelegram

WEBHOOKS = ("SLOW", "WASTE", "DUTY")
SECOND = timedelta(seconds=1)


def alert(kind: str, name: str, priority: int = 0) -> Outgoing:
    return Outgoing(kind, name, "alert", f"An alert for {name}", priority=priority)


def reply(chat: int, priority: int = 0) -> Outgoing:
    return Outgoing("telegram", str(chat), "auto", "Thank you for your message", priority=priority)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class World:
    database: str
    triage: Triage
    hooks: WebhookReceiver
    telegram: FakeTelegram
    stack: AsyncExitStack
    senders: list[Sender] = field(default_factory=list)

    async def process(self, holder: str, **timing: Any) -> Sender:
        """A sender with a store, and channels, of its own: what one more dyno has."""
        store = await self.stack.enter_async_context(open_store(self.database))
        env = {
            f"{kind.upper()}_WEBHOOK_{name}": self.hooks.url(kind, name)
            for kind in ("slack", "teams")
            for name in WEBHOOKS
        }
        settings = TelegramSettings(
            {
                "TELEGRAM_BOT_TOKEN": self.telegram.token,
                "TELEGRAM_MODE": "polling",
                "TELEGRAM_API_URL": self.telegram.base_url,
            }
        )
        telegram = TelegramChannel(State(self.triage, store), settings)
        await telegram.app.initialize()
        self.stack.push_async_callback(telegram.app.shutdown)
        telegram.ready.set()  # sending only: no polling
        channels: dict[str, Channel] = {"telegram": telegram}
        for kind in ("slack", "teams"):
            webhook = channels[kind] = WebhookChannel(kind, env)
            await webhook.start()
            self.stack.push_async_callback(webhook.stop)
        sender = Sender(store, channels, holder, **timing)
        self.senders.append(sender)
        return sender

    def run(self, sender: Sender) -> asyncio.Task[None]:
        task = asyncio.create_task(sender.run())
        self.stack.push_async_callback(sender.stop, task)  # before its channels and store close
        return task


@pytest.fixture
async def world(database: str, triage: Triage) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        hooks = await stack.enter_async_context(WebhookReceiver())
        telegram = await stack.enter_async_context(FakeTelegram())
        yield World(database, triage, hooks, telegram, stack)
        hooks.answer_now()  # the slow webhook answers, and then the senders stop


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)


async def sent(store: Store, count: int, seconds: float = 10.0) -> list[Delivery]:
    """The sent deliveries, once there are `count` of them."""
    async with asyncio.timeout(seconds):
        while len(found := await store.deliveries("sent")) < count:
            await asyncio.sleep(0.05)
    return found


def metric(text: bytes, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def test_one_slow_route_delays_only_its_own_sends(world: World) -> None:
    world.hooks.answer_after("SLOW", 20)
    one, two = await world.process("process-1"), await world.process("process-2")
    world.run(one)
    world.run(two)
    store = one.store
    # Each process takes one slow alert and waits on it: whichever claims the first, only the
    # other may claim the second, as a process skips a target it is sending to. (Four at once
    # would go to whichever process claimed first, all four: a race, not a test.)
    slow = []
    for waiting in (1, 2):
        slow.append(await store.enqueue(alert("slack", "SLOW"), now()))
        one.wake()
        two.wake()
        await world.hooks.wait_for_waiting("SLOW", waiting)
    # Two more wait in the table: both processes are busy with their route.
    slow += [await store.enqueue(alert("slack", "SLOW"), now()) for _ in range(2)]

    # Everything else: what arrives now (the process that stored it wakes its sender), and what
    # falls due a moment later, with nobody waking anyone (as a retry does).
    at = now()
    others = [
        await store.enqueue(alert("teams", "DUTY", priority=1), at),  # an emergency's alert
        await store.enqueue(reply(1001, priority=1), at),  # and its reply
        await store.enqueue(reply(1002), at),  # a citizen's reply on another channel
        await store.enqueue(alert("slack", "WASTE"), at),  # another route on the same channel
        await two.store.enqueue(alert("teams", "WASTE"), at + 1.5 * SECOND),
        await store.enqueue(reply(1003), at + 2 * SECOND),
    ]
    one.wake()

    done = await sent(store, len(others))
    assert sorted(d.id for d in done) == sorted(d.id for d in others)
    for delivery in done:  # each within a second of falling due
        assert delivery.sent_at is not None
        assert timedelta(0) <= delivery.sent_at - delivery.next_attempt_at < SECOND, delivery
    assert sorted(m["chat_id"] for m in world.telegram.sent) == [1001, 1002, 1003]
    assert len(world.hooks.received("teams")) == 2
    assert len(world.hooks.received("slack")) == 1  # WASTE's; SLOW has answered nothing yet

    # The slow route's rows wait in the table, one send to it at a time in each process.
    assert sorted(d.id for d in await store.deliveries("pending")) == [d.id for d in slow]
    assert world.hooks.waiting["SLOW"] == world.hooks.most_waiting["SLOW"] == 2


async def test_an_emergency_is_sent_before_everything_due_before_it(world: World) -> None:
    sender = await world.process("process-1")
    store = sender.store
    at = now()
    for chat in range(2000, 2012):
        await store.enqueue(reply(chat), at - timedelta(minutes=5))
    urgent = await store.enqueue(reply(2999, priority=1), at)
    alarm = await store.enqueue(alert("teams", "DUTY", priority=1), at)

    assert await sender.once() == 10  # one batch: both emergencies, and 8 of the 12 others
    done = {d.id for d in await store.deliveries("sent")}
    assert {urgent.id, alarm.id} <= done and len(done) == 10
    assert world.telegram.sent[0]["chat_id"] == 2999  # first to go, however long the others waited


async def test_a_slow_route_is_named_in_the_log_and_metrics_and_given_up_in_time(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.outbox")
    world.hooks.answer_after("SLOW", 20)
    sender = await world.process("process-1", send_seconds=1.5, slow_seconds=0.2)
    world.run(sender)
    store = sender.store
    first = await store.enqueue(alert("slack", "SLOW"), now())
    sender.wake()
    await world.hooks.wait_for_waiting("SLOW", 1)

    def slow_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == "send slow: still waiting"]

    await until(lambda: bool(slow_lines()))
    [line] = slow_lines()
    assert (line.route, line.channel, line.delivery) == ("slack:SLOW", "slack", first.id)  # type: ignore[attr-defined]
    assert line.seconds >= 0.2  # type: ignore[attr-defined]
    scraped = await sender.metrics.exposition(store, now())
    labels = {"channel": "slack", "route": "slack:SLOW"}
    assert metric(scraped, "holding_reply_sends_in_flight", **labels) == 1
    assert metric(scraped, "holding_reply_send_oldest_in_flight_seconds", **labels) >= 0.2

    # At send_seconds the sender stops waiting: the alert is tried again later, and counted.
    async def retried() -> Delivery:
        while True:
            [pending] = await store.deliveries("pending")
            if pending.last_error:
                return pending
            await asyncio.sleep(0.05)

    async with asyncio.timeout(10):
        pending = await retried()
    assert pending.last_error == "no answer within 1.5 s"
    assert pending.next_attempt_at > now()
    scraped = await sender.metrics.exposition(store, now())
    assert metric(scraped, "holding_reply_sends_in_flight", **labels) == 0
    assert metric(scraped, "holding_reply_send_seconds_count", **labels) == 1
    assert 1.5 <= metric(scraped, "holding_reply_send_seconds_sum", **labels) < 5
    delayed = [r for r in caplog.records if r.getMessage() == "reply delayed"]
    assert [(r.route, r.seconds >= 1.5) for r in delayed] == [("slack:SLOW", True)]  # type: ignore[attr-defined]
    assert not any("An alert for" in r.getMessage() + str(vars(r)) for r in caplog.records)


async def test_a_send_slower_than_the_lease_keeps_it(world: World) -> None:
    world.hooks.answer_after("SLOW", 5)
    one = await world.process("process-1", lease=2 * SECOND)
    two = await world.process("process-2")
    world.run(one)
    delivery = await one.store.enqueue(alert("slack", "SLOW"), now())
    one.wake()
    await world.hooks.wait_for_waiting("SLOW", 1)
    world.run(two)  # looking twice a second for rows whose lease has run out

    [done] = await sent(one.store, 1)
    assert (done.id, done.attempts) == (delivery.id, 1)  # claimed once: never by process-2
    assert world.hooks.most_waiting["SLOW"] == 1
    assert len(world.hooks.received("slack")) == 1


async def test_stopping_with_a_send_hung_is_prompt_and_hands_the_row_on(world: World) -> None:
    world.hooks.answer_after("SLOW", 60)
    sender = await world.process("process-1")
    task = asyncio.create_task(sender.run())
    delivery = await sender.store.enqueue(alert("slack", "SLOW"), now())
    sender.wake()
    await world.hooks.wait_for_waiting("SLOW", 1)

    started = time.monotonic()
    await sender.stop(task, seconds=0.5)
    assert task.done() and time.monotonic() - started < 2
    await sender.store.release_jobs(sender.holder)  # as the server does when it stops
    other = await world.process("process-2")
    [again] = await other.store.claim_deliveries("process-2", now(), timedelta(minutes=1))
    assert again.id == delivery.id


async def test_a_hung_mail_server_holds_two_threads_however_many_alerts_wait(store: Store) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # accepted, and then silence: no "220" greeting

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_FROM": "alerts@anytown.gov.uk"}
    email = EmailChannel(env)
    sender = Sender(store, {"email": email}, "process-1", send_seconds=0.5)
    for n in range(6):
        await store.enqueue(alert("email", f"team{n}@anytown.gov.uk"), now())
    task = asyncio.create_task(sender.run())
    try:

        async def all_tried() -> None:
            while not all(d.last_error for d in await store.deliveries("pending")):
                await asyncio.sleep(0.05)

        async with asyncio.timeout(15):
            await all_tried()
        errors = {d.last_error for d in await store.deliveries("pending")}
        assert errors == {"no answer within 0.5 s"}
        assert len(connections) == SMTP_THREADS == 2  # the other four never opened one
    finally:
        await sender.stop(task)
        await email.stop()
        for writer in connections:  # the two threads see the server go, and end
            writer.close()
        server.close()
        await server.wait_closed()
