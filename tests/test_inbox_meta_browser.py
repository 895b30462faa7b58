"""The inbox answers Facebook, Instagram and WhatsApp in a real browser, at 320 px, against the
real server (`python -m bot`) and the fake Graph API, with axe-core checking each page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import copy_rules
from tests.fakes.meta import FakeMeta
from tests.test_browser import HAVE_BROWSER
from tests.test_channels_e2e import until
from tests.test_channels_meta_e2e import META, start, url
from tests.test_inbox_browser import PASSWORD, add_user, browser, open_row, violations

pytestmark = pytest.mark.skipif(not HAVE_BROWSER, reason="needs Debian's chromium")
__all__ = ["browser"]  # a fixture: imported to be used by name


async def test_the_team_answers_each_meta_channel_from_the_inbox(
    tmp_path: Path, browser: Any
) -> None:
    rules = copy_rules(tmp_path)
    database = f"sqlite:///{tmp_path}/inbox.sqlite3"
    await asyncio.to_thread(
        add_user, database, rules, "ada", "--name", "Ada Admin", "--role", "admin"
    )
    async with FakeMeta() as fake:
        server = await asyncio.to_thread(start, tmp_path, rules, database, fake)
        base = f"http://127.0.0.1:{server.port}"
        context = await browser.new_context(bypass_csp=True, viewport={"width": 320, "height": 640})
        page = await context.new_page()
        try:
            await page.goto(f"{base}/login")
            await page.fill("#username", "ada")
            await page.fill("#password", PASSWORD)
            await page.press("#password", "Enter")
            await page.wait_for_url(f"{base}/inbox")
            deliveries = [
                ("facebook", fake.messaging("facebook", "My bin wasn't emptied", "2401")),
                ("instagram", fake.comment("instagram", "When is the tip open?")),
                ("whatsapp", fake.whatsapp("Where do I pay my council tax?", "447700900123")),
            ]
            for channel, delivery in deliveries:
                assert await fake.deliver(delivery, url(server, channel)) == 200
            await until(lambda: len(fake.sent) == 2)  # the comment gets no automatic answer
            await page.wait_for_function("document.title.startsWith('(3) Inbox')", timeout=15000)
            # Meta says the automatic replies were read (WhatsApp by wamid, Messenger by watermark).
            read = datetime.now(UTC)
            [wamid] = [c["id"] for c in fake.sent if c["channel"] == "whatsapp"]
            status = fake.whatsapp_status(wamid, "read", "447700900123", at=read)
            assert await fake.deliver(status, url(server, "whatsapp")) == 200
            event = fake.event("facebook", "read", "2401", watermark=read)
            assert await fake.deliver(event, url(server, "facebook")) == 200
            stamp = event["entry"][0]["messaging"][0]["timestamp"]  # when they read it
            read_at = {"whatsapp": read, "facebook": datetime.fromtimestamp(stamp / 1000, UTC)}

            answers = {
                "facebook": "A crew will come on Tuesday.",
                "instagram": "Saturdays 9 to 4.",
                "whatsapp": "Online at anytown.gov.uk/pay.",
            }
            for channel in META:
                await page.goto(f"{base}/inbox")
                await open_row(page, channel)
                if channel in read_at:  # the organisation's time (the rules say Europe/London)
                    shown = await page.inner_text(".reply .receipts")
                    local = read_at[channel].astimezone(ZoneInfo("Europe/London"))
                    assert shown.startswith("Read ") and shown.endswith(f"{local:%H:%M}")
                assert await violations(page) == []
                if channel == "instagram":
                    assert "Publicly, under their comment" in await page.inner_text("main")
                    await page.check("#how-public")
                else:
                    assert f"You can reply on {channel} until" in await page.inner_text(
                        "#reply-hint"
                    )
                await page.fill("#reply", answers[channel])
                await page.click("button:has-text('Send reply')")
                await page.wait_for_selector("[role=status]:has-text('Your reply is on its way.')")
                assert await violations(page) == []
            await until(lambda: len(fake.sent) == 5)
        finally:
            await context.close()
            await asyncio.to_thread(server.stop)

    assert fake.texts("meta")[1:] == [answers["facebook"], answers["instagram"]]
    assert fake.texts("whatsapp")[1:] == [answers["whatsapp"]]
    public = [c for c in fake.sent if c["path"].endswith("/replies")]
    assert [c["body"]["message"] for c in public] == [answers["instagram"]]
