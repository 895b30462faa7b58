"""The suite itself: a test that tries to leave this machine fails at once, loudly."""

from __future__ import annotations

import socket
import time

import pytest


def test_a_connection_to_the_outside_world_fails_at_once() -> None:
    began = time.monotonic()
    with pytest.raises(OSError, match="tests may only use loopback"), socket.socket() as s:
        s.connect(("192.0.2.1", 443))  # TEST-NET-1: would hang until a timeout if tried
    assert time.monotonic() - began < 1


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


async def test_the_real_telegram_client_cannot_reach_telegram_from_a_test() -> None:
    """python-telegram-bot left at its default address fails fast instead of hanging."""
    import telegram
    from telegram.error import NetworkError

    began = time.monotonic()
    bot = telegram.Bot("123456:not-a-real-token")  # https://api.telegram.org
    with pytest.raises(NetworkError, match="loopback"):
        await bot.get_me()
    assert time.monotonic() - began < 5


async def test_the_real_x_client_cannot_reach_x_from_a_test() -> None:
    import aiohttp

    from bot.channels import X_CREDENTIALS
    from bot.xapi import open_client

    env = {name: "not-a-real-secret" for name in X_CREDENTIALS}
    began = time.monotonic()
    async with open_client(env) as client:  # https://api.twitter.com
        with pytest.raises(aiohttp.ClientError, match="loopback"):
            await client.get_me()
    assert time.monotonic() - began < 5
