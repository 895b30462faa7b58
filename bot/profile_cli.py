"""`python -m bot profile sync|show`: set each channel's profile text from the bio template, or
print it. `sync` sets every channel whose credentials are in the environment (and that rules.toml
does not switch off), each with a session of its own: Telegram's texts, Bluesky's profile
description (one login, as the app password allows), Mastodon's note. Errors are raised as
HoldingReplyError; bot.cli turns them into messages and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.check import load, rules_path
from bot.errors import HoldingReplyError
from bot.profile import bluesky_text, mastodon_text, show, sync_telegram
from bot.triage import Triage


class ProfileError(HoldingReplyError):
    """No profile could be set, or one platform refused."""


async def _telegram(env: Mapping[str, str], triage: Triage, now: datetime) -> str:
    from telegram import Bot

    from bot.channels.telegram import TelegramSettings

    settings = TelegramSettings({**env, "TELEGRAM_MODE": "polling"})
    async with Bot(settings.token, base_url=settings.api_url) as bot:
        done = await sync_telegram(bot, triage, now)
    return f"description and short description set ({', '.join(done)})"


async def _bluesky(env: Mapping[str, str], triage: Triage, now: datetime) -> str:
    from atproto_client import AsyncClient

    from bot.channels.bluesky import BlueskySettings
    from bot.channels.bluesky_account import set_description

    settings = BlueskySettings(env)
    client = AsyncClient(base_url=settings.service_url)
    try:
        await client.login(settings.handle, settings.password, fetch_bsky_profile=False)
        changed = await set_description(client, str(client._session.did), bluesky_text(triage, now))
    except Exception as exc:
        raise ProfileError(settings.redact(f"{type(exc).__name__}: {exc}")) from None
    finally:
        await client.request.close()
    return "profile description set" if changed else "profile description already current"


async def _mastodon(env: Mapping[str, str], triage: Triage, now: datetime) -> str:
    from mastodon import Mastodon

    from bot.channels.mastodon import REQUEST_SECONDS, MastodonSettings, update_note

    settings = MastodonSettings(env)
    api = Mastodon(
        access_token=settings.token,
        api_base_url=settings.base_url,
        request_timeout=REQUEST_SECONDS,
        version_check_mode="none",
        mastodon_version="4.0.0",
        user_agent="HoldingReply",
    )
    try:
        changed = await asyncio.to_thread(update_note, api, mastodon_text(triage, now))
    except Exception as exc:
        raise ProfileError(settings.redact(" ".join(map(str, exc.args)) or str(exc))) from None
    finally:
        api.session.close()
    return "profile note set" if changed else "profile note already current"


Sync = Callable[[Mapping[str, str], Triage, datetime], Any]
# Each channel that can set its profile, and the environment variables that switch it on.
PLATFORMS: dict[str, tuple[tuple[str, ...], Sync]] = {
    "telegram": (("TELEGRAM_BOT_TOKEN",), _telegram),
    "bluesky": (("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"), _bluesky),
    "mastodon": (("MASTODON_ACCESS_TOKEN", "MASTODON_API_BASE_URL"), _mastodon),
}


async def sync(triage: Triage, env: Mapping[str, str], now: datetime) -> list[str]:
    """Set every configured channel's profile; return a line per channel. Raises ProfileError
    (after trying every channel) if none is configured or any failed."""
    lines, failed = [], []
    for name, (variables, run) in PLATFORMS.items():
        if not any(env.get(v) for v in variables) or not triage.rules.channel(name).enabled:
            continue
        try:
            lines.append(f"{name.title()}: {await run(env, triage, now)}.")
        except HoldingReplyError as exc:
            failed.append(f"{name.title()}: not set: {exc}")
        except Exception as exc:  # the platform's own error, in its words
            failed.append(f"{name.title()}: not set: {type(exc).__name__}: {exc}")
    if not lines and not failed:
        raise ProfileError(
            "No channel that can set its profile is set up here (TELEGRAM_BOT_TOKEN, BLUESKY_* "
            "or MASTODON_* in the environment). `python -m bot profile show` prints the texts "
            "to paste."
        )
    if failed:
        raise ProfileError("\n".join([*lines, *failed]))
    return [*lines, "Other channels: `python -m bot profile show` prints the text to paste."]


def cmd_profile(args: argparse.Namespace) -> int:
    triage = load(rules_path(args.rules))
    now = datetime.now(UTC)
    if args.action == "show":
        print("\n".join(show(triage, now)))
        return 0
    print("\n".join(asyncio.run(sync(triage, os.environ, now))))
    return 0


def add_profile_parser(sub: Any, rules_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    s = sub.add_parser("profile", help="each channel's profile text, from the bio template")
    actions = s.add_subparsers(dest="action", required=True)
    for name, text in (
        ("sync", "set the profile texts of Telegram, Bluesky and Mastodon, where set up"),
        ("show", "print every channel's text, and where to paste it for X, Facebook and others"),
    ):
        rules_arg(actions.add_parser(name, help=text))
    s.set_defaults(func=cmd_profile)
