"""Replying from the inbox on Facebook, Instagram and WhatsApp: through the outbox to the fake
Graph API, within Meta's windows, and answering comments publicly or privately."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.channels.messenger import MessengerChannel
from bot.channels.meta import MetaSettings
from bot.channels.whatsapp import WhatsAppChannel
from bot.check import load
from bot.outbox import Sender
from bot.web import State, make_app
from tests.conftest import Clock, copy_rules
from tests.fakes.meta import FakeMeta
from tests.test_inbox import act, add_people, log_in

Client = TestClient  # type: ignore[type-arg]
SECOND = timedelta(seconds=1)


class Harness:
    def __init__(self, client: Client, fake: FakeMeta, sender: Sender, state: State) -> None:
        self.client, self.fake, self.sender, self.state = client, fake, sender, state

    async def deliver(self, channel: str, delivery: dict[str, Any]) -> str:
        url = str(self.client.make_url(f"/webhooks/{channel}"))
        assert await self.fake.deliver(delivery, url) == 200
        await self.sender.once()
        items = await self.state.store.inbox(None)
        return items[0].reference if len(items) == 1 else max(items, key=lambda i: i.id).reference

    async def page(self, reference: str) -> str:
        """The item's page, logging in again when the clock has outrun the session."""
        response = await self.client.get(f"/inbox/{reference}")
        if response.status == 401:
            await log_in(self.client, "ada")
            response = await self.client.get(f"/inbox/{reference}")
        return await response.text()

    async def reply(self, reference: str, text: str, **form: str) -> tuple[int, str]:
        response = await act(self.client, reference, "reply", text=text, **form)
        await self.sender.once()
        return response.status, await response.text()


@pytest.fixture
async def meta(
    aiohttp_client: Any, state: State, clock: Clock, tmp_path: Path
) -> AsyncIterator[Harness]:
    state.triage = load(copy_rules(tmp_path, '\n[channels.whatsapp]\ntemplate = "reply_waiting"\n'))
    await add_people(state.store, clock)
    async with FakeMeta(now=clock) as fake:
        settings = MetaSettings(fake.env("facebook", "instagram", "whatsapp"))
        channels: dict[str, Any] = {
            "facebook": MessengerChannel(state, settings, "facebook"),
            "instagram": MessengerChannel(state, settings, "instagram"),
            "whatsapp": WhatsAppChannel(state, settings),
        }
        sender = Sender(state.store, channels, "test", clock=clock)
        for channel in sender.paces.values():  # WhatsApp's 6 s between two sends to one person
            channel.limits = type(channel.limits)(per_second=1000.0, per_recipient_seconds=0.0)
        state.wake = sender.wake
        app = make_app(state)
        for channel in channels.values():
            app.router.add_routes(channel.routes())
        client = await aiohttp_client(app)
        await log_in(client, "ada")
        yield Harness(client, fake, sender, state)
        for channel in channels.values():
            await channel.stop()


@pytest.mark.parametrize("name", ["facebook", "instagram"])
async def test_a_reply_goes_as_a_response_then_with_the_human_agent_tag_then_not_at_all(
    meta: Harness, clock: Clock, name: str
) -> None:
    reference = await meta.deliver(name, meta.fake.messaging(name, "My bin wasn't emptied"))
    started = clock.now
    page = await meta.page(reference)
    assert f"You can reply on {name} until" in page

    assert (await meta.reply(reference, "Inside the day"))[0] == 303
    clock.now = started + timedelta(hours=24) + SECOND
    page = await meta.page(reference)
    assert "HUMAN_AGENT" in page
    assert (await meta.reply(reference, "Inside the week"))[0] == 303
    clock.now = started + timedelta(days=7) + SECOND
    page = await meta.page(reference)
    assert f"You can no longer reply on {name}" in page and "Other ways to reach them" in page
    status, text = await meta.reply(reference, "Too late")
    assert status == 422 and "You can no longer reply" in text

    bodies = [c["body"] for c in meta.fake.sent]
    assert [b["message"]["text"] for b in bodies[1:]] == ["Inside the day", "Inside the week"]
    assert [b.get("tag") for b in bodies] == [None, None, "HUMAN_AGENT"]


async def test_a_whatsapp_reply_after_24_hours_sends_the_template(
    meta: Harness, clock: Clock
) -> None:
    reference = await meta.deliver("whatsapp", meta.fake.whatsapp("Where do I pay?"))
    assert (await meta.reply(reference, "At the town hall"))[0] == 303
    clock.now += timedelta(hours=24) + SECOND
    page = await meta.page(reference)
    assert "reply_waiting" in page and "Record reply and send the template" in page
    assert (await meta.reply(reference, "Or online"))[0] == 303
    assert meta.fake.texts("whatsapp")[1:] == ["At the town hall", "template:reply_waiting"]


@pytest.mark.parametrize("name", ["facebook", "instagram"])
async def test_a_comment_is_answered_publicly_or_privately(
    meta: Harness, clock: Clock, name: str
) -> None:
    reference = await meta.deliver(name, meta.fake.comment(name, "When is bin day?"))
    page = await meta.page(reference)
    assert "Publicly, under their comment" in page and "Privately, as a message" in page
    assert (await meta.reply(reference, "Tuesdays", how="public"))[0] == 303
    assert (await meta.reply(reference, "Which street?", how="private"))[0] == 303
    public, private = meta.fake.sent
    assert public["path"].endswith("/comments" if name == "facebook" else "/replies")
    assert public["body"] == {"message": "Tuesdays"}
    assert "comment_id" in private["body"]["recipient"]


async def test_a_reply_longer_than_instagram_allows_is_refused_before_it_is_sent(
    meta: Harness,
) -> None:
    reference = await meta.deliver("instagram", meta.fake.messaging("instagram", "Hi", "1701"))
    assert 'maxlength="1000"' in await meta.page(reference)
    status, page = await meta.reply(reference, "x" * 1001)
    assert status == 422 and "it must be 1000 or fewer" in page
    assert len(meta.fake.sent) == 1  # the automatic reply only
