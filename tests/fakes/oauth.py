"""Local stand-ins for the OAuth 2.0 side of Microsoft 365 and Google mailboxes.

One aiohttp server plays three parts: Microsoft's identity platform as MSAL talks to it (the
tenant's OpenID configuration, and the token endpoint's client-credentials grant), Google's token
endpoint (the refresh-token grant), and the RFC 7662 token introspection endpoint that Dovecot's
oauth2 passdb asks whose a token is. MSAL only talks to https authorities, so the server can run
with TLS, with a certificate the test makes with openssl.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
from pathlib import Path
from typing import Any, Self

from aiohttp import web


def certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "oauth-cert.pem", folder / "oauth-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class FakeOAuth:
    def __init__(
        self, user: str, client_id: str, client_secret: str, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.user = user
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = "1//refresh-" + secrets.token_hex(8)
        self.tls = tls
        self.issued: list[str] = []  # every access token given out
        self.grants: list[dict[str, str]] = []  # every token request's form
        self.introspected: list[str] = []
        self.port = 0
        self.plain_port = 0
        self._runner: web.AppRunner | None = None

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.plain_port}/introspect"

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._microsoft_token)
        app.router.add_post("/google/token", self._google_token)
        app.router.add_post("/introspect", self._introspect)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context).start()
        self.port = self._runner.addresses[0][1]
        # Dovecot introspects over plain HTTP here (it trusts only the system's certificates).
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.plain_port = self._runner.addresses[1][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _issue(self) -> dict[str, Any]:
        token = "eyJ0eXAi." + secrets.token_urlsafe(24)
        self.issued.append(token)
        return {"token_type": "Bearer", "expires_in": 3599, "access_token": token}

    async def _openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        root = f"{self.base}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            }
        )

    async def _microsoft_token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.grants.append(form)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                status=401,
            )
        return web.json_response(self._issue())

    async def _google_token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.grants.append(form)
        if form.get("refresh_token") != self.refresh_token:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Bad Request"}, status=400
            )
        return web.json_response(self._issue())

    async def _introspect(self, request: web.Request) -> web.Response:
        token = str((await request.post()).get("token", ""))
        self.introspected.append(token)
        if token in self.issued:
            return web.json_response({"active": True, "username": self.user})
        return web.json_response({"active": False})
