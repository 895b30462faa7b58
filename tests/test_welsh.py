"""The public pages in Welsh at /cy/: served only when rules.toml names "cy", every string from
the Welsh catalogue, no English on a Welsh page but names and the marked English half of a
bilingual reply, and Welsh inside English pages marked lang="cy"."""

from __future__ import annotations

import dataclasses
import re
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import catalogue
from bot.check import load, welsh_gaps
from bot.language import _ENGLISH, split_bilingual
from bot.models import Message
from bot.store import Store
from bot.triage import Triage
from bot.web import State, make_app
from tests.conftest import ROOT, Clock, copy_rules
from tests.test_cli import run

Client = TestClient  # type: ignore[type-arg]
WELSH_NAME = "Cyngor Bwrdeistref Anytown"
WELSH_COUNCIL = ROOT / "examples" / "welsh-council" / "rules.toml"


def welsh_rules(tmp_path: Path, bilingual: bool = False) -> Path:
    """The shipped rules with Welsh switched on (replies in the message's language)."""
    line = 'languages = ["en", "cy"]\nname_cy = "' + WELSH_NAME + '"'
    if bilingual:
        line += "\nbilingual = true"
    return copy_rules(
        tmp_path,
        replace={
            'languages = ["en"]': line,
            'reason = "the Christmas closure"': 'reason = "the Christmas closure"\n'
            'reason_cy = "cyfnod cau\'r Nadolig"',
        },
    )


async def client_for(aiohttp_client: Any, rules: Path, store: Store, clock: Clock) -> Client:
    return await aiohttp_client(make_app(State(load(rules), store, clock=clock)))


@pytest.fixture
async def client(aiohttp_client: Any, state: State) -> Client:
    return await aiohttp_client(make_app(state))


@pytest.fixture
async def welsh(aiohttp_client: Any, tmp_path: Path, store: Store, clock: Clock) -> Client:
    return await client_for(aiohttp_client, welsh_rules(tmp_path), store, clock)


@pytest.fixture
async def bilingual(aiohttp_client: Any, store: Store, clock: Clock) -> Client:
    return await client_for(aiohttp_client, WELSH_COUNCIL, store, clock)


class Said(HTMLParser):
    """What a page shows or says (text, and the attributes read aloud), leaving out every
    element marked as English (lang="en…") and what is inside it, and style sheets."""

    VOID = frozenset({"meta", "input", "br", "link", "img", "hr", "col", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.skipping: list[bool] = []
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        skip = (
            bool(self.skipping and self.skipping[-1])
            or found.get("lang", "").startswith("en")
            or tag in ("style", "script")
        )
        if not skip:
            read = ("title", "aria-label", "alt", "placeholder")
            self.words.extend(found[k] for k in read if k in found)
        if tag not in self.VOID:
            self.skipping.append(skip)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.skipping:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not (self.skipping and self.skipping[-1]):
            self.words.append(data)


def english_on(page: str, names: tuple[str, ...]) -> set[str]:
    """English words on a Welsh page, outside names and the parts marked lang="en"."""
    said = Said()
    said.feed(page)
    text = " ".join(said.words)
    for name in (*names, "emergencySMS"):
        text = text.replace(name, " ")
    english_words = set(_ENGLISH)
    for message, _where in catalogue.source_messages():
        english_words.update(re.findall(r"[a-z]+", re.sub(r"%\(\w+\)s", " ", message.lower())))
    # Words Welsh shares with English: "a" (and), "i" and "at" (to), "am" (for), "problem"...
    english_words -= {"a", "i", "at", "am", "man", "dim", "hi", "problem"}
    words = re.findall(r"[a-z]+", text.lower())
    return {w for w in words if w in english_words}


async def test_without_cy_the_welsh_pages_do_not_exist(client: Client) -> None:
    for path in ("/cy/", "/cy"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 404
    page = await (await client.get("/")).text()
    assert '<html lang="en-GB">' in page and "Cymraeg" not in page and 'href="/cy/"' not in page


async def test_each_page_links_to_its_twin(welsh: Client) -> None:
    english = await (await welsh.get("/")).text()
    assert '<html lang="en-GB">' in english
    assert '<a href="/cy/" lang="cy" hreflang="cy">Cymraeg</a>' in english
    cymraeg = await (await welsh.get("/cy/")).text()
    assert '<html lang="cy">' in cymraeg
    assert '<a href="/" lang="en" hreflang="en">English</a>' in cymraeg
    assert 'action="/cy/"' in cymraeg and WELSH_NAME in cymraeg
    response = await welsh.get("/cy", allow_redirects=False)
    assert response.status == 308 and response.headers["Location"] == "/cy/"


async def test_the_welsh_form_has_no_english(welsh: Client) -> None:
    page = await (await welsh.get("/cy/")).text()
    assert "Anfon neges" in page and "Eich neges" in page
    assert english_on(page, (WELSH_NAME,)) == set()


async def test_a_message_from_the_welsh_form_is_answered_in_welsh_whatever_its_words(
    welsh: Client, store: Store
) -> None:
    form = {"sender": "ann@example.org", "text": "My green bin wasn't emptied this week"}
    response = await welsh.post("/cy/", data=form)
    page = await response.text()
    assert response.status == 200
    assert "Neges wedi dod i law" in page and f"am eich neges i {WELSH_NAME}" in page
    item = (await store.open_items())[0]
    assert item.language == "cy" and item.auto_reply and "Diolch" in item.auto_reply
    assert english_on(page, (WELSH_NAME, item.reference, form["text"])) == set()
    # The same words on the English form get the English reply, as before.
    english = await (await welsh.post("/", data={**form, "sender": "bo@example.org"})).text()
    assert "Thank you for your message to Anytown Borough Council" in english


async def test_the_welsh_forms_errors_are_in_welsh(welsh: Client, store: Store) -> None:
    response = await welsh.post("/cy/", data={"sender": "", "text": ""})
    page = await response.text()
    assert response.status == 422
    assert "Mae problem wedi codi" in page and "Rhowch eich neges." in page
    assert "<title>Gwall: Anfon neges atom" in page
    assert english_on(page, (WELSH_NAME,)) == set()
    too_long = await (await welsh.post("/cy/", data={"sender": "a" * 201, "text": "x"})).text()
    assert "Rhaid i&#39;ch cyfeiriad e-bost neu rif ffôn fod yn 200 nod neu lai." in too_long
    assert (await store.counts())["open"] == 0


async def test_a_bilingual_reply_is_one_block_per_language_each_marked(
    bilingual: Client, store: Store
) -> None:
    form = {"sender": "ann@example.org", "text": "My green bin wasn't emptied this week"}
    cymraeg = await (await bilingual.post("/cy/", data=form)).text()
    item = (await store.open_items())[0]
    blocks = re.findall(r'<p( lang="en")?>(.*?)</p>', cymraeg.split('role="status"')[1], re.S)
    assert [bool(lang) for lang, _ in blocks][:2] == [False, True]
    assert blocks[0][1].startswith("Diolch") and blocks[1][1].startswith("Thank you")
    names = ("Cyngor Sir Aberwen", "Aberwen County Council", item.reference, form["text"])
    assert english_on(cymraeg, names) == set()
    english = await (await bilingual.post("/", data={**form, "sender": "bo@example.org"})).text()
    assert '<p lang="cy">Diolch am eich neges i Cyngor Sir Aberwen' in english


def test_a_bilingual_reply_splits_into_the_two_replies_it_was_made_of() -> None:
    """For every template and situation of the Welsh example, the split finds exactly the Welsh
    reply and the English reply that were joined."""
    both = load(WELSH_COUNCIL)
    alone = {
        lang: Triage(
            dataclasses.replace(both.rules, languages=(lang,), bilingual=False), both.responses
        )
        for lang in ("cy", "en")
    }
    texts = [
        "my bin wasn't collected",
        "I smell gas in the kitchen",
        "my friend took an overdose",
        "I want to report a crime",
        "can I pay my council tax by card",
        "I want to make a complaint",
        "power line down on the road",
        "the river has burst its banks",
    ]
    moments = ["2026-11-27T20:00", "2026-11-25T10:00", "2026-12-27T10:00", "2026-08-31T10:00"]
    seen = set()
    for text in texts:
        for at in moments:
            when = datetime.fromisoformat(at).replace(tzinfo=UTC)
            message = Message("web", "1", "a", text, when, "Ann")
            reply = both.decide(message, reference="ABCD-EFGH").reply or ""
            parts = {
                lang: t.decide(message, reference="ABCD-EFGH").reply for lang, t in alone.items()
            }
            assert split_bilingual(reply, both.rules.languages) == [
                ("cy", parts["cy"]),
                ("en", parts["en"]),
            ], (text, at)
            seen.add(both.decide(message).template)
    assert len(seen) >= 9  # the ordinary replies, closures, emergencies and redirects


def test_check_lists_the_welsh_strings_that_are_missing(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path, replace={'languages = ["en"]': 'languages = ["en", "cy"]'})
    result = run("check", "--rules", str(rules))
    assert result.returncode == 0, result.stderr
    assert "Welsh strings missing (2)" in result.stdout
    assert "organisation.name_cy: not set" in result.stdout
    assert "closures[1].reason_cy: not set; Welsh replies say 'the Christmas closure'" in (
        result.stdout
    )
    done = run("check", "--rules", str(WELSH_COUNCIL))
    assert "Welsh pages: at /cy/, every string in Welsh" in done.stdout


def test_a_string_the_translator_has_not_done_is_listed(tmp_path: Path) -> None:
    locale = tmp_path / "locale"
    shutil.copytree(catalogue.LOCALE, locale)
    po = catalogue.po_path("cy", locale)
    text = po.read_text(encoding="utf-8")
    text = text.replace('msgstr "Rhowch eich neges."', 'msgstr ""')
    text = text.replace('msgid "Send message"', '#, fuzzy\nmsgid "Send message"')
    po.write_text(text, encoding="utf-8")
    found = [p.message for p in catalogue.missing("cy", locale)]
    assert found == [
        "missing: 'Enter your message.' (from bot/web.py:" + found[0].split("web.py:")[1],
        "only a fuzzy translation: 'Send message' (from bot/web_templates/message-us.html:"
        + found[1].split("message-us.html:")[1],
    ]
    # The page falls back to the English for those two, and says the rest in Welsh.
    render = catalogue.pages("cy", locale).get_template("message-us.html").render
    page = render(values={}, errors={}, organisation="X", html_lang="cy", home="/cy/")
    assert "Send message" in page and "Eich neges" in page
    assert catalogue.gettext_for("cy", locale)("Enter your message.") == "Enter your message."


def test_the_shipped_catalogue_is_complete_and_matches_the_template() -> None:
    assert catalogue.missing("cy") == []
    from babel.messages.pofile import read_po

    with (catalogue.LOCALE / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert template == {m for m, _ in catalogue.source_messages()}, (
        "bot/locale/messages.pot is out of date: run pybabel extract (see the README)"
    )


def test_welsh_gaps_is_empty_for_the_welsh_example() -> None:
    assert welsh_gaps(load(WELSH_COUNCIL).rules) == []


def test_welsh_on_an_english_page_is_marked(triage: Triage) -> None:
    """A person's reply is marked by its words; an automatic one by the language it was made in."""
    from bot.web import Part, reply_parts

    welsh = "Diolch am eich neges. Bydd y tîm yn casglu'r biniau yfory."
    assert reply_parts(welsh, None, triage) == [Part("cy", welsh)]
    assert reply_parts("A crew will come by on Tuesday.", None, triage)[0].lang is None
    assert reply_parts("Helo", "cy", triage) == [Part("cy", "Helo")]
    assert reply_parts("Helo", "cy", triage, "cy") == [Part(None, "Helo")]
