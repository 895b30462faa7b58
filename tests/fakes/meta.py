"""A local Graph API for Facebook, Instagram and WhatsApp, and Meta's webhook deliveries.

The server side answers what the channels call, in Meta's documented formats: the Send API
(POST /<version>/me/messages: {"recipient_id", "message_id"}), public replies to comments
(POST /<version>/<comment id>/comments or /replies: {"id"}), and the WhatsApp Cloud API
(POST /<version>/<phone number id>/messages: {"messaging_product", "contacts", "messages"}). It
checks the bearer token (190, OAuthException, otherwise), the body's required fields (100), and,
with the test's clock, Meta's windows itself: RESPONSE more than 24 hours after the person's last
message is refused with 10/2018278, HUMAN_AGENT after 7 days too, WhatsApp free-form text after 24
hours with 131047, and a second private reply to one comment with 10900. Failures on demand:
rate limits (613 with X-Business-Use-Case-Usage, or WhatsApp's 130429), temporary errors (2),
an expired token (190), a missing permission (10), an unreachable person (551).

The client side builds deliveries as Meta sends them (https://developers.facebook.com/docs/
messenger-platform/webhooks, .../instagram-platform/webhooks/examples, .../whatsapp/cloud-api/
webhooks/payload-examples) and signs the raw body with the app secret in X-Hub-Signature-256.
tests/test_fake_meta.py checks these formats against pywa's own parsing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import aiohttp
from aiohttp import web

VERSION = "v23.0"
APP_SECRET = "fake-app-secret"
VERIFY_TOKEN = "fake-verify-token"
PAGE_ID = "110000000000001"
INSTAGRAM_ID = "17841400000000001"
PAGE_TOKEN = "EAAfakepagetoken"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
WHATSAPP_TOKEN = "EAAfakewhatsapptoken"

FAILURES: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "rate-limit": (
        400,
        {"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613},
        {
            "X-Business-Use-Case-Usage": json.dumps(
                {
                    PAGE_ID: [
                        {
                            "type": "messenger",
                            "call_count": 100,
                            "total_cputime": 1,
                            "total_time": 1,
                            "estimated_time_to_regain_access": 1,
                        }
                    ]
                }
            )
        },
    ),
    "whatsapp-rate-limit": (
        400,
        {
            "message": "(#130429) Rate limit hit",
            "code": 130429,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Cloud API message throughput has been reached.",
            },
        },
        {"Retry-After": "60"},
    ),
    "temporary": (
        500,
        {
            "message": "An unexpected error has occurred. Please retry your request later.",
            "code": 2,
            "is_transient": True,
        },
        {},
    ),
    "token": (
        401,
        {
            "message": "Error validating access token: Session has expired.",
            "code": 190,
            "error_subcode": 463,
        },
        {},
    ),
    "permission": (
        403,
        {"message": "(#10) Application does not have permission for this action", "code": 10},
        {},
    ),
    "unavailable": (
        400,
        {
            "message": "(#551) This person isn't available right now.",
            "code": 551,
            "error_subcode": 1545041,
        },
        {},
    ),
}


REENGAGEMENT = (
    "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number."
)


def error_body(error: dict[str, Any]) -> dict[str, Any]:
    kind = (
        "OAuthException"
        if error.get("code") in (190, 10, 613, 100, 551)
        else "GraphMethodException"
    )
    return {"error": {"type": kind, "fbtrace_id": "AbCdEfGhIjK", **error}}


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeMeta:
    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.sent: list[dict[str, Any]] = []  # {"path", "body"} of every accepted call
        self.requests: list[dict[str, Any]] = []  # every call, accepted or not
        self._failures: deque[str] = deque()
        self.page_posts: list[dict[str, Any]] = []  # the Page's feed posts, oldest first
        self._hang = 0  # how many feed posts to make without answering
        self._drop = 0  # how many feed posts to make and then drop the connection
        self._hung = asyncio.Event()  # set on stop, to let hung handlers finish
        self.names: dict[str, str] = {}  # person id -> name, for the user profile API
        self._last_from: dict[str, datetime] = {}  # person id -> their last message
        self._commented: dict[str, datetime] = {}  # comment id -> when
        self._privately_answered: set[str] = set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{version}/{node}/{edge}", self._handle)
        app.router.add_get("/{version}/{node}", self._profile)
        app.router.add_get("/{version}/{node}/{edge}", self._read_edge)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        self._hung.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, *channels: str) -> dict[str, str]:
        """The variables that switch the given channels on against this fake."""
        env = {
            "META_APP_SECRET": APP_SECRET,
            "META_VERIFY_TOKEN": VERIFY_TOKEN,
            "META_GRAPH_URL": self.url,
        }
        if "facebook" in channels or "instagram" in channels:
            env.update(FACEBOOK_PAGE_ID=PAGE_ID, FACEBOOK_PAGE_ACCESS_TOKEN=PAGE_TOKEN)
        if "instagram" in channels:
            env.update(INSTAGRAM_ACCOUNT_ID=INSTAGRAM_ID)
        if "whatsapp" in channels:
            env.update(
                WHATSAPP_PHONE_NUMBER_ID=PHONE_NUMBER_ID, WHATSAPP_ACCESS_TOKEN=WHATSAPP_TOKEN
            )
        return env

    def fail_next(self, kind: str) -> None:
        self._failures.append(kind)

    def hang_after_post(self, count: int = 1) -> None:
        """Make the next `count` posts on the Page's feed but never answer: what a client sees
        when Meta accepted and the connection then dropped."""
        self._hang += count

    def drop_after_post(self, count: int = 1) -> None:
        """Make the next `count` posts on the Page's feed, then close the connection before
        answering: the client sees the server disconnect."""
        self._drop += count

    def texts(self, channel: str | None = None) -> list[str]:
        """What people were sent, in order: Send API texts, comment replies, WhatsApp texts and
        template names ("template:<name>")."""
        out = []
        for call in self.sent:
            body = call["body"]
            if channel is not None and call["channel"] != channel:
                continue
            if "message" in body and isinstance(body["message"], dict):
                out.append(str(body["message"].get("text")))
            elif "message" in body:
                out.append(str(body["message"]))
            elif body.get("type") == "text":
                out.append(str(body["text"]["body"]))
            elif body.get("type") == "template":
                out.append(f"template:{body['template']['name']}")
        return out

    # The Graph API.

    async def _profile(self, request: web.Request) -> web.Response:
        """The user profile API: Messenger's first_name/last_name, Instagram's name/username."""
        node = request.match_info["node"]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token != PAGE_TOKEN:
            return self._error(401, {"message": "Invalid OAuth access token.", "code": 190})
        name = self.names.get(node)
        if name is None:
            return self._error(
                400,
                {"message": f"Unsupported get request. Object {node} does not exist", "code": 100},
            )
        first, _, last = name.partition(" ")
        fields = request.query.get("fields", "").split(",")
        known = {"first_name": first, "last_name": last, "name": name,
                 "username": name.lower().replace(" ", "")}  # fmt: skip
        return web.json_response({"id": node, **{f: known[f] for f in fields if f in known}})

    async def _read_edge(self, request: web.Request) -> web.Response:
        """GET /<page-id>/posts: the Page's posts, newest first, `since` a Unix time, with the
        fields asked for (id always), paged by an `after` cursor."""
        node, edge = request.match_info["node"], request.match_info["edge"]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.requests.append({"path": f"{node}/{edge}", "query": dict(request.query)})
        if request.match_info["version"] != VERSION:
            return self._refuse(2500, "Unknown path components")
        if token != PAGE_TOKEN:
            return self._error(401, {"message": "Invalid OAuth access token.", "code": 190})
        if self._failures:
            status, error, headers = FAILURES[self._failures.popleft()]
            return self._error(status, error, headers)
        if node != PAGE_ID or edge not in ("posts", "feed"):
            return self._error(
                400, {"message": f"Unsupported get request: {node}/{edge}", "code": 100}
            )
        query = request.query
        since = query.get("since", "")
        limit = query.get("limit", "25")
        if (since and not since.isdigit()) or not limit.isdigit():
            return self._refuse(100, "(#100) since and limit must be numbers")
        posts = [
            p for p in reversed(self.page_posts)
            if not since or datetime.fromisoformat(p["created_time"]).timestamp() >= int(since)
        ]  # fmt: skip
        start = int(query.get("after", "0") or 0)
        page = posts[start : start + min(int(limit), 100)]
        fields = {"id", *query.get("fields", "").split(",")}
        body: dict[str, Any] = {"data": [{k: v for k, v in p.items() if k in fields} for p in page]}
        if page:
            end = start + len(page)
            body["paging"] = {"cursors": {"before": str(start), "after": str(end)}}
            if end < len(posts):
                body["paging"]["next"] = f"{self.url}{request.path}?after={end}"
        return web.json_response(body)

    async def _handle(self, request: web.Request) -> web.Response:
        node, edge = request.match_info["node"], request.match_info["edge"]
        try:
            body = await request.json()
        except ValueError:
            body = dict(await request.post())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        token = token or request.query.get("access_token", "")
        whatsapp = node == PHONE_NUMBER_ID
        self.requests.append({"path": f"{node}/{edge}", "body": body})
        if request.match_info["version"] != VERSION:
            return self._refuse(2500, "Unknown path components")
        if token != (WHATSAPP_TOKEN if whatsapp else PAGE_TOKEN):
            return self._error(401, {"message": "Invalid OAuth access token.", "code": 190})
        if self._failures:
            status, error, headers = FAILURES[self._failures.popleft()]
            return self._error(status, error, headers)
        if whatsapp and edge == "messages":
            return self._whatsapp(body)
        if node == "me" and edge == "messages":
            return self._send_api(body)
        if node == PAGE_ID and edge == "feed":  # a post on the Page
            if not str(body.get("message") or ""):
                return self._refuse(100, "(#100) Missing message")
            self.sent.append({"channel": "facebook", "path": f"{node}/{edge}", "body": body})
            post_id = f"{PAGE_ID}_{next(self._ids)}"
            link = f"https://www.facebook.com/{PAGE_ID}/posts/{post_id.split('_')[1]}"
            self.page_posts.append(
                {"id": post_id, "message": str(body["message"]),
                 "created_time": _graph_time(self.now()), "permalink_url": link}
            )  # fmt: skip
            if self._hang:
                self._hang -= 1
                await self._hung.wait()  # posted, never answered
            if self._drop and request.transport is not None:
                self._drop -= 1
                request.transport.close()  # posted; the answer is lost
            return web.json_response({"id": post_id})
        if edge in ("comments", "replies"):
            if not str(body.get("message") or ""):
                return self._refuse(100, "(#100) Missing message")
            self.sent.append({"channel": "meta", "path": f"{node}/{edge}", "body": body})
            return web.json_response({"id": f"{node}_reply{next(self._ids)}"})
        return self._error(
            400, {"message": f"Unsupported post request: {node}/{edge}", "code": 100}
        )

    def _send_api(self, body: dict[str, Any]) -> web.Response:
        recipient = body.get("recipient") or {}
        text = (body.get("message") or {}).get("text")
        if not isinstance(text, str) or not text:
            return self._error(
                400, {"message": "(#100) The parameter message is required", "code": 100}
            )
        if len(text) > 2000:
            return self._refuse(
                100, "(#100) Length of param message[text] must be less than or equal to 2000"
            )
        now = self.now()
        if "comment_id" in recipient:
            comment = str(recipient["comment_id"])
            if comment in self._privately_answered:
                return self._refuse(10900, "(#10900) Activity already replied to")
            if now - self._commented.get(comment, now) >= timedelta(days=7):
                return self._refuse(10903, "(#10903) This activity can't be replied to")
            self._privately_answered.add(comment)
        elif "id" in recipient:
            kind = body.get("messaging_type")
            last = self._last_from.get(str(recipient["id"]))
            if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
                return self._refuse(100, "(#100) Invalid messaging_type")
            if kind == "MESSAGE_TAG" and body.get("tag") != "HUMAN_AGENT":
                return self._refuse(100, "(#100) Invalid tag")
            if last is None:
                return self._refuse(100, "(#100) No matching user found", subcode=2018001)
            limit = timedelta(days=7) if kind == "MESSAGE_TAG" else timedelta(hours=24)
            if now - last >= limit:
                return self._refuse(
                    10, "(#10) This message is sent outside of allowed window.", subcode=2018278
                )
        else:
            return self._refuse(100, "(#100) param recipient must be non-empty")
        mid = f"m_{next(self._ids)}"
        self.sent.append({"channel": "meta", "path": "me/messages", "body": body, "id": mid})
        return web.json_response(
            {"recipient_id": str(recipient.get("id") or ""), "message_id": mid}
        )

    def _whatsapp(self, body: dict[str, Any]) -> web.Response:
        if body.get("messaging_product") != "whatsapp":
            return self._refuse(100, "(#100) The parameter messaging_product is required.")
        to = str(body.get("to") or body.get("recipient") or "")
        if body.get("type") == "text":
            last = self._last_from.get(to)
            if last is None or self.now() - last >= timedelta(hours=24):
                return self._refuse(131047, "(#131047) Re-engagement message", details=REENGAGEMENT)
            if not (body.get("text") or {}).get("body"):
                return self._refuse(100, "(#100) Invalid parameter")
        elif body.get("type") == "template":
            if not (body.get("template") or {}).get("name"):
                return self._refuse(
                    132001, "(#132001) Template name does not exist in the translation"
                )
        else:
            return self._refuse(100, "(#100) Invalid parameter")
        wamid = f"wamid.HBgL{next(self._ids):08d}"
        self.sent.append(
            {
                "channel": "whatsapp",
                "path": f"{PHONE_NUMBER_ID}/messages",
                "body": body,
                "id": wamid,
            }
        )
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }
        if body.get("type") == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return web.json_response(answer)

    def _refuse(
        self, code: int, message: str, subcode: int | None = None, details: str | None = None
    ) -> web.Response:
        error: dict[str, Any] = {"message": message, "code": code}
        if subcode is not None:
            error["error_subcode"] = subcode
        if details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return self._error(400, error)

    def _error(
        self, status: int, error: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(error_body(error), status=status, headers=headers or {})

    # Webhook deliveries.

    def _stamp(self) -> int:
        return int(self.now().timestamp() * 1000)

    def messaging(
        self,
        channel: str,
        text: str | None = "Hello",
        sender: str = "24000000000000001",
        *,
        attachments: list[str] | None = None,
        mid: str | None = None,
        name: str | None = "Priya Shah",
    ) -> dict[str, Any]:
        """A person's message to the Page (channel "facebook") or Instagram account; `name` is
        what the user profile API then says about the sender."""
        account = PAGE_ID if channel == "facebook" else INSTAGRAM_ID
        message: dict[str, Any] = {"mid": mid or f"m_{channel}_{next(self._ids)}"}
        if text is not None:
            message["text"] = text
        if attachments:
            message["attachments"] = [
                {"type": kind, "payload": {"url": f"https://lookaside.fbsbx.com/{kind}"}}
                for kind in attachments
            ]
        self._last_from[sender] = self.now()
        if name is not None:
            self.names[sender] = name
        return self._messaging_entry(
            channel,
            account,
            {
                "sender": {"id": sender},
                "recipient": {"id": account},
                "timestamp": self._stamp(),
                "message": message,
            },
        )

    def event(
        self,
        channel: str,
        kind: str,
        sender: str = "24000000000000001",
        *,
        mids: list[str] | None = None,
        watermark: datetime | None = None,
    ) -> dict[str, Any]:
        """Something that is not a message: "echo", "delivery", "read", "reaction", "postback".

        A delivery names `mids` (Messenger leaves them out for older clients) and a watermark;
        a Messenger read (message_reads) has only a watermark, an Instagram one (messaging_seen)
        only the mid read, the last of `mids`. The watermark is `watermark`, else now."""
        account = PAGE_ID if channel == "facebook" else INSTAGRAM_ID
        stamp = self._stamp()
        mark = stamp if watermark is None else int(watermark.timestamp() * 1000)
        base: dict[str, Any] = {
            "sender": {"id": sender},
            "recipient": {"id": account},
            "timestamp": stamp,
        }
        if kind == "echo":
            base = {
                "sender": {"id": account},
                "recipient": {"id": sender},
                "timestamp": stamp,
                "message": {
                    "mid": f"m_echo_{next(self._ids)}",
                    "is_echo": True,
                    "app_id": 1517776481860111,
                    "text": "Thanks for your message",
                },
            }
        elif kind == "delivery":
            base["delivery"] = {"mids": ["m_1"] if mids is None else mids, "watermark": mark}
            if mids == []:
                del base["delivery"]["mids"]
        elif kind == "read" and channel == "instagram":
            base["read"] = {"mid": (mids or ["m_1"])[-1]}
        elif kind == "read":
            base["read"] = {"watermark": mark}
        elif kind == "reaction":
            base["reaction"] = {"mid": "m_1", "action": "react", "reaction": "love", "emoji": "❤"}
        elif kind == "postback":
            base["postback"] = {
                "mid": f"m_pb_{next(self._ids)}",
                "title": "Get Started",
                "payload": "GET_STARTED",
            }
        return self._messaging_entry(channel, account, base)

    def _messaging_entry(self, channel: str, account: str, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "page" if channel == "facebook" else "instagram",
            "entry": [{"id": account, "time": self._stamp(), "messaging": [event]}],
        }

    def comment(
        self, channel: str, text: str, author: str = "5200000000000001", name: str = "Sam Smith"
    ) -> dict[str, Any]:
        """A comment on one of the Page's posts, or on the Instagram account's media."""
        n = next(self._ids)
        if channel == "facebook":
            post = f"{PAGE_ID}_90000{n}"
            comment_id = f"90000{n}_80000{n}"
            value: dict[str, Any] = {
                "from": {"id": author, "name": name},
                "post": {
                    "status_type": "added_photos",
                    "is_published": True,
                    "updated_time": self.now().strftime("%Y-%m-%dT%H:%M:%S+0000"),
                    "permalink_url": f"https://www.facebook.com/anytown/posts/pfbid0{n}",
                    "promotion_status": "inactive",
                    "id": post,
                },
                "message": text,
                "post_id": post,
                "comment_id": comment_id,
                "created_time": int(self.now().timestamp()),
                "item": "comment",
                "parent_id": post,
                "verb": "add",
            }
            change = {"field": "feed", "value": value}
            account, kind = PAGE_ID, "page"
        else:
            comment_id = f"1780000000000{n}"
            value = {
                "from": {"id": author, "username": name.lower().replace(" ", "")},
                "media": {"id": f"1790000000000{n}", "media_product_type": "FEED"},
                "id": comment_id,
                "text": text,
            }
            change = {"field": "comments", "value": value}
            account, kind = INSTAGRAM_ID, "instagram"
        self._commented[comment_id] = self.now()
        return {
            "object": kind,
            "entry": [{"id": account, "time": self._stamp(), "changes": [change]}],
        }

    def whatsapp(
        self,
        text: str | None = "Hello",
        sender: str = "447700900001",
        name: str = "Kerry Jones",
        *,
        kind: str = "text",
    ) -> dict[str, Any]:
        """A person's WhatsApp message ("text", "image", "audio", "reaction")."""
        n = next(self._ids)
        message: dict[str, Any] = {
            "from": sender,
            "id": f"wamid.IN{n:010d}",
            "timestamp": str(int(self.now().timestamp())),
            "type": kind,
        }
        if kind == "text":
            message["text"] = {"body": text}
        elif kind == "image":
            message["image"] = {
                "caption": text,
                "mime_type": "image/jpeg",
                "sha256": "abc=",
                "id": f"{n}0000",
            }
        elif kind == "audio":
            message["audio"] = {
                "mime_type": "audio/ogg; codecs=opus",
                "sha256": "abc=",
                "id": f"{n}0000",
                "voice": True,
            }
        elif kind == "reaction":
            message["reaction"] = {"message_id": "wamid.OUT1", "emoji": "👍"}
        if kind != "reaction":
            self._last_from[sender] = self.now()
        return self._whatsapp_change(
            {"contacts": [self._contact(sender, name)], "messages": [message]}
        )

    def whatsapp_status(
        self, wamid: str, status: str, to: str = "447700900001", at: datetime | None = None
    ) -> dict[str, Any]:
        """What became of a message we sent ("sent", "delivered", "read", "failed"), at `at`
        (else now)."""
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "recipient_id": to,
            "timestamp": str(int((at or self.now()).timestamp())),
        }
        if status == "failed":
            entry["errors"] = [
                {
                    "code": 131026,
                    "title": "Message undeliverable",
                    "message": "Message undeliverable",
                    "error_data": {"details": "Unable to deliver message."},
                }
            ]
        else:
            entry["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "service"}}
            entry["pricing"] = {
                "billable": False,
                "pricing_model": "PMP",
                "category": "service",
                "type": "free_customer_service",
            }
        return self._whatsapp_change({"contacts": [self._contact(to, "")], "statuses": [entry]})

    def _contact(self, wa_id: str, name: str) -> dict[str, Any]:
        # user_id: the business-scoped user id Meta now sends beside (or instead of) wa_id.
        return {"profile": {"name": name}, "wa_id": wa_id, "user_id": f"GB.{wa_id}"}

    def _whatsapp_change(self, value: dict[str, Any]) -> dict[str, Any]:
        metadata = {"display_phone_number": "447700900000", "phone_number_id": PHONE_NUMBER_ID}
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": metadata,
                                **value,
                            },
                        }
                    ],
                }
            ],
        }

    async def deliver(
        self, delivery: dict[str, Any], url: str, secret: str | None = APP_SECRET
    ) -> int:
        """POST a delivery to a webhook as Meta does: the raw body signed with the app secret."""
        assert self._session is not None
        body = json.dumps(delivery, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Hub-Signature-256"] = sign(body, secret)
        async with self._session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status
