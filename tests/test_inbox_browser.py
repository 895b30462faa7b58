"""The team's inbox in a real browser: the real server, the real CLI, the fake Telegram, axe-core.

Needs /usr/bin/chromium (apt-get install chromium). Without it these tests are skipped, unless
HOLDING_REPLY_REQUIRE_BROWSER=1 (as CI sets), when they fail instead. axe-core comes from the
axe-playwright-python package, which ships axe.min.js: nothing is downloaded at test time.
HOLDING_REPLY_SCREENSHOTS=1 also saves docs/inbox.png and docs/item.png for the README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels import X_CREDENTIALS
from tests.conftest import ROOT, copy_rules
from tests.fakes.telegram import FakeTelegram
from tests.test_browser import CHROMIUM, FLAGS, HAVE_BROWSER
from tests.test_channels_e2e import SECRET, start, until
from tests.test_server import Server

pytestmark = pytest.mark.skipif(not HAVE_BROWSER, reason="needs Debian's chromium")

PASSWORD = "plenty of green wheelie bins"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_script() -> Path:
    import axe_playwright_python

    return Path(axe_playwright_python.__file__).parent / "axe.min.js"


async def violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.x A and AA violations on the page as it is now, one line each."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(axe_script()))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG
    )
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
    ]


def add_user(database: str, rules: Path, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": database, "RULES_FILE": str(rules)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "user", "add", *args, "--password-stdin"],
        input=PASSWORD + "\n",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        running = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield running
        finally:
            await running.close()


async def tab_to(page: Any, selector: str, limit: int = 20) -> None:
    """Press Tab until the element matching `selector` has the focus, as a keyboard user does."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def test_the_team_answers_a_telegram_message_from_the_inbox(
    tmp_path: Path, browser: Any
) -> None:
    rules = copy_rules(tmp_path)
    database = f"sqlite:///{tmp_path}/inbox.sqlite3"
    await asyncio.to_thread(
        add_user, database, rules, "wes", "--name", "Wes Waste", "--team", "waste"
    )
    async with FakeTelegram() as fake:
        server: Server = await asyncio.to_thread(start, tmp_path, rules, database, fake)
        base = f"http://127.0.0.1:{server.port}"
        context = await browser.new_context(bypass_csp=True)  # only so that axe can be injected
        page = await context.new_page()
        try:
            await page.goto(f"{base}/")
            assert await violations(page) == []

            await page.goto(f"{base}/inbox")
            assert page.url.startswith(f"{base}/login?next=")
            assert await page.title() == "Log in – Anytown Borough Council"
            assert await violations(page) == []
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.className") == "skip-link"
            await tab_to(page, "#username")
            await page.keyboard.type("wes")
            await page.keyboard.press("Tab")
            await page.keyboard.type(PASSWORD)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/inbox")
            assert await page.title() == "(0) Inbox – Anytown Borough Council"
            assert await violations(page) == []

            # A message arrives while the page is open: it appears without a reload.
            await page.evaluate("window.notReloaded = true")
            update = fake.text_message("My green bin wasn't emptied this week")
            assert await fake.deliver(update, f"{base}/webhooks/telegram", SECRET) == 200
            row = await page.wait_for_selector("tr[data-reference]", timeout=15000)
            reference = await row.get_attribute("data-reference")
            assert await page.evaluate("window.notReloaded") is True
            await page.wait_for_function("document.title.startsWith('(1) Inbox')")
            assert reference in await page.inner_text("#live")
            await until(lambda: len(fake.sent) == 1)  # the automatic reply
            assert await violations(page) == []
            if os.environ.get("HOLDING_REPLY_SCREENSHOTS") == "1":
                await page.screenshot(path=str(ROOT / "docs" / "inbox.png"), full_page=True)

            # Open it, claim it, reply, and close it, all from the keyboard.
            await page.focus(f"a[href='/inbox/{reference}']")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/inbox/{reference}")
            assert "My green bin wasn't emptied this week" in await page.inner_text("main")
            assert await violations(page) == []
            await page.focus('button:has-text("I\'ll take it")')
            await page.keyboard.press("Enter")
            await page.wait_for_selector("[role=status]:has-text('You are on this message now.')")
            await page.focus("#reply")
            await page.keyboard.type("A crew will come by on Tuesday.")
            await page.keyboard.press("Tab")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("[role=status]:has-text('Your reply is on its way.')")
            await until(lambda: len(fake.sent) == 2)
            assert fake.sent[1]["text"] == "A crew will come by on Tuesday."
            assert await violations(page) == []
            if os.environ.get("HOLDING_REPLY_SCREENSHOTS") == "1":
                await page.screenshot(path=str(ROOT / "docs" / "item.png"), full_page=True)
            await page.click("button:has-text('Mark done')")
            await page.wait_for_selector("[role=status]:has-text('marked done')")
            await page.goto(f"{base}/inbox")
            assert await page.title() == "(0) Inbox – Anytown Borough Council"
        finally:
            await context.close()
            stopped_in = await asyncio.to_thread(server.stop)
    assert stopped_in < 10  # an open live stream does not hold up the shutdown
    logged = "\n".join(str(line) for line in server.lines)
    assert PASSWORD not in logged and "A crew will come" not in logged


async def test_a_wrong_password_is_announced_and_the_page_stays_accessible(
    tmp_path: Path, browser: Any
) -> None:
    server = Server(tmp_path, copy_rules(tmp_path))
    try:
        page = await (await browser.new_context(bypass_csp=True)).new_page()
        await page.goto(f"http://127.0.0.1:{server.port}/login")
        await page.fill("#username", "nobody")
        await page.fill("#password", "not a real password")
        await page.click("button[type=submit]")
        await page.wait_for_selector("[role=alert]")
        assert "The username or password is not right." in await page.inner_text("[role=alert]")
        assert (await page.title()).startswith("Error: ")
        assert await violations(page) == []
    finally:
        await asyncio.to_thread(server.stop)


def test_axe_core_is_installed_with_the_test_extra() -> None:
    assert axe_script().stat().st_size > 100_000
    assert shutil.which("chromium") or Path(CHROMIUM).exists()


async def open_row(page: Any, channel: str) -> None:
    """Follow the link of the inbox row whose Channel cell is exactly `channel`."""
    import re

    cell = page.locator("td:nth-child(3)", has_text=re.compile(f"^{channel}$"))
    await page.locator("tr[data-reference]").filter(has=cell).locator("a").click()
    await page.wait_for_selector("h1:has-text('Message')")


async def test_one_inbox_for_the_web_form_and_x(tmp_path: Path, browser: Any) -> None:
    """An admin answers an X mention (the reply goes back in its thread) and a message from the
    public form (the reply is recorded; they are told to use the address given)."""
    from tests.fakes.x import FakeX

    rules = copy_rules(tmp_path)
    database = f"sqlite:///{tmp_path}/inbox.sqlite3"
    await asyncio.to_thread(
        add_user, database, rules, "ada", "--name", "Ada Admin", "--role", "admin"
    )
    async with FakeX() as fake:
        env = {name: f"ui-{name.lower()}" for name in X_CREDENTIALS}
        env.update(X_API_URL=fake.url, X_POLL_SECONDS="0.2")
        server = await asyncio.to_thread(Server, tmp_path, rules, database, env)
        await asyncio.to_thread(server.wait_for, "x ready")
        base = f"http://127.0.0.1:{server.port}"
        context = await browser.new_context(bypass_csp=True)  # so the test may wait on the title
        page = await context.new_page()
        try:
            await page.goto(f"{base}/login")
            await page.fill("#username", "ada")
            await page.fill("#password", PASSWORD)
            await page.press("#password", "Enter")
            await page.wait_for_url(f"{base}/inbox")

            # A citizen uses the public form in another tab; another mentions the council on X.
            citizen = await context.new_page()
            await citizen.goto(f"{base}/")
            await citizen.fill("#sender", "pat@example.org")
            await citizen.fill("#text", "Can I get a parking permit for my carer?")
            await citizen.click("button[type=submit]")
            await citizen.wait_for_selector("text=Your reference is")
            fake.add_mention("@AnytownCouncil the streetlight on Mill Lane is out")
            await page.wait_for_function("document.title.startsWith('(2) Inbox')", timeout=15000)
            channels = await page.eval_on_selector_all(
                "tr[data-reference] td:nth-child(3)", "cells => cells.map(c => c.innerText)"
            )
            assert sorted(channels) == ["web", "x"]
            await until(lambda: len(fake.posted) == 1)  # the automatic reply on X

            await open_row(page, "x")
            await page.fill("#reply", "An engineer is booked for Thursday.")
            await page.click("button:has-text('Send reply')")
            await page.wait_for_selector("[role=status]:has-text('Your reply is on its way.')")
            await until(lambda: len(fake.posted) == 2)
            assert fake.posted[1]["text"].endswith("An engineer is booked for Thursday.")
            assert fake.posted[1]["conversation_id"] == fake.posted[0]["conversation_id"]
            await page.click("button:has-text('Mark done')")

            await page.goto(f"{base}/inbox")
            await open_row(page, "web")
            assert "pat@example.org" in await page.inner_text("#reply-hint")
            await page.fill("#reply", "Emailed Pat the form.")
            await page.click("button:has-text('Record reply')")
            await page.wait_for_selector("[role=status]")
            assert "Emailed Pat the form." in await page.inner_text("main")
            await page.click("button:has-text('Mark done')")
            await page.goto(f"{base}/inbox")
            assert await page.title() == "(0) Inbox – Anytown Borough Council"
        finally:
            await context.close()
            await asyncio.to_thread(server.stop)
    assert len(fake.posted) == 2  # nothing was sent for the web message
