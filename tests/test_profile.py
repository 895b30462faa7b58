"""Profiles from the bio template: `profile sync` sets Telegram's texts per language through the
real python-telegram-bot against the fake Bot API; `profile show` says what to paste where."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.check import load
from bot.profile import telegram_texts
from tests.conftest import copy_rules, london
from tests.fakes.telegram import FakeTelegram
from tests.test_cli import run

BILINGUAL = {'languages = ["en"]': 'languages = ["en", "cy"]'}


async def test_profile_sync_sets_telegrams_texts_in_each_language(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path, replace=BILINGUAL)
    async with FakeTelegram() as fake:
        env = {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.base_url}
        result = await asyncio.to_thread(run, "profile", "sync", "--rules", str(rules), env=env)
        assert result.returncode == 0, result.stderr
        assert "default, en, cy" in result.stdout
        assert set(fake.descriptions) == set(fake.short_descriptions) == {"", "en", "cy"}
        assert fake.descriptions["en"].startswith("Anytown Borough Council. Staffed Mon")
        assert "Argyfwng: 999" in fake.descriptions["cy"]
        assert fake.descriptions[""] == fake.descriptions["en"]
        assert all(len(t) <= 120 for t in fake.short_descriptions.values())


def test_the_texts_follow_the_rules(tmp_path: Path) -> None:
    before = telegram_texts(load(copy_rules(tmp_path)), london("2026-11-02 12:00"))
    (tmp_path / "b").mkdir()
    later = copy_rules(tmp_path / "b", replace={'monday = "09:00-17:00"': 'monday = "10:00-17:00"'})
    after = telegram_texts(load(later), london("2026-11-02 12:00"))
    assert before["en"] != after["en"]


def test_profile_sync_without_telegram_says_what_to_do() -> None:
    result = run("profile", "sync", env={"TELEGRAM_BOT_TOKEN": ""})
    assert result.returncode == 1 and "profile show" in result.stderr
    assert "Traceback" not in result.stderr


def test_profile_show_prints_what_to_paste_where() -> None:
    result = run("profile", "show")
    assert result.returncode == 0, result.stderr
    assert "x: paste into x.com → Profile → Edit profile → Bio" in result.stdout
    assert "Emergencies: 999." in result.stdout
    assert "telegram (default): set by `profile sync`" in result.stdout
