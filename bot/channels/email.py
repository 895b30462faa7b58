"""Email: a shared mailbox read over IMAP, answered over SMTP (the SMTP_* settings alerts use).

Receiving. Every EMAIL_POLL_SECONDS (default 60) one process (a lease in the store, as for X)
opens the folder read-only and reads the mail newer than the position kept in the store: the
folder's UIDVALIDITY and the last UID stored ("cursor:<folder>"). Flags are left alone (the
folder is EXAMINEd and mail fetched with BODY.PEEK): the team's mail client shows the mailbox as
it was, unread mail still unread, and nothing a person does there (reading, filing, flagging)
changes what we have read. Marking mail as seen once stored would tell people a mail had been
read when nobody had. The position moves past a mail only once it is stored: a crash mid-poll
fetches it again, and the store keeps it once, keyed by its Message-ID and sender address (by
UIDVALIDITY and UID for the rare mail without a Message-ID), so two polls or two processes that
see one mail store it once and answer it once. When the folder's UIDVALIDITY changes (the
mailbox was rebuilt), or on the very first poll, the last day's mail is read and the rest left.

What is answered: a person's mail, once per sender in the cooldown, in its thread, to its
Reply-To or From address, marked Auto-Submitted: auto-replied (RFC 3834). Queued with no
automatic reply, and never answered automatically (bot.mail.automatic): auto-submitted mail
(out-of-office replies, notifications), Precedence bulk, list or junk, mailing lists (List-Id,
List-Unsubscribe), an empty return path (bounces), delivery reports, no-reply addresses, our
own address; and mail whose sender asked for none (X-Auto-Response-Suppress), or that the
mailbox received over 24 hours before we read it. The team can still reply to those from the
inbox, except to the machines and lists, whose mail has nowhere to reply to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot import mail
from bot.alerts import EmailChannel as SmtpChannel
from bot.channels import Capabilities, Limits, TryLater, Undeliverable
from bot.channels.polling import poll_seconds
from bot.errors import HoldingReplyError, StoreError
from bot.imap import Fetched, Mailbox, MailboxError, RefusedLogin, settings_from
from bot.jobs import holder_name
from bot.models import Delivery, Message
from bot.web import State, receive

log = logging.getLogger("bot.email")

DEFAULT_POLL_SECONDS = 60.0
BATCH = 50  # mails read in one poll; the rest at the next, straight after
REFUSED_RETRY_SECONDS = 900.0  # a refused login: a setting to fix, not a blip
STALE = timedelta(hours=24)
JOB = "email:poll"
# One process polls at a time; one that dies mid-poll holds the lease no longer than this. A
# poll stops taking new mail after half of it, so that even a server answering each command at
# the last second of its timeout (bot.imap.TIMEOUT) cannot outlast the lease and be joined by
# a second poll.
POLL_LEASE = timedelta(minutes=10)


class EmailSettings:
    """IMAP_*, EMAIL_POLL_SECONDS and the SMTP_* the replies go by, checked before starting."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.imap = settings_from(env)
        self.smtp = SmtpChannel(env)
        if self.imap.tokens is not None and not env.get("SMTP_PASSWORD"):
            self.smtp.tokens = self.imap.tokens  # replies sign in as the mailbox's app too
        if self.smtp.problem:
            raise HoldingReplyError(
                f"Email is not set up: replies go by SMTP, and {self.smtp.problem}."
            )
        try:
            self.poll_seconds = poll_seconds(
                env.get("EMAIL_POLL_SECONDS"), "EMAIL_POLL_SECONDS", DEFAULT_POLL_SECONDS
            )
        except ValueError as exc:
            raise HoldingReplyError(str(exc)) from None
        ours = {self.smtp.sender.lower()}
        if "@" in self.imap.username:
            ours.add(self.imap.username.lower())
        self.addresses = frozenset(ours)

    def redact(self, text: str) -> str:
        password = self.imap.password
        return text.replace(password, "<IMAP_PASSWORD>") if password else text


def platform_id(parsed: mail.Mail, validity: int, uid: int) -> str:
    """What one mail is known by, however often and by whichever process it is read: its
    Message-ID with its sender (so that nobody can use another person's Message-ID to have their
    mail dropped as a duplicate), or its place in the folder when it has no Message-ID."""
    if parsed.message_id:
        return f"{parsed.message_id} {parsed.sender}"
    return f"uid:{validity}:{uid}"


class EmailChannel:
    name = "email"
    # Mail servers take bursts; the spacing keeps one sender from looking like a spammer.
    limits = Limits(per_second=2.0, per_recipient_seconds=1.0)
    capabilities = Capabilities(max_length=20_000, threads=True, groups=False)

    def __init__(self, state: State, settings: EmailSettings, holder: str | None = None) -> None:
        self.state = state
        self.settings = settings
        self.smtp = settings.smtp
        self.holder = holder or holder_name()
        self.polled = asyncio.Event()  # set after each poll that this process made
        self._task: asyncio.Task[None] | None = None

    # Lifecycle.

    def routes(self) -> list[web.RouteDef]:
        return []  # the mailbox is polled

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="email-polling")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(StoreError):  # another process may poll at once
            await self.state.store.release_jobs(self.holder)

    # Receiving.

    async def _run(self) -> None:
        while True:
            wait = await self._guarded()
            await asyncio.sleep(wait)

    async def _guarded(self) -> float:
        """One poll, unless another process polled within EMAIL_POLL_SECONDS or is polling now;
        the seconds until this process should look again."""
        every = self.settings.poll_seconds
        started, store = datetime.now(UTC), self.state.store
        try:
            if not await store.claim_job(
                JOB, self.holder, started, timedelta(seconds=every), POLL_LEASE
            ):
                return every
        except StoreError as exc:
            log.warning("email polling paused", extra={"error": str(exc)})
            return every
        wait = await self._poll_once(every)
        with contextlib.suppress(StoreError):  # due again `wait` seconds after this poll began
            await store.finish_job(JOB, self.holder, started + timedelta(seconds=wait - every))
        return wait

    async def _poll_once(self, every: float) -> float:
        try:
            more = await self.poll()
            return min(every, 1.0) if more else every
        except RefusedLogin as exc:
            wait = max(every, REFUSED_RETRY_SECONDS)
            log.error(
                "the mail server refused to let us read the mailbox: check IMAP_USERNAME and "
                "IMAP_PASSWORD (or the OAuth 2.0 settings)",
                extra={"error": self.settings.redact(str(exc)), "retry_in_seconds": wait},
            )
            return wait
        except MailboxError as exc:
            log.warning("email polling failed", extra={"error": self.settings.redact(str(exc))})
            return every
        except StoreError as exc:  # the position is not saved: the same mail comes again
            log.warning("email position not saved", extra={"error": str(exc)})
            return every
        except Exception:  # a surprise must not end polling for good
            log.exception("email polling failed")
            return every
        finally:
            self.polled.set()

    async def poll(self) -> bool:
        """Read what is new and store it; True if there is more than one poll takes."""
        box = Mailbox(self.settings.imap)
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + POLL_LEASE.total_seconds() / 2
        store, folder = self.state.store, self.settings.imap.folder
        key = f"cursor:{folder}"
        try:
            validity, following = await asyncio.to_thread(box.open)
            cursor = await store.get_state(self.name, key)
            last: int | None = None
            if cursor:
                seen_validity, _, seen_uid = cursor.partition(":")
                if seen_validity == str(validity):
                    last = int(seen_uid)
            if last is None:  # first poll, or the mailbox was rebuilt: the last day only
                since = datetime.now(UTC) - timedelta(days=1)
                uids = await asyncio.to_thread(box.since, since)
                if not uids:
                    await store.set_state(self.name, key, f"{validity}:{max(0, following - 1)}")
                    return False
            else:
                uids = await asyncio.to_thread(box.after, last)
            for uid in uids[:BATCH]:
                if loop.time() > stop_at:  # a slow server: the rest at the next poll
                    return True
                fetched = await asyncio.to_thread(box.fetch, uid)
                if fetched is not None:
                    await self._take(fetched, validity)
                await store.set_state(self.name, key, f"{validity}:{uid}")
            return len(uids) > BATCH
        finally:
            await asyncio.to_thread(box.close)

    async def _take(self, fetched: Fetched, validity: int) -> None:
        try:
            parsed = mail.parse(fetched.raw, self.settings.addresses)
        except Exception:  # a mail no parser can read must not block the ones after it
            log.exception("email not readable; skipped", extra={"uid": fetched.uid})
            return
        now = self.state.clock()
        no_reply = parsed.automatic or parsed.suppress
        if no_reply is None and fetched.received_at and now - fetched.received_at > STALE:
            no_reply = "older than 24 hours"
        await receive(
            self.state,
            Message(
                channel=self.name,
                platform_id=platform_id(parsed, validity, fetched.uid),
                sender=parsed.sender or f"uid:{validity}:{fetched.uid}",
                text=parsed.text,
                received_at=now,
                sender_name=parsed.sender_name,
                conversation=parsed.reply_address,  # None for machines and lists
                thread=parsed.message_id,
                no_reply=no_reply,
                original=fetched.raw,
            ),
        )

    # Sending.

    async def send(self, delivery: Delivery) -> str | None:
        if delivery.kind == "alert":  # alerts to the team, as the alert-only channel sends them
            return await self.smtp.send(delivery)
        original = None
        if delivery.message_id is not None:
            try:
                raw = await self.state.store.original(delivery.message_id)
            except StoreError as exc:
                raise TryLater(f"the original mail could not be read: {exc}") from None
            if raw is not None:
                original = mail.parse(raw, self.settings.addresses)
        try:
            message = mail.reply(
                original,
                sender=self.smtp.sender,
                to=delivery.recipient,
                text=delivery.text,
                automatic=delivery.kind == "auto",
                in_reply_to=delivery.reply_to,
            )
        except (ValueError, IndexError) as exc:  # an address no mail server would take
            raise Undeliverable(f"cannot write to {delivery.recipient!r}: {exc}") from None
        return await self.smtp.transmit(message, delivery.recipient)
