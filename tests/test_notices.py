"""Notices written from the calendar, on every database: drafted notice_before working days
ahead from the templates, in each channel's variant and each language, following approval, and
withdrawn when the closure leaves the rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import notices
from bot.check import load
from bot.store import Store, open_store
from tests.conftest import copy_rules, london

CHRISTMAS = 'from = "2026-12-24"'


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    async with open_store(database) as opened:
        yield opened


def test_the_calendar_calls_for_a_notice_two_working_days_ahead(tmp_path: Path) -> None:
    triage = load(copy_rules(tmp_path))
    found = {n.key: n for n in notices.upcoming(triage, london("2026-12-01 12:00"))}
    closure = found["closure:2026-12-24:2027-01-01"]
    # Two working days before Thursday 24 December: Tuesday 22nd, at opening time (the 23rd
    # has special hours but is a working day).
    assert closure.due_at == london("2026-12-22 09:00")
    assert found["special-hours:2026-12-23"].due_at == london("2026-12-21 09:00")
    # Christmas Day and Boxing Day fall in the closure: no bank-holiday notice of their own.
    assert not [k for k in found if k.startswith("bank-holiday:2026-12-2")]


def test_a_bank_holiday_notice_says_when_we_are_back(tmp_path: Path) -> None:
    triage = load(copy_rules(tmp_path))
    now = london("2027-05-20 12:00")
    [notice] = [n for n in notices.upcoming(triage, now) if n.key == "bank-holiday:2027-05-31"]
    assert notice.due_at == london("2027-05-27 09:00")  # Thursday, two working days before
    text = notices.render(triage, notice, "telegram")
    assert "closed on Monday 31 May for the bank holiday" in text
    assert "back at 9am on Tuesday" in text or "back at 9am Tuesday" in text
    assert "call 999" in text
    assert len(notices.render(triage, notice, "x")) <= 280


def test_welsh_and_english_in_a_bilingual_notice(tmp_path: Path) -> None:
    triage = load(copy_rules(tmp_path, replace={
        'languages = ["en"]': 'languages = ["en", "cy"]\nbilingual = true',
    }))  # fmt: skip
    [notice] = [
        n for n in notices.upcoming(triage, london("2027-05-20 12:00"))
        if n.key == "bank-holiday:2027-05-31"
    ]  # fmt: skip
    text = notices.render(triage, notice, "telegram")
    english, welsh = text.split("\n\n")
    assert "bank holiday" in english and "gŵyl y banc" in welsh and "ffoniwch 999" in welsh


async def test_notices_are_drafted_once_and_withdrawn_with_their_closure(
    tmp_path: Path, store: Store
) -> None:
    triage = load(copy_rules(tmp_path, "\n[announcements]\napproval = true\n"))
    now = london("2026-12-18 12:00")
    assert await notices.sync(triage, store, ["telegram", "x"], now) == 2
    assert await notices.sync(triage, store, ["telegram", "x"], now) == 0  # once
    closure = await store.notice_announcement("closure:2026-12-24:2027-01-01")
    assert closure is not None
    assert (closure.due_at, closure.written_by) == (london("2026-12-22 09:00"), "calendar")
    assert [(p.channel, p.state) for p in closure.posts] == [
        ("telegram", "approval"), ("x", "approval"),
    ]  # fmt: skip
    telegram, x = closure.posts
    assert "closed from" in telegram.text and "Christmas closure" in telegram.text
    assert x.own_text and len(x.text) <= 280

    (tmp_path / "moved").mkdir()
    moved = load(copy_rules(tmp_path / "moved", replace={CHRISTMAS: 'from = "2026-12-25"'}))
    await notices.sync(moved, store, ["telegram", "x"], now)
    withdrawn = await store.announcement(closure.id)
    assert withdrawn is not None and {p.state for p in withdrawn.posts} == {"cancelled"}
    assert await store.notice_announcement("closure:2026-12-25:2027-01-01") is not None


def test_a_text_too_long_for_one_channel_takes_the_short_wording_or_leaves_only_it_out(
    tmp_path: Path,
) -> None:
    # Bilingual, with a longer reason: 520 characters in the full wording, 323 in the short.
    longer = 'reason = "the very very very very very very long closure"'
    triage = load(copy_rules(tmp_path, replace={
        'languages = ["en"]': 'languages = ["en", "cy"]\nbilingual = true',
        'reason = "the Christmas closure"': longer,
    }))  # fmt: skip
    now = london("2026-12-18 12:00")
    [closure] = [n for n in notices.upcoming(triage, now) if n.key.startswith("closure:")]
    assert len(notices.render(triage, closure, "mastodon")) > 500
    announcement = notices.draft(triage, closure, ["telegram", "mastodon", "x"], now)
    assert announcement is not None  # one channel's limit no longer loses the notice everywhere
    texts = dict(announcement.versions)
    assert list(texts) == ["telegram", "mastodon"]  # X's 280 fits neither wording: left out
    assert texts["telegram"] is None and len(announcement.text) > 500  # the full wording
    mastodon = texts["mastodon"]
    assert mastodon is not None and len(mastodon) <= 500
    assert "call 999" in mastodon and "ffoniwch 999" in mastodon
    assert notices.draft(triage, closure, ["x"], now) is None  # nothing fits: no notice
