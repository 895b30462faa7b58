"""The email channel against a real IMAP server (Dovecot, tests/dovecot.py) and a local SMTP
server (aiosmtpd): stored once, flags left alone, answered in the thread, never to machines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.channels.email import EmailChannel, EmailSettings
from bot.errors import HoldingReplyError
from bot.imap import RefusedLogin
from bot.outbox import Sender
from bot.store import Store, open_store
from bot.triage import Triage
from bot.web import State
from tests.conftest import Clock
from tests.dovecot import Dovecot, mail, running
from tests.fakes.receivers import SmtpReceiver

OURS = "council@example.org"


def smtp_env(smtp: SmtpReceiver) -> dict[str, str]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "0",
        "SMTP_FROM": OURS,
    }


@dataclass
class Harness:
    dovecot: Dovecot
    smtp: SmtpReceiver
    state: State
    channel: EmailChannel
    sender: Sender
    env: dict[str, str]

    async def polled(self, times: int = 1) -> None:
        """Wait until the channel has polled `times` more times (the second sees what the
        first may have missed while the mail was being delivered)."""
        for _ in range(times):
            self.channel.polled.clear()
            await asyncio.wait_for(self.channel.polled.wait(), 20)

    async def deliver(self, raw: bytes) -> None:
        await asyncio.to_thread(self.dovecot.append, raw)
        await self.polled(2)

    def sent(self) -> list[Any]:
        return [m.message for m in self.smtp.mails]


async def make_harness(
    dovecot: Dovecot, state: State, smtp: SmtpReceiver, **extra: str
) -> AsyncIterator[Harness]:
    env = {**dovecot.env(), **smtp_env(smtp), "EMAIL_POLL_SECONDS": "0.05", **extra}
    channel = EmailChannel(state, EmailSettings(env))
    sender = Sender(state.store, {"email": channel}, "test", clock=state.clock)
    state.wake = sender.wake
    await channel.start()
    await channel.start()  # idempotent
    try:
        yield Harness(dovecot, smtp, state, channel, sender, env)
    finally:
        await channel.stop()
        await channel.stop()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running() as server:
        yield server


@pytest.fixture
async def harness(dovecot: Dovecot, state: State) -> AsyncIterator[Harness]:
    async with SmtpReceiver() as smtp:
        async for h in make_harness(dovecot, state, smtp):
            yield h


async def test_a_mail_is_stored_once_and_answered_in_its_thread(harness: Harness) -> None:
    raw = mail(
        "Hello,\n\nMy bin wasn't emptied.\n\nOn Mon, 1 Jan 2026 Council wrote:\n> Old text\n"
        "-- \nJo Bloggs\n07700 900000",
        headers={"References": "<root@example.org>", "Reply-To": "jo.home@example.net"},
    )
    await harness.deliver(raw)
    await harness.polled()
    await harness.sender.once()

    [item] = await harness.state.store.open_items()
    assert item.channel == "email" and item.sender == "jo@example.net"
    assert item.text == "Missed bin\n\nHello,\n\nMy bin wasn't emptied."  # no history, no sig
    assert item.sender_name == "Jo Bloggs"
    assert await harness.state.store.original(item.id) == raw
    [reply] = harness.sent()
    assert reply["To"] == "jo.home@example.net"  # Reply-To before From
    assert reply["From"] == OURS
    assert reply["Subject"] == "Re: Missed bin"
    assert reply["In-Reply-To"] == "<first@example.net>"
    assert reply["References"] == "<root@example.org> <first@example.net>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert item.reference in reply.get_payload()
    # The mailbox looks as it did: nothing was marked as read.
    assert all(b"\\Seen" not in f for f in harness.dovecot.flags())


async def test_the_teams_reply_goes_by_smtp_in_the_same_thread(harness: Harness) -> None:
    await harness.deliver(mail())
    await harness.sender.once()
    [item] = await harness.state.store.open_items()
    await harness.state.store.send_human_reply(
        item.reference, "We'll collect it tomorrow.", "sam", harness.state.clock()
    )
    await harness.sender.once()
    _, human = harness.sent()
    assert human["To"] == "jo@example.net"
    assert human["In-Reply-To"] == "<first@example.net>"
    assert human["Subject"] == "Re: Missed bin"
    assert human["Auto-Submitted"] is None  # a person wrote it
    assert "collect it tomorrow" in human.get_payload()


LOOPS = [
    ({"Auto-Submitted": "auto-replied"}, "automatic mail (Auto-Submitted: auto-replied)"),
    ({"Auto-Submitted": "auto-generated"}, "automatic mail (Auto-Submitted: auto-generated)"),
    ({"Precedence": "bulk"}, "bulk or list mail (Precedence: bulk)"),
    ({"Precedence": "list"}, "bulk or list mail (Precedence: list)"),
    ({"Precedence": "junk"}, "bulk or list mail (Precedence: junk)"),
    ({"List-Id": "<residents.example.net>"}, "mailing list (List-Id)"),
    ({"List-Unsubscribe": "<mailto:leave@example.net>"}, "mailing list (List-Unsubscribe)"),
    ({"Return-Path": "<>"}, "empty return path (a bounce or a notification)"),
    ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, "X-Auto-Response-Suppress"),
    ({"X-Auto-Response-Suppress": "All"}, "X-Auto-Response-Suppress"),
]


@pytest.mark.parametrize(("headers", "why"), LOOPS)
async def test_automatic_mail_and_lists_are_queued_but_never_answered(
    harness: Harness, headers: dict[str, str], why: str
) -> None:
    await harness.deliver(mail(headers=headers))
    await harness.sender.once()
    [item] = await harness.state.store.open_items()
    assert item.auto_reply is None and why in (item.held_back or "")
    assert harness.sent() == []


@pytest.mark.parametrize(
    ("sender", "why"),
    [(f"Council <{OURS}>", "our own address"), ("MAILER-DAEMON@example.net", "no-reply")],
)
async def test_our_own_mail_and_no_reply_senders_are_not_answered(
    harness: Harness, sender: str, why: str
) -> None:
    await harness.deliver(mail(sender=sender))
    await harness.sender.once()
    [item] = await harness.state.store.open_items()
    assert why in (item.held_back or "") and item.conversation is None
    assert harness.sent() == []


async def test_auto_submitted_no_is_a_person(harness: Harness) -> None:
    await harness.deliver(mail(headers={"Auto-Submitted": "no", "Precedence": "first-class"}))
    await harness.sender.once()
    assert len(harness.sent()) == 1


async def test_one_reply_per_sender_in_the_cooldown(harness: Harness) -> None:
    await harness.deliver(mail("First", message_id="<a@example.net>"))
    await harness.deliver(mail("Second", message_id="<b@example.net>", subject="Again"))
    await harness.sender.once()
    assert len(await harness.state.store.open_items()) == 2
    assert len(harness.sent()) == 1


async def test_html_mail_and_attachments(harness: Harness) -> None:
    raw = (
        "From: jo@example.net\r\nTo: council@example.org\r\nSubject: Pothole\r\n"
        "Message-ID: <html@example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><head><style>p{}</style></head><body><p>There is a <b>pothole</b> on Mill "
        "Lane.</p><blockquote>old thread</blockquote></body></html>\r\n--b1\r\n"
        'Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename="hole.jpg"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + "QUJD" * 600 + "\r\n--b1--\r\n"
    ).encode()
    await harness.deliver(raw)
    [item] = await harness.state.store.open_items()
    assert item.text == (
        "Pothole\n\nThere is a pothole on Mill Lane.\n\n[attachment: hole.jpg (1 KB)]"
    )


async def test_two_processes_store_each_mail_once_and_answer_once(
    dovecot: Dovecot, database: str, triage: Triage, clock: Clock
) -> None:
    """Two channels on one database, polling at once, each as fast as it can; and a cursor
    thrown back (a crash after storing, before the position was saved) reads the mail again."""
    async with (
        open_store(database) as store_a,
        open_store(database) as store_b,
        SmtpReceiver() as smtp,
    ):
        state_a = State(triage, store_a, clock=clock)
        state_b = State(triage, store_b, clock=clock)
        for n in range(3):
            dovecot.append(mail(f"Mail {n}", message_id=f"<m{n}@example.net>",
                                sender=f"p{n}@example.net"))  # fmt: skip
        async for a in make_harness(dovecot, state_a, smtp):
            async for b in make_harness(dovecot, state_b, smtp):
                await asyncio.gather(a.polled(2), b.polled(2))
                await store_a.set_state("email", "cursor:INBOX", "")  # as if never saved
                await asyncio.gather(a.polled(2), b.polled(2))
                await asyncio.gather(a.sender.once(), b.sender.once())
                await asyncio.gather(a.sender.once(), b.sender.once())
        assert len(await store_a.open_items()) == 3
        assert sorted(str(m["To"]) for m in (x.message for x in smtp.mails)) == [
            "p0@example.net", "p1@example.net", "p2@example.net"
        ]  # fmt: skip


async def test_tls_and_a_refused_password(dovecot: Dovecot, state: State) -> None:
    async with SmtpReceiver() as smtp:
        env = {**dovecot.env(tls=True), **smtp_env(smtp)}
        settings = EmailSettings(env)
        channel = EmailChannel(state, settings)
        with pytest.MonkeyPatch.context() as patch:  # trust the test's self-signed certificate
            patch.setenv("SSL_CERT_FILE", str(dovecot.cert))
            dovecot.append(mail())
            assert await channel.poll() is False
        assert len(await state.store.open_items()) == 1

        plain = {**env, "IMAP_TLS": "0", "IMAP_PORT": str(dovecot.port)}
        wrong = EmailChannel(state, EmailSettings({**plain, "IMAP_PASSWORD": "wrong"}))

        with pytest.raises(RefusedLogin, match="refused IMAP_USERNAME and IMAP_PASSWORD"):
            await wrong.poll()


def test_settings_name_every_problem() -> None:
    with pytest.raises(HoldingReplyError) as raised:
        EmailSettings({"IMAP_HOST": "imap.example.org", "IMAP_PORT": "x", "SMTP_HOST": "s"})
    text = str(raised.value)
    assert "IMAP_PORT has value 'x'" in text and "IMAP_USERNAME is not set" in text
    assert "IMAP_PASSWORD is not set" in text
    with pytest.raises(HoldingReplyError, match="replies go by SMTP"):
        EmailSettings({"IMAP_HOST": "h", "IMAP_USERNAME": "u@x", "IMAP_PASSWORD": "p"})
    with pytest.raises(HoldingReplyError, match="IMAP_OAUTH=microsoft needs MS_CLIENT_SECRET"):
        EmailSettings({"IMAP_HOST": "h", "IMAP_USERNAME": "u@x", "IMAP_OAUTH": "microsoft",
                       "MS_TENANT_ID": "t", "MS_CLIENT_ID": "c"})  # fmt: skip


async def test_the_store_keeps_the_original_until_purged(store: Store) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.models import Decision, Message

    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    message = Message("email", "<x@y> a@b", "a@b", "Hi", now, original=b"raw mail")
    decision = Decision(True, None, None, None, None, None, "en", None, None)
    result = await store.ingest(message, lambda s, r: decision)
    assert await store.original(result.item.id) == b"raw mail"
    await store.mark_done(result.item.reference, "sam", now)
    await store.purge(now + timedelta(days=1), now + timedelta(days=1))
    assert await store.original(result.item.id) is None


async def test_the_first_poll_reads_the_last_day_only_and_late_mail_gets_no_reply(
    dovecot: Dovecot, state: State, clock: Clock
) -> None:
    from datetime import UTC, datetime, timedelta

    dovecot.append(mail("Last week", message_id="<old@example.net>"),
                   at=datetime.now(UTC) - timedelta(days=7))  # fmt: skip
    dovecot.append(mail("Today", message_id="<new@example.net>", sender="sam@example.net"))
    async with SmtpReceiver() as smtp:
        async for h in make_harness(dovecot, state, smtp):
            await h.polled(2)
            # Mail filed into the folder late (its date two days before now): queued, and the
            # team may answer it, but a "we're closed" two days on would mislead.
            dovecot.append(mail("Filed late", message_id="<late@example.net>"),
                           at=clock.now - timedelta(days=2))  # fmt: skip
            await h.polled(2)
            await h.sender.once()
            items = {i.text.rpartition("\n")[2]: i for i in await state.store.open_items()}
            assert sorted(items) == ["Filed late", "Today"]
            late = items["Filed late"]
            assert late.held_back == "older than 24 hours" and late.conversation is not None
            assert [str(m["To"]) for m in h.sent()] == ["sam@example.net"]


async def test_a_big_mail_is_kept_in_part(harness: Harness) -> None:
    attachment = "QUJD" * 400_000  # 1.6 MB of base64
    raw = mail(f"See attached.\n\n{attachment}", message_id="<big@example.net>")
    await harness.deliver(raw)
    [item] = await harness.state.store.open_items()
    kept = await harness.state.store.original(item.id)
    assert kept is not None and 262_144 < len(kept) < 300_000
    assert kept.endswith(b"KB]\r\n") and item.text.startswith("Missed bin\n\nSee attached.")


async def test_email_alerts_go_through_the_email_channel_when_it_runs(harness: Harness) -> None:
    from bot.models import Outgoing

    alert = Outgoing("email", "duty@example.org", "alert", "1 new message for waste\n- ABCD")
    await harness.state.store.enqueue(alert, harness.state.clock())
    await harness.sender.once()
    [sent] = harness.sent()
    assert sent["Subject"] == "1 new message for waste" and sent["To"] == "duty@example.org"
    assert sent["Auto-Submitted"] == "auto-generated"


async def test_an_address_no_mail_server_would_take_is_a_dead_letter(harness: Harness) -> None:
    from bot.models import Outgoing

    bad = Outgoing("email", "jo@example.net\r\nBcc: everyone@example.net", "human", "Hello")
    await harness.state.store.enqueue(bad, harness.state.clock())
    await harness.sender.once()
    [dead] = await harness.state.store.deliveries("dead")
    assert "cannot write to" in (dead.last_error or "") and harness.sent() == []


async def test_reports_count_email_beside_the_other_channels(harness: Harness) -> None:
    from datetime import timedelta

    from bot import reports
    from bot.web import ingest

    await harness.deliver(mail())
    await ingest(harness.state, {"sender": "ann@example.org", "text": "Hello"})
    rules, now = harness.state.triage.rules, harness.state.clock()
    day = now.astimezone(rules.timezone).date()
    start, end = day, day + timedelta(days=1)
    data = await harness.state.store.report(*reports.local_range(start, end, rules), rules.timezone)
    report = reports.to_json(reports.build(data, rules, start, end, now))
    channels = {c["group"]: c for c in report["by_channel"]}
    assert channels["email"]["messages"] == 1 and channels["email"]["auto_replies"] == 1
    assert channels["web"]["messages"] == 1 and report["overall"]["messages"] == 2


async def test_a_subject_access_export_includes_the_original_mail(tmp_path: Path) -> None:
    import json
    from datetime import UTC, datetime

    from bot.models import Decision, Message
    from tests.test_cli import run

    url = f"sqlite:///{tmp_path}/sar.sqlite3"
    raw = b"From: jo@example.net\r\nSubject: Bins\r\n\r\nMy bin.\r\n"
    async with open_store(url) as store:
        message = Message("email", "<s@x> jo@example.net", "jo@example.net", "Bins\n\nMy bin.",
                          datetime.now(UTC), original=raw)  # fmt: skip
        decision = Decision(True, None, None, None, None, None, "en", None, None)
        await store.ingest(message, lambda s, r: decision)
    done = await asyncio.to_thread(
        run, "export", "--channel", "email", "--sender", "jo@example.net",
        env={"DATABASE_URL": url},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)["messages"]
    assert item["original"] == raw.decode()
