"""WhatsApp Business, through Meta's Cloud API.

Webhook at /webhooks/whatsapp (object "whatsapp_business_account"), with the handshake and the
signature of every Meta webhook (bot.channels.meta). Each `messages` change carries, for our
phone number (value.metadata.phone_number_id; other numbers of the same business account are
not ours to answer), the people's `messages`, their `contacts` (the profile name becomes the
sender's name) and the `statuses` of what we sent. A message is known by its wamid, so a
redelivery is stored and answered once; reactions and system messages are not queued, media is
queued with a note of what it was. A status never makes a queue item: "failed" (a reply Meta
accepted and then could not deliver) makes that reply a dead letter with Meta's reason, for the
team to see; "delivered" and "read" are recorded on the reply, by its wamid, at the status's
time, for the inbox to show (a read covers the replies sent to that person before it); a
status for a wamid we never sent is ignored.

Opt-out, as on X (bot.channels.optout): a message whose whole text is STOP (any case, with or
without a full stop) turns automatic replies off for that person; START turns them back on.
Neither is queued for the team, and nothing is sent in answer: WhatsApp is private, and X
answers neither command by DM either.

Sending is POST /<version>/<phone-number-id>/messages with messaging_product "whatsapp". The
24-hour customer service window (bot.windows) is checked when a reply is sent: inside it, text;
after it, only an approved template, which the inbox offers when rules.toml names one
([channels.whatsapp] template and template_language). A delivery to "template:<wa id>" sends that
template; the text stored with it is what the team sees in the inbox.

We call the Graph API with aiohttp rather than through pywa: see bot.channels.meta for why; the
tests check our fake's formats with pywa's own parsing.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.channels import Capabilities, Limits, Undeliverable, optout
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
from bot.models import Delivery, Message
from bot.web import State, receive
from bot.windows import window

log = logging.getLogger("bot.whatsapp")

TEMPLATE = "template:"
_MEDIA = ("image", "video", "audio", "document", "sticker", "location", "contacts")
_IGNORED = ("reaction", "system", "unsupported", "request_welcome", "ephemeral")


class WhatsAppChannel:
    name = "whatsapp"
    # Cloud API throughput is 80 messages a second by default; Meta refuses more than about one
    # message every 6 seconds to one person (error 131056, the pair rate limit).
    limits = Limits(per_second=20.0, per_recipient_seconds=6.0)
    capabilities = Capabilities(max_length=4096, threads=False, groups=False)

    def __init__(self, state: State, settings: MetaSettings) -> None:
        settings.check(self.name)
        self.state = state
        self.settings = settings
        self.graph = Graph(settings, settings.whatsapp_token)
        self.alarm = Alarm(state, self.name)

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
            request, self.settings.app_secret, "whatsapp_business_account", self.process
        )

    async def process(self, data: dict[str, Any]) -> int:
        stored = 0
        for entry in _list(data.get("entry")):
            for change in _list(entry.get("changes") if isinstance(entry, dict) else None):
                if not isinstance(change, dict) or change.get("field") != "messages":
                    continue
                value = change.get("value")
                if not isinstance(value, dict):
                    continue
                metadata = _dict(value.get("metadata"))
                if str(metadata.get("phone_number_id", "")) != self.settings.phone_number_id:
                    continue
                names = {
                    str(c.get(key)): str((c.get("profile") or {}).get("name") or "")
                    for c in _list(value.get("contacts"))
                    if isinstance(c, dict)
                    for key in ("wa_id", "user_id")
                    if c.get(key)
                }
                for raw in _list(value.get("messages")):
                    message = self.message(raw, names)
                    if message is None or await self._opt(message):
                        continue
                    await receive(self.state, message)
                    stored += 1
                for status in _list(value.get("statuses")):
                    await self.status(status)
        return stored

    def message(self, raw: Any, names: dict[str, str]) -> Message | None:
        if not isinstance(raw, dict) or raw.get("type") in _IGNORED:
            return None
        # The phone number, or the business-scoped user id of someone who hides theirs behind a
        # WhatsApp username (then there is no "from").
        sender = str(raw.get("from") or raw.get("from_user_id") or "")
        wamid, kind = raw.get("id"), raw.get("type")
        if not sender or not isinstance(wamid, str) or not wamid:
            return None
        text = ""
        if kind == "text":
            text = str((raw.get("text") or {}).get("body") or "")
        elif kind == "button":
            text = str((raw.get("button") or {}).get("text") or "")
        elif kind == "interactive":
            chosen = raw.get("interactive") or {}
            reply = chosen.get("button_reply") or chosen.get("list_reply") or {}
            text = str(reply.get("title") or "")
        notes = ""
        if kind in _MEDIA:
            media = _dict(raw.get(str(kind)))
            text = str(media.get("caption") or "")
            voice = kind == "audio" and media.get("voice")
            notes = "[voice note]" if voice else attachment_notes([str(kind)])
        text = " ".join(part for part in (text.strip(), notes) if part)
        if not text:
            return None
        return Message(
            channel=self.name,
            platform_id=wamid,
            sender=sender,
            text=text,
            received_at=self.state.clock(),
            sender_name=names.get(sender) or None,
            conversation=sender,
        )

    async def _opt(self, message: Message) -> bool:
        """STOP or START: recorded, and nothing else happens for that message."""
        return await optout.obey(self.state.store, self.name, message.sender, message.text)

    async def status(self, status: Any) -> None:
        """What became of a reply we sent, never a queue item: "failed" makes the sent reply a
        dead letter with Meta's reason; "delivered" and "read" are recorded on it (raises
        StoreError if that cannot be stored, so Meta redelivers); "sent" is only logged."""
        if not isinstance(status, dict):
            return
        state, wamid = str(status.get("status") or ""), str(status.get("id") or "")
        extra: dict[str, object] = {"channel": self.name, "platform_message_id": wamid}
        extra["status"] = state
        if state in ("delivered", "read") and wamid:
            now = self.state.clock()
            at = min(unix_time(status.get("timestamp")) or now, now)  # never in our future
            changed = await self.state.store.receipt(self.name, wamid, state == "read", at)
            log.debug("whatsapp reply status", extra={**extra, "changed": changed})
            return
        if state != "failed" or not wamid:
            log.debug("whatsapp reply status", extra=extra)
            return
        errors = [e for e in _list(status.get("errors")) if isinstance(e, dict)]
        reason = "; ".join(f"{e.get('code')} {e.get('title', '')}".strip() for e in errors)
        reason = f"WhatsApp could not deliver it: {reason or 'no reason given'}"
        await self.state.store.not_delivered(self.name, wamid, reason)
        log.warning("whatsapp reply not delivered", extra={**extra, "error": reason})

    # Sending.

    async def send(self, delivery: Delivery) -> str | None:
        try:
            sent = await self._send(delivery)
        except NeedsFix as problem:
            await self.alarm.raise_once(problem)
            raise
        await self.alarm.clear()
        messages = sent.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id") or "") or None
        return None

    async def _send(self, delivery: Delivery) -> dict[str, Any]:
        path = f"{self.settings.phone_number_id}/messages"
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        if delivery.recipient.startswith(TEMPLATE):
            rules = self.state.triage.rules.channel(self.name)
            if not rules.template:
                raise Undeliverable(
                    "Not sent: rules.toml names no WhatsApp template ([channels.whatsapp] "
                    "template)."
                )
            body.update(
                _address(delivery.recipient.removeprefix(TEMPLATE)),
                type="template",
                template={"name": rules.template, "language": {"code": rules.template_language}},
            )
            return await self.graph.post(path, body)
        found = await last_message(self.state, delivery)
        if found is None:
            raise Undeliverable("Not sent: the message it answers is no longer stored.")
        rule = window(self.name, found[1], self.state.clock(), human=delivery.kind == "human")
        if rule.how != "response":
            raise Undeliverable(f"Not sent: {rule.rule}.")
        body.update(
            _address(delivery.recipient),
            type="text",
            text={"preview_url": False, "body": delivery.text},
        )
        return await self.graph.post(path, body)


def _address(recipient: str) -> dict[str, str]:
    """A phone number goes in "to"; a business-scoped user id in "recipient"."""
    return {"to": recipient} if recipient.isdigit() else {"recipient": recipient}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
