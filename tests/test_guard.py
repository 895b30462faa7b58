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
