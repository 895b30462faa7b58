"""The mailbox, read over IMAP with the standard library's imaplib (on a worker thread), and the
OAuth 2.0 tokens Microsoft 365 and Google Workspace require instead of a password.

Why imaplib rather than aioimaplib: it ships with Python and has done for decades, so no
dependency to track; a poll is a handful of short commands, one connection at a time, which a
thread does as well as an event loop; and its XOAUTH2 support is one documented call
(authenticate). aioimaplib is kept up, but by one person, and adds nothing a poll needs.

The mailbox is opened read-only (EXAMINE) and mail is fetched with BODY.PEEK, so reading it never
changes a flag: the shared mailbox looks to the team exactly as it did, unread mail still bold.
Where we are is kept in the database instead (bot.channels.email).
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.errors import HoldingReplyError

TIMEOUT = 30.0  # seconds for any one IMAP command or token request
MAX_FULL = 1_048_576  # a mail up to 1 MB is fetched whole; a bigger one, headers and 256 KB
PARTIAL = 262_144
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
_FETCHED = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')


class MailboxError(HoldingReplyError):
    """The mailbox could not be read: unreachable, refused the login, or answered oddly."""


class RefusedLogin(MailboxError):
    """The server refused the credentials: a setting to fix, not a network blip."""


class TokenSource(Protocol):
    def token(self) -> str:
        """An OAuth 2.0 access token for the mailbox (fetched, or cached until near expiry)."""
        ...


class MicrosoftToken:
    """Microsoft 365: an app-only token by MSAL's client-credentials flow, for the application
    that an Exchange administrator gave access to the mailbox. MSAL caches it until near
    expiry. msal is imported here, only when IMAP_OAUTH=microsoft."""

    def __init__(self, tenant: str, client_id: str, secret: str, authority: str) -> None:
        self.tenant, self.client_id, self._secret = tenant, client_id, secret
        self.authority = authority.rstrip("/")
        self._app: Any = None  # made at the first token: MSAL asks the authority at once
        self._lock = threading.Lock()

    def _application(self) -> Any:
        import msal  # type: ignore[import-untyped]

        return msal.ConfidentialClientApplication(
            self.client_id,
            client_credential=self._secret,
            authority=f"{self.authority}/{self.tenant}",
            # Only login.microsoftonline.com and its national clouds are known to MSAL; any
            # other authority (a test's) is used as given rather than looked up.
            instance_discovery=self.authority == MICROSOFT_AUTHORITY,
            timeout=TIMEOUT,
        )

    def token(self) -> str:
        with self._lock:
            try:
                if self._app is None:
                    self._app = self._application()
                result = self._app.acquire_token_for_client(scopes=[MICROSOFT_SCOPE])
            except Exception as exc:  # requests' errors, MSAL's ValueError on a bad authority
                raise MailboxError(f"Microsoft sign-in failed: {type(exc).__name__}") from None
        if "access_token" not in result:
            why = result.get("error_description") or result.get("error") or "no token"
            raise RefusedLogin(f"Microsoft refused the app's credentials: {str(why)[:300]}")
        return str(result["access_token"])


class GoogleToken:
    """Google Workspace: a token from a refresh token (OAuth 2.0 section 6), which the mailbox's
    owner granted once for the https://mail.google.com/ scope. Cached until a minute before it
    expires."""

    def __init__(self, client_id: str, secret: str, refresh_token: str, url: str) -> None:
        import urllib.parse

        self._form = urllib.parse.urlencode(
            {
                "client_id": client_id,
                "client_secret": secret,
                "refresh_token": refresh_token,
                "grant_type": "refresh_token",
            }
        ).encode()
        self._url = url
        self._cached: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._cached is not None and self._cached[1] > time.monotonic():
                return self._cached[0]
            import urllib.error
            import urllib.request  # here: only Google mailboxes need it

            request = urllib.request.Request(self._url, data=self._form, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    body: dict[str, Any] = json.loads(response.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if 400 <= exc.code < 500:
                    raise RefusedLogin(f"Google refused the refresh token: {detail}") from None
                raise MailboxError(f"Google's token service answered {exc.code}") from None
            except (OSError, ValueError) as exc:
                raise MailboxError(f"Google's token service: {type(exc).__name__}") from None
            token = str(body.get("access_token") or "")
            if not token:
                raise RefusedLogin("Google's token service gave no access token")
            life = float(body.get("expires_in") or 3600)
            self._cached = (token, time.monotonic() + max(0.0, life - 60))
            return token


def xoauth2(user: str, token: str) -> bytes:
    """The SASL XOAUTH2 initial response (Google's and Microsoft's published format):
    "user=" user ^A "auth=Bearer " token ^A ^A. imaplib base64-encodes it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str
    port: int
    tls: bool
    username: str
    password: str
    folder: str
    tokens: TokenSource | None  # OAuth 2.0 instead of the password


@dataclass(frozen=True, slots=True)
class Fetched:
    uid: int
    raw: bytes  # the whole mail, or its headers and first 256 KB when bigger than 1 MB
    size: int  # the whole mail's size
    received_at: datetime | None  # INTERNALDATE: when the mailbox got it


class Mailbox:
    """One IMAP connection. Every method blocks: call them with asyncio.to_thread, one at a
    time."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._client: imaplib.IMAP4 | None = None

    def open(self) -> tuple[int, int]:
        """Connect, log in, and open the folder read-only: (UIDVALIDITY, UIDNEXT)."""
        s = self.settings
        try:
            if s.tls:
                context = ssl.create_default_context()
                self._client = imaplib.IMAP4_SSL(
                    s.host, s.port, ssl_context=context, timeout=TIMEOUT
                )
            else:
                self._client = imaplib.IMAP4(s.host, s.port, timeout=TIMEOUT)
        except (OSError, imaplib.IMAP4.error) as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise MailboxError(f"cannot reach {s.host}:{s.port}: {why}") from None
        client = self._client
        try:
            if s.tokens is not None:
                sasl = xoauth2(s.username, s.tokens.token())
                client.authenticate("XOAUTH2", lambda _challenge: sasl)
            else:
                client.login(s.username, s.password)
        except imaplib.IMAP4.abort as exc:
            raise MailboxError(f"the connection dropped while logging in: {exc}") from None
        except imaplib.IMAP4.error as exc:
            self.close()
            how = "the OAuth 2.0 token" if s.tokens is not None else "IMAP_PASSWORD"
            raise RefusedLogin(f"{s.host} refused IMAP_USERNAME and {how}: {_text(exc)}") from None
        status, data = self._command(client.select, _quote(s.folder), True)
        if status != "OK":
            raise MailboxError(f"the folder {s.folder!r} cannot be opened: {_text(data)}")
        validity = self._number(client.response("UIDVALIDITY")[1])
        following = self._number(client.response("UIDNEXT")[1])
        if validity is None:
            raise MailboxError("the server gave no UIDVALIDITY for the folder")
        return validity, following or 0

    def after(self, uid: int) -> list[int]:
        """The UIDs of mail newer than `uid`, oldest first."""
        data = self._uid("SEARCH", "UID", f"{uid + 1}:*")
        return sorted(u for u in _numbers(data) if u > uid)  # "n:*" includes the last one

    def since(self, day: datetime) -> list[int]:
        """The UIDs of mail the mailbox received since the start of `day`, oldest first."""
        return sorted(_numbers(self._uid("SEARCH", "SINCE", day.strftime("%d-%b-%Y"))))

    def fetch(self, uid: int) -> Fetched | None:
        """One mail, without marking it read; None if it has gone (deleted meanwhile)."""
        head = self._uid("FETCH", str(uid), "(UID RFC822.SIZE INTERNALDATE)")
        size_match = _SIZE.search(_flat(head))
        if size_match is None:
            return None
        size = int(size_match.group(1))
        date_match = _DATE.search(_flat(head))
        received = _internaldate(date_match.group(1)) if date_match else None
        parts = (
            "BODY.PEEK[]" if size <= MAX_FULL else f"BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.{PARTIAL}>"
        )
        data = self._uid("FETCH", str(uid), f"(UID {parts})")
        chunks = [d[1] for d in data if isinstance(d, tuple) and len(d) == 2]
        if not chunks:
            return None
        raw = b"".join(bytes(c) for c in chunks)
        if size > MAX_FULL:  # the team finds the rest (the attachments) in the mailbox
            raw += f"\r\n\r\n[cut at {PARTIAL // 1024} KB of {size // 1024} KB]\r\n".encode()
        return Fetched(uid, raw, size, received)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()

    def _uid(self, command: str, *args: str) -> list[Any]:
        client = self._client
        if client is None:
            raise MailboxError("the mailbox is not open")
        status, data = self._command(client.uid, command, *args)
        if status != "OK":
            raise MailboxError(f"UID {command} failed: {_text(data)}")
        return list(data)

    def _command(self, call: Any, *args: Any) -> tuple[str, list[Any]]:
        try:
            status, data = call(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise MailboxError(f"IMAP: {type(exc).__name__}: {exc}") from None
        return str(status), list(data or [])

    @staticmethod
    def _number(data: list[Any] | None) -> int | None:
        found = _numbers(data or [])
        return found[0] if found else None


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _numbers(data: list[Any]) -> list[int]:
    out: list[int] = []
    for item in data:
        if isinstance(item, bytes):
            out.extend(int(n) for n in item.split() if n.isdigit())
    return out


def _flat(data: list[Any]) -> bytes:
    return b" ".join(d[0] if isinstance(d, tuple) else d for d in data if d)


def _internaldate(value: bytes) -> datetime | None:
    parsed = imaplib.Internaldate2tuple(b'INTERNALDATE "' + value + b'"')
    return None if parsed is None else datetime.fromtimestamp(time.mktime(parsed), UTC)


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def settings_from(env: Mapping[str, str]) -> ImapSettings:
    """IMAP_* (and the OAuth 2.0 variables) from the environment; HoldingReplyError names
    every problem at once."""
    problems: list[str] = []
    host = (env.get("IMAP_HOST") or "").strip()
    tls_raw = (env.get("IMAP_TLS") or "1").strip().lower()
    tls = tls_raw not in ("0", "false", "no", "off")
    if tls_raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        problems.append(f"IMAP_TLS has value {tls_raw!r}; expected 1 (TLS) or 0 (plain)")
    port_raw = (env.get("IMAP_PORT") or ("993" if tls else "143")).strip()
    port = int(port_raw) if port_raw.isdigit() else 0
    if not 0 < port < 65536:
        problems.append(f"IMAP_PORT has value {port_raw!r}; expected a port such as 993")
    username = (env.get("IMAP_USERNAME") or "").strip()
    password = env.get("IMAP_PASSWORD") or ""
    folder = (env.get("IMAP_FOLDER") or "INBOX").strip()
    if not host:
        problems.append("IMAP_HOST is not set")
    if not username:
        problems.append("IMAP_USERNAME is not set (the mailbox's address, as it logs in)")
    oauth = (env.get("IMAP_OAUTH") or "").strip().lower()
    tokens: TokenSource | None = None
    if oauth == "microsoft":
        needed = ("MS_TENANT_ID", "MS_CLIENT_ID", "MS_CLIENT_SECRET")
        missing = [n for n in needed if not (env.get(n) or "").strip()]
        if missing:
            problems.append(f"IMAP_OAUTH=microsoft needs {', '.join(missing)}")
        else:
            authority = (env.get("MS_AUTHORITY") or MICROSOFT_AUTHORITY).strip()
            tokens = MicrosoftToken(
                env["MS_TENANT_ID"].strip(),
                env["MS_CLIENT_ID"].strip(),
                env["MS_CLIENT_SECRET"].strip(),
                authority,
            )
    elif oauth == "google":
        needed = ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_REFRESH_TOKEN")
        missing = [n for n in needed if not (env.get(n) or "").strip()]
        if missing:
            problems.append(f"IMAP_OAUTH=google needs {', '.join(missing)}")
        else:
            tokens = GoogleToken(
                env["GOOGLE_CLIENT_ID"].strip(),
                env["GOOGLE_CLIENT_SECRET"].strip(),
                env["GOOGLE_REFRESH_TOKEN"].strip(),
                (env.get("GOOGLE_TOKEN_URL") or GOOGLE_TOKEN_URL).strip(),
            )
    elif oauth:
        problems.append(f"IMAP_OAUTH has value {oauth!r}; expected microsoft, google or nothing")
    elif not password:
        problems.append("IMAP_PASSWORD is not set (or set IMAP_OAUTH for Microsoft 365 or Google)")
    if problems:
        raise HoldingReplyError("Email is not set up: " + "; ".join(problems) + ".")
    return ImapSettings(host, port, tls, username, password, folder, tokens)
