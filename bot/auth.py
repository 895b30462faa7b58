"""Who may use the inbox: passwords, sessions, CSRF tokens and the limit on guessing.

Passwords are hashed with scrypt (memory-hard, in the standard library): about 16 MB and a few
tens of milliseconds per guess, with a random salt; the stored text carries its own parameters,
so they can be raised later without breaking old hashes. Sessions are random tokens in an
HttpOnly cookie; only their SHA-256 is stored, so a copy of the database logs nobody in. Each
session has its own CSRF token, which every form must send back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.errors import HoldingReplyError
from bot.models import User
from bot.store import Store

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MB: OWASP's minimum for scrypt
MIN_PASSWORD = 12
SESSION_LENGTH = timedelta(hours=12)  # a working day, then log in again
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5  # per username, and per address, in the window


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 2**20
    )
    encode = base64.b64encode
    return (
        f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"
    )


def check_password(password: str, stored: str) -> bool:
    """Constant time in the comparison; False for anything malformed."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 2**20,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


def check_new_password(password: str, username: str) -> None:
    """What NCSC advises: length over complexity rules; refuse only the obviously weak."""
    if len(password) < MIN_PASSWORD:
        raise HoldingReplyError(
            f"The password is {len(password)} characters; use at least {MIN_PASSWORD}. "
            "Three random words make a good one."
        )
    if username.lower() in password.lower():
        raise HoldingReplyError("The password must not contain the username.")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # goes in the cookie, and nowhere else
    csrf: str
    user: User


class TooManyAttempts(HoldingReplyError):
    """Too many failed logins for this username or address: wait, then try again."""


async def log_in(
    store: Store, username: str, password: str, address: str, now: datetime
) -> Session | None:
    """A new session, or None for a wrong username or password (which one is not said).

    Raises TooManyAttempts after MAX_FAILURES failures in FAILURE_WINDOW for the username or the
    address, counted in the database so that every process sees them.
    """
    keys = (f"user:{username.lower()}", f"address:{address}")
    since = now - FAILURE_WINDOW
    for key in keys:
        if await store.login_failures(key, since) >= MAX_FAILURES:
            raise TooManyAttempts(
                "Too many failed attempts. Wait 15 minutes, or ask an admin to reset your password."
            )
    found = await store.user(username)
    # A missing user still costs one scrypt, so timing does not say which usernames exist.
    stored = found[1] if found else _DUMMY
    ok = check_password(password, stored) and found is not None and found[0].active
    if not ok or found is None:
        for key in keys:
            await store.record_login_failure(key, now)
        return None
    await store.clear_login_failures(keys[0], since)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await store.start_session(token_hash(token), found[0].id, csrf, now, now + SESSION_LENGTH)
    return Session(token, csrf, found[0])


async def session_for(store: Store, token: str | None, now: datetime) -> Session | None:
    if not token:
        return None
    found = await store.session(token_hash(token), now)
    return None if found is None else Session(token, found[1], found[0])


def csrf_ok(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


# The hash of a random password nobody knows, made once and written here: computing one at
# import would cost 16 MB of peak memory in every process, whether anyone logs in or not.
_DUMMY = (
    "scrypt$16384$8$1$t2kOopxpqebnnR2XPe0Jqw==$qyUBQiuL2y+zQZTHgr7qWkiv+vutk/HXe5CG27BjhF1ffep5dKLvC"
    "GAZFs3KJLV+9fUEBxTBWw0d+4DwUXQPAA=="
)
