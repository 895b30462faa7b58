"""The whole product with a sending channel: `python -m bot` against the fake Telegram Bot API.

The server runs as a real process on SQLite and on PostgreSQL, python-telegram-bot talks to the
fake, and the fake posts updates to the server's webhook as Telegram does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.channels import X_CREDENTIALS
from bot.store import open_store
from tests.conftest import copy_rules
from tests.fakes.telegram import GROUP, FakeTelegram, private_chat
from tests.test_server import Server

SECRET = "e2e-webhook-secret"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def staffed_only_on(tmp_path: Path, day: date) -> Path:
    """The shipped rules, staffed 9am to 5pm on `day`'s weekday only: closed now, whatever now is.

    No bank holidays or closures, so the next opening is `day` at 9am.
    """
    hours = {
        f'{name} = "{"09:00-16:30" if name == "friday" else "09:00-17:00"}"': "" for name in DAYS
    }
    rules = copy_rules(
        tmp_path,
        replace={
            **hours,
            "[hours]": f'[hours]\n{DAYS[day.weekday()]} = "09:00-17:00"',
            'bank_holidays = "england-and-wales"': 'bank_holidays = "none"',
            'from = "2026-12-24"': 'from = "2020-12-24"',
            'to = "2027-01-01"': 'to = "2021-01-01"',
        },
    )
    return rules


def start(
    tmp_path: Path, rules: Path, database: str, fake: FakeTelegram, level: str = "INFO"
) -> Server:
    env = {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": fake.base_url,
        "LOG_LEVEL": level,
    }
    server = Server(tmp_path, rules, database, env)
    server.wait_for("telegram ready")
    return server


async def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_telegram_message_out_of_hours_gets_the_honest_reply(
    tmp_path: Path, database: str
) -> None:
    london = ZoneInfo("Europe/London")
    opening = datetime.now(london).date() + timedelta(days=2)
    rules = staffed_only_on(tmp_path, opening)
    async with FakeTelegram() as fake:
        server = await asyncio.to_thread(start, tmp_path, rules, database, fake)
        try:
            url = f"http://127.0.0.1:{server.port}/webhooks/telegram"
            update = fake.text_message("Hello, I have a question about my account")
            assert await fake.deliver(update, url, SECRET) == 200
            await until(lambda: len(fake.sent) == 1)
        finally:
            await asyncio.to_thread(server.stop)

    text = fake.sent[0]["text"]
    say_day = f"{opening:%A} {opening.day} {opening:%B}"
    assert "We're closed now and back at 9am" in text
    assert f"We aim to reply by 1pm on {say_day}" in text  # 4 working hours from 9am
    async with open_store(database) as store:
        [item] = await store.open_items()
    assert (item.channel, item.text, item.staffed) == (
        "telegram",
        "Hello, I have a question about my account",
        False,
    )
    assert item.reference in text
    assert item.reply_by == datetime(
        opening.year, opening.month, opening.day, 13, tzinfo=london
    ).astimezone(UTC)
    logged = "\n".join(str(line) for line in server.lines)
    assert item.text not in logged and SECRET not in logged
    assert fake.token not in logged and fake.token.partition(":")[2] not in logged


async def test_two_servers_never_send_the_same_reply_twice(tmp_path: Path, database: str) -> None:
    """Every update is delivered to both servers at once: each citizen gets one reply."""
    rules = copy_rules(tmp_path)
    async with FakeTelegram() as fake:
        one, two = await asyncio.gather(
            asyncio.to_thread(start, tmp_path, rules, database, fake),
            asyncio.to_thread(start, tmp_path, rules, database, fake, "DEBUG"),
        )
        try:
            people = [
                {"id": 5000 + i, "is_bot": False, "first_name": f"Person {i}"} for i in range(30)
            ]
            updates: list[dict[str, Any]] = [
                fake.text_message(f"Question {i} about my bins", sender=p, chat=private_chat(p))
                for i, p in enumerate(people)
            ]
            statuses = await asyncio.gather(
                *(
                    fake.deliver(u, f"http://127.0.0.1:{s.port}/webhooks/telegram", SECRET)
                    for u in updates
                    for s in (one, two)
                )
            )
            assert set(statuses) == {200}
            await until(lambda: len(fake.sent) >= 30)
            await asyncio.sleep(2)  # long enough for a second send, if there were one
        finally:
            await asyncio.gather(asyncio.to_thread(one.stop), asyncio.to_thread(two.stop))

    chats = sorted(message["chat_id"] for message in fake.sent)
    assert chats == sorted(p["id"] for p in people)  # each exactly once
    senders = {
        line.get("logger")
        for s in (one, two)
        for line in s.lines
        if line.get("event") == "reply sent"
    }
    assert senders == {"bot.outbox"}


async def test_x_mentions_and_direct_messages_are_answered_by_the_server(
    tmp_path: Path, database: str
) -> None:
    from tests.fakes.x import FakeX

    london = ZoneInfo("Europe/London")
    opening = datetime.now(london).date() + timedelta(days=2)
    rules = staffed_only_on(tmp_path, opening)
    async with FakeX() as fake:
        env = {name: f"e2e-{name.lower()}" for name in X_CREDENTIALS}
        env.update(X_API_URL=fake.url, X_POLL_SECONDS="0.2")
        mention = fake.add_mention("@AnytownCouncil Hello, I have a question about my account")
        neighbour = fake.add_user("Sam Smith", "samsmith")
        fake.add_dm("Hello, I have a question about my bill", sender=neighbour)
        server = await asyncio.to_thread(Server, tmp_path, rules, database, env)
        try:
            await until(lambda: len(fake.posted) == 1 and len(fake.dms_sent) == 1)
            await asyncio.sleep(1)  # a second reply to either would have come by now
        finally:
            await asyncio.to_thread(server.stop)

    say_day = f"{opening:%A} {opening.day} {opening:%B}"
    [posted] = fake.posted
    assert posted["text"].startswith("@jobloggs ")
    assert posted["conversation_id"] == mention["id"]
    assert f"1pm on {say_day}" in posted["text"]
    [dm] = fake.dms_sent
    assert f"We aim to reply by 1pm on {say_day}" in dm["text"]
    async with open_store(database) as store:
        items = await store.open_items()
    assert sorted(item.platform_id.partition(":")[0] for item in items) == ["dm", "tweet"]
    logged = "\n".join(str(line) for line in server.lines)
    assert all(value not in logged for value in env.values() if value.startswith("e2e-"))


async def test_set_webhook_registers_the_public_url_with_the_secret(tmp_path: Path) -> None:
    from tests.test_cli import run

    async with FakeTelegram() as fake:
        env = {
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_URL": fake.base_url,
            "PUBLIC_URL": "https://council.example.org/",
        }
        done = await asyncio.to_thread(run, "telegram", "set-webhook", env=env)
        assert done.returncode == 0, done.stderr
        assert "https://council.example.org/webhooks/telegram" in done.stdout
        assert fake.webhook.url == "https://council.example.org/webhooks/telegram"
        assert fake.webhook.secret == SECRET
        assert set(fake.webhook.allowed_updates or []) == {"message", "edited_message"}

        info = await asyncio.to_thread(run, "telegram", "webhook-info", env=env)
        assert info.returncode == 0, info.stderr
        assert "https://council.example.org/webhooks/telegram" in info.stdout

        plain = await asyncio.to_thread(
            run, "telegram", "set-webhook", env={**env, "PUBLIC_URL": "http://council.example.org"}
        )
        assert plain.returncode == 1 and "https://" in plain.stderr
        wrong = await asyncio.to_thread(
            run, "telegram", "set-webhook", env={**env, "TELEGRAM_BOT_TOKEN": "1:wrong"}
        )
        assert wrong.returncode == 1 and "1:wrong" not in wrong.stderr + wrong.stdout
    assert fake.token not in done.stdout + done.stderr + info.stdout + info.stderr


async def test_the_server_alerts_the_staff_group_to_an_emergency_at_once(
    tmp_path: Path, database: str
) -> None:
    staff = GROUP["id"]  # a group the bot is in (the fake knows it)
    rules = copy_rules(tmp_path, extra=f'\n[alerts]\nemergency = ["telegram:{staff}"]\n')
    async with FakeTelegram() as fake:
        fake.group_message("Welcome to the staff group")  # the bot is a member (not delivered)
        server = await asyncio.to_thread(start, tmp_path, rules, database, fake)
        try:
            url = f"http://127.0.0.1:{server.port}/webhooks/telegram"
            update = fake.text_message("my dad has collapsed and isn't breathing")
            assert await fake.deliver(update, url, SECRET) == 200
            await until(lambda: len(fake.sent) == 2)
            await asyncio.sleep(1)  # no second alert
        finally:
            await asyncio.to_thread(server.stop)

    to_citizen, to_staff = sorted(fake.sent, key=lambda m: m["chat_id"] == staff)
    assert "999" in to_citizen["text"]
    assert to_staff["chat_id"] == staff
    async with open_store(database) as store:
        [item] = await store.open_items()
    assert item.emergency is not None and item.reference in to_staff["text"]
    assert "collapsed" not in to_staff["text"]  # no message text unless [alerts] excerpt says
    assert len(fake.sent) == 2


async def test_email_is_answered_once_by_two_servers_and_the_team_replies_in_the_thread(
    tmp_path: Path, database: str
) -> None:
    """Two `python -m bot` processes read one mailbox (Dovecot) and send by one SMTP server:
    each person's mail is stored once and answered once, in its thread; a mailing list's and an
    out-of-office are queued and not answered; the team's reply goes out in the same thread."""
    from tests.dovecot import mail, running
    from tests.fakes.receivers import SmtpReceiver

    london = ZoneInfo("Europe/London")
    opening = datetime.now(london).date() + timedelta(days=2)
    rules = staffed_only_on(tmp_path, opening)
    with running() as dovecot:
        async with SmtpReceiver() as smtp:
            env = {
                **dovecot.env(),
                "EMAIL_POLL_SECONDS": "0.2",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "SMTP_STARTTLS": "0",
                "SMTP_FROM": dovecot.user,
            }
            people = [f"person{i}@example.net" for i in range(5)]
            for i, person in enumerate(people):
                dovecot.append(mail(f"Question {i} about my bins", sender=person,
                                    message_id=f"<q{i}@example.net>"))  # fmt: skip
            listed = {"List-Id": "<residents.example.net>"}
            dovecot.append(mail("Newsletter", sender="news@example.net",
                                message_id="<n@example.net>", headers=listed))  # fmt: skip
            dovecot.append(mail("I am away", sender="away@example.net", message_id="<o@x>",
                                headers={"Auto-Submitted": "auto-replied"}))  # fmt: skip
            one, two = await asyncio.gather(
                asyncio.to_thread(Server, tmp_path, rules, database, env),
                asyncio.to_thread(Server, tmp_path, rules, database, env),
            )
            try:
                await until(lambda: len(smtp.mails) >= 5)
                async with open_store(database) as store:
                    await until_stored(store, 7)
                    person = next(
                        i for i in await store.open_items() if i.sender == "person0@example.net"
                    )
                    await store.send_human_reply(
                        person.reference, "We'll collect it tomorrow.", "sam", datetime.now(UTC)
                    )
                await until(lambda: len(smtp.mails) >= 6)
                await asyncio.sleep(1)  # a second reply to anyone would have come by now
            finally:
                await asyncio.gather(asyncio.to_thread(one.stop), asyncio.to_thread(two.stop))

    to = sorted(str(m.message["To"]) for m in smtp.mails)
    assert to == sorted([*people, "person0@example.net"])  # each once, and the team's reply
    human = next(m.message for m in smtp.mails if m.message["Auto-Submitted"] is None)
    assert human["In-Reply-To"] == "<q0@example.net>" and human["Subject"] == "Re: Missed bin"
    auto = next(m.message for m in smtp.mails if m.message["To"] == "person1@example.net")
    assert auto["Auto-Submitted"] == "auto-replied" and auto["In-Reply-To"] == "<q1@example.net>"
    async with open_store(database) as store:
        items = await store.open_items()
    assert len(items) == 7
    held = {i.sender: i.held_back for i in items if i.auto_reply is None}
    assert held == {
        "news@example.net": "mailing list (List-Id)",
        "away@example.net": "automatic mail (Auto-Submitted: auto-replied)",
    }
    logged = "\n".join(str(line) for s in (one, two) for line in s.lines)
    assert dovecot.password not in logged and "Question 3" not in logged


async def until_stored(store: Any, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(await store.open_items()) < count:
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_mastodon_mentions_are_answered_once_by_two_servers_and_from_the_inbox(
    tmp_path: Path, database: str
) -> None:
    """Two servers poll one instance: each person gets one reply; then the team's reply, put
    in the outbox as the inbox does, goes out in the same thread."""
    from tests.fakes.mastodon import FakeMastodon, account

    opening = datetime.now(ZoneInfo("Europe/London")).date() + timedelta(days=2)
    rules = staffed_only_on(tmp_path, opening)
    async with FakeMastodon() as fake:
        env = {
            "MASTODON_API_BASE_URL": fake.url,
            "MASTODON_ACCESS_TOKEN": fake.token,
            "MASTODON_POLL_SECONDS": "0.2",
        }
        people = [account(str(3000 + i), f"person{i}", f"Person {i}") for i in range(8)]
        mentions = [
            fake.add_mention("@council Hello, I have a question about my account", sender=p)
            for p in people
        ]
        one, two = await asyncio.gather(
            asyncio.to_thread(Server, tmp_path, rules, database, env),
            asyncio.to_thread(Server, tmp_path, rules, database, env),
        )
        try:
            await until(lambda: len(fake.posted) >= len(people))
            await asyncio.sleep(1.5)  # long enough for a second reply, if there were one
            assert sorted(p["in_reply_to_id"] for p in fake.posted) == sorted(
                m["id"] for m in mentions
            )
            async with open_store(database) as store:
                item = next(i for i in await store.open_items() if i.sender == "3000")
                await store.send_human_reply(
                    item.reference, "A crew will call on Tuesday.", "sam", datetime.now(UTC)
                )
            await until(lambda: len(fake.posted) == len(people) + 1)
        finally:
            await asyncio.gather(asyncio.to_thread(one.stop), asyncio.to_thread(two.stop))

    say_day = f"{opening:%A} {opening.day} {opening:%B}"
    assert all(f"1pm on {say_day}" in p["text"] for p in fake.posted[:-1])
    human = fake.posted[-1]
    assert human["text"] == "@person0 A crew will call on Tuesday."
    assert human["in_reply_to_id"] == mentions[0]["id"]
    logged = "\n".join(str(line) for s in (one, two) for line in s.lines)
    assert fake.token not in logged
    assert "Hello, I have a question" not in logged


async def test_bluesky_is_answered_once_by_two_servers_that_log_in_once_each_at_most(
    tmp_path: Path, database: str
) -> None:
    """Two servers poll one PDS: each mention and direct message gets one reply, in its
    thread or conversation; polls reuse the session; the team's reply goes out in the thread."""
    from tests.fakes.bluesky import FakeBluesky, profile

    opening = datetime.now(ZoneInfo("Europe/London")).date() + timedelta(days=2)
    rules = staffed_only_on(tmp_path, opening)
    async with FakeBluesky() as fake:
        env = {
            "BLUESKY_HANDLE": fake.handle,
            "BLUESKY_APP_PASSWORD": fake.password,
            "BLUESKY_SERVICE_URL": fake.url,
            "BLUESKY_POLL_SECONDS": "0.2",
        }
        people = [
            profile(f"did:plc:person{i:019d}", f"person{i}.bsky.social", f"Person {i}")
            for i in range(6)
        ]
        mentions = [
            fake.add_post("@anytown.gov.uk Hello, I have a question about my account", author=p)
            for p in people
        ]
        one, two = await asyncio.gather(
            asyncio.to_thread(Server, tmp_path, rules, database, env),
            asyncio.to_thread(Server, tmp_path, rules, database, env),
        )
        try:
            await until(lambda: len(fake.requests_to("chat.bsky.convo.getLog")) >= 1)
            dm = fake.add_dm("Hello, I have a question about my bill", convo="convo-9")
            await until(lambda: len(fake.posted) >= len(people) and len(fake.dms_sent) >= 1)
            await asyncio.sleep(1.5)  # long enough for a second reply, if there were one
            polls = len(fake.requests_to("app.bsky.notification.listNotifications"))
            assert sorted(p["reply"]["parent"]["uri"] for p in fake.posted) == sorted(
                m["uri"] for m in mentions
            )
            async with open_store(database) as store:
                item = next(i for i in await store.open_items() if i.sender == people[0]["did"])
                await store.send_human_reply(
                    item.reference, "A crew will call on Tuesday.", "sam", datetime.now(UTC)
                )
            await until(lambda: len(fake.posted) == len(people) + 1)
        finally:
            await asyncio.gather(asyncio.to_thread(one.stop), asyncio.to_thread(two.stop))

    say_day = f"{opening:%A} {opening.day} {opening:%B}"
    assert all(f"1pm on {say_day}" in p["text"] for p in fake.posted[:-1])
    human = fake.posted[-1]
    assert human["text"] == "A crew will call on Tuesday."
    assert human["reply"]["parent"]["uri"] == mentions[0]["uri"]
    [sent_dm] = fake.dms_sent
    assert sent_dm["convoId"] == "convo-9" and f"1pm on {say_day}" in sent_dm["text"]
    assert dm["text"] != sent_dm["text"]
    assert polls >= 4 and fake.sessions <= 2  # a login per process at most, never per poll
    logged = "\n".join(str(line) for s in (one, two) for line in s.lines)
    assert fake.password not in logged
    assert "eyJ" not in logged  # no token
    assert "Hello, I have a question" not in logged
