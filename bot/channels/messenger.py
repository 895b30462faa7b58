"""Facebook Page messages (the Messenger Platform) and Instagram messages, through one Meta app.

One class serves both: Facebook at /webhooks/facebook (object "page"), Instagram at
/webhooks/instagram (object "instagram"), each switched on by its own variables and sending
through the Send API (POST /<version>/me/messages) with the Page's token; Instagram messaging goes
through the Page the Instagram account is linked to. The handshake, the signature and the
mapping of Meta's errors are in bot.channels.meta.

What is heard, from each entry of a delivery:
- `messaging` events with a `message`: queued and answered, known by the message's `mid` so a
  redelivery is stored and answered once. Attachments are queued with a note of what they were.
  The sender's name comes from Meta's user profile API (once per sender, given up after 2 s:
  the webhook's answer waits for it).
  Echoes of what the Page sent (`is_echo`), delivery and read receipts, reactions, postbacks,
  referrals, edits and unsent messages never make a queue item or a reply;
- `messaging` events with a `delivery` (Messenger's message_deliveries) or a `read` (Messenger's
  message_reads, Instagram's messaging_seen): recorded on the replies they cover, for the inbox
  to show. A delivery names the messages delivered (`mids`, not always sent) and a watermark; a
  Messenger read has only a watermark, an Instagram one the `mid` read. A watermark is Meta's
  time: every message Meta timestamped at or before it, to that person, was delivered or read;
  a reply's Meta time lies between when our send began and when Meta answered it, so a reply
  counts when its send began by the watermark. A read covers what was sent before it too;
- `changes` with a comment (Facebook `feed` items of type comment, verb add; Instagram
  `comments`): queued for the team with a link to the comment, and no automatic public answer.
  An emergency gets the emergency response as a private reply (Meta allows one per comment, within
  7 days). The Page's own comments are not heard.

Opt-out, as on X (bot.channels.optout): a message whose whole text is STOP (any case, with or
without a full stop) turns automatic replies off for that person; START turns them back on.
Neither is queued for the team, and nothing is sent in answer. A comment is never read as one: a
comment gets no automatic answer to turn off (an emergency's private reply goes whatever the
person said before), and "STOP" under a post is more often about the post.

Replies honour Meta's windows (bot.windows), checked again when the outbox sends, since a reply
may have waited: the automatic reply inside the 24-hour standard messaging window (RESPONSE); a
person's reply from 24 hours to 7 days with the HUMAN_AGENT tag (MESSAGE_TAG); nothing after.
A delivery's recipient says how it goes: a person's id (Send API), "comment:<id>" (a private
reply to that comment) or "public:<id>" (a public reply under it).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.channels import Capabilities, Limits, MaybePosted, TryLater, Undeliverable, optout
from bot.channels.meta import (
    Alarm,
    Graph,
    MetaSettings,
    NeedsFix,
    attachment_notes,
    handshake,
    last_message,
    receive_webhook,
    unix_time,
)
from bot.channels.posting import Posted, same_text
from bot.models import Delivery, Message
from bot.web import State, receive
from bot.windows import COMMENT, private_reply_window, window

log = logging.getLogger("bot.messenger")

PUBLIC = "public:"
NAME_SECONDS = 2.0  # the profile lookup delays the webhook's answer, so it gives up quickly
NO_PUBLIC_ANSWER = "comment: no automatic public answer"
# Text limits: Messenger 2,000 characters; Instagram 1,000 (bytes of UTF-8, per Meta; our
# templates keep to 1,000 characters and the Instagram variants of long ones are shorter).
LIMITS = {"facebook": 2000, "instagram": 1000}
OBJECTS = {"facebook": "page", "instagram": "instagram"}
FIND_PAGES = 5  # of 100 posts: far more than a Page makes between a crash and the check


class MessengerChannel:
    """Facebook (name "facebook") or Instagram (name "instagram")."""

    # The Send API allows far more (about 300 calls a second per Page); Meta watches bursts to
    # one person, so replies to one person go at least a second apart.
    limits = Limits(per_second=20.0, per_recipient_seconds=1.0)

    def __init__(self, state: State, settings: MetaSettings, name: str) -> None:
        settings.check(name)
        self.name = name
        self.state = state
        self.settings = settings
        self.capabilities = Capabilities(
            max_length=LIMITS[name], threads=True, groups=False, posts=name == "facebook"
        )
        self.account = settings.page_id if name == "facebook" else settings.instagram_id
        self.graph = Graph(settings, settings.page_token)
        self.alarm = Alarm(state, name)
        self._names: dict[str, str | None] = {}  # sender id -> name, as the profile API gave it

    # Lifecycle.

    def routes(self) -> list[web.RouteDef]:
        route = f"/webhooks/{self.name}"
        return [web.get(route, self.verify), web.post(route, self.webhook)]

    async def start(self) -> None:
        await self.graph.start()
        log.info("meta channel ready", extra={"channel": self.name})

    async def stop(self) -> None:
        await self.graph.stop()

    # Receiving.

    async def verify(self, request: web.Request) -> web.Response:
        return handshake(request, self.settings.verify_token)

    async def webhook(self, request: web.Request) -> web.Response:
        return await receive_webhook(
            request, self.settings.app_secret, OBJECTS[self.name], self.process
        )

    async def process(self, data: dict[str, Any]) -> int:
        """Store what a delivery carries; return how many messages and comments it held."""
        stored = 0
        for entry in _list(data.get("entry")):
            if not isinstance(entry, dict):
                continue
            for event in _list(entry.get("messaging")):
                if isinstance(event, dict) and ("delivery" in event or "read" in event):
                    await self.receipt(event)
                    continue
                message = self.message(event)
                if message is None or await self._opt(message):
                    continue
                name = await self.name_of(message.sender)
                await receive(self.state, replace(message, sender_name=name))
                stored += 1
            for change in _list(entry.get("changes")):
                comment = self.comment(change)
                if comment is not None:
                    await receive(self.state, self._answerable(comment))
                    stored += 1
        return stored

    async def _opt(self, message: Message) -> bool:
        """STOP or START: recorded, and nothing else happens for that message."""
        return await optout.obey(self.state.store, self.name, message.sender, message.text)

    def message(self, event: Any) -> Message | None:
        """A person's message to us, or None for everything that is not one."""
        if not isinstance(event, dict) or not isinstance(event.get("message"), dict):
            return None  # receipts, reactions, postbacks, referrals, edits: nothing to answer
        body = event["message"]
        sender = str((event.get("sender") or {}).get("id") or "")
        if body.get("is_echo") or body.get("is_deleted") or not sender or sender == self.account:
            return None
        mid = body.get("mid")
        if not isinstance(mid, str) or not mid:
            return None
        kinds = [str(a.get("type")) for a in _list(body.get("attachments")) if isinstance(a, dict)]
        text = " ".join(
            part for part in (str(body.get("text") or "").strip(), attachment_notes(kinds)) if part
        )
        if body.get("is_unsupported") and not text:
            text = "[a message this channel cannot show]"
        if not text:
            return None
        return Message(
            channel=self.name,
            platform_id=mid,
            sender=sender,
            text=text,
            received_at=self.state.clock(),
            conversation=sender,
        )

    async def receipt(self, event: dict[str, Any]) -> None:
        """A delivery or read receipt from the person, recorded on the replies it covers (raises
        StoreError if it cannot be, so Meta redelivers). Ids and people we never sent to are
        ignored."""
        person = str(_dict(event.get("sender")).get("id") or "")
        read = "read" in event
        body = _dict(event.get("read" if read else "delivery"))
        if not person or person == self.account:
            return
        now = self.state.clock()
        at = min(unix_time(event.get("timestamp"), milliseconds=True) or now, now)
        mids = [m for m in [*_list(body.get("mids")), body.get("mid")] if isinstance(m, str) and m]
        store = self.state.store
        changed = 0
        for mid in mids:
            changed += await store.receipt(self.name, mid, read, at)
        watermark = unix_time(body.get("watermark"), milliseconds=True)
        if watermark is not None:
            changed += await store.receipts_until(self.name, person, watermark, read, at)
        kind = "read" if read else "delivery"
        log.debug("meta receipt", extra={"channel": self.name, "kind": kind, "changed": changed})

    async def name_of(self, sender: str) -> str | None:
        """The person's name from Meta's user profile API (Messenger: first and last name;
        Instagram: name, else username), so the team sees who wrote. Best effort, once per
        sender per process, and quick: without it the inbox shows the id."""
        if sender in self._names:
            return self._names[sender]
        fields = "first_name,last_name" if self.name == "facebook" else "name,username"
        found = await self.graph.get(sender, fields, NAME_SECONDS) or {}
        parts = [str(found.get(k) or "") for k in ("first_name", "last_name", "name")]
        name = " ".join(p for p in parts if p) or str(found.get("username") or "") or None
        if len(self._names) >= 10_000:
            self._names.clear()
        self._names[sender] = name
        return name

    def comment(self, change: Any) -> Message | None:
        """A comment on one of our posts, or None."""
        if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
            return None
        value = change["value"]
        author = value.get("from") if isinstance(value.get("from"), dict) else {}
        author_id = str(author.get("id") or "")
        if self.name == "facebook":
            if change.get("field") != "feed" or value.get("item") != "comment":
                return None
            if value.get("verb") != "add":
                return None  # edits and removals of comments
            comment_id = str(value.get("comment_id") or "")
            text = str(value.get("message") or "").strip()
            name = author.get("name")
            post = value.get("post") if isinstance(value.get("post"), dict) else {}
            permalink = post.get("permalink_url")
            link = (
                f"{permalink}?comment_id={comment_id.rpartition('_')[2]}"
                if isinstance(permalink, str) and permalink
                else f"https://www.facebook.com/{comment_id}"
            )
        else:
            if change.get("field") != "comments":
                return None
            comment_id = str(value.get("id") or "")
            text = str(value.get("text") or "").strip()
            name = author.get("username")
            media = value.get("media") if isinstance(value.get("media"), dict) else {}
            link = f"Instagram post {media.get('id', '(unknown)')}, comment {comment_id}"
        if not comment_id or not author_id or author_id in (self.account, self.settings.page_id):
            return None  # our own comments
        return Message(
            channel=self.name,
            platform_id=COMMENT + comment_id,
            sender=author_id,
            text=f"{text or '[a comment with no text]'}\n\n[Comment: {link}]",
            received_at=self.state.clock(),
            sender_name=str(name) if name else None,
            conversation=COMMENT + comment_id,  # a private reply, for an emergency
            thread=comment_id,
        )

    def _answerable(self, comment: Message) -> Message:
        """An emergency comment is answered privately; any other gets no automatic answer."""
        draft = self.state.triage.draft(comment, typical=self.state.typical)
        if draft.emergency:
            return comment
        return replace(comment, no_reply=NO_PUBLIC_ANSWER)

    # Sending.

    async def send(self, delivery: Delivery) -> str | None:
        try:
            if delivery.recipient.startswith(PUBLIC):
                sent = await self._public(delivery.recipient.removeprefix(PUBLIC), delivery.text)
            else:
                sent = await self._private(delivery)
        except NeedsFix as problem:
            await self.alarm.raise_once(problem)
            raise
        await self.alarm.clear()
        found = sent.get("message_id") or sent.get("id")
        return str(found) if found else None

    async def post(self, text: str) -> Posted:
        """An announcement on the Page's feed (Facebook only): POST /<page-id>/feed."""
        if self.name != "facebook":
            raise Undeliverable(f"{self.name} cannot post announcements")
        try:
            sent = await self.graph.post(f"{self.account}/feed", {"message": text}, once=True)
        except NeedsFix as problem:
            await self.alarm.raise_once(problem)
            raise
        post_id = str(sent.get("id") or "")
        if not post_id:
            raise MaybePosted("Facebook answered without the post's id: check the Page")
        return Posted(post_id, f"https://www.facebook.com/{post_id}")

    async def find(self, text: str, since: datetime) -> Posted | None:
        """The Page's own post with this text since `since` (GET /<page-id>/posts), or None."""
        if self.name != "facebook":
            raise Undeliverable(f"{self.name} has no announcements to look for")
        params = {"fields": "message,created_time,permalink_url", "limit": "100",
                  "since": str(int(since.timestamp()))}  # fmt: skip
        for _ in range(FIND_PAGES):
            answer = await self.graph.read(f"{self.account}/posts", params)
            for post in _list(answer.get("data")):
                if not isinstance(post, dict) or not post.get("id"):
                    continue
                at = _graph_time(post.get("created_time"))
                if same_text(text, str(post.get("message") or "")) and (at is None or at >= since):
                    post_id = str(post["id"])
                    link = post.get("permalink_url") or f"https://www.facebook.com/{post_id}"
                    return Posted(post_id, str(link))
            paging = answer.get("paging")
            after = paging.get("cursors", {}).get("after") if isinstance(paging, dict) else None
            if not isinstance(paging, dict) or not paging.get("next") or not after:
                return None
            params = {**params, "after": str(after)}
        raise TryLater(f"more than {FIND_PAGES * 100} posts on the Page since {since:%H:%M} UTC")

    async def _public(self, comment_id: str, text: str) -> dict[str, Any]:
        edge = "comments" if self.name == "facebook" else "replies"
        return await self.graph.post(f"{comment_id}/{edge}", {"message": text})

    async def _private(self, delivery: Delivery) -> dict[str, Any]:
        found = await last_message(self.state, delivery)
        now = self.state.clock()
        if delivery.recipient.startswith(COMMENT):
            commented_at = found[0].received_at if found else now
            rule = private_reply_window(commented_at, now)
            if not rule.open:
                raise Undeliverable(f"Not sent: {rule.rule}.")
            recipient = {"comment_id": delivery.recipient.removeprefix(COMMENT)}
            return await self.graph.post(
                "me/messages", {"recipient": recipient, "message": {"text": delivery.text}}
            )
        if found is None:
            raise Undeliverable("Not sent: the message it answers is no longer stored.")
        rule = window(self.name, found[1], now, human=delivery.kind == "human")
        if not rule.open:
            raise Undeliverable(f"Not sent: {rule.rule}.")
        body: dict[str, Any] = {
            "recipient": {"id": delivery.recipient},
            "messaging_type": "RESPONSE",
            "message": {"text": delivery.text},
        }
        if rule.how == "human_agent":
            body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        return await self.graph.post("me/messages", body)


def _graph_time(value: Any) -> datetime | None:
    """Graph API times: "2026-11-02T09:00:00+0000"."""
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
