"""The team's inbox over HTTP: sessions, CSRF, who sees what, and every action on an item."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient
from markupsafe import escape

from bot import inbox
from bot.auth import MAX_FAILURES, SESSION_LENGTH, hash_password, token_hash
from bot.models import Message
from bot.outbox import Sender
from bot.store import Store, open_store
from bot.triage import Triage
from bot.web import State, ingest, make_app, receive
from tests.conftest import Clock
from tests.fakes.telegram import FakeTelegram
from tests.test_channel_telegram import SECRET, serve_telegram

Client = TestClient  # type: ignore[type-arg]
PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html"}


async def add_people(store: Store, clock: Clock) -> None:
    digest = hash_password(PASSWORD)  # one scrypt for everyone: the tests stay quick
    await store.add_user("ada", "Ada Admin", "admin", digest, [], clock())
    await store.add_user("wes", "Wes Waste", "agent", digest, ["waste"], clock())
    await store.add_user("hal", "Hal Housing", "agent", digest, ["housing", "default"], clock())


@pytest.fixture
async def client(aiohttp_client: Any, state: State, clock: Clock) -> Client:
    await add_people(state.store, clock)
    return await aiohttp_client(make_app(state))


async def new_item(state: State, text: str, sender: str = "ann@example.org") -> str:
    result, _ = await ingest(state, {"sender": sender, "text": text})
    return result.item.reference


async def log_in(client: Client, username: str, password: str = PASSWORD, **kw: Any) -> Any:
    page = await (await client.get("/login")).text()
    token = re.search(r'name="login_token" value="([^"]+)"', page)
    assert token is not None
    form = {"username": username, "password": password, "login_token": token[1], **kw}
    return await client.post("/login", data=form, allow_redirects=False)


async def csrf_of(client: Client) -> str:
    page = await (await client.get("/inbox")).text()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found[1]


async def act(client: Client, reference: str, action: str, **form: str) -> Any:
    form.setdefault("csrf", await csrf_of(client))
    return await client.post(f"/inbox/{reference}/{action}", data=form, allow_redirects=False)


ROUTES = [
    ("GET", "/inbox"),
    ("GET", "/inbox/events"),
    ("GET", "/inbox/reports"),
    ("GET", "/inbox/{ref}"),
    ("GET", "/inbox/{ref}/original"),
    ("POST", "/logout"),
    *[("POST", f"/inbox/{{ref}}/{name}") for name in inbox.ACTIONS],
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_staff_route_refuses_without_a_session(
    client: Client, state: State, method: str, path: str
) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    url = path.format(ref=ref)
    for cookies in ({}, {"hr_session": "forged-token"}):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies(cookies)
        response = await client.request(method, url, data={"text": "x"}, allow_redirects=False)
        assert response.status == 401, (method, url)
        page = await response.text()
        assert ref not in page and "Log in again – Anytown Borough Council" in page
        if method == "GET":  # a browser is sent to log in, and comes back afterwards
            browser = await client.get(url, headers=HTML, allow_redirects=False)
            assert browser.status == 303
            assert unquote(browser.headers["Location"]) == f"/login?next={url}"
    [item] = await state.store.inbox(None)
    assert item.assigned_to is None and item.done_at is None
    assert await state.store.notes(ref) == [] and len(await state.store.replies(ref)) == 1


@pytest.mark.parametrize("action", sorted(inbox.ACTIONS))
async def test_csrf_is_enforced_on_every_post(client: Client, state: State, action: str) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    assert (await log_in(client, "ada")).status == 303
    good = await csrf_of(client)
    form = {"text": "Hello", "team": "housing"}
    for given in ({}, {"csrf": ""}, {"csrf": good + "x"}):
        response = await act(client, ref, action, **form, **given) if given else None
        if response is None:
            response = await client.post(f"/inbox/{ref}/{action}", data=form)
        assert response.status == 403
        assert "Form expired" in await response.text()
    # The right token from another site's page is refused too.
    response = await client.post(
        f"/inbox/{ref}/{action}",
        data={**form, "csrf": good},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    item = await state.store.get(ref)
    assert item is not None and item.assigned_to is None and item.team == "waste"
    assert await state.store.notes(ref) == [] and len(await state.store.replies(ref)) == 1
    # And logging out needs the token as well.
    assert (await client.post("/logout", allow_redirects=False)).status == 403
    assert (await client.get("/inbox", allow_redirects=False)).status == 200


async def test_logging_in_needs_the_login_forms_own_token(client: Client) -> None:
    form = {"username": "ada", "password": PASSWORD}
    response = await client.post("/login", data=form, allow_redirects=False)
    assert response.status == 403
    assert "hr_session" not in response.cookies


async def test_an_agent_sees_and_acts_only_on_their_teams_items(
    client: Client, state: State
) -> None:
    waste = await new_item(state, "My bin wasn't emptied")
    housing = await new_item(state, "There is damp and mould in my flat", "bob@example.org")
    other = await new_item(state, "I have a question", "cy@example.org")  # the default team
    assert (await log_in(client, "wes")).status == 303
    page = await (await client.get("/inbox")).text()
    assert waste in page and housing not in page and other not in page
    assert "<title>(1) Inbox – Anytown Borough Council</title>" in page
    for ref in (housing, other):
        response = await client.get(f"/inbox/{ref}")
        assert response.status == 404 and ref not in await response.text()
        for action in inbox.ACTIONS:
            response = await act(client, ref, action, text="mine now", team="waste")
            assert response.status == 404, action
    item = await state.store.get(housing)
    assert item is not None and item.assigned_to is None and item.team == "housing"
    assert item.done_at is None and await state.store.notes(housing) == []
    # Filtering by a team that is not theirs shows nothing rather than everything.
    assert housing not in await (await client.get("/inbox?team=housing")).text()
    assert (await client.get(f"/inbox/{waste}")).status == 200

    client.session.cookie_jar.clear()
    assert (await log_in(client, "hal")).status == 303
    page = await (await client.get("/inbox")).text()
    assert housing in page and other in page and waste not in page


async def test_an_admin_sees_every_team(client: Client, state: State) -> None:
    refs = [
        await new_item(state, "My bin wasn't emptied"),
        await new_item(state, "There is damp in my flat", "b"),
        await new_item(state, "Hello", "c"),
    ]
    assert (await log_in(client, "ada")).status == 303
    page = await (await client.get("/inbox")).text()
    assert all(ref in page for ref in refs)
    assert "(3) Inbox" in page and "Logged in as Ada Admin" in page


async def test_wrong_details_say_nothing_about_which_and_guessing_is_limited(
    client: Client,
) -> None:
    unknown = await log_in(client, "nobody", "whatever password")
    wrong = await log_in(client, "wes", "not the password at all")
    for response in (unknown, wrong):
        assert response.status == 401
        assert "The username or password is not right." in await response.text()
    for _ in range(MAX_FAILURES - 1):
        await log_in(client, "wes", "still not the password")
    blocked = await log_in(client, "wes", PASSWORD)  # even the right password, for a while
    assert blocked.status == 429
    assert "Too many failed attempts" in await blocked.text()
    assert "hr_session" not in blocked.cookies


async def test_the_session_cookie_is_httponly_lax_and_secure_over_https(client: Client) -> None:
    response = await log_in(client, "wes")
    assert response.status == 303 and response.headers["Location"] == "/inbox"
    cookie = next(v for v in response.headers.getall("Set-Cookie") if "hr_session=" in v)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/;" in cookie + ";"
    assert f"Max-Age={int(SESSION_LENGTH.total_seconds())}" in cookie
    assert "Secure" not in cookie  # plain HTTP on a laptop: a Secure cookie would never return

    client.session.cookie_jar.clear()
    page = await (await client.get("/login")).text()
    token = re.search(r'name="login_token" value="([^"]+)"', page)
    assert token is not None
    response = await client.post(
        "/login",
        data={"username": "wes", "password": PASSWORD, "login_token": token[1]},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    cookie = next(v for v in response.headers.getall("Set-Cookie") if "hr_session=" in v)
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_staff_pages_are_not_cached_or_framed(client: Client, state: State) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    await log_in(client, "wes")
    for url in ("/inbox", f"/inbox/{ref}", "/login"):
        response = await client.get(url)
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_passwords_are_never_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await log_in(client, "wes", "a wrong password 123")
    await log_in(client, "wes")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "logged in" in logged
    assert PASSWORD not in logged and "a wrong password 123" not in logged


async def test_logging_out_ends_the_session(client: Client, state: State) -> None:
    response = await log_in(client, "wes")
    token = response.cookies["hr_session"].value
    response = await client.post(
        "/logout", data={"csrf": await csrf_of(client)}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/login?done=logged-out"
    assert await state.store.session(token_hash(token), state.clock()) is None
    client.session.cookie_jar.update_cookies({"hr_session": token})  # a stolen copy is no use
    response = await client.get("/inbox", headers=HTML, allow_redirects=False)
    assert response.status == 303
    page = await (await client.get("/login?done=logged-out")).text()
    assert "You have logged out." in page


async def test_after_logging_in_you_return_to_the_page_you_asked_for(
    client: Client, state: State
) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    response = await client.get(f"/inbox/{ref}", headers=HTML, allow_redirects=False)
    target = response.headers["Location"]
    page = await (await client.get(target)).text()
    assert f'name="next" value="/inbox/{ref}"' in page
    response = await log_in(client, "wes", next=f"/inbox/{ref}")
    assert response.headers["Location"] == f"/inbox/{ref}"
    for evil in ("//evil.example/inbox", "https://evil.example", "/\\evil.example"):
        client.session.cookie_jar.clear()
        response = await log_in(client, "wes", next=evil)
        assert response.headers["Location"] == "/inbox"


async def test_claim_and_unclaim(client: Client, state: State) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    await log_in(client, "wes")
    response = await act(client, ref, "claim")
    assert response.status == 303 and response.headers["Location"] == f"/inbox/{ref}?done=claimed"
    page = await (await client.get(response.headers["Location"])).text()
    assert "You are on this message now." in page and 'role="status"' in page
    assert "Wes Waste" in await (await client.get("/inbox")).text()
    wes = await state.store.user("wes")
    item = await state.store.get(ref)
    assert wes is not None and item is not None and item.assigned_to == wes[0].id
    await act(client, ref, "unclaim")
    item = await state.store.get(ref)
    assert item is not None and item.assigned_to is None


async def test_mark_done_and_reopen(client: Client, state: State) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    await log_in(client, "wes")
    response = await act(client, ref, "done")
    assert response.headers["Location"] == f"/inbox/{ref}?done=done"
    item = await state.store.get(ref)
    assert item is not None and item.done_by == "wes" and item.done_at is not None
    assert ref not in await (await client.get("/inbox")).text()
    assert ref in await (await client.get("/inbox?status=done")).text()
    page = await (await client.get(f"/inbox/{ref}")).text()
    assert "Done by Wes Waste" in page
    await act(client, ref, "reopen")
    item = await state.store.get(ref)
    assert item is not None and item.done_at is None
    assert ref in await (await client.get("/inbox")).text()


async def test_reassign_to_another_team(client: Client, state: State) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    await log_in(client, "wes")
    await act(client, ref, "claim")
    response = await act(client, ref, "reassign", team="nonsense")
    assert response.status == 422 and "Choose a team from the list." in await response.text()
    response = await act(client, ref, "reassign", team="housing")
    assert response.status == 303 and response.headers["Location"] == "/inbox?done=reassigned"
    item = await state.store.get(ref)
    assert item is not None and item.team == "housing" and item.assigned_to is None
    assert (await client.get(f"/inbox/{ref}")).status == 404  # no longer wes's to see
    client.session.cookie_jar.clear()
    await log_in(client, "hal")
    response = await act(client, ref, "reassign", team="default")
    assert response.headers["Location"] == f"/inbox/{ref}?done=reassigned"
    item = await state.store.get(ref)
    assert item is not None and item.team is None


async def test_notes(client: Client, state: State) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    await log_in(client, "wes")
    response = await act(client, ref, "note", text="   ")
    assert response.status == 422 and "Enter a note." in await response.text()
    response = await act(client, ref, "note", text="Crew says the lane was blocked <b>")
    assert response.headers["Location"] == f"/inbox/{ref}?done=noted"
    page = await (await client.get(f"/inbox/{ref}?done=noted")).text()
    assert "Your note is added." in page
    assert "Crew says the lane was blocked &lt;b&gt;" in page and "Wes Waste" in page
    [note] = await state.store.notes(ref)
    assert note.author == "wes"


async def test_a_reply_to_a_web_message_is_recorded_and_says_how_to_send_it(
    client: Client, state: State
) -> None:
    ref = await new_item(state, "My bin wasn't emptied")
    await log_in(client, "wes")
    page = await (await client.get(f"/inbox/{ref}")).text()
    assert "you must contact them at the address they gave (ann@example.org)" in page
    response = await act(client, ref, "reply", text="")
    assert response.status == 422 and "Enter your reply." in await response.text()
    response = await act(client, ref, "reply", text="We'll collect it tomorrow.")
    assert response.headers["Location"] == f"/inbox/{ref}?done=recorded"
    page = await (await client.get(response.headers["Location"])).text()
    assert "Contact the citizen at the address they gave." in page
    assert "Reply from Wes Waste" in page and "We&#39;ll collect it tomorrow." in page
    assert await state.store.deliveries("pending") == []
    item = await state.store.get(ref)
    assert item is not None and item.first_human_reply_at == state.clock().astimezone(UTC)


async def test_the_item_page_shows_the_message_the_auto_reply_and_history(
    client: Client, state: State, clock: Clock
) -> None:
    first = await new_item(state, "My bin wasn't emptied last week")
    clock.now += SESSION_LENGTH / 12
    ref = await new_item(state, "My bin still hasn't been emptied")
    await log_in(client, "wes")
    page = await (await client.get(f"/inbox/{ref}")).text()
    assert "My bin still hasn&#39;t been emptied" in page and "ann@example.org" in page
    assert f'href="/inbox/{first}"' in page  # the earlier message
    assert "no automatic reply was sent (the sender had one recently)" in page
    page = await (await client.get(f"/inbox/{first}")).text()
    [auto] = await state.store.replies(first)
    assert "Automatic reply" in page and str(escape(auto.text)) in page


async def test_the_item_page_says_why_a_channel_sent_no_automatic_reply(
    client: Client, state: State, clock: Clock
) -> None:
    message = Message("x", "tweet:9", "42", "look at this", clock(), no_reply="quote post")
    result, _ = await receive(state, message)
    assert result.item.auto_reply is None and result.item.held_back == "quote post"
    await log_in(client, "ada")
    page = await (await client.get(f"/inbox/{result.item.reference}")).text()
    assert "no automatic reply was sent (quote post)" in page


async def test_filters(client: Client, state: State) -> None:
    bins = await new_item(state, "My bin wasn't emptied")
    damp = await new_item(state, "Damp in my flat", "b")
    await log_in(client, "ada")
    page = await (await client.get("/inbox?team=housing")).text()
    assert damp in page and bins not in page
    assert '<option value="housing" selected>' in page
    page = await (await client.get("/inbox?channel=telegram")).text()
    assert damp not in page and bins not in page and "No messages match." in page
    page = await (await client.get("/inbox?channel=web&status=all")).text()
    assert damp in page and bins in page
    page = await (await client.get("/inbox?status=nonsense&channel=nonsense")).text()
    assert damp in page and bins in page  # unknown values mean the defaults


async def test_the_live_stream_announces_a_new_message(
    client: Client, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "POLL_SECONDS", 0.05)
    await new_item(state, "My bin wasn't emptied")
    await log_in(client, "wes")
    response = await client.get("/inbox/events")
    assert response.headers["Content-Type"] == "text/event-stream"

    async def next_event() -> dict[str, Any]:
        while True:
            line = (await asyncio.wait_for(response.content.readline(), 5)).decode()
            if line.startswith("data: "):
                parsed: dict[str, Any] = json.loads(line[6:])
                return parsed

    first = await next_event()
    assert first["open"] == 1
    ref = await new_item(state, "Missed recycling collection", "zed@example.org")
    await new_item(state, "Damp in my flat", "c")  # another team's: never in wes's stream
    second = await next_event()
    assert second["open"] == 2 and f'data-reference="{ref}"' in second["rows"]
    assert "Damp" not in json.dumps(second)
    response.close()


async def test_the_inbox_works_on_both_databases(
    aiohttp_client: Any, database: str, triage: Triage, clock: Clock
) -> None:
    async with open_store(database) as store:
        state = State(triage, store, clock=clock)
        await add_people(store, clock)
        client = await aiohttp_client(make_app(state))
        ref = await new_item(state, "My bin wasn't emptied")
        await new_item(state, "Damp in my flat", "b")
        assert (await log_in(client, "wes")).status == 303
        page = await (await client.get("/inbox")).text()
        assert ref in page and "(1) Inbox" in page
        await act(client, ref, "claim")
        await act(client, ref, "note", text="On it")
        await act(client, ref, "done")
        item = await store.get(ref)
        assert item is not None and item.done_by == "wes" and item.assigned_to is not None
        await client.close()


@pytest.fixture
async def telegram_client(
    aiohttp_client: Any, state: State, clock: Clock
) -> AsyncIterator[tuple[Client, FakeTelegram, Sender]]:
    await add_people(state.store, clock)
    async with FakeTelegram() as fake:
        harness = await serve_telegram(fake, state, clock, aiohttp_client)
        yield harness.client, fake, harness.sender
        await harness.channel.stop()


async def test_a_reply_to_a_telegram_message_reaches_telegram_through_the_outbox(
    telegram_client: tuple[Client, FakeTelegram, Sender], state: State
) -> None:
    client, fake, sender = telegram_client
    url = str(client.make_url("/webhooks/telegram"))
    assert await fake.deliver(fake.text_message("My green bin wasn't emptied"), url, SECRET) == 200
    await sender.once()
    [item] = await state.store.inbox(None)
    assert len(fake.sent) == 1  # the automatic reply
    await log_in(client, "wes")
    page = await (await client.get(f"/inbox/{item.reference}")).text()
    assert "Sent to them on telegram." in page and "Priya Shah" in page
    await act(client, item.reference, "claim")
    response = await act(client, item.reference, "reply", text="A crew will come on Tuesday.")
    assert response.headers["Location"] == f"/inbox/{item.reference}?done=replied"
    await sender.once()
    assert fake.sent[-1]["text"] == "A crew will come on Tuesday."
    assert fake.sent[-1]["chat_id"] == fake.sent[0]["chat_id"]
    [delivery] = [d for d in await state.store.deliveries("sent") if d.kind == "human"]
    assert delivery.message_id == item.id


async def test_the_last_30_days_report_is_for_admins_only(client: Client, state: State) -> None:
    await new_item(state, "My bin wasn't emptied")
    await new_item(state, "my dad has collapsed and isn't breathing", "b")
    assert (await log_in(client, "wes")).status == 303
    assert "Report: last 30 days" not in await (await client.get("/inbox")).text()
    assert (await client.get("/inbox/reports")).status == 404  # agents see their teams only

    client.session.cookie_jar.clear()
    assert (await log_in(client, "ada")).status == 303
    assert 'href="/inbox/reports"' in await (await client.get("/inbox")).text()
    response = await client.get("/inbox/reports")
    assert response.status == 200
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    page = await response.text()
    assert "<svg" in page and "<script" not in page
    assert "Socitm" in page and "estimate" in page
    assert "Messages received from 2026-10-29 to 2026-11-27 inclusive" in page  # 30 days
    overall = page.split("<h2>Overall</h2>", 1)[1].split("</table>", 1)[0]
    overall = re.sub(r' data-label="[^"]*"', "", overall)  # the labels of the narrow layout
    # all: 2 in, 2 automatic replies, 0 human, 100% out of hours (Friday 8pm), 1 emergency of 2
    assert "<td>all</td><td>2</td><td>2</td><td>0</td><td>100%</td><td>50%</td>" in overall


async def test_the_original_email_can_be_downloaded_by_whoever_may_see_the_item(
    client: Client, state: State
) -> None:
    raw = b"From: ann@example.org\r\nSubject: Bins\r\n\r\nMy bin, again.\r\n"
    message = Message(
        "email", "<b@example.org> ann@example.org", "ann@example.org", "Bins\n\nMy bin, again.",
        state.clock(), original=raw,
    )  # fmt: skip
    result, _ = await receive(state, message)
    reference = result.item.reference
    web_reference = await new_item(state, "Hello")
    await log_in(client, "ada")
    page = await (await client.get(f"/inbox/{reference}", headers=HTML)).text()
    assert f'href="/inbox/{reference}/original"' in page
    response = await client.get(f"/inbox/{reference}/original")
    assert response.status == 200 and await response.read() == raw
    assert response.content_type == "message/rfc822"
    assert f'filename="{reference}.eml"' in response.headers["Content-Disposition"]
    page = await (await client.get(f"/inbox/{web_reference}", headers=HTML)).text()
    assert "/original" not in page
    assert (await client.get(f"/inbox/{web_reference}/original")).status == 404
