"""Alerts to the team: emergencies at once, new messages in batches, and promises about to break.

Alerts are outbox rows like replies (kind "alert"), so the sender loop sends them with the same
limits, retries and dead letters. The routes come from rules.toml ([alerts] and each [[team]]'s
`alerts`); the secrets (webhook addresses, the SMTP password) from the environment only.

Every process runs an Alerter. Two never alert the same item: marking an item and queuing the
alert that names it happen in one transaction (Store.alert), so an item is alerted by the one
process that marked it, and a crash loses neither; a team's batch is claimed as a job, so one
process at a time composes it and at most one goes per `batch`.

This module also holds the channels that only send alerts: email (SMTP, with the standard
library's smtplib in a thread) and Slack and Microsoft Teams incoming webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import partial
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from bot.channels import Capabilities, Channel, Limits, TryLater, Undeliverable
from bot.config import Route, Rules
from bot.errors import StoreError
from bot.imap import MailboxError, TokenSource, xoauth2
from bot.models import Delivery, Outgoing, QueueItem
from bot.web import State

log = logging.getLogger("bot.alerts")

ALERT_SECONDS = 5.0  # how often each process looks for something to alert
JOB_LEASE = timedelta(minutes=1)  # far longer than composing an alert takes
STALE = timedelta(days=1)  # older new messages (alerts just switched on) are not alerted
MAX_LISTED = 20  # items named in one alert; the rest are counted
SEND_SECONDS = 20.0  # a webhook or mail server that takes longer is tried again later
SMTP_THREADS = 2  # alerts talking to the mail server at once: a hung server holds no more
DEFAULT_GROUP = "default"  # messages with no team, or a team without routes


# The channels that only send alerts.


class EmailChannel:
    """Alerts by email through an SMTP server: SMTP_* from the environment.

    The first line of an alert is the subject, the rest the body. One connection per alert:
    alerts are few, and a connection held open would be dropped by the server between them.
    smtplib blocks, so it runs in threads of the channel's own: SMTP_THREADS of them, so that
    a mail server that hangs holds those and no more (a send the sender gave up on while it
    waited for a thread is dropped from the queue, not run later).
    """

    name = "email"
    limits = Limits(per_second=2.0, per_recipient_seconds=1.0)
    capabilities = Capabilities(max_length=20_000, threads=False, groups=True)

    def __init__(self, env: Mapping[str, str]) -> None:
        self.host = (env.get("SMTP_HOST") or "").strip()
        port = (env.get("SMTP_PORT") or "587").strip()
        self.username = (env.get("SMTP_USERNAME") or "").strip()
        self.password = env.get("SMTP_PASSWORD") or ""
        self.sender = (env.get("SMTP_FROM") or "").strip() or self.username
        starttls = (env.get("SMTP_STARTTLS") or "1").strip().lower()
        self.starttls = starttls not in ("0", "false", "no", "off")
        self.problem: str | None = None
        # OAuth 2.0 instead of SMTP_PASSWORD (Microsoft 365 and Google refuse passwords): the
        # email channel hands over its IMAP token source (bot.imap) when SMTP_PASSWORD is empty.
        self.tokens: TokenSource | None = None
        self.port = int(port) if port.isdigit() else 0
        if not self.host:
            self.problem = "SMTP_HOST is not set"
        elif not 0 < self.port < 65536:
            self.problem = f"SMTP_PORT is {port!r}; expected a port number such as 587"
        elif "@" not in self.sender:
            self.problem = "SMTP_FROM is not set (the address alerts come from)"
        self._threads: ThreadPoolExecutor | None = None

    def routes(self) -> list[web.RouteDef]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        threads, self._threads = self._threads, None
        if threads is not None:  # a thread still talking to the server ends at its timeout
            threads.shutdown(wait=False, cancel_futures=True)

    async def send(self, delivery: Delivery) -> str | None:
        if self.problem:
            raise Undeliverable(f"email is not set up: {self.problem}")
        subject, _, body = delivery.text.partition("\n")
        message = EmailMessage()
        message["Subject"] = subject.strip()
        message["From"] = self.sender
        message["To"] = delivery.recipient
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
        message.set_content(body.strip() + "\n")
        return await self.transmit(message, delivery.recipient)

    async def transmit(self, message: EmailMessage, recipient: str) -> str:
        """Send one composed mail (an alert, or the email channel's reply) to one recipient;
        return its Message-ID. Raises TryLater or Undeliverable."""
        if self.problem:
            raise Undeliverable(f"email is not set up: {self.problem}")
        if self._threads is None:
            self._threads = ThreadPoolExecutor(SMTP_THREADS, thread_name_prefix="smtp")
        # Cancelled while queued (the sender gave up), the future is cancelled and never runs.
        await asyncio.wrap_future(self._threads.submit(self._send, message, recipient))
        return str(message["Message-ID"])

    def _send(self, message: EmailMessage, recipient: str) -> None:
        helo = socket.gethostname()  # not getfqdn(): no DNS lookup before every alert
        try:
            client: smtplib.SMTP
            if self.port == 465:  # implicit TLS ("SMTPS")
                context = ssl.create_default_context()
                client = smtplib.SMTP_SSL(
                    self.host, self.port, helo, timeout=SEND_SECONDS, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, helo, timeout=SEND_SECONDS)
            with client:
                if self.port != 465 and self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username and self.tokens is not None:
                    sasl = xoauth2(self.username, self.tokens.token()).decode()
                    client.ehlo_or_helo_if_needed()
                    client.auth("XOAUTH2", lambda _challenge=None: sasl)
                elif self.username:
                    client.login(self.username, self.password)
                client.send_message(message, self.sender, [recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            _smtp_failure(f"the mail server refused {recipient}", code, reply)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            _smtp_failure("the mail server refused the mail", exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPAuthenticationError as exc:
            how = "the OAuth 2.0 token" if self.tokens is not None else "SMTP_PASSWORD"
            raise TryLater(
                f"the mail server refused SMTP_USERNAME and {how} ({exc.smtp_code})"
            ) from None
        except MailboxError as exc:  # no token: the sign-in service refused or is unreachable
            raise TryLater(f"no OAuth 2.0 token to send with: {exc}") from None
        except smtplib.SMTPNotSupportedError:
            raise TryLater(
                "the mail server does not offer STARTTLS; set SMTP_STARTTLS=0 only for a relay "
                "on a network you trust"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS, 4xx
            raise TryLater(f"the mail server failed: {type(exc).__name__}: {exc}") from None


def _smtp_failure(what: str, code: int, reply: bytes | str) -> None:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    reason = f"{what}: {code} {text}".strip()
    if code >= 500:  # permanent: no such mailbox, rejected as spam, too big
        raise Undeliverable(reason)
    raise TryLater(reason)  # 4xx: greylisting, mailbox full for now


class WebhookChannel:
    """Slack or Microsoft Teams incoming webhooks. The recipient is the route's NAME; its URL is
    in SLACK_WEBHOOK_<NAME> or TEAMS_WEBHOOK_<NAME>, and is never logged or stored."""

    limits = Limits(per_second=4.0, per_recipient_seconds=1.0)  # Slack: 1 a second a webhook
    capabilities = Capabilities(max_length=4000, threads=False, groups=True)

    def __init__(self, kind: str, env: Mapping[str, str]) -> None:
        if kind not in ("slack", "teams"):
            raise ValueError(f"no webhook channel for {kind!r}")
        self.name = kind
        self.prefix = f"{kind.upper()}_WEBHOOK_"
        self.urls = {
            key.removeprefix(self.prefix): value.strip()
            for key, value in env.items()
            if key.startswith(self.prefix) and value.strip()
        }
        self._session: ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return []

    async def start(self) -> None:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=SEND_SECONDS))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def payload(self, text: str) -> dict[str, Any]:
        if self.name == "slack":
            return {"text": text}
        # Microsoft's documented message with an Adaptive Card, which both the Teams "Incoming
        # Webhook" connector and a Workflows "when a webhook request is received" flow accept.
        title, _, body = text.partition("\n")
        blocks: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
        ]
        blocks += [
            {"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"}
            for line in body.strip().splitlines()
            if line.strip()
        ]
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.2",
            "body": blocks,
        }
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }

    async def send(self, delivery: Delivery) -> str | None:
        variable = f"{self.prefix}{delivery.recipient}"
        url = self.urls.get(delivery.recipient)
        if url is None:
            raise Undeliverable(f"{variable} is not set")
        await self.start()
        assert self._session is not None
        try:
            async with self._session.post(url, json=self.payload(delivery.text)) as response:
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
                body = (await response.text(errors="replace"))[:200].replace(url, variable)
        except TimeoutError:
            raise TryLater(f"{variable}: no answer within {SEND_SECONDS:g} s") from None
        except ClientError as exc:  # its text can name the URL: give only its type
            raise TryLater(f"{variable}: network error ({type(exc).__name__})") from None
        if 200 <= status < 300:
            if self.name == "teams" and "HTTP error 429" in body:  # the old connector's way
                raise TryLater(f"{variable}: Teams rate limit", retry_after)
            return None
        reason = f"{variable}: the webhook answered {status} {body}".strip()
        if status == 429 or status == 408 or status >= 500:
            raise TryLater(reason, retry_after)
        raise Undeliverable(reason)  # 404 or 410: deleted or archived; 400, 403: refused


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare for webhooks: then back off)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def alert_channels(env: Mapping[str, str]) -> dict[str, Channel]:
    """The channels that only send alerts, keyed by route kind. Telegram alerts use the
    Telegram channel, when it runs."""
    return {
        "email": EmailChannel(env),
        "slack": WebhookChannel("slack", env),
        "teams": WebhookChannel("teams", env),
    }


def route_problems(rules: Rules, env: Mapping[str, str], running: set[str]) -> list[str]:
    """What keeps a route in rules.toml from working here; names variables, never values."""
    problems = []
    email = EmailChannel(env)
    for route in sorted(rules.alert_routes(), key=str):
        variable = route.variable
        if variable is not None and not (env.get(variable) or "").strip():
            problems.append(f"alert route {route} needs {variable}, which is not set")
        elif route.kind == "email" and email.problem:
            problems.append(f"alert route {route} cannot send: {email.problem}")
        elif route.kind == "telegram" and "telegram" not in running:
            problems.append(
                f"alert route {route} needs the Telegram channel (TELEGRAM_BOT_TOKEN); its "
                "alerts wait in the outbox until Telegram runs"
            )
    return problems


# Deciding what to alert.


class Alerter:
    """Puts alerts into the outbox: emergencies at once, new messages per team in batches, and
    a warning for each item about to break its promise."""

    def __init__(
        self,
        state: State,
        holder: str,
        env: Mapping[str, str] | None = None,
        running: set[str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.state = state
        self.holder = holder
        self.env = env or {}
        self.running = running or set()
        self.clock = clock or state.clock
        self._wake = asyncio.Event()
        self._checked: Rules | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.once()
            except StoreError as exc:
                log.warning("alerts paused: the database is unavailable", extra={"error": str(exc)})
            except Exception:
                log.exception("alerts failed")
            with contextlib.suppress(TimeoutError):  # not wait_for: on Python 3.11 it can
                async with asyncio.timeout(ALERT_SECONDS):  # swallow a cancel that comes with
                    await self._wake.wait()  # a wake, and then SIGTERM never ends the server

    def check(self, rules: Rules) -> None:
        """Log, once per set of rules, each route that cannot work here."""
        if rules is self._checked:
            return
        self._checked = rules
        for problem in route_problems(rules, self.env, self.running):
            log.error("alert route not usable", extra={"problem": problem})

    async def once(self) -> int:
        """Queue the alerts due now; return how many deliveries were queued."""
        rules = self.state.triage.rules
        self.check(rules)
        if not rules.alert_routes():
            return 0
        now = self.clock()
        queued = await self._new_messages(rules, now) + await self._near_breach(rules, now)
        if queued:
            self.state.wake()
        return queued

    async def _new_messages(self, rules: Rules, now: datetime) -> int:
        store = self.state.store
        items = await store.unalerted(now)
        stale = [i.id for i in items if i.received_at < now - STALE]
        if stale:
            skipped = await store.mark_alerted(stale, now)
            log.info("not alerted: older than a day", extra={"messages": skipped})
        items = [i for i in items if i.received_at >= now - STALE]
        queued = 0
        for item in (i for i in items if i.emergency):
            routes = rules.alerts.emergency or group_routes(rules, group_of(rules, item))
            if routes:  # another process may have alerted it already: then nothing is queued
                queued += await self._alert(
                    "emergency",
                    routes,
                    [item],
                    now,
                    lambda its: emergency_text(rules, its[0], now),
                    1,
                )
        groups: dict[str, list[QueueItem]] = {}
        for item in items:
            if not item.emergency:
                groups.setdefault(group_of(rules, item), []).append(item)
        for group, members in groups.items():
            routes = group_routes(rules, group)
            if not routes or now - members[0].received_at < rules.alerts.batch:
                continue  # no routes, or the batch is still collecting (oldest first)
            job = f"alerts:{group}"
            if not await store.claim_job(job, self.holder, now, rules.alerts.batch, JOB_LEASE):
                continue
            text_for = partial(batch_text, rules, group, now=now)
            queued += await self._alert("new messages", routes, members, now, text_for)
            await store.finish_job(job, self.holder, self.clock())
        return queued

    async def _near_breach(self, rules: Rules, now: datetime) -> int:
        store = self.state.store
        items = await store.near_breach(now + rules.alerts.before_breach)
        items = [i for i in items if group_routes(rules, group_of(rules, i))]
        if not items:
            return 0
        if not await store.claim_job("alerts:breach", self.holder, now, timedelta(0), JOB_LEASE):
            return 0
        groups: dict[str, list[QueueItem]] = {}
        for item in items:
            groups.setdefault(group_of(rules, item), []).append(item)
        queued = 0
        for group, members in groups.items():
            queued += await self._alert(
                "reply due",
                group_routes(rules, group),
                members,
                now,
                partial(breach_text, rules, group, now=now),
                breach=True,
            )
        await store.finish_job("alerts:breach", self.holder, self.clock())
        return queued

    async def _alert(
        self,
        what: str,
        routes: tuple[Route, ...],
        items: list[QueueItem],
        now: datetime,
        text_for: Callable[[list[QueueItem]], str],
        priority: int = 0,
        *,
        breach: bool = False,
    ) -> int:
        """Mark the items and queue one alert per route for those this process marked, in one
        transaction; return how many deliveries were queued."""
        by_id = {i.id: i for i in items}

        def compose(marked: list[int]) -> list[Outgoing]:
            mine = [by_id[i] for i in marked]
            text = text_for(mine)
            message_id = mine[0].id if len(mine) == 1 else None
            return [
                Outgoing(route.kind, route.target, "alert", text, message_id, priority)
                for route in routes
            ]

        marked = await self.state.store.alert(list(by_id), compose, now, breach=breach)
        if not marked:
            return 0
        log.info(
            "alert queued",
            extra={
                "alert": what,
                "references": [by_id[i].reference for i in marked],
                "routes": [str(r) for r in routes],
            },
        )
        return len(routes)


def _first(text_for: Callable[[QueueItem], str], items: list[QueueItem]) -> str:
    return text_for(items[0])


def group_of(rules: Rules, item: QueueItem) -> str:
    """Whose alert an item goes in: its team's, if the team has routes; else the default."""
    team = rules.team(item.team)
    return team.name if team is not None and team.alerts else DEFAULT_GROUP


def group_routes(rules: Rules, group: str) -> tuple[Route, ...]:
    team = rules.team(group) if group != DEFAULT_GROUP else None
    return team.alerts if team is not None else rules.alerts.default


# What alerts say: the first line is the subject (of an email) or title (of a card). Never the
# sender's name or address; the message's words only when [alerts] excerpt asks for them.


def _at(rules: Rules, moment: datetime) -> str:
    local = moment.astimezone(rules.timezone)
    return f"{local:%H:%M %a} {local.day} {local:%b}"


def _excerpt(rules: Rules, item: QueueItem) -> str:
    size = rules.alerts.excerpt
    if size <= 0 or not item.text:
        return ""
    text = " ".join(item.text.split())
    return f' "{text[:size]}…"' if len(text) > size else f' "{text}"'


def _line(rules: Rules, item: QueueItem, group: str, now: datetime) -> str:
    parts = [f"- {item.reference} on {item.channel}, received {_at(rules, item.received_at)}"]
    if group == DEFAULT_GROUP and item.team:
        parts.append(f"team {item.team}")
    if item.reply_by is not None:
        parts.append(_reply_by(rules, item, now))
    return ", ".join(parts) + _excerpt(rules, item)


def _listed(rules: Rules, items: list[QueueItem], group: str, now: datetime) -> list[str]:
    lines = [_line(rules, item, group, now) for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"- and {len(items) - MAX_LISTED} more")
    return lines


def _whose(group: str) -> str:
    return "with no team" if group == DEFAULT_GROUP else f"for {group}"


def _messages(count: int, new: str = "") -> str:
    return f"{count} {new}message{'s' if count != 1 else ''}"


def _reply_by(rules: Rules, item: QueueItem, now: datetime) -> str:
    """The time the resident was promised a reply by, as the team should see it."""
    if item.reply_by is None:
        return "no reply-by time (no staffed hours ahead)"
    late = " (overdue)" if item.reply_by <= now else ""
    return f"reply by {_at(rules, item.reply_by)}{late}"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def emergency_text(rules: Rules, item: QueueItem, now: datetime) -> str:
    team = f", team {item.team}" if item.team else ""
    what = "POSSIBLE EMERGENCY" if item.possible else "EMERGENCY"
    return "\n".join(
        [
            f"{what} ({item.emergency}): message {item.reference} on {item.channel}",
            *(["Not certainly an emergency: please read it now."] if item.possible else []),
            f"Received {_at(rules, item.received_at)}{team}.{_excerpt(rules, item)}",
            f"{_upper_first(_reply_by(rules, item, now))}: the time the resident was promised.",
            f"The automatic reply gave the emergency advice ({item.template or 'none'}).",
            f"{rules.name}: see it now in the queue (python -m bot queue).",
        ]
    )


def batch_text(rules: Rules, group: str, items: list[QueueItem], now: datetime) -> str:
    return "\n".join(
        [
            f"{_messages(len(items), 'new ')} {_whose(group)}",
            *_listed(rules, items, group, now),
            f"{rules.name}: the queue has them all (python -m bot queue).",
        ]
    )


def breach_text(rules: Rules, group: str, items: list[QueueItem], now: datetime) -> str:
    return "\n".join(
        [
            f"Reply due soon: {_messages(len(items))} {_whose(group)} not yet answered",
            *_listed(rules, items, group, now),
            f"{rules.name}: reply, or record the reply (python -m bot replied REF).",
        ]
    )
