"""Delivery and read receipts for replies, end to end: Meta's signed webhooks (WhatsApp statuses,
Messenger's message_deliveries and message_reads, Instagram's messaging_seen) reach the real
channels, are recorded on the outbox row of the reply on SQLite and on PostgreSQL, and the
inbox shows them as "Delivered 20:02" and "Read 20:05" in the organisation's time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from bot.channels.messenger import MessengerChannel
from bot.channels.meta import MetaSettings
from bot.channels.whatsapp import WhatsAppChannel
from bot.inbox import receipts
from bot.models import StoredReply
from bot.outbox import Sender
from bot.store import Store, open_store
from bot.triage import Triage
from bot.web import State, make_app
from tests.conftest import Clock, london
from tests.fakes.meta import FakeMeta
from tests.test_inbox import add_people, log_in

Client = TestClient  # type: ignore[type-arg]
MINUTE = timedelta(minutes=1)
META = ("facebook", "instagram", "whatsapp")


class Rig:
    def __init__(self, client: Client, fake: FakeMeta, sender: Sender, store: Store) -> None:
        self.client, self.fake, self.sender, self.store = client, fake, sender, store

    async def deliver(self, channel: str, delivery: dict[str, Any]) -> None:
        """A signed delivery to the channel's webhook, as Meta posts it: answered 200."""
        url = str(self.client.make_url(f"/webhooks/{channel}"))
        assert await self.fake.deliver(delivery, url) == 200

    async def message(self, channel: str, delivery: dict[str, Any]) -> str:
        """A person's message, answered: its reference."""
        await self.deliver(channel, delivery)
        await self.sender.once()
        return max(await self.store.inbox(None), key=lambda i: i.id).reference

    async def seen(self, reference: str) -> list[tuple[str, datetime | None, datetime | None]]:
        """Each reply to the item: (its kind, delivered, read)."""
        return [(r.kind, r.delivered_at, r.read_at) for r in await self.store.replies(reference)]

    async def page(self, reference: str) -> str:
        response = await self.client.get(f"/inbox/{reference}")
        assert response.status == 200
        return await response.text()


@pytest.fixture
async def rig(
    aiohttp_client: Any, database: str, triage: Triage, clock: Clock
) -> AsyncIterator[Rig]:
    async with open_store(database) as store, FakeMeta(now=clock) as fake:
        state = State(triage, store, clock=clock)
        await add_people(store, clock)
        settings = MetaSettings(fake.env(*META))
        channels: dict[str, Any] = {
            "facebook": MessengerChannel(state, settings, "facebook"),
            "instagram": MessengerChannel(state, settings, "instagram"),
            "whatsapp": WhatsAppChannel(state, settings),
        }
        sender = Sender(store, channels, "test", clock=clock)
        for pace in sender.paces.values():  # WhatsApp's 6 s between two sends to one person
            pace.limits = type(pace.limits)(per_second=1000.0, per_recipient_seconds=0.0)
        app = make_app(state)
        for channel in channels.values():
            app.router.add_routes(channel.routes())
        client = await aiohttp_client(app)
        await log_in(client, "ada")
        yield Rig(client, fake, sender, store)
        for channel in channels.values():
            await channel.stop()


async def test_whatsapp_statuses_in_any_order_mark_the_reply_delivered_then_read(
    rig: Rig, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    started = clock.now  # 20:00 in London
    reference = await rig.message("whatsapp", rig.fake.whatsapp("Where do I pay?", "447700900123"))
    wamid = rig.fake.sent[-1]["id"]
    assert await rig.seen(reference) == [("auto", None, None)]
    assert "Delivered" not in await rig.page(reference)

    clock.now = started + 6 * MINUTE
    for status, minutes in (
        ("read", 5),
        ("sent", 0),
        ("delivered", 2),
        ("read", 5),
        ("delivered", 3),
    ):
        at = started + minutes * MINUTE
        await rig.deliver("whatsapp", rig.fake.whatsapp_status(wamid, status, "447700900123", at))
    # What we never sent, or Meta's word on it, is answered and ignored.
    await rig.deliver("whatsapp", rig.fake.whatsapp_status("wamid.NEVER", "read", "447700900123"))

    assert await rig.seen(reference) == [("auto", started + 2 * MINUTE, started + 5 * MINUTE)]
    page = await rig.page(reference)
    assert 'Delivered <time datetime="2026-11-27T20:02:00+00:00">20:02</time>' in page
    assert 'Read <time datetime="2026-11-27T20:05:00+00:00">20:05</time>' in page
    assert len(await rig.store.inbox(None)) == 1  # a status is never a message
    logged = "\n".join(str(r.__dict__) for r in caplog.records)
    assert "whatsapp reply status" in logged
    assert "Where do I pay" not in logged and rig.fake.texts()[0][:40] not in logged


async def test_messenger_receipts_by_mid_and_by_watermark(rig: Rig, clock: Clock) -> None:
    started = clock.now
    reference = await rig.message("facebook", rig.fake.messaging("facebook", "My bin", "2401"))
    auto = rig.fake.sent[-1]["id"]
    clock.now = started + MINUTE
    await rig.store.send_human_reply(reference, "A crew comes on Tuesday", "ada", clock.now)
    await rig.sender.once()

    # Delivered: the automatic reply by its mid, with a watermark at Meta's time for it.
    clock.now = started + 2 * MINUTE
    event = rig.fake.event("facebook", "delivery", "2401", mids=[auto], watermark=started)
    await rig.deliver("facebook", event)
    # Read up to the automatic reply: the team's reply, sent a minute later, is not read.
    clock.now = started + 3 * MINUTE
    await rig.deliver("facebook", rig.fake.event("facebook", "read", "2401", watermark=started))
    # An older Messenger client says only the watermark; someone else's receipts are not ours.
    clock.now = started + 4 * MINUTE
    later = started + MINUTE
    await rig.deliver(
        "facebook", rig.fake.event("facebook", "delivery", "2401", mids=[], watermark=later)
    )
    await rig.deliver("facebook", rig.fake.event("facebook", "read", "2499", watermark=clock.now))

    assert await rig.seen(reference) == [
        ("auto", started + 2 * MINUTE, started + 3 * MINUTE),
        ("human", started + 4 * MINUTE, None),
    ]
    page = await rig.page(reference)
    auto_part, human_part = page.split("Reply from Ada Admin")
    assert ">20:02</time>" in auto_part and "Read <time" in auto_part
    assert "Delivered <time" in human_part and ">20:04</time>" in human_part
    assert "Read <time" not in human_part


async def test_an_instagram_read_names_the_message_and_covers_the_ones_before(
    rig: Rig, clock: Clock
) -> None:
    started = clock.now
    first = await rig.message("instagram", rig.fake.messaging("instagram", "Hello", "1701"))
    clock.now = started + MINUTE
    await rig.store.send_human_reply(first, "Hello! How can we help?", "ada", clock.now)
    await rig.sender.once()
    latest = rig.fake.sent[-1]["id"]

    clock.now = started + 7 * MINUTE
    await rig.deliver("instagram", rig.fake.event("instagram", "read", "1701", mids=[latest]))

    read = started + 7 * MINUTE
    assert await rig.seen(first) == [("auto", read, read), ("human", read, read)]
    page = await rig.page(first)
    assert page.count('Read <time datetime="2026-11-27T20:07:00+00:00">20:07</time>') == 2
    assert "Delivered <time" not in page  # a read that brought no delivery says it once


def reply(created: datetime, delivered: datetime | None, read: datetime | None) -> StoredReply:
    return StoredReply(1, "auto", None, "Thank you", None, created, delivered, read)


@pytest.mark.parametrize(
    ("created", "delivered", "read", "shown"),
    [
        ("2026-11-27 20:00", None, None, []),
        ("2026-11-27 20:00", "2026-11-27 20:02", None, ["Delivered 20:02"]),
        (
            "2026-11-27 20:00",
            "2026-11-27 20:02",
            "2026-11-27 20:05",
            ["Delivered 20:02", "Read 20:05"],
        ),
        ("2026-11-27 20:00", "2026-11-27 20:05", "2026-11-27 20:05", ["Read 20:05"]),
        # Another day says which: read after midnight, and a week later.
        (
            "2026-11-27 23:58",
            "2026-11-27 23:59",
            "2026-11-28 00:03",
            ["Delivered 23:59", "Read Sat 28 Nov, 00:03"],
        ),
        (
            "2026-11-27 20:00",
            "2026-11-27 20:01",
            "2026-12-04 09:15",
            ["Delivered 20:01", "Read Fri 4 Dec, 09:15"],
        ),
        # Summer time: London's clock, not UTC's.
        ("2026-07-01 10:00", "2026-07-01 10:02", None, ["Delivered 10:02"]),
    ],
)
def test_receipts_are_shown_in_the_organisations_time(
    created: str, delivered: str | None, read: str | None, shown: list[str]
) -> None:
    def at(text: str | None) -> datetime | None:
        return None if text is None else london(text)

    found = receipts(reply(london(created), at(delivered), at(read)), ZoneInfo("Europe/London"))
    assert [f"{r.said} {r.shown}" for r in found] == shown
