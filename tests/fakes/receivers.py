"""Local stand-ins for where alerts go, on loopback ports the OS picks.

WebhookReceiver: Slack and Microsoft Teams incoming webhooks (POST /slack/<name>, /teams/<name>)
that record each JSON body and fail on demand as the services do (429 with Retry-After, 5xx,
404 for a deleted webhook), or answer slowly. SmtpReceiver: an aiosmtpd SMTP server on the
test's event loop that records each message and can refuse recipients.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any, Self

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session


@dataclass
class Post:
    path: str
    body: Any
    status: int


class WebhookReceiver:
    """Answers 200 "ok" (as Slack does; Teams answers "1") unless told to fail."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self._failures: deque[tuple[int, str | None, str]] = deque()
        self._slow: dict[str, float] = {}  # webhook name -> seconds before it answers
        self._answer = asyncio.Event()
        self.waiting: dict[str, int] = {}  # requests held now, by webhook name
        self.most_waiting: dict[str, int] = {}  # the most held at once
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/{kind}/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._answer.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, kind: str, name: str) -> str:
        """A webhook URL with a secret-looking path, as the real ones have."""
        return f"http://127.0.0.1:{self.port}/{kind}/{name}-T0SECRET-B0SECRET-xoxsecret"

    def answer_after(self, name: str, seconds: float) -> None:
        """Webhook `name` answers each post only after `seconds` (a slow or hung service), or
        when answer_now() is called."""
        self._slow[name] = seconds

    def answer_now(self) -> None:
        self._answer.set()

    async def wait_for_waiting(self, name: str, count: int, seconds: float = 10.0) -> None:
        """Until `count` posts to `name` are being held."""
        async with asyncio.timeout(seconds):
            while self.waiting.get(name, 0) < count:
                await asyncio.sleep(0.01)

    def fail_next(self, status: int, retry_after: str | None = None, body: str = "") -> None:
        self._failures.append((status, retry_after, body))

    def received(self, kind: str) -> list[Any]:
        """Bodies accepted on /<kind>/..., in order."""
        return [p.body for p in self.posts if p.path.startswith(f"/{kind}/") and p.status == 200]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = request.match_info["name"].partition("-")[0]
        if name in self._slow:
            self.waiting[name] = self.waiting.get(name, 0) + 1
            self.most_waiting[name] = max(self.most_waiting.get(name, 0), self.waiting[name])
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._slow[name]):
                        await self._answer.wait()
            finally:
                self.waiting[name] -= 1
        if self._failures:
            status, retry_after, text = self._failures.popleft()
            self.posts.append(Post(request.path, body, status))
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.Response(status=status, text=text or "error", headers=headers)
        self.posts.append(Post(request.path, body, 200))
        return web.Response(text="ok" if request.match_info["kind"] == "slack" else "1")


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    login: str | None


@dataclass
class _Handler:
    mails: list[Mail] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    refuse_once: dict[str, str] = field(default_factory=dict)  # the same, for the next only
    # (user, token) -> whether an OAuth 2.0 token is good, for AUTH XOAUTH2; None: refused
    accept_token: Callable[[str, str], bool] | None = None

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """SASL XOAUTH2 as Microsoft 365 and Gmail take it: the initial response is
        base64("user=" user ^A "auth=Bearer " token ^A ^A)."""
        try:
            user, auth = base64.b64decode(args[1]).decode().split("\x01")[:2]
        except (IndexError, ValueError):
            return AuthResult(success=False)
        user, token = user.removeprefix("user="), auth.removeprefix("auth=Bearer ")
        ok = self.accept_token is not None and self.accept_token(user, token)
        return AuthResult(success=ok, auth_data=user.encode() if ok else None)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse_once:
            return self.refuse_once.pop(address)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        data = getattr(session, "auth_data", None)
        login = data.decode() if isinstance(data, bytes) else None
        self.mails.append(
            Mail(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                message_from_bytes(content),
                login,
            )
        )
        return "250 Message accepted"


class SmtpReceiver:
    """An SMTP server (no TLS) on 127.0.0.1; with `password`, it requires AUTH LOGIN/PLAIN."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self.handler = _Handler()
        self.username = username
        self.password = password
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def mails(self) -> list[Mail]:
        return self.handler.mails

    def refuse(self, address: str, reply: str, once: bool = False) -> None:
        (self.handler.refuse_once if once else self.handler.refuse)[address] = reply

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            data.login == (self.username or "").encode()
            and data.password == (self.password or "").encode()
        )
        return AuthResult(success=ok, auth_data=data.login if ok else None)

    def _protocol(self) -> SMTP:
        if self.password is None:
            return SMTP(self.handler, hostname="localhost")
        with warnings.catch_warnings():  # AUTH without TLS: fine on loopback, in a test
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(
                self.handler,
                hostname="localhost",
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=False,
            )

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
