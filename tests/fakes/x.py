"""A fake X API v2 on 127.0.0.1, speaking the documented wire formats, for the X channel's tests.

It records every request, serves mentions and DM events that tests add, accepts replies and DMs,
and fails on demand. It checks the Authorization scheme (Bearer or OAuth) but no signatures.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web

# Endpoint names for fail_next and requests_to, and the routes they stand for.
ENDPOINTS = {
    "me": ("GET", "/2/users/me"),
    "mentions": ("GET", "/2/users/{id}/mentions"),
    "user_tweets": ("GET", "/2/users/{id}/tweets"),
    "dm_events": ("GET", "/2/dm_events"),
    "dm_events_with": ("GET", "/2/dm_conversations/with/{participant_id}/dm_events"),
    "create_tweet": ("POST", "/2/tweets"),
    "create_dm": ("POST", "/2/dm_conversations/with/{participant_id}/messages"),
    "create_dm_in": ("POST", "/2/dm_conversations/{dm_conversation_id}/messages"),
}
# Bearer tokens are app-only here: these endpoints need user context (OAuth 1.0a).
USER_CONTEXT_ONLY = frozenset(ENDPOINTS) - {"mentions", "user_tweets"}
RATE_LIMITS = {"me": 75, "mentions": 450, "user_tweets": 900, "dm_events": 15, "dm_events_with": 15}
TIMELINE_EXCLUDE = frozenset({"replies", "retweets"})


Query = Mapping[str, str]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The values X accepts; anything else is a 400, as from the real API.
TWEET_FIELDS = _words(
    "article attachments author_id card_uri community_id context_annotations conversation_id "
    "created_at display_text_range edit_controls edit_history_tweet_ids entities geo id "
    "in_reply_to_user_id lang non_public_metrics note_tweet organic_metrics possibly_sensitive "
    "promoted_metrics public_metrics referenced_tweets reply_settings scopes source text "
    "withheld"
)
TWEET_EXPANSIONS = _words(
    "attachments.media_keys attachments.poll_ids author_id edit_history_tweet_ids "
    "entities.mentions.username geo.place_id in_reply_to_user_id referenced_tweets.id "
    "referenced_tweets.id.author_id"
)
DM_EVENT_FIELDS = _words(
    "id text event_type created_at dm_conversation_id sender_id participant_ids "
    "referenced_tweets attachments"
)
DM_EXPANSIONS = _words("attachments.media_keys referenced_tweets.id sender_id participant_ids")
DM_EVENT_TYPES = frozenset({"MessageCreate", "ParticipantsJoin", "ParticipantsLeave"})

DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
NOT_PERMITTED = "You are not permitted to perform this action."
FAILURE_KINDS = frozenset({"400", "401", "403", "429", "500", "503", "503-text"})


@dataclass(frozen=True, slots=True)
class XUser:
    id: str
    name: str
    username: str

    def payload(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "username": self.username}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it; the token itself is never kept, only its scheme."""

    method: str
    path: str
    endpoint: str | None  # a key of ENDPOINTS, or None for an unknown path
    query: dict[str, str]
    json: Any  # the parsed body, or None
    auth_scheme: str | None  # "Bearer", "OAuth", or None when the header is missing
    status: int
    at: float = field(default_factory=time.monotonic)  # when it was answered


@dataclass(slots=True)
class _Failure:
    endpoint: str
    kind: str
    detail: str | None


def problem(status: int, title: str, detail: str, kind: str = "about:blank") -> dict[str, Any]:
    """The JSON body X sends with most errors (RFC 7807 problem details)."""
    return {"title": title, "detail": detail, "type": kind, "status": status}


def invalid_request(parameter: str, value: str, message: str) -> dict[str, Any]:
    """X's 400 body for a bad query parameter."""
    return {
        "errors": [{"parameters": {parameter: [value]}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


class _Reject(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


def _x_time(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _parse_x_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _time_param(query: Query, name: str) -> datetime | None:
    """start_time / end_time: YYYY-MM-DDTHH:mm:ssZ (RFC 3339), as X documents."""
    raw = query.get(name)
    if raw is None:
        return None
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z", raw):
        raise _Reject(
            400,
            invalid_request(name, raw, f"Invalid '{name}':'{raw}'. '{name}' must be RFC 3339"),
        )
    return _parse_x_time(raw)


def _csv(query: Query, name: str, allowed: frozenset[str]) -> set[str]:
    values = {v for v in (query.get(name) or "").split(",") if v}
    if bad := sorted(values - allowed):
        value = bad[0]
        raise _Reject(
            400,
            invalid_request(
                name,
                value,
                f"The `{name}` query parameter value [{value}] is not one of "
                f"[{','.join(sorted(allowed))}]",
            ),
        )
    return values


def _int_param(query: Query, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _Reject(
            400,
            invalid_request(
                name,
                raw,
                f"The `{name}` query parameter value [{raw}] is not between {low} and {high}",
            ),
        )
    return int(raw)


def _id_param(query: Query, name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise _Reject(
            400,
            invalid_request(name, raw, f"The `{name}` query parameter value [{raw}] is not valid"),
        )
    return int(raw)


def _page(
    items: list[dict[str, Any]], query: Query, size: int
) -> tuple[list[dict[str, Any]], str | None]:
    token = query.get("pagination_token")
    start = 0
    if token is not None:
        if not re.fullmatch(r"fx[0-9a-f]+", token):
            raise _Reject(
                400, invalid_request("pagination_token", token, "Invalid pagination token")
            )
        start = int(token[2:], 16)
    end = start + size
    next_token = f"fx{end:x}" if end < len(items) else None
    return items[start:end], next_token


class FakeX:
    """The fake X API: `async with FakeX() as fake:` then point X_API_URL at `fake.url`."""

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.me = XUser("1600000000000000001", "Anytown Council", "AnytownCouncil")
        self.citizen = XUser("1700000000000000002", "Jo Bloggs", "jobloggs")
        self.bot = XUser("1700000000000000003", "Bin Day Bot", "BinDayBot")  # someone's automation
        self.users: dict[str, XUser] = {u.id: u for u in (self.me, self.citizen, self.bot)}
        self.requests: list[RecordedRequest] = []
        self.tweets: dict[str, dict[str, Any]] = {}  # every tweet, full, by id
        self.dm_events: list[dict[str, Any]] = []  # every DM event, full, oldest first
        self._mentions: list[str] = []
        self._posted: list[str] = []
        self._failures: list[_Failure] = []
        self._hang: dict[str, int] = {}  # endpoint -> how many calls to carry out, unanswered
        self._hung = asyncio.Event()  # set on stop, to let hung handlers finish
        self._next_id = 1_860_000_000_000_000_000
        self._calls: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # Lifecycle

    @property
    def url(self) -> str:
        """The origin to use as X_API_URL, e.g. http://127.0.0.1:40123."""
        if self._url is None:
            raise RuntimeError("FakeX is not running: use `async with FakeX()` or await start()")
        return self._url

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        for name, (method, path) in ENDPOINTS.items():
            app.router.add_route(method, path, getattr(self, f"_handle_{name}"), name=name)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self._hung.set()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._url = None

    async def __aenter__(self) -> FakeX:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # What tests add and inspect

    def add_user(self, name: str, username: str) -> XUser:
        user = XUser(self._new_id(), name, username)
        self.users[user.id] = user
        return user

    def add_mention(
        self,
        text: str | None = None,
        *,
        author: XUser | None = None,
        in_reply_to: str | None = None,
        retweet_of: str | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """A tweet mentioning the council, newer than every earlier one; returns it in full."""
        author = author or self.citizen
        text = text or f"@{self.me.username} my bin wasn't collected on Tuesday"
        tweet = self._tweet(author, text, in_reply_to, created_at)
        if retweet_of is not None:
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": retweet_of}]
        self._mentions.append(tweet["id"])
        return tweet

    def add_dm(
        self,
        text: str = "Hello, my bin wasn't collected",
        *,
        sender: XUser | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """A direct message to the council; returns the DM event in full."""
        return self._dm(sender or self.citizen, self.me, text, created_at)

    @property
    def posted(self) -> list[dict[str, Any]]:
        """Tweets created through POST /2/tweets, oldest first."""
        return [self.tweets[i] for i in self._posted]

    @property
    def dms_sent(self) -> list[dict[str, Any]]:
        """DM events the council sent, oldest first."""
        return [e for e in self.dm_events if e["sender_id"] == self.me.id]

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Recorded requests for an endpoint name (a key of ENDPOINTS) or an exact path."""
        return [r for r in self.requests if endpoint in (r.endpoint, r.path)]

    def fail_next(
        self, endpoint: str, kind: str | int, count: int = 1, *, detail: str | None = None
    ) -> None:
        """Make the next `count` requests to `endpoint` (name or exact path) fail.

        kind: "400", "401", "403", "429" (with x-rate-limit-* headers, reset 3s ahead), "500",
        "503", or "503-text" (a non-JSON body). `detail` replaces the 400/403 message.
        """
        kind = str(kind)
        if kind not in FAILURE_KINDS:
            raise ValueError(f"fail_next: kind {kind!r} is not one of {sorted(FAILURE_KINDS)}")
        if endpoint not in ENDPOINTS and not endpoint.startswith("/"):
            raise ValueError(
                f"fail_next: endpoint {endpoint!r} is not a path or one of {sorted(ENDPOINTS)}"
            )
        self._failures.extend(_Failure(endpoint, kind, detail) for _ in range(count))

    def hang_after(self, endpoint: str, count: int = 1) -> None:
        """Carry out the next `count` calls to `endpoint` (a post is made) but never answer:
        what a client sees when X accepted and the connection then dropped."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"hang_after: endpoint {endpoint!r} is not one of {sorted(ENDPOINTS)}")
        self._hang[endpoint] = self._hang.get(endpoint, 0) + count

    # Plumbing

    def _new_id(self) -> str:
        self._next_id += 1_000_003
        return str(self._next_id)

    def _tweet(
        self, author: XUser, text: str, in_reply_to: str | None, created_at: datetime | None
    ) -> dict[str, Any]:
        tweet_id = self._new_id()
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "edit_history_tweet_ids": [tweet_id],
            "author_id": author.id,
            "conversation_id": tweet_id,
            "created_at": _x_time(created_at or self.now()),
        }
        if in_reply_to is not None:
            parent = self.tweets.get(in_reply_to)
            tweet["conversation_id"] = parent["conversation_id"] if parent else in_reply_to
            tweet["in_reply_to_user_id"] = parent["author_id"] if parent else self.me.id
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": in_reply_to}]
        mentions = []
        for match in re.finditer(r"@(\w{1,15})", text):
            user = next((u for u in self.users.values() if u.username == match[1]), None)
            if user is not None:
                mentions.append(
                    {
                        "start": match.start(),
                        "end": match.end(),
                        "username": user.username,
                        "id": user.id,
                    }
                )
        if mentions:
            tweet["entities"] = {"mentions": mentions}
        self.tweets[tweet_id] = tweet
        return tweet

    def _dm(
        self, sender: XUser, recipient: XUser, text: str, created_at: datetime | None
    ) -> dict[str, Any]:
        low, high = sorted((sender.id, recipient.id), key=int)
        event = {
            "id": self._new_id(),
            "text": text,
            "event_type": "MessageCreate",
            "dm_conversation_id": f"{low}-{high}",
            "created_at": _x_time(created_at or self.now()),
            "sender_id": sender.id,
        }
        self.dm_events.append(event)
        return event

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        route = request.match_info.route
        endpoint = route.name if route.name in ENDPOINTS else None
        header = request.headers.get("Authorization", "")
        scheme = header.split(" ", 1)[0] if header.startswith(("Bearer ", "OAuth ")) else None
        response = await self._respond(request, endpoint, scheme, parsed, handler)
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                endpoint,
                dict(request.query),
                parsed,
                scheme,
                response.status,
            )
        )
        return response

    async def _respond(
        self,
        request: web.Request,
        endpoint: str | None,
        scheme: str | None,
        parsed: Any,
        handler: Callable[[web.Request], Any],
    ) -> web.StreamResponse:
        if endpoint is None:
            return await handler(request)  # type: ignore[no-any-return]
        if scheme is None:
            return web.json_response(problem(401, "Unauthorized", "Unauthorized"), status=401)
        failure = next((f for f in self._failures if f.endpoint in (endpoint, request.path)), None)
        if failure is not None:
            self._failures.remove(failure)
            return self._failure(failure)
        if scheme == "Bearer" and endpoint in USER_CONTEXT_ONLY:
            return web.json_response(
                problem(
                    403,
                    "Unsupported Authentication",
                    "Authenticating with OAuth 2.0 Application-Only is forbidden for this "
                    "endpoint.  Supported authentication types are [OAuth 1.0a User Context, "
                    "OAuth 2.0 User Context].",
                    "https://api.twitter.com/2/problems/unsupported-authentication",
                ),
                status=403,
            )
        self._calls[endpoint] = self._calls.get(endpoint, 0) + 1
        try:
            status, payload = await handler(request)
        except _Reject as rejected:
            status, payload = rejected.status, rejected.body
        if self._hang.get(endpoint):
            self._hang[endpoint] -= 1
            await self._hung.wait()  # done, never answered
        headers = {}
        if endpoint in RATE_LIMITS:
            limit = RATE_LIMITS[endpoint]
            headers = {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": str(max(limit - self._calls[endpoint], 0)),
                "x-rate-limit-reset": str(int(time.time()) + 900),
            }
        return web.json_response(payload, status=status, headers=headers)

    def _failure(self, failure: _Failure) -> web.Response:
        kind = failure.kind
        if kind == "400":
            body = invalid_request("text", "", failure.detail or "The request was invalid.")
            return web.json_response(body, status=400)
        if kind == "401":
            return web.json_response(problem(401, "Unauthorized", "Unauthorized"), status=401)
        if kind == "403":
            body = problem(403, "Forbidden", failure.detail or NOT_PERMITTED)
            return web.json_response(body, status=403)
        if kind == "429":
            headers = {
                "x-rate-limit-limit": "15",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(time.time()) + 3),
            }
            body = problem(429, "Too Many Requests", "Too Many Requests")
            return web.json_response(body, status=429, headers=headers)
        if kind == "500":
            body = problem(500, "Internal Server Error", "Internal Server Error")
            return web.json_response(body, status=500)
        if kind == "503-text":
            return web.Response(status=503, text="Over capacity", content_type="text/plain")
        return web.json_response(
            problem(503, "Service Unavailable", "Service Unavailable"), status=503
        )

    # Endpoints: each returns (status, JSON payload) or raises _Reject

    async def _not_found(self, request: web.Request) -> web.Response:
        body = problem(
            404,
            "Not Found Error",
            f"Could not find the resource {request.path}.",
            "https://api.twitter.com/2/problems/resource-not-found",
        )
        return web.json_response(body, status=404)

    async def _handle_me(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        return 200, {"data": self.me.payload()}

    async def _handle_mentions(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        query = request.query
        fields = _csv(query, "tweet.fields", TWEET_FIELDS)
        expansions = _csv(query, "expansions", TWEET_EXPANSIONS)
        size = _int_param(query, "max_results", 10, 5, 100)
        since_id, until_id = _id_param(query, "since_id"), _id_param(query, "until_id")
        mentions = (
            []
            if request.match_info["id"] != self.me.id
            else [
                self.tweets[i]
                for i in reversed(self._mentions)
                if (since_id is None or int(i) > since_id)
                and (until_id is None or int(i) < until_id)
            ]
        )
        page, next_token = _page(mentions, query, size)
        if not page:
            return 200, {"meta": {"result_count": 0}}
        shown = {"id", "text", "edit_history_tweet_ids"} | fields
        payload: dict[str, Any] = {
            "data": [{k: v for k, v in t.items() if k in shown} for t in page]
        }
        user_ids: list[str] = []
        for tweet in page:
            if "author_id" in expansions:
                user_ids.append(tweet["author_id"])
            if "in_reply_to_user_id" in expansions and "in_reply_to_user_id" in tweet:
                user_ids.append(tweet["in_reply_to_user_id"])
        users = [self.users[i].payload() for i in dict.fromkeys(user_ids) if i in self.users]
        if users:
            payload["includes"] = {"users": users}
        meta: dict[str, Any] = {
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
            "result_count": len(page),
        }
        if next_token is not None:
            meta["next_token"] = next_token
        payload["meta"] = meta
        return 200, payload

    async def _handle_user_tweets(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        """The account's own posts, newest first (GET /2/users/:id/tweets)."""
        query = request.query
        fields = _csv(query, "tweet.fields", TWEET_FIELDS)
        exclude = _csv(query, "exclude", TIMELINE_EXCLUDE)
        size = _int_param(query, "max_results", 10, 5, 100)
        start, end = _time_param(query, "start_time"), _time_param(query, "end_time")
        own = [
            t for t in reversed(self.tweets.values()) if t["author_id"] == request.match_info["id"]
        ]
        if "replies" in exclude:
            own = [t for t in own if "in_reply_to_user_id" not in t]
        if "retweets" in exclude:
            own = [t for t in own if not any(r["type"] == "retweeted"
                                             for r in t.get("referenced_tweets", []))]  # fmt: skip
        own = [
            t for t in own
            if (start is None or _parse_x_time(t["created_at"]) >= start)
            and (end is None or _parse_x_time(t["created_at"]) < end)
        ]  # fmt: skip
        page, next_token = _page(own, query, size)
        if not page:
            return 200, {"meta": {"result_count": 0}}
        shown = {"id", "text", "edit_history_tweet_ids"} | fields
        meta: dict[str, Any] = {
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
            "result_count": len(page),
        }
        if next_token is not None:
            meta["next_token"] = next_token
        return 200, {
            "data": [{k: v for k, v in t.items() if k in shown} for t in page],
            "meta": meta,
        }

    async def _handle_dm_events(
        self, request: web.Request, participant: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        query = request.query
        fields = _csv(query, "dm_event.fields", DM_EVENT_FIELDS)
        expansions = _csv(query, "expansions", DM_EXPANSIONS)
        types = _csv(query, "event_types", DM_EVENT_TYPES) or set(DM_EVENT_TYPES)
        size = _int_param(query, "max_results", 100, 1, 100)
        events = [e for e in reversed(self.dm_events) if e["event_type"] in types]
        if participant is not None:
            low, high = sorted((participant, self.me.id), key=int)
            events = [e for e in events if e["dm_conversation_id"] == f"{low}-{high}"]
        page, next_token = _page(events, query, size)
        if not page:
            return 200, {"meta": {"result_count": 0}}
        shown = {"id", "event_type", "text"} | fields
        payload: dict[str, Any] = {
            "data": [{k: v for k, v in e.items() if k in shown} for e in page]
        }
        if "sender_id" in expansions:
            ids = dict.fromkeys(e["sender_id"] for e in page)
            payload["includes"] = {
                "users": [self.users[i].payload() for i in ids if i in self.users]
            }
        meta: dict[str, Any] = {"result_count": len(page)}
        if next_token is not None:
            meta["next_token"] = next_token
        payload["meta"] = meta
        return 200, payload

    async def _handle_dm_events_with(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        return await self._handle_dm_events(request, request.match_info["participant_id"])

    async def _handle_create_tweet(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        body = await _json_object(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _Reject(400, invalid_request("text", "", "Tweet text must be given."))
        if any(self.tweets[i]["text"] == text for i in self._posted):
            raise _Reject(403, problem(403, "Forbidden", DUPLICATE))
        reply = body.get("reply") or {}
        tweet = self._tweet(self.me, text, reply.get("in_reply_to_tweet_id"), None)
        self._posted.append(tweet["id"])
        return 201, {
            "data": {"id": tweet["id"], "text": text, "edit_history_tweet_ids": [tweet["id"]]}
        }

    async def _handle_create_dm(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        participant = request.match_info["participant_id"]
        return await self._send_dm(
            request, self.users.get(participant) or XUser(participant, "", "")
        )

    async def _handle_create_dm_in(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        conversation = request.match_info["dm_conversation_id"]
        others = [p for p in conversation.split("-") if p != self.me.id]
        if len(others) != 1 or not others[0].isdigit():
            raise _Reject(
                400, invalid_request("dm_conversation_id", conversation, "Invalid conversation")
            )
        return await self._send_dm(request, self.users.get(others[0]) or XUser(others[0], "", ""))

    async def _send_dm(self, request: web.Request, recipient: XUser) -> tuple[int, dict[str, Any]]:
        body = await _json_object(request)
        text = body.get("text")
        if (not isinstance(text, str) or not text) and not body.get("attachments"):
            raise _Reject(
                400, invalid_request("text", "", "A text or an attachment must be given.")
            )
        event = self._dm(self.me, recipient, text or "", None)
        return 201, {
            "data": {"dm_conversation_id": event["dm_conversation_id"], "dm_event_id": event["id"]}
        }


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _Reject(
            400, problem(400, "Invalid Request", "The request body is not a JSON object.")
        )
    return body
