"""The inbox's announcement pages: in-process for what they do, and in a real browser at 320 px
with axe-core for how they read (the real server as a process, the real CLI for the people)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.announcement import FOUND
from bot.store import open_store
from bot.web import State, make_app
from tests.conftest import Clock, copy_rules, london
from tests.test_announce_cli import found_after_a_crash
from tests.test_browser import HAVE_BROWSER
from tests.test_inbox import add_people, log_in
from tests.test_inbox_browser import PASSWORD, add_user, browser  # noqa: F401
from tests.test_pages_browser import check, narrow, summary_has_focus  # noqa: F401
from tests.test_server import Server

ROOT = "/inbox/announcements"


async def csrf(client: Any) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', await (await client.get(ROOT)).text())
    assert found is not None
    return found[1]


async def test_staff_write_preview_approve_and_cancel(aiohttp_client: Any, state: State) -> None:
    state.clock = Clock(london("2026-11-02 09:00"))
    await add_people(state.store, state.clock)
    client = await aiohttp_client(make_app(state))
    assert (await client.get(ROOT, allow_redirects=False)).status in (303, 401)
    await log_in(client, "wes")
    form = {
        "csrf": await csrf(client),
        "when": "2026-11-03T10:00",
        "channel-x": "on",
        "channel-telegram": "on",
        "text": "Roadworks on the High Street " + "a" * 260,
    }
    preview = await client.post(ROOT, data={**form, "action": "preview"})
    body = await preview.text()
    assert preview.status == 200 and "289 of 280 characters" in body and "289 of 4096" in body
    refused = await client.post(ROOT, data={**form, "action": "schedule"})
    assert refused.status == 400 and "too long for x: 289 of 280" in await refused.text()
    assert await state.store.announcements(london("2026-11-01 00:00")) == []

    form["x_text"] = "Roadworks on the High Street tomorrow."
    done = await client.post(ROOT, data={**form, "action": "schedule"}, allow_redirects=False)
    assert done.status == 303
    [a] = await state.store.announcements(london("2026-11-01 00:00"))
    assert (a.written_by, [p.state for p in a.posts]) == ("wes", ["scheduled", "scheduled"])
    page = await (await client.get(ROOT)).text()
    assert "Tuesday 3 November 2026" in page and "Suspend all" not in page  # not an admin
    cancel = await client.post(f"{ROOT}/{a.id}/cancel", data={"csrf": await csrf(client)})
    assert cancel.status == 200 and "cancelled" in await cancel.text()


async def test_a_post_found_by_a_check_is_told_from_one_published_normally(
    aiohttp_client: Any, state: State
) -> None:
    state.clock = Clock(datetime.now(UTC))
    await add_people(state.store, state.clock)
    await found_after_a_crash(state.store)
    client = await aiohttp_client(make_app(state))
    await log_in(client, "wes")
    page = await (await client.get(ROOT)).text()
    assert dict(re.findall(r"<li>(telegram|x): (.*?)</li>", page)) == {
        "telegram": "published",
        "x": f'{FOUND} – <a href="https://x.com/anytown/status/19">see the post</a>',
    }


async def test_admins_suspend_and_resume(aiohttp_client: Any, state: State) -> None:
    await add_people(state.store, state.clock)
    client = await aiohttp_client(make_app(state))
    await log_in(client, "ada")
    token = await csrf(client)
    await client.post(f"{ROOT}/suspend", data={"csrf": token, "reason": "National mourning"})
    suspension = await state.store.suspension()
    assert suspension is not None and suspension.suspended_by == "ada"
    assert "National mourning" in await (await client.get(ROOT)).text()
    await client.post(f"{ROOT}/resume", data={"csrf": token})
    assert await state.store.suspension() is None


@pytest.mark.skipif(not HAVE_BROWSER, reason="needs Debian's chromium")
async def test_the_pages_reflow_at_320_px_and_axe_finds_nothing(
    tmp_path: Path,
    narrow: Any,  # noqa: F811
) -> None:
    rules = copy_rules(tmp_path)
    database = f"sqlite:///{tmp_path}/pages.sqlite3"
    await asyncio.to_thread(add_user, database, rules, "ada", "--name", "Ada", "--role", "admin")
    async with open_store(database) as store:
        await found_after_a_crash(store)
    server = await asyncio.to_thread(Server, tmp_path, rules, database)
    base = f"http://127.0.0.1:{server.port}"
    page = await narrow.new_page()
    try:
        await page.goto(f"{base}/login?next={ROOT}")
        await page.fill("#username", "ada")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}{ROOT}")
        found = page.get_by_text(f"x: {FOUND}")
        assert await found.is_visible()
        assert await found.get_by_role("link", name="see the post").count() == 1
        await check(page, "announcements, one found by a check")
        await page.click("button[value=schedule]")
        await summary_has_focus(page)
        await check(page, "announcement errors")
        await page.fill("#when", "2030-01-06T09:00")
        await page.check("#channel-telegram")
        await page.fill("#text", "We're open again from today. If someone is in danger, call 999.")
        await page.click("button[value=preview]")
        await page.wait_for_selector("text=of 4096 characters")
        await check(page, "preview")
        await page.click("button[value=schedule]")
        await page.wait_for_selector("[role=status]")
        await check(page, "scheduled")
        await page.fill("#reason", "A major incident")
        await page.click("text=Suspend all announcements")
        await page.wait_for_selector("text=Resume announcements")
        await check(page, "suspended")
    finally:
        await page.close()
        await asyncio.to_thread(server.stop)
