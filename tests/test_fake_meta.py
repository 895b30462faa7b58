"""The Meta fake speaks Meta's formats: pywa, the maintained WhatsApp library, checks them.

pywa validates the fake's signed webhook deliveries and parses them into its own types, and its
client sends through the fake Graph API and reads its answers and error bodies. The server does
not use pywa (see bot.channels.meta for why), so this is someone else's reading of the formats
our fake and our channels agree on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pywa import WhatsApp, errors, handlers, types  # type: ignore[import-untyped]
from pywa.types.templates import TemplateLanguage  # type: ignore[import-untyped]

from tests.fakes.meta import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    VERSION,
    WHATSAPP_TOKEN,
    FakeMeta,
    sign,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeMeta]:
    async with FakeMeta() as meta:
        yield meta


def client(fake: FakeMeta, got: list[Any]) -> WhatsApp:
    session = httpx.Client()
    wa = WhatsApp(
        phone_id=PHONE_NUMBER_ID,
        token=WHATSAPP_TOKEN,
        session=session,
        server=None,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
    )
    # pywa fixes graph.facebook.com as the base URL when it builds its client; point the
    # session it was given at the fake instead.
    session.base_url = httpx.URL(f"{fake.url}/{VERSION}")
    wa.add_handlers(
        handlers.MessageHandler(lambda _, m: got.append(m)),
        handlers.MessageStatusHandler(lambda _, s: got.append(s)),
    )
    return wa


def feed(wa: WhatsApp, delivery: dict[str, Any]) -> None:
    body = json.dumps(delivery).encode()
    assert wa.webhook_update_validator(body, sign(body)) is None
    assert wa.webhook_update_validator(body, sign(body, "another-secret")) is not None
    wa.webhook_update_handler(body)


async def test_pywa_reads_the_fakes_whatsapp_deliveries(fake: FakeMeta) -> None:
    got: list[Any] = []
    wa = client(fake, got)
    feed(wa, fake.whatsapp("Where do I pay my council tax?", "447700900123", "Kerry Jones"))
    feed(wa, fake.whatsapp("my bin", "447700900123", kind="image"))
    feed(wa, fake.whatsapp_status("wamid.OUT1", "delivered", "447700900123"))
    feed(wa, fake.whatsapp_status("wamid.OUT2", "failed", "447700900123"))

    text, image, delivered, failed = got
    assert isinstance(text, types.Message) and text.text == "Where do I pay my council tax?"
    assert text.from_user.wa_id == "447700900123" and text.from_user.name == "Kerry Jones"
    assert image.type == types.MessageType.IMAGE and image.caption == "my bin"
    assert isinstance(delivered, types.MessageStatus)
    assert delivered.status == types.MessageStatusType.DELIVERED and delivered.id == "wamid.OUT1"
    assert failed.status == types.MessageStatusType.FAILED and failed.error.code == 131026


async def test_pywa_sends_through_the_fake_and_reads_its_errors(fake: FakeMeta) -> None:
    wa = client(fake, [])
    fake.whatsapp("hello", "447700900123")  # opens the customer service window
    sent = await asyncio.to_thread(wa.send_message, "447700900123", "Thank you")
    assert sent.id.startswith("wamid.")
    assert fake.texts("whatsapp") == ["Thank you"]

    with pytest.raises(errors.ReEngagementMessage):  # nobody wrote from this number
        await asyncio.to_thread(wa.send_message, "447700900999", "Hello")
    fake.fail_next("whatsapp-rate-limit")
    with pytest.raises(errors.RateLimitHit):
        await asyncio.to_thread(wa.send_message, "447700900123", "Again")
    fake.fail_next("token")
    with pytest.raises(errors.ExpiredAccessToken):
        await asyncio.to_thread(wa.send_message, "447700900123", "Again")
    sent_template = await asyncio.to_thread(
        wa.send_template, "447700900999", "reply_waiting", TemplateLanguage.ENGLISH_UK
    )
    assert sent_template.id.startswith("wamid.")
    assert fake.texts("whatsapp")[-1] == "template:reply_waiting"
