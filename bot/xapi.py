"""Build tweepy's AsyncClient for the X channel: credentials from the environment, one shared
aiohttp session, and an optional X_API_URL that sends every request to a proxy or a local fake.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import hdrs
from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType
from tweepy.asynchronous import AsyncClient  # type: ignore[import-untyped]
from yarl import URL

from bot.channels import X_CREDENTIALS
from bot.errors import HoldingReplyError

__all__ = [
    "CREDENTIAL_VARIABLES",
    "AsyncClient",
    "XConfig",
    "XConfigError",
    "make_client",
    "make_session",
    "open_client",
    "rewrite_origin",
]

CREDENTIAL_VARIABLES = X_CREDENTIALS  # the environment variable for each credential
API_URL_VARIABLE = "X_API_URL"

# tweepy logs every request's headers at DEBUG, Authorization included.
_TWEEPY_LOGGER = "tweepy.asynchronous.client"
# The value is a repr: an OAuth header is single-quoted and holds double quotes.
_AUTHORIZATION = re.compile(r"""(['"]Authorization['"]:\s*)(['"]).*?\2""", re.IGNORECASE)


class XConfigError(HoldingReplyError):
    """The X credentials or X_API_URL in the environment are missing or malformed."""


@dataclass(frozen=True, slots=True)
class XConfig:
    """What the X channel needs from the environment. Secrets never appear in the repr."""

    bearer_token: str = field(repr=False)
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    access_token_secret: str = field(repr=False)
    api_url: URL | None = None  # replaces the scheme, host and port of every request

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> XConfig:
        """Read the X_* variables; raise XConfigError naming every missing one at once."""
        values = {name: (env.get(name) or "").strip() for name in CREDENTIAL_VARIABLES}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise XConfigError(
                f"X channel: missing environment variable{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}. Set all of {', '.join(CREDENTIAL_VARIABLES)} "
                "from the app's keys and tokens page in the X developer portal."
            )
        return cls(
            bearer_token=values["X_BEARER_TOKEN"],
            api_key=values["X_API_KEY"],
            api_secret=values["X_API_SECRET"],
            access_token=values["X_ACCESS_TOKEN"],
            access_token_secret=values["X_ACCESS_TOKEN_SECRET"],
            api_url=_parse_api_url(env.get(API_URL_VARIABLE)),
        )


def _parse_api_url(raw: str | None) -> URL | None:
    text = (raw or "").strip()
    if not text:
        return None
    expected = "Expected http(s)://host[:port] with no path, e.g. http://127.0.0.1:8082."
    try:
        url = URL(text)
    except ValueError:
        raise XConfigError(f"{API_URL_VARIABLE} has value {text!r}. {expected}") from None
    if url.user is not None or url.password is not None:
        # Not echoed: the value itself holds a secret.
        raise XConfigError(f"{API_URL_VARIABLE} must not carry a user name or password.")
    if (
        url.scheme not in ("http", "https")
        or not url.host
        or url.path not in ("", "/")
        or url.query_string
        or url.fragment
    ):
        raise XConfigError(f"{API_URL_VARIABLE} has value {text!r}. {expected}")
    return url


def rewrite_origin(origin: URL) -> ClientMiddlewareType:
    """An aiohttp client middleware sending each request to `origin`, keeping path and query.

    tweepy signs OAuth 1.0a requests over https://api.twitter.com/... before the session sees
    them, so the signature still names the real host; a proxy must forward, not re-sign.
    """

    async def middleware(
        request: aiohttp.ClientRequest, handler: ClientHandlerType
    ) -> aiohttp.ClientResponse:
        url = request.url.with_scheme(origin.scheme).with_host(origin.raw_host or "")
        request.url = url.with_port(origin.explicit_port)
        # The Host header was built from the original URL when the request was made.
        request.headers[hdrs.HOST] = request.url.host_port_subcomponent or ""
        return await handler(request)

    return middleware


def make_session(env: Mapping[str, str]) -> aiohttp.ClientSession:
    """The one session tweepy should use, rewriting to X_API_URL if set.

    Call inside the running event loop; the caller owns the session and closes it.
    """
    config = XConfig.from_env(env)
    middlewares = (rewrite_origin(config.api_url),) if config.api_url is not None else ()
    return aiohttp.ClientSession(middlewares=middlewares)


def make_client(env: Mapping[str, str], session: aiohttp.ClientSession) -> AsyncClient:
    """A tweepy AsyncClient sending every request through `session`, made by make_session(env).

    Without a session tweepy would open and close a new one for every request, and a session
    from elsewhere would lack the X_API_URL rewrite.
    """
    config = XConfig.from_env(env)
    _redact_tweepy_debug_log()
    client = AsyncClient(
        bearer_token=config.bearer_token,
        consumer_key=config.api_key,
        consumer_secret=config.api_secret,
        access_token=config.access_token,
        access_token_secret=config.access_token_secret,
    )
    client.session = session
    return client


@asynccontextmanager
async def open_client(env: Mapping[str, str]) -> AsyncIterator[AsyncClient]:
    """Read the environment, open the session, yield the client, and close the session after."""
    XConfig.from_env(env)  # fail before opening anything
    async with make_session(env) as session:
        yield make_client(env, session)


class _RedactAuthorization(logging.Filter):
    """Blank the Authorization header in tweepy's "Making API request" debug lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "uthorization" in message:
            record.msg = _AUTHORIZATION.sub(r"\1\2[redacted]\2", message)
            record.args = None
        return True


def _redact_tweepy_debug_log() -> None:
    logger = logging.getLogger(_TWEEPY_LOGGER)
    if not any(isinstance(f, _RedactAuthorization) for f in logger.filters):
        logger.addFilter(_RedactAuthorization())
