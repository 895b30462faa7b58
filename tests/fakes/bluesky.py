r"""A fake Bluesky PDS on 127.0.0.1, speaking the XRPC endpoints the Bluesky channel uses.

Sessions (createSession, refreshSession) with JWTs that expire, counted so tests can see a
login is not repeated; listNotifications; the repository calls (createRecord, listRecords,
getRecord, and putRecord with swapRecord answering 400 InvalidSwap on a stale CID, as a PDS
does); and the chat service's getLog and sendMessage, answered only with the atproto-proxy
header naming the chat service and only for an app password allowed to read direct messages. It
fails on demand, answers 429 with the ratelimit-* headers Bluesky sends, and can take a post
and then never answer (hang_after). Post lengths are counted in grapheme clusters by the
`regex` module's \X, as the platform counts.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import regex
from aiohttp import web

CHAT_PROXY = "did:web:api.bsky.chat#bsky_chat"
ME = "did:plc:anytowncouncil0000000000"
FAILURE_KINDS = frozenset({"400", "401", "429", "500", "expired"})


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    nsid: str
    query: list[tuple[str, str]]
    body: Any
    headers: dict[str, str]
    status: int
    at: float = field(default_factory=time.monotonic)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def profile(did: str, handle: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    labels = []
    if bot:
        labels = [
            {
                "src": did,
                "uri": f"at://{did}/app.bsky.actor.profile/self",
                "val": "bot",
                "cts": "2024-01-01T00:00:00.000Z",
            }
        ]
    return {"did": did, "handle": handle, "displayName": name, "labels": labels}


class FakeBluesky:
    def __init__(
        self,
        handle: str = "anytown.gov.uk",
        password: str = "abcd-efgh-ijkl-mnop",
        access_seconds: float = 7200,
        chat: bool = True,
    ) -> None:
        self.handle = handle
        self.password = password
        self.access_seconds = access_seconds  # the SDK refreshes 15 minutes before expiry
        self.chat = chat  # False: an app password made without direct message access
        self.me = profile(ME, handle, "Anytown Council")
        self.person = profile(
            "did:plc:jobloggs000000000000000", "jobloggs.bsky.social", "Jo Bloggs"
        )
        self.requests: list[Recorded] = []
        self.notifications: list[dict[str, Any]] = []  # oldest first
        self.posts: dict[str, dict[str, Any]] = {}  # uri -> record
        self.posted: list[dict[str, Any]] = []  # records we created, with "uri" added
        self.chat_log: list[dict[str, Any]] = []  # oldest first
        self.dms_sent: list[dict[str, Any]] = []
        self.sessions = 0  # createSession calls that succeeded
        self.refreshes = 0
        self.reset_after = 3
        self._access: dict[str, float] = {}  # token -> expiry (epoch)
        self._refresh: set[str] = set()
        self._failures: list[tuple[str, str]] = []
        self._hang: set[str] = set()
        self._slow: dict[str, float] = {}
        self._hung = asyncio.Event()  # set when stopping: hung calls end with the server
        # The account's profile record (app.bsky.actor.profile/self) and its CID; None: none yet.
        self.profile_record: dict[str, Any] | None = None
        self.profile_cid: str | None = None
        self.profile_writes: list[dict[str, Any]] = []  # putRecord bodies that were applied
        self._after_profile_read: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # Test helpers.

    def _tid(self) -> str:
        return f"3l{next(self._ids):011d}"

    def add_post(
        self,
        text: str,
        *,
        author: dict[str, Any] | None = None,
        reply_to: dict[str, Any] | None = None,
        reason: str = "mention",
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """A post by `author` (a person by default) that notifies us with `reason`; `reply_to`
        is an earlier post (as returned here) it answers. Returns {"uri", "cid", "record"}."""
        who = author or self.person
        uri = f"at://{who['did']}/app.bsky.feed.post/{self._tid()}"
        cid = f"bafyrei{next(self._ids):052d}"
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": _iso(created_at or datetime.now(UTC)),
            "langs": ["en"],
        }
        if reply_to is not None:
            parent_reply = reply_to["record"].get("reply")
            root = (
                parent_reply["root"]
                if parent_reply
                else {"uri": reply_to["uri"], "cid": reply_to["cid"]}
            )
            record["reply"] = {
                "root": root,
                "parent": {"uri": reply_to["uri"], "cid": reply_to["cid"]},
            }
        post = {"uri": uri, "cid": cid, "record": record, "author": who}
        self.posts[uri] = post
        if reason:  # "": a post that notifies nobody
            self.notifications.append(
                {
                    "uri": uri,
                    "cid": cid,
                    "author": who,
                    "reason": reason,
                    "record": record,
                    "isRead": False,
                    "indexedAt": _iso(datetime.now(UTC)),
                    "labels": [],
                }
            )
        return post

    def add_dm(
        self, text: str, *, sender: dict[str, Any] | None = None, convo: str = "convo-1"
    ) -> dict[str, Any]:
        who = sender or self.person
        rev = self._tid()
        message = {
            "$type": "chat.bsky.convo.defs#messageView",
            "id": f"msg{rev}",
            "rev": rev,
            "text": text,
            "sender": {"did": who["did"]},
            "sentAt": _iso(datetime.now(UTC)),
        }
        self.chat_log.append(
            {
                "$type": "chat.bsky.convo.defs#logCreateMessage",
                "rev": rev,
                "convoId": convo,
                "message": message,
                "relatedProfiles": [
                    {"did": who["did"], "handle": who["handle"], "displayName": who["displayName"]}
                ],
            }
        )
        return message

    def fail_next(self, nsid: str, kind: str) -> None:
        """kind: "400", "401", "429", "500", or "expired" (an access token past its time)."""
        assert kind in FAILURE_KINDS, kind
        self._failures.append((nsid, kind))

    def hang_after(self, nsid: str) -> None:
        """The next call to `nsid` is carried out, and then never answered."""
        self._hang.add(nsid)

    def answer_late(self, nsid: str, seconds: float) -> None:
        """The next call to `nsid` is carried out at once and answered `seconds` later."""
        self._slow[nsid] = seconds

    def set_profile(self, record: dict[str, Any]) -> None:
        """Someone (a person in the app) writes the whole profile record: a new CID."""
        self.profile_record = {"$type": "app.bsky.actor.profile", **record}
        self.profile_cid = f"bafyreiprofile{next(self._ids):045d}"

    def edit_after_next_read(self, **changes: Any) -> None:
        """Just after the next getRecord of the profile is answered, a person changes these
        fields of it (as if in the app, between our read and our write)."""
        self._after_profile_read.append(changes)

    def requests_to(self, nsid: str) -> list[Recorded]:
        return [r for r in self.requests if r.nsid == nsid]

    # The server.

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/xrpc/{nsid}", self._xrpc)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self._hung.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBluesky:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _jwt(self, scope: str, seconds: float) -> str:
        now = time.time()
        payload = {
            "scope": scope,
            "sub": ME,
            "iat": int(now),
            "exp": int(now + seconds),
            "jti": self._tid(),
        }
        return f"{_b64({'typ': 'at+jwt', 'alg': 'ES256K'})}.{_b64(payload)}.c2lnbmF0dXJl"

    def _session(self) -> dict[str, Any]:
        access = self._jwt("com.atproto.appPass", self.access_seconds)
        refresh = self._jwt("com.atproto.refresh", 90 * 86400)
        self._access[access] = time.time() + self.access_seconds
        self._refresh.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": self.handle,
            "did": ME,
            "didDoc": {
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": ME,
                "alsoKnownAs": [f"at://{self.handle}"],
                "verificationMethod": [],
                "service": [
                    {
                        "id": "#atproto_pds",
                        "type": "AtprotoPersonalDataServer",
                        "serviceEndpoint": self.url,
                    }
                ],
            },
            "active": True,
        }

    @staticmethod
    def _error(
        status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {"error": error, "message": message}, status=status, headers=headers
        )

    async def _xrpc(self, request: web.Request) -> web.StreamResponse:
        nsid = request.match_info["nsid"]
        body = await request.json() if request.can_read_body else None
        response = await self._answer(request, nsid, body)
        if nsid in self._slow:
            await asyncio.sleep(self._slow.pop(nsid))
        self.requests.append(
            Recorded(
                request.method,
                nsid,
                list(request.query.items()),
                body,
                dict(request.headers),
                response.status,
            )
        )
        return response

    async def _answer(self, request: web.Request, nsid: str, body: Any) -> web.Response:
        for i, (failing, kind) in enumerate(self._failures):
            if failing == nsid:
                del self._failures[i]
                if kind == "429":
                    reset = int(time.time() + self.reset_after)
                    headers = {
                        "ratelimit-limit": "3000",
                        "ratelimit-remaining": "0",
                        "ratelimit-reset": str(reset),
                        "ratelimit-policy": "3000;w=300",
                    }
                    return self._error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
                if kind == "expired":
                    return self._error(400, "ExpiredToken", "Token has expired")
                if kind == "401":
                    return self._error(
                        401, "AuthenticationRequired", "Invalid identifier or password"
                    )
                if kind == "400":
                    return self._error(400, "InvalidRequest", "Invalid request")
                return self._error(500, "InternalServerError", "Internal Server Error")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if nsid == "com.atproto.server.createSession":
            if body.get("identifier") != self.handle or body.get("password") != self.password:
                return self._error(401, "AuthenticationRequired", "Invalid identifier or password")
            self.sessions += 1
            return web.json_response(self._session())
        if nsid == "com.atproto.server.refreshSession":
            if token not in self._refresh:
                return self._error(400, "ExpiredToken", "Token has been revoked")
            self._refresh.discard(token)  # a refresh token is used once
            self.refreshes += 1
            return web.json_response(self._session())
        expiry = self._access.get(token)
        if expiry is None:
            return self._error(401, "AuthenticationRequired", "Authentication Required")
        if expiry < time.time():
            return self._error(400, "ExpiredToken", "Token has expired")
        if nsid.startswith("chat.bsky."):
            if request.headers.get("atproto-proxy") != CHAT_PROXY:
                return self._error(404, "MethodNotImplemented", "Method Not Implemented")
            if not self.chat:
                return self._error(401, "InvalidToken", "Bad token scope")
        handler = {
            "app.bsky.notification.listNotifications": self._list_notifications,
            "com.atproto.repo.createRecord": self._create_record,
            "com.atproto.repo.listRecords": self._list_records,
            "com.atproto.repo.getRecord": self._get_record,
            "com.atproto.repo.putRecord": self._put_record,
            "chat.bsky.convo.getLog": self._get_log,
            "chat.bsky.convo.sendMessage": self._send_message,
        }.get(nsid)
        if handler is None:
            return self._error(404, "MethodNotImplemented", "Method Not Implemented")
        answer = await handler(request, body)
        if nsid in self._hang:
            self._hang.discard(nsid)
            await self._hung.wait()  # done, but the answer never comes
        return answer

    async def _list_notifications(self, request: web.Request, body: Any) -> web.Response:
        reasons = request.query.getall("reasons", [])
        limit = int(request.query.get("limit", "50"))
        newest_first = [
            n for n in reversed(self.notifications) if not reasons or n["reason"] in reasons
        ]
        start = int(request.query.get("cursor", "0"))
        page = newest_first[start : start + limit]
        answer: dict[str, Any] = {"notifications": page, "priority": False}
        if start + limit < len(newest_first):
            answer["cursor"] = str(start + limit)
        return web.json_response(answer)

    async def _create_record(self, request: web.Request, body: Any) -> web.Response:
        record = body.get("record") or {}
        if body.get("repo") != ME or body.get("collection") != "app.bsky.feed.post":
            return self._error(400, "InvalidRequest", "Invalid repo or collection")
        text = record.get("text", "")
        if len(regex.findall(r"\X", text)) > 300 or len(text.encode()) > 3000:
            return self._error(
                400,
                "InvalidRecord",
                "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 "
                "graphemes",
            )
        reply = record.get("reply")
        if reply is not None:
            for end in ("root", "parent"):
                ref = reply.get(end) or {}
                if ref.get("uri") not in self.posts or self.posts[ref["uri"]]["cid"] != ref.get(
                    "cid"
                ):
                    return self._error(400, "InvalidRecord", f"reply {end} is not a known post")
        uri = f"at://{ME}/app.bsky.feed.post/{self._tid()}"
        cid = f"bafyrei{next(self._ids):052d}"
        self.posts[uri] = {"uri": uri, "cid": cid, "record": record, "author": self.me}
        self.posted.append({**record, "uri": uri})
        return web.json_response({"uri": uri, "cid": cid, "validationStatus": "valid"})

    def _own_posts(self) -> list[dict[str, Any]]:
        """The account's posts, newest first (by record key, as a PDS lists them)."""
        mine = [p for p in self.posts.values() if p["uri"].startswith(f"at://{ME}/")]
        return sorted(mine, key=lambda p: p["uri"].rsplit("/", 1)[-1], reverse=True)

    async def _list_records(self, request: web.Request, body: Any) -> web.Response:
        query = request.query
        if query.get("repo") not in (ME, self.handle):
            return self._error(400, "InvalidRequest", f"Could not find repo: {query.get('repo')}")
        if query.get("collection") != "app.bsky.feed.post":
            return web.json_response({"records": []})
        limit = min(int(query.get("limit", "50")), 100)
        posts = self._own_posts()
        if query.get("reverse") == "true":
            posts.reverse()
        cursor = query.get("cursor")
        if cursor is not None:
            rkeys = [p["uri"].rsplit("/", 1)[-1] for p in posts]
            posts = posts[rkeys.index(cursor) + 1 :] if cursor in rkeys else []
        page = posts[:limit]
        answer: dict[str, Any] = {
            "records": [{"uri": p["uri"], "cid": p["cid"], "value": p["record"]} for p in page]
        }
        if len(posts) > limit:
            answer["cursor"] = page[-1]["uri"].rsplit("/", 1)[-1]
        return web.json_response(answer)

    def _is_profile(self, repo: Any, collection: Any, rkey: Any) -> bool:
        return (
            repo in (ME, self.handle) and collection == "app.bsky.actor.profile" and rkey == "self"
        )

    async def _get_record(self, request: web.Request, body: Any) -> web.Response:
        query = request.query
        uri = f"at://{ME}/{query.get('collection')}/{query.get('rkey')}"
        if not self._is_profile(query.get("repo"), query.get("collection"), query.get("rkey")):
            post = self.posts.get(uri)
            if post is None:
                return self._error(400, "RecordNotFound", f"Could not locate record: {uri}")
            return web.json_response({"uri": uri, "cid": post["cid"], "value": post["record"]})
        if self.profile_record is None:
            return self._error(400, "RecordNotFound", f"Could not locate record: {uri}")
        answer = {"uri": uri, "cid": self.profile_cid, "value": self.profile_record}
        response = web.json_response(answer)
        if self._after_profile_read:  # a person's edit lands after this answer was made
            changes = self._after_profile_read.pop(0)
            self.set_profile({**self.profile_record, **changes})
        return response

    async def _put_record(self, request: web.Request, body: Any) -> web.Response:
        if not self._is_profile(body.get("repo"), body.get("collection"), body.get("rkey")):
            return self._error(400, "InvalidRequest", "Only the profile is written here")
        record = body.get("record") or {}
        if record.get("$type") != "app.bsky.actor.profile":
            return self._error(
                400, "InvalidRecord", "Invalid $type: expected app.bsky.actor.profile"
            )
        description = record.get("description")
        if description is not None and len(regex.findall(r"\X", description)) > 256:
            return self._error(
                400,
                "InvalidRecord",
                "Invalid app.bsky.actor.profile record: Record/description must not be longer "
                "than 256 graphemes",
            )
        if "swapRecord" in body and body["swapRecord"] != self.profile_cid:
            return self._error(400, "InvalidSwap", f"Record was at {self.profile_cid}")
        self.profile_writes.append(body)
        self.set_profile(record)
        uri = f"at://{ME}/app.bsky.actor.profile/self"
        return web.json_response(
            {
                "uri": uri,
                "cid": self.profile_cid,
                "commit": {"cid": f"bafyreicommit{next(self._ids):046d}", "rev": self._tid()},
                "validationStatus": "valid",
            }
        )

    async def _get_log(self, request: web.Request, body: Any) -> web.Response:
        cursor = request.query.get("cursor")
        if cursor is None:  # no cursor: nothing yet, and where the log is now
            latest = self.chat_log[-1]["rev"] if self.chat_log else "2222222222222"
            return web.json_response({"logs": [], "cursor": latest})
        logs = [entry for entry in self.chat_log if entry["rev"] > cursor][:100]
        return web.json_response({"logs": logs, "cursor": logs[-1]["rev"] if logs else cursor})

    async def _send_message(self, request: web.Request, body: Any) -> web.Response:
        text = (body.get("message") or {}).get("text", "")
        if not text or len(text) > 1000:
            return self._error(400, "InvalidRequest", "Message text too long or empty")
        rev = self._tid()
        message = {
            "id": f"msg{rev}",
            "rev": rev,
            "text": text,
            "sender": {"did": ME},
            "sentAt": _iso(datetime.now(UTC)),
        }
        self.dms_sent.append({"convoId": body.get("convoId"), **message})
        self.chat_log.append(
            {
                "$type": "chat.bsky.convo.defs#logCreateMessage",
                "rev": rev,
                "convoId": body.get("convoId"),
                "message": message,
            }
        )
        return web.json_response(message)


def expired(seconds: float = 0.0) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
