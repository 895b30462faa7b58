"""Every page, public and staff, English and Welsh, on a 320 CSS px wide screen, in a real
browser (Debian's Chromium): nothing scrolls sideways (WCAG 1.4.10), even with long unbroken
addresses, names and links; axe-core finds nothing; a page with errors puts the focus on its
error summary, as the GOV.UK pattern does; Welsh text on English pages is marked lang="cy".

Needs /usr/bin/chromium; see tests/test_browser.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_browser import HAVE_BROWSER
from tests.test_inbox_browser import PASSWORD, add_user, browser, violations  # noqa: F401
from tests.test_server import Server
from tests.test_welsh import welsh_rules

pytestmark = pytest.mark.skipif(not HAVE_BROWSER, reason="needs Debian's chromium")

ADDRESS = "samantha.richardson.residents-association-secretary@example.org"
NAME = "Samantha Wolfeschlegelsteinhausenbergerdorff-Richardson-Featherstonehaugh"
ADMIN = "Bartholomew Fotheringham-Featherstonehaughshire-Wolfeschlegelsteinhausen"
LINK = "https://www.example.org/planning/applications/2026/ABC-123456789/documents/site-plan.pdf"
WELSH = f"Mae fy miniau heb eu casglu ers pythefnos, ac mae'r sbwriel yn y stryd. Gweler {LINK}"

OVERFLOW = """() => {
  const root = document.scrollingElement, width = root.clientWidth, out = [];
  if (root.scrollWidth > width) out.push(`the page: ${root.scrollWidth} px wide in ${width}`);
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && r.right > width + 0.5) {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (el.className && typeof el.className === 'string' ? '.' + el.className : '');
      out.push(`${name} reaches ${Math.round(r.right)} px: ${el.textContent.slice(0, 40)}`);
    }
  }
  return out;
}"""


async def check(page: Any, where: str) -> None:
    """Nothing wider than the screen, and nothing axe-core objects to."""
    assert await page.evaluate("document.scrollingElement.clientWidth") == 320
    assert await page.evaluate(OVERFLOW) == [], where
    assert await violations(page) == [], where


async def summary_has_focus(page: Any) -> None:
    await page.wait_for_function(
        "document.activeElement && document.activeElement.matches('.error-summary')",
        timeout=5000,
    )


@pytest.fixture
async def narrow(browser: Any) -> AsyncIterator[Any]:  # noqa: F811
    context = await browser.new_context(
        viewport={"width": 320, "height": 640},
        bypass_csp=True,  # bypass: to inject axe-core
    )
    try:
        yield context
    finally:
        await context.close()


async def test_every_page_reflows_at_320_px_in_both_languages(tmp_path: Path, narrow: Any) -> None:
    rules = welsh_rules(tmp_path, bilingual=True)
    database = f"sqlite:///{tmp_path}/pages.sqlite3"
    await asyncio.to_thread(add_user, database, rules, "ada", "--name", ADMIN, "--role", "admin")
    server = await asyncio.to_thread(Server, tmp_path, rules, database)
    base = f"http://127.0.0.1:{server.port}"
    page = await narrow.new_page()
    try:
        # The public form, its errors and its confirmation, in English then in Welsh.
        for home, sent in (("/", "Message received"), ("/cy/", "Neges wedi dod i law")):
            await page.goto(base + home)
            await check(page, f"{home} form")
            assert await page.is_visible("section.desk h2")  # the desk's status, before writing
            await page.click("details summary")  # who to call instead, opened
            await page.wait_for_selector("details[open] li")
            await check(page, f"{home} form, who to call instead")
            await page.click("button[type=submit]")
            await summary_has_focus(page)
            await check(page, f"{home} errors")
            await page.fill("#name", NAME)
            sender = ADDRESS.replace("samantha", "sam" if home == "/" else "sami")
            await page.fill("#sender", sender)
            await page.fill("#text", WELSH if home == "/cy/" else f"My bin was missed. {LINK}")
            await page.click("button[type=submit]")
            await page.wait_for_selector(f"h1:has-text('{sent}')")
            await check(page, f"{home} confirmation")
            langs = await page.eval_on_selector_all(
                "[role=status] p", "ps => ps.map(p => p.getAttribute('lang'))"
            )
            # One block per language, in the order of `languages` (English first here), each
            # marked when it is not in the page's language.
            assert langs == ([None, "cy"] if home == "/" else ["en", None]), home

        # The staff pages: login (and its error), the inbox, a message, the report, a 404.
        await page.goto(f"{base}/login")
        await check(page, "login")
        await page.fill("#username", "ada")
        await page.fill("#password", "not the password at all")
        await page.click("button[type=submit]")
        await summary_has_focus(page)
        await check(page, "login error")
        await page.fill("#username", "ada")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/inbox")
        await check(page, "inbox")

        reference = await page.eval_on_selector_all(
            "tr[data-reference]", "rows => rows.map(r => r.dataset.reference)"
        )
        assert len(reference) == 2
        for ref in reference:
            await page.goto(f"{base}/inbox/{ref}")
            await check(page, f"message {ref}")
            welsh = await page.eval_on_selector_all("[lang=cy]", "els => els.map(e => e.tagName)")
            message = await page.inner_text("blockquote.message")
            if message.startswith("Mae fy miniau"):
                assert "BLOCKQUOTE" in welsh  # the citizen's Welsh, marked
            assert "P" in welsh  # the Welsh half of the bilingual automatic reply, marked
        await page.click("button:has-text('I\\'ll take it')")  # long names on the buttons too
        await page.wait_for_selector("[role=status]")
        await page.click("button:has-text('Record reply')")  # empty: an error
        await summary_has_focus(page)
        await check(page, "message with an error")
        await page.goto(f"{base}/inbox/NONE-NONE")
        await check(page, "a message that does not exist")
        await page.goto(f"{base}/inbox/reports")
        await check(page, "report")
        assert await page.locator("table#busiest-hours tbody tr").count() == 24
    finally:
        await page.close()
        await asyncio.to_thread(server.stop)
