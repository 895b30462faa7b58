"""The "Message us" page says, before anyone writes, whether someone is at the desk, when it
opens next and why it is shut, when a message sent now would be answered (the reply-by the
automatic reply then promises), and who to call instead; in English and in Welsh, with the clock
set. The shipped rules: Monday to Thursday 9am to 5pm, Friday to 4:30pm, four working hours,
England and Wales bank holidays, closed from 24 December 2026 to 1 January 2027."""

from __future__ import annotations

import gc
import html
import re
import weakref
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.check import load
from bot.desk import desk
from bot.store import Store
from bot.web import State, make_app
from tests.conftest import Clock, copy_rules, london
from tests.test_welsh import WELSH_NAME, english_on, welsh_rules

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def site(aiohttp_client: Any, tmp_path: Path, store: Store, clock: Clock) -> Client:
    client: Client = await aiohttp_client(
        make_app(State(load(welsh_rules(tmp_path)), store, clock=clock))
    )
    return client


def said(page: str) -> str:
    """The status box as a person reads it: text only, spaces collapsed."""
    found = re.search(r'<section class="desk".*?</section>', page, re.S)
    assert found is not None, "the page has no status box"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found[0])).split()).replace(" .", ".")


async def status(site: Client, path: str = "/") -> str:
    response = await site.get(path)
    assert response.status == 200
    page = await response.text()
    if path == "/cy/":
        assert english_on(page, (WELSH_NAME,)) == set()
    return said(page)


# (the clock in London, what the English page says, what the Welsh page says)
CASES = [
    (
        "2026-11-02 10:00",  # a Monday morning
        "Someone is at the desk now, until 5pm today. "
        "If you write now, we aim to reply by 2pm today.",
        "Mae rhywun wrth y ddesg nawr, tan 5yh heddiw. "
        "Os byddwch yn ysgrifennu nawr, ein nod yw ateb erbyn 2yh heddiw.",
    ),
    (
        "2026-11-03 22:15",  # a Tuesday night
        "Nobody is at the desk now. We will be back at 9am tomorrow. "
        "If you write now, we aim to reply by 1pm tomorrow.",
        "Nid oes neb wrth y ddesg nawr. Byddwn yn ôl am 9yb yfory. "
        "Os byddwch yn ysgrifennu nawr, ein nod yw ateb erbyn 1yh yfory.",
    ),
    (
        "2026-08-28 17:00",  # the Friday evening before the Summer bank holiday
        "Nobody is at the desk now. "
        "The desk is closed for the bank holiday (Summer bank holiday): Monday 31 August. "
        "We will be back at 9am on Tuesday 1 September. "
        "If you write now, we aim to reply by 1pm on Tuesday 1 September.",
        None,
    ),
    (
        "2026-12-29 11:00",  # during the Christmas closure
        "Nobody is at the desk now. We are closed (the Christmas closure). "
        "We will be back at 9am on Monday 4 January 2027. "
        "If you write now, we aim to reply by 1pm on Monday 4 January 2027.",
        "Nid oes neb wrth y ddesg nawr. Rydym ar gau (cyfnod cau'r Nadolig). "
        "Byddwn yn ôl am 9yb ddydd Llun 4 Ionawr 2027. "
        "Os byddwch yn ysgrifennu nawr, ein nod yw ateb erbyn 1yh ddydd Llun 4 Ionawr 2027.",
    ),
    (
        "2026-11-03 08:59:59",  # the second before opening
        "Nobody is at the desk now. We will be back at 9am today. "
        "If you write now, we aim to reply by 1pm today.",
        "Nid oes neb wrth y ddesg nawr. Byddwn yn ôl am 9yb heddiw. "
        "Os byddwch yn ysgrifennu nawr, ein nod yw ateb erbyn 1yh heddiw.",
    ),
    (
        "2026-11-03 09:00:00",  # the second it opens
        "Someone is at the desk now, until 5pm today. "
        "If you write now, we aim to reply by 1pm today.",
        None,
    ),
]


@pytest.mark.parametrize(("at", "english", "welsh"), CASES, ids=[c[0] for c in CASES])
async def test_the_page_says_the_desks_status_at_that_moment(
    site: Client, clock: Clock, at: str, english: str, welsh: str | None
) -> None:
    clock.now = london(at)
    box = await status(site)
    assert box.startswith("When we will reply " + english), box
    assert box.endswith(
        "Someone is at the desk Monday to Thursday 9am to 5pm, Friday 9am to 4:30pm. "
        "Nobody reads messages at other times."
    )
    cymraeg = await status(site, "/cy/")
    assert cymraeg.startswith("Pryd y byddwn yn ateb ")
    if welsh is not None:
        assert welsh in cymraeg, cymraeg


@pytest.mark.parametrize("at", [c[0] for c in CASES])
async def test_the_page_promises_what_the_automatic_reply_then_promises(
    site: Client, clock: Clock, at: str
) -> None:
    clock.now = london(at)
    box = await status(site)
    promised = re.search(r"we aim to reply by (.+?)\.", box)  # a message for no team in particular
    assert promised is not None
    response = await site.post(
        "/", data={"sender": "jo@example.org", "text": "Hello, I have a question."}
    )
    assert response.status == 200
    reply = html.unescape(await response.text())
    assert f"reply by {promised[1]}." in reply  # "we aim to reply by", "will reply by"


async def test_the_page_says_who_to_call_instead_from_the_rules(site: Client) -> None:
    page = html.unescape(await (await site.get("/")).text())
    assert "call 999" in page
    others = page[page.index("<details>") : page.index("</details>")]
    # The first paragraph of each emergency and redirect response rules.toml names.
    assert "National Gas Emergency Service now on 0800 111 999" in others
    assert "Samaritans" in others and "116 123" in others
    assert "call the police on 101" in others
    assert "Your reference" not in others and "reference" not in others
    cymraeg = await (await site.get("/cy/")).text()
    welsh_others = cymraeg[cymraeg.index("<details>") : cymraeg.index("</details>")]
    assert "0800 111 999" in welsh_others and "ffoniwch" in welsh_others


def test_the_calls_are_remembered_only_while_their_rules_are_in_force(tmp_path: Path) -> None:
    """Each rules edit makes a new Triage: the page's cache must not keep the old ones alive."""
    triage = load(copy_rules(tmp_path))
    first = desk(triage, london("2026-12-03 12:00"), "en")
    assert first.calls and desk(triage, london("2026-12-03 12:01"), "en").calls == first.calls
    gone = weakref.ref(triage)
    del triage
    gc.collect()
    assert gone() is None
