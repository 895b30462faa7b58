"""The admins' rules pages over HTTP: who may use them, CSRF, two admins at once, limits, and the
announcement of each change. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from markupsafe import escape

from bot.versions import MAX_RULES, read_files, save
from bot.web import State, make_app
from tests.conftest import ROOT, Clock
from tests.test_inbox import add_people, log_in

Client = TestClient  # type: ignore[type-arg]
ALERTS = '\n[alerts]\ndefault = ["email:comms@anytown.gov.uk"]\n'
GETS = ["/inbox/rules", "/inbox/rules/preview", "/inbox/rules/history", "/inbox/rules/close"]
POSTS = [
    "/inbox/rules",
    "/inbox/rules/preview",
    "/inbox/rules/restore",
    "/inbox/rules/close",
    "/inbox/rules/open",
]


@pytest.fixture
async def client(aiohttp_client: Any, state: State, clock: Clock) -> Client:
    await add_people(state.store, clock)
    files = read_files(ROOT / "rules.toml")
    files["rules.toml"] += ALERTS
    await save(state.store, files, author="the rules file", note="", source="file", based_on=0,
               at=clock())  # fmt: skip
    state.rules_version = 1
    return await aiohttp_client(make_app(state))


async def csrf_on(client: Client, path: str = "/inbox/rules") -> tuple[str, str]:
    page = await (await client.get(path)).text()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found[1], page


async def alerts(state: State) -> list[str]:
    return [d.text for d in await state.store.deliveries("pending") if d.kind == "alert"]


async def test_only_admins_see_the_rules_pages(client: Client) -> None:
    for path in GETS:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 401, path
    assert (await log_in(client, "wes")).status == 303  # an agent
    for path in GETS:
        assert (await client.get(path)).status == 404, path
    for path in POSTS:
        assert (await client.post(path, data={"csrf": "x"})).status == 404, path
    client.session.cookie_jar.clear()
    assert (await log_in(client, "ada")).status == 303
    for path in GETS:
        assert (await client.get(path)).status == 200, path


async def test_every_post_needs_the_csrf_token(client: Client, state: State) -> None:
    assert (await log_in(client, "ada")).status == 303
    for path in POSTS:
        for given in ({}, {"csrf": "forged"}):
            response = await client.post(path, data={**given, "reason": "snow", "action": "close"})
            assert response.status == 403, path
    assert await state.store.latest_rules_version() == 1


async def test_of_two_admins_editing_at_once_the_second_is_refused_and_keeps_their_text(
    client: Client, state: State
) -> None:
    assert (await log_in(client, "ada")).status == 303
    csrf, page = await csrf_on(client)
    assert 'name="based_on" value="1"' in page
    text = read_files(ROOT / "rules.toml")["rules.toml"] + ALERTS
    first = text.replace('friday = "09:00-16:30"', 'friday = "09:00-16:00"')
    second = text.replace('monday = "09:00-17:00"', 'monday = "10:00-17:00"')
    form = {"csrf": csrf, "based_on": "1", "file": "rules.toml", "note": "early Fridays"}
    saved = await client.post("/inbox/rules", data={**form, "text": first}, allow_redirects=False)
    assert saved.status == 303
    refused = await client.post("/inbox/rules", data={**form, "text": second})
    assert refused.status == 409
    page = await refused.text()
    assert "the rules changed since you opened them" in page
    assert str(escape(second)) in page  # nothing lost
    newest = await state.store.rules_version()
    assert newest is not None and newest.id == 2 and newest.files["rules.toml"] == first
    assert await alerts(state) == ["Ada Admin changed rules.toml (version 2): early Fridays"]


async def test_an_invalid_or_oversized_change_is_refused_and_nothing_is_stored(
    client: Client, state: State
) -> None:
    assert (await log_in(client, "ada")).status == 303
    csrf, _ = await csrf_on(client)
    form = {"csrf": csrf, "based_on": "1", "file": "responses/en/bio.txt"}
    typo = await client.post("/inbox/rules", data={**form, "text": "{{ organisaton }}"})
    assert typo.status == 422
    assert "responses/en/bio.txt</a>: unknown variable(s) organisaton" in await typo.text()
    big = await client.post("/inbox/rules", data={**form, "file": "rules.toml",
                                                  "text": "#" * (MAX_RULES + 1)})  # fmt: skip
    assert big.status == 422 and "at most 524,288 allowed" in await big.text()
    huge = await client.post("/inbox/rules", data={**form, "text": "x" * (3 * 1024 * 1024)})
    assert huge.status == 413
    assert await state.store.latest_rules_version() == 1 and await alerts(state) == []


async def test_a_shipped_template_is_offered_and_saving_it_makes_it_the_organisations(
    client: Client, state: State
) -> None:
    assert (await log_in(client, "ada")).status == 303
    csrf, page = await csrf_on(client, "/inbox/rules?file=responses/en/bio.txt")
    assert "Shipped with Holding Reply" in page
    shipped = (ROOT / "bot" / "default_responses" / "en" / "bio.txt").read_text("utf-8")
    assert str(escape(shipped.strip())) in page  # the shipped text, ready to change
    ours = "{{ organisation }}: we read every message in office hours.\n"
    form = {"csrf": csrf, "based_on": "1", "file": "responses/en/bio.txt", "text": ours}
    saved = await client.post("/inbox/rules", data=form, allow_redirects=False)
    assert saved.status == 303
    newest = await state.store.rules_version()
    assert newest is not None and newest.files["responses/en/bio.txt"] == ours
    assert "responses/en/bio.txt" not in (await state.store.rules_version(1) or newest).files


async def test_close_now_shows_the_replies_first_then_closes_and_is_announced_once(
    client: Client, state: State
) -> None:
    assert (await log_in(client, "ada")).status == 303
    csrf, page = await csrf_on(client, "/inbox/rules/close")
    until = re.search(r'name="until" value="([^"]+)"', page)
    assert until is not None and until[1] == "2026-11-30T09:00"  # Friday evening: Monday 9am
    form = {"csrf": csrf, "until": until[1], "reason": "severe weather", "message": ""}
    shown = await client.post("/inbox/rules/close", data={**form, "action": "check"})
    assert "We&#39;re closed for severe weather and back at 9am on Monday" in await shown.text()
    assert await state.store.latest_rules_version() == 1  # nothing saved yet
    closed = await client.post(
        "/inbox/rules/close", data={**form, "action": "close"}, allow_redirects=False
    )
    assert closed.status == 303 and await state.store.latest_rules_version() == 2
    assert await alerts(state) == [
        "Ada Admin closed the desk until 9am on Monday 30 November: severe weather"
    ]
    page = await (await client.get("/inbox/rules/close")).text()
    assert "The desk is closed until 9am on Monday 30 November: severe weather." in page
    ended = await client.post("/inbox/rules/open", data={"csrf": csrf}, allow_redirects=False)
    assert ended.status == 303
    newest = await state.store.rules_version()
    assert newest is not None and "Closed now" not in newest.files["rules.toml"]
    assert (await alerts(state))[-1].startswith("Ada Admin ended the closure early")
