"""OAuth 2.0 (SASL XOAUTH2) for Microsoft 365 and Google mailboxes, end to end on this machine:
MSAL gets a token from a local stand-in for Microsoft's identity platform (over TLS, as MSAL
insists), Holding Reply logs in to a real Dovecot with it, and Dovecot checks the token with the
stand-in's introspection endpoint (RFC 7662) before it opens the mailbox."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.channels.email import EmailChannel, EmailSettings
from bot.imap import RefusedLogin, xoauth2
from bot.outbox import Sender
from bot.web import State
from tests.dovecot import USER, mail, running
from tests.fakes.oauth import FakeOAuth, certificate
from tests.fakes.receivers import SmtpReceiver

CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
SECRET = "client-secret-not-for-logs"


def test_the_sasl_string_is_the_published_format() -> None:
    # Google's worked example (developers.google.com/gmail/imap/xoauth2-protocol), which
    # Microsoft's documentation gives in the same form.
    sasl = xoauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert base64.b64encode(sasl).decode() == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
        "QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


async def test_microsoft_365_by_msal_client_credentials(
    tmp_path: Path, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))  # MSAL (requests) trusts the stand-in
    async with (
        FakeOAuth(USER, CLIENT_ID, SECRET, tls) as oauth,
        SmtpReceiver(USER, "no password: a token") as smtp,
    ):
        smtp.handler.accept_token = lambda user, token: user == USER and token in oauth.issued
        with running(oauth.introspection_url) as dovecot:
            dovecot.append(mail())
            env = {
                **dovecot.env(),
                "IMAP_PASSWORD": "",
                "IMAP_OAUTH": "microsoft",
                "MS_TENANT_ID": "anytown.onmicrosoft.com",
                "MS_CLIENT_ID": CLIENT_ID,
                "MS_CLIENT_SECRET": SECRET,
                "MS_AUTHORITY": oauth.base,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "SMTP_STARTTLS": "0",
                "SMTP_USERNAME": USER,  # and no SMTP_PASSWORD: replies use the token too
            }
            channel = EmailChannel(state, EmailSettings(env))
            assert await channel.poll() is False
            assert await channel.poll() is False  # MSAL's cache: no second token request
            await Sender(state.store, {"email": channel}, "test", clock=state.clock).once()
            [sent] = smtp.mails
            assert sent.login == USER and sent.message["In-Reply-To"] == "<first@example.net>"
            [item] = await state.store.open_items()
            assert item.sender == "jo@example.net"
            [grant] = oauth.grants
            assert grant["grant_type"] == "client_credentials"
            assert grant["scope"].split() == ["https://outlook.office365.com/.default"]
            assert oauth.introspected[0] == oauth.issued[0]  # Dovecot checked our token

            wrong = EmailChannel(state, EmailSettings({**env, "MS_CLIENT_SECRET": "wrong"}))
            with pytest.raises(RefusedLogin, match="AADSTS7000215"):
                await wrong.poll()


async def test_google_by_refresh_token(tmp_path: Path, state: State) -> None:
    async with FakeOAuth(USER, CLIENT_ID, SECRET) as oauth, SmtpReceiver() as smtp:
        with running(oauth.introspection_url) as dovecot:
            dovecot.append(mail())
            env = {
                **dovecot.env(),
                "IMAP_PASSWORD": "",
                "IMAP_OAUTH": "google",
                "GOOGLE_CLIENT_ID": CLIENT_ID,
                "GOOGLE_CLIENT_SECRET": SECRET,
                "GOOGLE_REFRESH_TOKEN": oauth.refresh_token,
                "GOOGLE_TOKEN_URL": f"{oauth.base}/google/token",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "SMTP_FROM": USER,
            }
            channel = EmailChannel(state, EmailSettings(env))
            assert await channel.poll() is False
            assert await channel.poll() is False
            assert len(oauth.grants) == 1  # the token is kept until near its expiry
            assert oauth.grants[0]["grant_type"] == "refresh_token"
            assert len(await state.store.open_items()) == 1

            bad = {**env, "GOOGLE_REFRESH_TOKEN": "1//revoked"}
            with pytest.raises(RefusedLogin, match="Google refused the refresh token"):
                await EmailChannel(state, EmailSettings(bad)).poll()
