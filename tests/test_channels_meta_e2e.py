"""Facebook, Instagram and WhatsApp through the whole product: `python -m bot` against the fake
Graph API, on SQLite and on PostgreSQL, with deliveries signed and posted as Meta posts them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.store import open_store
from tests.conftest import copy_rules
from tests.fakes.meta import FakeMeta
from tests.test_channels_e2e import until
from tests.test_server import Server

META = ("facebook", "instagram", "whatsapp")


def start(
    tmp_path: Path, rules: Path, database: str, fake: FakeMeta, level: str = "INFO"
) -> Server:
    server = Server(tmp_path, rules, database, {**fake.env(*META), "LOG_LEVEL": level})
    for _ in META:
        server.wait_for("meta channel ready")
    return server


def url(server: Server, channel: str) -> str:
    return f"http://127.0.0.1:{server.port}/webhooks/{channel}"


async def test_the_server_answers_all_three_at_once_and_queues_them(
    tmp_path: Path, database: str
) -> None:
    rules = copy_rules(tmp_path)
    async with FakeMeta() as fake:
        server = await asyncio.to_thread(start, tmp_path, rules, database, fake)
        try:
            deliveries = {
                "facebook": fake.messaging("facebook", "My bin wasn't emptied", "2401"),
                "instagram": fake.messaging("instagram", "Is the tip open on Sunday?", "1701"),
                "whatsapp": fake.whatsapp("Where do I pay my council tax?", "447700900123"),
            }
            for channel, delivery in deliveries.items():
                assert await fake.deliver(delivery, url(server, channel)) == 200
                assert await fake.deliver(delivery, url(server, channel)) == 200  # redelivered
            # Things that are not messages make nothing.
            for channel in ("facebook", "instagram"):
                for kind in ("echo", "delivery", "read", "reaction", "postback"):
                    event = fake.event(channel, kind, "2401" if channel == "facebook" else "1701")
                    assert await fake.deliver(event, url(server, channel)) == 200
            status = fake.whatsapp_status("wamid.OUT1", "delivered", "447700900123")
            assert await fake.deliver(status, url(server, "whatsapp")) == 200
            # A bad signature is refused and stores nothing.
            forged = fake.messaging("facebook", "forged", "2402")
            assert await fake.deliver(forged, url(server, "facebook"), "wrong-secret") == 403
            assert await fake.deliver(forged, url(server, "facebook"), None) == 403
            await until(lambda: len(fake.sent) == 3)
            await asyncio.sleep(1)  # a second reply to anyone would have come by now
        finally:
            await asyncio.to_thread(server.stop)

    async with open_store(database) as store:
        items = await store.open_items()
    assert sorted(i.channel for i in items) == sorted(META)
    by_channel = {i.channel: i for i in items}
    assert by_channel["whatsapp"].sender_name == "Kerry Jones"  # the contact's profile name
    assert by_channel["facebook"].sender_name == "Priya Shah"  # the user profile API
    assert by_channel["instagram"].sender_name == "Priya Shah"
    assert len(fake.sent) == 3
    for call in fake.sent:
        body = call["body"]
        text = body["message"]["text"] if "message" in body else body["text"]["body"]
        assert any(i.reference in text for i in items)
        if call["channel"] == "meta":
            assert body["messaging_type"] == "RESPONSE" and "tag" not in body
    logged = "\n".join(str(line) for line in server.lines)
    assert all(secret not in logged for secret in fake.env(*META).values() if "fake" in secret)
    assert "My bin" not in logged


async def test_two_servers_send_each_person_one_reply(tmp_path: Path, database: str) -> None:
    """Every delivery goes to both servers at once, as Meta's redelivery can make happen."""
    rules = copy_rules(tmp_path)
    async with FakeMeta() as fake:
        one, two = await asyncio.gather(
            asyncio.to_thread(start, tmp_path, rules, database, fake),
            asyncio.to_thread(start, tmp_path, rules, database, fake, "DEBUG"),
        )
        try:
            deliveries: list[tuple[str, dict[str, Any]]] = []
            for i in range(8):
                deliveries.append(("facebook", fake.messaging("facebook", f"Bins {i}", f"24{i}")))
                deliveries.append(("instagram", fake.messaging("instagram", f"Tip {i}", f"17{i}")))
                deliveries.append(("whatsapp", fake.whatsapp(f"Tax {i}", f"4477009{i:05d}")))
            statuses = await asyncio.gather(
                *(fake.deliver(d, url(s, c)) for c, d in deliveries for s in (one, two))
            )
            assert set(statuses) == {200}
            await until(lambda: len(fake.sent) >= 24)
            await asyncio.sleep(2)  # long enough for a second send, if there were one
        finally:
            await asyncio.gather(asyncio.to_thread(one.stop), asyncio.to_thread(two.stop))

    people = sorted(str(c["body"].get("to") or c["body"]["recipient"]["id"]) for c in fake.sent)
    assert len(people) == 24 and len(set(people)) == 24  # each exactly once


async def test_stop_and_start_through_the_server(tmp_path: Path, database: str) -> None:
    """STOP, a message, START, a message, on each channel: the commands are not queued, the
    first message is queued with no reply, the second is answered."""
    rules = copy_rules(tmp_path)
    people = {"facebook": "2401", "instagram": "1701", "whatsapp": "447700900123"}
    texts = ("STOP", "My bin wasn't emptied", "Start.", "stop the roadworks outside number 4")
    async with FakeMeta() as fake:
        server = await asyncio.to_thread(start, tmp_path, rules, database, fake)
        try:
            for channel, person in people.items():
                for text in texts:
                    delivery = (
                        fake.whatsapp(text, person)
                        if channel == "whatsapp"
                        else fake.messaging(channel, text, person)
                    )
                    assert await fake.deliver(delivery, url(server, channel)) == 200
            await until(lambda: len(fake.sent) == 3)
        finally:
            await asyncio.to_thread(server.stop)

    async with open_store(database) as store:
        items = await store.open_items()
        sent = await store.deliveries("sent")
        unsent = await store.deliveries("pending") + await store.deliveries("dead")
        states = [(await store.export(c, p)).state for c, p in people.items()]
    held = sorted((i.channel, i.text, i.held_back) for i in items)
    assert held == sorted(
        (channel, text, reason)
        for channel in people
        for text, reason in (
            ("My bin wasn't emptied", "opted-out"),
            ("stop the roadworks outside number 4", None),
        )
    )
    answered = {i.id for i in items if i.held_back is None}
    assert len(sent) == 3 and {d.message_id for d in sent} == answered and unsent == []
    assert all(s is not None and not s.opted_out for s in states)
