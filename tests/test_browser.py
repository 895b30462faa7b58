"""The public "Message us" page in a real browser (Debian's Chromium), used with the keyboard only.

Needs /usr/bin/chromium (apt-get install chromium). Without it these tests are skipped, unless
HOLDING_REPLY_REQUIRE_BROWSER=1 (as CI sets), when they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_rules
from tests.test_server import Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_BROWSER = Path(CHROMIUM).exists()
if not HAVE_BROWSER and os.environ.get("HOLDING_REPLY_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"{CHROMIUM} not found: apt-get install chromium")
pytestmark = pytest.mark.skipif(not HAVE_BROWSER, reason="needs Debian's chromium")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path, copy_rules(tmp_path))
    yield running
    running.stop()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def test_a_citizen_sends_a_message_with_the_keyboard_alone(server: Server, page: Any) -> None:
    await page.goto(f"http://127.0.0.1:{server.port}/")
    assert await page.title() == "Message us – Anytown Borough Council"
    await page.keyboard.press("Tab")  # first, who to call instead, above the form
    assert await page.evaluate("document.activeElement.tagName") == "SUMMARY"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "name"
    await page.keyboard.type("Ann")
    await page.keyboard.press("Tab")
    await page.keyboard.type("ann@example.org")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "text"
    await page.keyboard.type("My green bin wasn't emptied this week")
    await page.keyboard.press("Tab")  # the robots' field is out of the tab order
    assert await page.evaluate("document.activeElement.tagName") == "BUTTON"
    await page.keyboard.press("Enter")
    await page.wait_for_selector("h1:has-text('Message received')")
    reply = await page.inner_text("[role=status]")
    assert "Anytown Borough Council" in reply and "Your reference is" in reply
    assert "reply by" in reply or "aim to reply" in reply
    assert server.request("/healthz")[1]["queue"]["open"] == 1


async def test_mistakes_are_listed_at_the_top_and_linked_to_their_fields(
    server: Server, page: Any
) -> None:
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.click("button[type=submit]")
    await page.wait_for_selector("[role=alert]")
    assert (await page.title()).startswith("Error: ")
    await page.click("[role=alert] a[href='#sender']")
    assert await page.evaluate("document.activeElement.id") == "sender"
    assert "Enter your message." in await page.inner_text("#text-error")
    assert server.request("/healthz")[1]["queue"]["open"] == 0
