r"""A fake Mastodon instance on 127.0.0.1, speaking the documented REST API, for the Mastodon
channel's tests: the endpoints the channel uses, Bearer tokens, X-RateLimit-* headers, 429s,
Idempotency-Key, and the instance's own character limit. Statuses come back as Mastodon renders
them (HTML paragraphs, <br />, links cut into invisible and ellipsis spans, a mention of an
account the instance knows as a link showing only "@username"); the account's own
statuses are listed (GET /api/v1/accounts/:id/statuses); the profile is changed with
PATCH /api/v1/accounts/update_credentials. Lengths are counted as Mastodon's
StatusLengthValidator does (grapheme clusters by the `regex` module's \X, a link 23). A call can
be carried out and then never answered (hang_after).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from html import escape
from types import TracebackType
from typing import Any

import regex
from aiohttp import web

FAILURE_KINDS = frozenset({"401", "404", "422", "429", "500", "503"})


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    form: dict[str, str]
    headers: dict[str, str]
    status: int
    at: float = field(default_factory=time.monotonic)


def account(
    id_: str, username: str, name: str, *, bot: bool = False, domain: str = ""
) -> dict[str, Any]:
    acct = f"{username}@{domain}" if domain else username
    return {
        "id": id_,
        "username": username,
        "acct": acct,
        "display_name": name,
        "locked": False,
        "bot": bot,
        "group": False,
        "created_at": "2023-01-01T00:00:00.000Z",
        "note": "",
        "url": f"https://example.social/@{acct}",
        "avatar": "https://example.social/avatars/original/missing.png",
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": 0,
        "emojis": [],
        "fields": [],
    }


_LINK = re.compile(r"https?://[^\s<>\"]+")
# Mastodon's Account::MENTION_RE: "@user" or "@user@domain", not inside a word or a URL's path.
_MENTION = re.compile(
    r"(?<![=/\w])@(([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@([\w.-]+\w+))?)", re.IGNORECASE
)
DOMAIN = "example.social"  # the instance's own domain: its accounts' acct has none


def length(text: str) -> int:
    """What Mastodon counts: grapheme clusters, a link as 23 characters."""
    return len(regex.findall(r"\X", _LINK.sub("x" * 23, text)))


def render(text: str, accounts: Sequence[Mapping[str, Any]] = ()) -> str:
    """A status's text as Mastodon's HTML: paragraphs, line breaks, links shortened for display
    (the full address split across invisible and ellipsis spans), and mentions."""
    return _render(text, accounts)[0]


def _render(text: str, accounts: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The HTML and the accounts mentioned, as Mastodon's TextFormatter makes them."""
    mentioned: list[dict[str, Any]] = []

    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        scheme, rest = url.split("://", 1)
        shown, hidden = rest[:30], rest[30:]
        return (
            f'<a href="{escape(url)}" rel="nofollow noopener" target="_blank">'
            f'<span class="invisible">{escape(scheme)}://</span>'
            f'<span class="{"ellipsis" if hidden else ""}">{escape(shown)}</span>'
            f'<span class="invisible">{escape(hidden)}</span></a>'
        )

    def mention(match: re.Match[str]) -> str:
        # An account the instance knows is a link showing its username only (its acct, with the
        # domain, when another known account has the same username); one it does not know is
        # left as typed.
        screen_name, username, domain = match.groups()
        domain = None if domain is None or domain.lower() == DOMAIN else domain.lower()
        same = [a for a in accounts if a["username"].lower() == username.lower()]
        found = [a for a in same if _domain(a) == domain]
        if not found:
            return escape(f"@{screen_name}")
        who = found[0]
        if who["id"] not in [m["id"] for m in mentioned]:
            mentioned.append({k: who[k] for k in ("id", "username", "acct", "url")})
        shown = who["acct"] if len(same) > 1 else who["username"]
        return (
            f'<span class="h-card" translate="no"><a href="{escape(who["url"])}" '
            f'class="u-url mention">@<span>{escape(shown)}</span></a></span>'
        )

    def words(plain: str) -> str:
        parts, last = [], 0
        for match in _MENTION.finditer(plain):
            parts += [escape(plain[last : match.start()]), mention(match)]
            last = match.end()
        return "".join([*parts, escape(plain[last:])])

    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        parts, last = [], 0
        for match in _LINK.finditer(paragraph):
            parts += [words(paragraph[last : match.start()]), link(match)]
            last = match.end()
        parts.append(words(paragraph[last:]))
        paragraphs.append("<p>" + "".join(parts).replace("\n", "<br />") + "</p>")
    return "".join(paragraphs), mentioned


def _domain(account: Mapping[str, Any]) -> str | None:
    _, _, domain = str(account["acct"]).partition("@")
    return domain.lower() or None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeMastodon:
    """An instance with one organisation account ("council") and people who mention it."""

    def __init__(
        self, token: str = "test-mastodon-token", max_characters: int | None = 500, v2: bool = True
    ) -> None:
        self.token = token
        self.max_characters = max_characters
        self.v2 = v2  # False: an older server without /api/v2/instance
        self.me = account("1", "council", "Anytown Council")
        self.person = account("100", "jobloggs", "Jo Bloggs", domain="example.org")
        self.known = [self.me, self.person]  # the accounts a mention can link to
        self.requests: list[Recorded] = []
        self.notifications: list[dict[str, Any]] = []  # oldest first
        self.posted: list[dict[str, Any]] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        self.rate_remaining = 300
        self.reset_after = 3  # seconds from now, in X-RateLimit-Reset
        self._failures: list[tuple[str, str]] = []
        self._ids = itertools.count(1000)
        self._keys: dict[str, dict[str, Any]] = {}
        self._hang: set[str] = set()
        self._hung = asyncio.Event()  # set when stopping: hung calls end with the server
        self.credential_updates: list[dict[str, str]] = []  # the fields each PATCH sent
        self.note = ""  # the profile's note as its owner wrote it (source.note)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # Test helpers.

    def add_mention(
        self,
        text: str,
        *,
        sender: dict[str, Any] | None = None,
        visibility: str = "public",
        in_reply_to: dict[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        who = sender or self.person
        status_id = str(next(self._ids))
        words = []
        for word in text.split(" "):
            if word == "@council":
                words.append(
                    '<span class="h-card"><a href="https://example.social/@council" '
                    'class="u-url mention">@<span>council</span></a></span>'
                )
            else:
                words.append(escape(word))
        status = {
            "id": status_id,
            "uri": f"https://example.org/users/{who['username']}/statuses/{status_id}",
            "url": f"https://example.org/@{who['username']}/{status_id}",
            "created_at": _iso(created_at or datetime.now(UTC)),
            "account": who,
            "content": f"<p>{' '.join(words)}</p>",
            "visibility": visibility,
            "sensitive": False,
            "spoiler_text": "",
            "media_attachments": [],
            "mentions": [
                {
                    "id": self.me["id"],
                    "username": "council",
                    "acct": "council",
                    "url": self.me["url"],
                }
            ],
            "tags": [],
            "emojis": [],
            "reblogs_count": 0,
            "favourites_count": 0,
            "replies_count": 0,
            "in_reply_to_id": in_reply_to["id"] if in_reply_to else None,
            "in_reply_to_account_id": in_reply_to["account"]["id"] if in_reply_to else None,
            "reblog": None,
            "language": "en",
        }
        self.statuses[status_id] = status
        self.notifications.append(
            {
                "id": str(next(self._ids)),
                "type": "mention",
                "created_at": status["created_at"],
                "account": who,
                "status": status,
            }
        )
        return status

    def add_account(self, id_: str, username: str, name: str, domain: str = "") -> dict[str, Any]:
        """An account the instance knows (it has seen it), so a status can mention it."""
        who = account(id_, username, name, domain=domain)
        self.known.append(who)
        return who

    def add_other(self, kind: str = "favourite") -> None:
        """A notification that is not a mention (a favourite, a follow)."""
        self.notifications.append(
            {
                "id": str(next(self._ids)),
                "type": kind,
                "created_at": _iso(datetime.now(UTC)),
                "account": self.person,
            }
        )

    def fail_next(self, endpoint: str, kind: str) -> None:
        """endpoint: "statuses", "notifications", "verify_credentials"; kind in FAILURE_KINDS."""
        assert kind in FAILURE_KINDS, kind
        self._failures.append((endpoint, kind))

    def hang_after(self, endpoint: str) -> None:
        """The next call to `endpoint` is carried out, and then never answered."""
        self._hang.add(endpoint)

    def requests_to(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.rstrip("/").endswith(endpoint)]

    # The server.

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v1/accounts/verify_credentials", self._verify)
        app.router.add_get("/api/v2/instance", self._instance_v2)
        app.router.add_get("/api/v2/instance/", self._instance_v2)
        app.router.add_get("/api/v1/instance", self._instance_v1)
        app.router.add_get("/api/v1/instance/", self._instance_v1)
        app.router.add_get("/api/v1/notifications", self._notifications)
        app.router.add_post("/api/v1/statuses", self._post_status)
        app.router.add_get("/api/v1/accounts/{id}/statuses", self._account_statuses)
        app.router.add_patch("/api/v1/accounts/update_credentials", self._update_credentials)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._hung.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeMastodon:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _headers(self) -> dict[str, str]:
        reset = datetime.now(UTC) + timedelta(seconds=self.reset_after)
        return {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": str(max(0, self.rate_remaining)),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "Date": formatdate(usegmt=True),
        }

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form: dict[str, str] = {}
        if request.method in ("POST", "PATCH"):
            if request.content_type == "application/json":
                form = {k: str(v) for k, v in (await request.json()).items()}
            else:
                form = {k: str(v) for k, v in (await request.post()).items()}
        response = await self._answer(request, handler, form)
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                list(request.query.items()),
                form,
                dict(request.headers),
                response.status,
            )
        )
        return response

    async def _answer(
        self, request: web.Request, handler: Any, form: dict[str, str]
    ) -> web.StreamResponse:
        headers = self._headers()
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"error": "The access token is invalid"}, status=401, headers=headers
            )
        path = request.path.rstrip("/")
        for i, (endpoint, kind) in enumerate(self._failures):
            if path.endswith(endpoint):
                del self._failures[i]
                status = int(kind)
                if status == 429:
                    headers["X-RateLimit-Remaining"] = "0"
                    return web.json_response(
                        {"error": "Too many requests"}, status=429, headers=headers
                    )
                message = {
                    401: "The access token is invalid",
                    404: "Record not found",
                    422: "Validation failed: Text can't be blank",
                }.get(status, "oops")
                return web.json_response({"error": message}, status=status, headers=headers)
        self.rate_remaining -= 1
        response: web.StreamResponse = await handler(request, form)
        response.headers.update(self._headers())
        for endpoint in self._hang:
            if path.endswith(endpoint):
                self._hang.discard(endpoint)
                await self._hung.wait()  # done, but the answer never comes
                break
        return response

    async def _verify(self, request: web.Request, form: dict[str, str]) -> web.Response:
        return web.json_response({**self.me, "source": {"privacy": "public", "note": self.note}})

    async def _instance_v2(self, request: web.Request, form: dict[str, str]) -> web.Response:
        if not self.v2:
            return web.json_response({"error": "Not found"}, status=404)
        config: dict[str, Any] = {"statuses": {"max_media_attachments": 4}}
        if self.max_characters is not None:
            config["statuses"]["max_characters"] = self.max_characters
        return web.json_response(
            {
                "domain": "example.social",
                "title": "Example",
                "version": "4.3.0",
                "configuration": config,
            }
        )

    async def _instance_v1(self, request: web.Request, form: dict[str, str]) -> web.Response:
        config: dict[str, Any] = {"statuses": {"max_media_attachments": 4}}
        if self.max_characters is not None:
            config["statuses"]["max_characters"] = self.max_characters
        return web.json_response(
            {
                "uri": "example.social",
                "title": "Example",
                "version": "3.5.0",
                "configuration": config,
            }
        )

    async def _notifications(self, request: web.Request, form: dict[str, str]) -> web.Response:
        types = request.query.getall("types[]", [])
        limit = min(int(request.query.get("limit", "40")), 80)
        items = [n for n in self.notifications if not types or n["type"] in types]
        if "min_id" in request.query:  # the page just after min_id, oldest end first
            after = int(request.query["min_id"])
            items = [n for n in items if int(n["id"]) > after][:limit]
        elif "since_id" in request.query:  # the newest page after since_id
            after = int(request.query["since_id"])
            items = [n for n in items if int(n["id"]) > after][-limit:]
        else:
            items = items[-limit:]
        return web.json_response(list(reversed(items)))  # newest first, as Mastodon answers

    async def _post_status(self, request: web.Request, form: dict[str, str]) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if key and key in self._keys:
            return web.json_response(self._keys[key])
        text = form.get("status", "")
        if not text.strip():
            return web.json_response(
                {"error": "Validation failed: Text can't be blank"}, status=422
            )
        limit = self.max_characters
        if limit is not None and length(text) > limit:
            return web.json_response(
                {"error": f"Validation failed: Text character limit of {limit} exceeded"},
                status=422,
            )
        parent = form.get("in_reply_to_id")
        if parent and parent not in self.statuses:
            return web.json_response({"error": "Record not found"}, status=404)
        status_id = str(next(self._ids))
        content, mentioned = _render(text, self.known)
        status = {
            "id": status_id,
            "uri": f"https://example.social/users/council/statuses/{status_id}",
            "url": f"https://example.social/@council/{status_id}",
            "created_at": _iso(datetime.now(UTC)),
            "account": self.me,
            "content": content,
            "text": text,  # Mastodon gives the source text only on delete; kept for the tests
            "visibility": form.get("visibility") or "public",
            "in_reply_to_id": parent,
            "in_reply_to_account_id": self.statuses[parent]["account"]["id"] if parent else None,
            "mentions": mentioned,
            "media_attachments": [],
            "emojis": [],
            "tags": [],
        }
        self.statuses[status_id] = status
        self.posted.append(status)
        if key:
            self._keys[key] = status
        return web.json_response(status)

    async def _account_statuses(self, request: web.Request, form: dict[str, str]) -> web.Response:
        """The account's statuses, newest first, paged with max_id / since_id / min_id."""
        account_id = request.match_info["id"]
        limit = min(int(request.query.get("limit", "20")), 40)
        items = sorted(
            (s for s in self.statuses.values() if s["account"]["id"] == account_id),
            key=lambda s: int(s["id"]),
            reverse=True,
        )
        if "max_id" in request.query:
            items = [s for s in items if int(s["id"]) < int(request.query["max_id"])]
        if "since_id" in request.query:
            items = [s for s in items if int(s["id"]) > int(request.query["since_id"])]
        if "min_id" in request.query:
            after = [s for s in items if int(s["id"]) > int(request.query["min_id"])]
            return web.json_response(after[-limit:])
        return web.json_response(items[:limit])

    async def _update_credentials(self, request: web.Request, form: dict[str, str]) -> web.Response:
        self.credential_updates.append(dict(form))
        if "note" in form:
            note = form["note"]
            if length(note) > 500:
                return web.json_response(
                    {
                        "error": "Validation failed: Note is too long (maximum is 500 characters)",
                        "details": {"note": [{"error": "ERR_TOO_LONG"}]},
                    },
                    status=422,
                )
            self.note = note
            self.me = {**self.me, "note": render(note, self.known)}
        if "display_name" in form:
            self.me = {**self.me, "display_name": form["display_name"]}
        return web.json_response(
            {**self.me, "source": {"privacy": "public", "note": form.get("note", "")}}
        )
