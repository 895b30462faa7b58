"""The web channel, served by the real aiohttp app over a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.store import Store
from bot.web import State, make_app
from tests.conftest import Clock, london

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(aiohttp_client: Any, state: State) -> Client:
    return await aiohttp_client(make_app(state))


async def post(client: Client, body: Any, **kwargs: Any) -> tuple[int, Any]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = await client.post(
        "/api/messages", data=data, headers={"Content-Type": "application/json"}, **kwargs
    )
    return response.status, await response.json()


async def test_out_of_hours_message_is_answered_with_a_real_time_and_queued(
    client: Client, store: Store
) -> None:
    status, body = await post(
        client,
        {"sender": "ann@example.org", "text": "I have a question", "id": "m1", "name": "Ann"},
    )
    assert status == 202
    assert body["id"] == "m1"
    assert body["reply_by"] == "2026-11-30T13:00:00+00:00"  # Monday 1pm: 4 working hours
    assert "We're closed now and back at 9am on Monday 30 November" in body["reply"]
    assert "We aim to reply by 1pm on Monday 30 November" in body["reply"]
    assert body["reference"] in body["reply"]
    assert body["emergency"] is None and body["redirect"] is None
    items = await store.open_items()
    assert [i.reference for i in items] == [body["reference"]]
    assert items[0].text == "I have a question" and items[0].sender_name == "Ann"


async def test_a_routed_message_gets_its_teams_promise(client: Client) -> None:
    _, body = await post(client, {"sender": "a", "text": "My bin wasn't emptied"})
    assert body["team"] == "waste"
    # Friday night: day 0 is Monday, so "2 working days" ends at Wednesday's close.
    assert body["reply_by"] == "2026-12-02T17:00:00+00:00"
    assert "We aim to reply by 5pm on Wednesday 2 December" in body["reply"]


async def test_in_hours_acknowledgement(client: Client, clock: Clock) -> None:
    clock.now = london("2026-11-23 10:00:00")
    status, body = await post(client, {"sender": "a", "text": "I have a question"})
    assert status == 202 and body["team"] is None
    assert "will reply by 2pm today" in body["reply"]
    assert body["reply_by"] == "2026-11-23T14:00:00+00:00"


async def test_bank_holiday_is_named(client: Client, clock: Clock) -> None:
    clock.now = london("2026-08-30 20:00:00")  # Sunday before the summer bank holiday
    _, body = await post(client, {"sender": "a", "text": "Question about parking permits"})
    assert "back at 9am on Tuesday 1 September" in body["reply"]
    assert "tomorrow is a bank holiday (Summer bank holiday)" in body["reply"]
    clock.now = london("2026-08-31 11:00:00")
    _, body = await post(client, {"sender": "b", "text": "Question about parking permits"})
    assert "closed today for the bank holiday (Summer bank holiday)" in body["reply"]


async def test_christmas_closure_is_named(client: Client, clock: Clock) -> None:
    clock.now = london("2026-12-27 15:00:00")
    _, body = await post(client, {"sender": "a", "text": "Is the library open?"})
    assert (
        "closed for the Christmas closure and back at 9am on Monday 4 January 2027" in body["reply"]
    )


async def test_the_same_id_twice_gives_the_same_answer_and_one_queue_item(
    client: Client, store: Store
) -> None:
    message = {"sender": "a", "text": "pothole on Station Road", "id": "abc"}
    first = await post(client, message)
    second = await post(client, message)
    assert first == second
    assert len(await store.open_items()) == 1


async def test_cooldown_holds_back_the_second_acknowledgement_but_queues_it(
    client: Client, store: Store, clock: Clock
) -> None:
    _, first = await post(client, {"sender": "bob", "text": "Pothole on Elm Grove"})
    clock.now += timedelta(hours=1)
    _, second = await post(client, {"sender": "bob", "text": "And the street light is out"})
    assert first["reply"] and second["reply"] is None
    clock.now += timedelta(hours=1)
    _, emergency = await post(
        client, {"sender": "bob", "text": "there's a strong smell of gas in the hallway"}
    )
    assert emergency["emergency"] and "0800 111 999" in emergency["reply"]
    clock.now += timedelta(hours=12)
    _, later = await post(client, {"sender": "bob", "text": "Any update?"})
    assert later["reply"]
    assert len(await store.open_items()) == 4


async def test_emergency_is_answered_with_where_to_go(client: Client) -> None:
    _, body = await post(
        client, {"sender": "c", "text": "My neighbour has collapsed and isn't breathing"}
    )
    assert body["emergency"]
    assert "call 999 now" in body["reply"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"sender": "a", "text": "\xff\xfe"}', 400, "not valid UTF-8"),
        ({"sender": "a"}, 422, '"text" is required'),
        ({"text": "hello"}, 422, '"sender" is required'),
        ({"sender": "a", "text": 5}, 422, '"text" must be a string, got int'),
        ({"sender": ["a"], "text": "hi"}, 422, '"sender" must be a string, got list'),
        ({"sender": "a", "text": "   "}, 422, '"text" is empty'),
        ({"sender": "a", "text": "x" * 4001}, 422, "4001 characters long; at most 4000"),
        (
            {"sender": "a", "text": "hi", "txt": "hi"},
            422,
            "unknown field 'txt'; did you mean \"text\"?",
        ),
        ({"sender": "a", "text": "nul\u0000"}, 422, "NUL"),
        (b"{" + b'"text": "' + b"x" * 70_000 + b'"}', 413, "at most 65536"),
    ],
    ids=[
        "json",
        "not-object",
        "utf8",
        "no-text",
        "no-sender",
        "text-int",
        "sender-list",
        "empty",
        "too-long",
        "unknown-field",
        "nul",
        "too-large",
    ],
)
async def test_bad_requests_get_a_clear_json_error_and_nothing_is_stored(
    client: Client, store: Store, body: Any, status: int, says: str
) -> None:
    got, answer = await post(client, body)
    assert got == status
    assert says in answer["error"]
    assert await store.counts() == {"open": 0, "done": 0, "replies": 0}


async def test_text_of_exactly_4000_characters_is_accepted(client: Client) -> None:
    status, _ = await post(client, {"sender": "a", "text": "y" * 4000})
    assert status == 202


async def test_many_concurrent_messages_are_all_stored(client: Client, store: Store) -> None:
    results = await asyncio.gather(
        *(
            post(client, {"sender": f"s{i}", "text": f"message {i}", "id": f"id{i}"})
            for i in range(60)
        )
    )
    assert {status for status, _ in results} == {202}
    assert len({body["reference"] for _, body in results}) == 60
    assert (await store.counts())["open"] == 60


async def test_store_unavailable_answers_503_not_2xx(client: Client, store: Store) -> None:
    await store.__aexit__(None, None, None)  # the database goes away under the server
    status, body = await post(client, {"sender": "a", "text": "hello"})
    assert status == 503
    assert "try again" in body["error"]
    response = await client.get("/healthz")
    assert response.status == 503


async def test_healthz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["organisation"] == "Anytown Borough Council"


async def test_message_us_page_is_a_form_with_labels(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    assert '<html lang="en-GB">' in page
    for field in ("name", "sender", "text"):
        assert f'<label for="{field}">' in page and f'id="{field}"' in page
    assert "call 999" in page


async def test_message_us_form_shows_the_acknowledgement(client: Client, store: Store) -> None:
    form = {"name": "Dee", "sender": "dee@example.org", "text": "Fly-tipping on Brook Lane"}
    response = await client.post("/", data={**form, "id": "form-1"})
    page = await response.text()
    assert response.status == 200
    assert "Message received" in page and "We&#39;re closed now" in page
    again = await client.post("/", data={**form, "id": "form-1"})
    assert again.status == 200
    assert (await store.counts())["open"] == 1  # a resubmitted form is not stored twice


async def test_message_us_form_errors_are_listed_and_linked(client: Client, store: Store) -> None:
    response = await client.post("/", data={"sender": "", "text": ""})
    page = await response.text()
    assert response.status == 422
    assert "There is a problem" in page
    assert 'href="#sender"' in page and 'href="#text"' in page
    assert (await store.counts())["open"] == 0


async def test_message_us_form_ignores_robots(client: Client, store: Store) -> None:
    response = await client.post(
        "/", data={"sender": "x", "text": "buy now", "website": "spam.example"}
    )
    assert response.status == 204
    assert (await store.counts())["open"] == 0


async def test_an_emergency_from_the_web_wakes_the_alerts_at_once(state: State) -> None:
    """The sender and alert loops are woken for an emergency, not left to their next tick."""
    from bot.web import ingest

    woken: list[str] = []
    state.wake = lambda: woken.append("wake")
    await ingest(state, {"sender": "a@example.org", "text": "My bin wasn't emptied"})
    assert woken == []  # the web answers in its response: nothing to send or alert yet
    await ingest(state, {"sender": "b@example.org", "text": "my dad has collapsed", "id": "e1"})
    assert woken == ["wake"]
    await ingest(state, {"sender": "b@example.org", "text": "my dad has collapsed", "id": "e1"})
    assert woken == ["wake"]  # a redelivery is not new
