"""STOP and START as every channel reads them (bot.channels.optout); each channel's own tests
check that a command turns its automatic replies off and on."""

from __future__ import annotations

import pytest

from bot.channels.optout import command
from bot.store import Store
from tests.conftest import eventually


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "stop"),
        ("stop", "stop"),
        ("Stop.", "stop"),
        ("START!", "start"),
        (" @AnytownCouncil STOP ", "stop"),
        ("@AnytownCouncil start", "start"),
        ("@council@social.example.gov.uk Stop", "stop"),  # Mastodon
        ("@anytown.gov.uk stop.", "stop"),  # Bluesky
        ("@anytown.gov.uk @jo.bsky.social START", "start"),
        ("please stop", None),
        ("STOP the roadworks", None),
        ("stop the roadworks", None),
        ("@anytown.gov.uk stop the roadworks", None),
        ("stopped", None),
        ("STOP STOP", None),
        ("STOP @AnytownCouncil", None),  # the names come first, or not at all
        ("", None),
        ("@AnytownCouncil", None),
    ],
)
def test_a_command_is_the_whole_message_after_the_names(text: str, expected: str | None) -> None:
    assert command(text) == expected


async def opted_out(store: Store, channel: str, sender: str) -> bool:
    """Whether the store holds automatic replies off for this person, as `export` shows it."""
    data = await store.export(channel, sender)
    return data.state is not None and data.state.opted_out


async def until_opted_out(store: Store, channel: str, sender: str, expected: bool) -> None:
    """Wait until the person's opt-out is `expected` (a poll has read the command)."""

    async def reached() -> bool:
        return await opted_out(store, channel, sender) == expected

    await eventually(reached)
