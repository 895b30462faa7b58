"""One contract for every channel: the same tests run over the web, Telegram,
X, Facebook, Instagram, WhatsApp, email, Mastodon and Bluesky.

Each channel has a driver that plays the platform's side: it delivers a citizen's message the
way the platform does (an HTTP POST, a Telegram webhook, an X mention found by polling), and
reads back what the citizen received. Where a promise cannot apply (the web answers in its HTTP
response, so nothing is ever sent later; X is polled, so it has no webhook to protect), the test
says so and is skipped for that channel only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Protocol

import pytest

from bot.channels import X_CREDENTIALS, Channel, Limits
from bot.outbox import Pace, Sender
from bot.web import State, make_app
from tests.conftest import Clock
from tests.fakes.telegram import FakeTelegram


class Driver(Protocol):
    name: str
    retry_after: float  # what the fake platform's rate limit answer asks for, in seconds

    async def deliver(self, text: str, again: Any = None) -> Any:
        """Deliver a message as the platform would; `again` redelivers an earlier one."""
        ...

    async def received(self) -> list[str]:
        """What the citizen has been sent so far, in order."""
        ...

    def fail_next_send(self, kind: str) -> None:
        """kind: "429" (retry after 7 s) or "permanent"."""
        ...

    async def bad_secret(self) -> int: ...

    async def flush(self) -> None:
        """Let the channel and the sender loop do what is due now."""
        ...

    async def restart(self) -> None:
        """Stop the channel and start it again, as a restart of the server does."""
        ...


class WebDriver:
    name = "web"
    retry_after = 0.0

    def __init__(self, client: Any) -> None:
        self.client = client
        self.replies: list[str] = []
        self.count = 0

    async def deliver(self, text: str, again: Any = None) -> Any:
        self.count += 1
        body = again or {"sender": "citizen@example.org", "text": text, "id": f"w{self.count}"}
        response = await self.client.post("/api/messages", json=body)
        assert response.status == 202
        reply = (await response.json())["reply"]
        if reply is not None and again is None:
            self.replies.append(reply)
        return body

    async def received(self) -> list[str]:
        return list(self.replies)

    def fail_next_send(self, kind: str) -> None:
        pytest.skip("the web answers in its HTTP response: it never sends later")

    async def bad_secret(self) -> int:
        pytest.skip("the web channel's API is public, like the form it serves")

    async def flush(self) -> None:
        return None

    async def restart(self) -> None:
        return None  # the web channel is the server itself


class TelegramDriver:
    name = "telegram"
    retry_after = 7.0
    secret = "contract-secret"

    def __init__(self, fake: FakeTelegram, client: Any, sender: Sender, channel: Any) -> None:
        self.fake = fake
        self.client = client
        self.sender = sender
        self.channel = channel

    @property
    def url(self) -> str:
        return str(self.client.make_url("/webhooks/telegram"))

    async def deliver(self, text: str, again: Any = None) -> Any:
        update = again or self.fake.text_message(text)
        assert await self.fake.deliver(update, self.url, self.secret) == 200
        return update

    async def received(self) -> list[str]:
        return [str(m["text"]) for m in self.fake.sent]

    def fail_next_send(self, kind: str) -> None:
        self.fake.fail_next("sendMessage", "429" if kind == "429" else "403-blocked", retry_after=7)

    async def bad_secret(self) -> int:
        return await self.fake.deliver(self.fake.text_message("hi"), self.url, "not-the-secret")

    async def flush(self) -> None:
        await self.sender.once()

    async def restart(self) -> None:
        await self.channel.stop()
        await self.channel.start()
        await asyncio.wait_for(self.channel.ready.wait(), 10)


class XDriver:
    name = "x"
    retry_after = 3.0  # the fake's x-rate-limit-reset is 3 s ahead (whole seconds)

    def __init__(self, fake: Any, channel: Any, sender: Sender, state: State) -> None:
        self.fake = fake
        self.channel = channel
        self.sender = sender
        self.state = state

    async def _polled(self, more: int = 2) -> None:
        target = len(self.fake.requests_to("mentions")) + more
        async with asyncio.timeout(10):
            while len(self.fake.requests_to("mentions")) < target:
                await asyncio.sleep(0.02)

    async def deliver(self, text: str, again: Any = None) -> Any:
        if again is not None:  # X never pushes twice; a stale cursor reads a mention again
            await self.state.store.set_state("x", "mentions_since_id", "1")
            await self._polled()
            return again
        mention = self.fake.add_mention(f"@AnytownCouncil {text}")
        await self._polled()
        return mention

    async def received(self) -> list[str]:
        return [str(p["text"]).removeprefix("@jobloggs ") for p in self.fake.posted]

    def fail_next_send(self, kind: str) -> None:
        self.fake.fail_next("create_tweet", "429" if kind == "429" else "403")

    async def bad_secret(self) -> int:
        pytest.skip("X is polled: there is no webhook to protect")

    async def flush(self) -> None:
        await self.sender.once()

    async def restart(self) -> None:
        await self.channel.stop()
        await self.channel.start()
        await asyncio.wait_for(self.channel.ready.wait(), 10)


class MetaDriver:
    """Facebook, Instagram or WhatsApp: signed webhook deliveries, the fake Graph API's sends."""

    retry_after = 60.0  # the fake's rate limit: estimated_time_to_regain_access 1 minute

    def __init__(self, name: str, fake: Any, client: Any, sender: Sender, channel: Any) -> None:
        self.name = name
        self.fake = fake
        self.client = client
        self.sender = sender
        self.channel = channel

    @property
    def url(self) -> str:
        return str(self.client.make_url(f"/webhooks/{self.name}"))

    def _message(self, text: str) -> dict[str, Any]:
        if self.name == "whatsapp":
            return dict(self.fake.whatsapp(text))
        return dict(self.fake.messaging(self.name, text))

    async def deliver(self, text: str, again: Any = None) -> Any:
        delivery = again or self._message(text)
        assert await self.fake.deliver(delivery, self.url) == 200
        return delivery

    async def received(self) -> list[str]:
        return list(self.fake.texts("whatsapp" if self.name == "whatsapp" else "meta"))

    def fail_next_send(self, kind: str) -> None:
        if kind == "429":
            self.fake.fail_next("whatsapp-rate-limit" if self.name == "whatsapp" else "rate-limit")
        else:
            self.fake.fail_next("unavailable")

    async def bad_secret(self) -> int:
        return int(await self.fake.deliver(self._message("hi"), self.url, "not-the-app-secret"))

    async def flush(self) -> None:
        await self.sender.once()

    async def restart(self) -> None:
        await self.channel.stop()
        await self.channel.start()


class EmailDriver:
    name = "email"
    # SMTP has no retry-after: a 4xx is tried again after the outbox's first backoff, 2 s
    # give or take a fifth (bot.outbox.backoff).
    retry_after = 2.5
    citizen = "jo@example.net"

    def __init__(self, dovecot: Any, smtp: Any, channel: Any, sender: Sender, state: State):
        self.dovecot = dovecot
        self.smtp = smtp
        self.channel = channel
        self.sender = sender
        self.state = state
        self.count = 0

    async def _polled(self, times: int = 2) -> None:
        for _ in range(times):
            self.channel.polled.clear()
            await asyncio.wait_for(self.channel.polled.wait(), 20)

    async def deliver(self, text: str, again: Any = None) -> Any:
        from tests.dovecot import mail

        if again is not None:  # a position not saved (a crash): the same mail is read again
            await self.state.store.set_state("email", "cursor:INBOX", "")
            await self._polled()
            return again
        self.count += 1
        raw = mail(text, sender=self.citizen, message_id=f"<c{self.count}@example.net>")
        await asyncio.to_thread(self.dovecot.append, raw)
        await self._polled()
        return raw

    async def received(self) -> list[str]:
        bodies = (m.message.get_payload(decode=True) for m in self.smtp.mails)
        return [b.decode().replace("\r\n", "\n").strip() for b in bodies]

    def fail_next_send(self, kind: str) -> None:
        reply = "451 4.7.1 Try again later" if kind == "429" else "550 5.1.1 No such user"
        self.smtp.refuse(self.citizen, reply, once=True)

    async def bad_secret(self) -> int:
        pytest.skip("email is polled: there is no webhook to protect")

    async def flush(self) -> None:
        await self.sender.once()

    async def restart(self) -> None:
        await self.channel.stop()
        await self.channel.start()
        await self._polled(1)


class MastodonDriver:
    name = "mastodon"
    retry_after = 3.0  # the fake's X-RateLimit-Reset is 3 s ahead (whole seconds)

    def __init__(self, fake: Any, channel: Any, sender: Sender, state: State) -> None:
        self.fake = fake
        self.channel = channel
        self.sender = sender
        self.state = state

    async def _polled(self, more: int = 2) -> None:
        target = len(self.fake.requests_to("notifications")) + more
        async with asyncio.timeout(10):
            while len(self.fake.requests_to("notifications")) < target:
                await asyncio.sleep(0.02)

    async def deliver(self, text: str, again: Any = None) -> Any:
        if again is not None:  # Mastodon never pushes twice; a stale cursor reads it again
            await self.state.store.set_state("mastodon", "notifications_since_id", "1")
            await self._polled()
            return again
        status = self.fake.add_mention(f"@council {text}")
        await self._polled()
        return status

    async def received(self) -> list[str]:
        return [str(p["text"]).removeprefix("@jobloggs@example.org ") for p in self.fake.posted]

    def fail_next_send(self, kind: str) -> None:
        self.fake.fail_next("statuses", "429" if kind == "429" else "422")

    async def bad_secret(self) -> int:
        pytest.skip("Mastodon is polled: there is no webhook to protect")

    async def flush(self) -> None:
        await self.sender.once()

    async def restart(self) -> None:
        await self.channel.stop()
        await self.channel.start()
        await asyncio.wait_for(self.channel.ready.wait(), 10)


class BlueskyDriver(MastodonDriver):
    name = "bluesky"
    retry_after = 3.0  # the fake's ratelimit-reset is 3 s ahead (whole seconds)
    notifications = "app.bsky.notification.listNotifications"

    async def _polled(self, more: int = 2) -> None:
        target = len(self.fake.requests_to(self.notifications)) + more
        async with asyncio.timeout(10):
            while len(self.fake.requests_to(self.notifications)) < target:
                await asyncio.sleep(0.02)

    async def deliver(self, text: str, again: Any = None) -> Any:
        if again is not None:  # a lost position reads the same notification again
            await self.state.store.set_state("bluesky", "notifications_seen_at", "2000-01-01Z")
            await self._polled()
            return again
        post = self.fake.add_post(f"@anytown.gov.uk {text}")
        await self._polled()
        return post

    async def received(self) -> list[str]:
        return [str(p["text"]) for p in self.fake.posted]

    def fail_next_send(self, kind: str) -> None:
        self.fake.fail_next("com.atproto.repo.createRecord", "429" if kind == "429" else "400")


# Channel name -> driver, for the polled channels.
POLLED: dict[str, type[MastodonDriver]] = {"mastodon": MastodonDriver, "bluesky": BlueskyDriver}


async def polled_channel(name: str, state: State) -> tuple[Any, Channel]:
    """The fake platform, started, and the channel pointed at it."""
    if name == "mastodon":
        from bot.channels.mastodon import MastodonChannel
        from tests.fakes.mastodon import FakeMastodon

        mastodon = FakeMastodon()
        await mastodon.start()
        env = {
            "MASTODON_API_BASE_URL": mastodon.url,
            "MASTODON_ACCESS_TOKEN": mastodon.token,
            "MASTODON_POLL_SECONDS": "0.05",
        }
        return mastodon, MastodonChannel(state, env)
    if name == "bluesky":
        from bot.channels.bluesky import BlueskyChannel
        from tests.fakes.bluesky import FakeBluesky

        bluesky = FakeBluesky()
        await bluesky.start()
        env = {
            "BLUESKY_HANDLE": bluesky.handle,
            "BLUESKY_APP_PASSWORD": bluesky.password,
            "BLUESKY_SERVICE_URL": bluesky.url,
            "BLUESKY_POLL_SECONDS": "0.05",
        }
        return bluesky, BlueskyChannel(state, env)
    raise AssertionError(name)


META = ("facebook", "instagram", "whatsapp")


@pytest.fixture(params=["web", "telegram", "x", *META, "email", *POLLED])
async def driver(
    request: pytest.FixtureRequest, state: State, clock: Clock, aiohttp_client: Any
) -> AsyncIterator[Driver]:
    channels: dict[str, Channel] = {}
    fake: FakeTelegram | None = None
    if request.param == "telegram":
        from bot.channels.telegram import TelegramChannel, TelegramSettings

        fake = FakeTelegram()
        await fake.start()
        settings = TelegramSettings(
            {
                "TELEGRAM_BOT_TOKEN": fake.token,
                "TELEGRAM_WEBHOOK_SECRET": TelegramDriver.secret,
                "TELEGRAM_API_URL": fake.base_url,
            }
        )
        channels["telegram"] = TelegramChannel(state, settings)
    x_fake: Any = None
    if request.param == "x":
        from bot.channels.x import XChannel
        from tests.fakes.x import FakeX

        x_fake = FakeX(now=clock)
        await x_fake.start()
        env = {name: f"test-{name.lower()}" for name in X_CREDENTIALS}
        env.update(X_API_URL=x_fake.url, X_POLL_SECONDS="0.05")
        channels["x"] = XChannel(state, env)
    meta_fake: Any = None
    if request.param in META:
        from bot.channels.meta import MetaSettings
        from tests.fakes.meta import FakeMeta

        meta_fake = FakeMeta(now=clock)
        await meta_fake.start()
        settings = MetaSettings(meta_fake.env(request.param))
        if request.param == "whatsapp":
            from bot.channels.whatsapp import WhatsAppChannel

            channels["whatsapp"] = WhatsAppChannel(state, settings)
        else:
            from bot.channels.messenger import MessengerChannel

            channels[request.param] = MessengerChannel(state, settings, request.param)
    email_servers = contextlib.AsyncExitStack()
    if request.param == "email":
        from bot.channels.email import EmailChannel, EmailSettings
        from tests.dovecot import running
        from tests.fakes.receivers import SmtpReceiver

        dovecot = email_servers.enter_context(running())
        smtp = await email_servers.enter_async_context(SmtpReceiver())
        env = {**dovecot.env(), "EMAIL_POLL_SECONDS": "0.05", "SMTP_HOST": "127.0.0.1",
               "SMTP_PORT": str(smtp.port), "SMTP_STARTTLS": "0",
               "SMTP_FROM": "council@example.org"}  # fmt: skip
        channels["email"] = EmailChannel(state, EmailSettings(env))
    polled: Any = None
    if request.param in POLLED:
        polled, channels[request.param] = await polled_channel(request.param, state)
    sender = Sender(state.store, channels, "contract", clock=clock)
    for name in ("x", *POLLED):  # real spacing (seconds between two replies to one person)
        if name in channels:
            sender.paces[name] = Pace(Limits(per_second=1000.0, per_recipient_seconds=0.0))
    state.wake = sender.wake
    app = make_app(state)
    for channel in channels.values():
        app.router.add_routes(channel.routes())
        await channel.start()
        await channel.start()  # twice: idempotent
    client = await aiohttp_client(app)
    try:
        if fake is not None:
            channel = channels["telegram"]
            await asyncio.wait_for(channel.ready.wait(), 10)  # type: ignore[attr-defined]
            yield TelegramDriver(fake, client, sender, channel)
        elif meta_fake is not None:
            name = request.param
            yield MetaDriver(name, meta_fake, client, sender, channels[name])
        elif x_fake is not None:
            await asyncio.wait_for(channels["x"].ready.wait(), 10)  # type: ignore[attr-defined]
            yield XDriver(x_fake, channels["x"], sender, state)
        elif polled is not None:
            channel = channels[request.param]
            await asyncio.wait_for(channel.ready.wait(), 10)  # type: ignore[attr-defined]
            yield POLLED[request.param](polled, channel, sender, state)
        elif "email" in channels:
            yield EmailDriver(dovecot, smtp, channels["email"], sender, state)
        else:
            yield WebDriver(client)
    finally:
        for channel in channels.values():
            await channel.stop()
            await channel.stop()  # twice: idempotent
        if fake is not None:
            await fake.stop()
        if x_fake is not None:
            await x_fake.stop()
        if meta_fake is not None:
            await meta_fake.stop()
        if polled is not None:
            await polled.stop()
        await email_servers.aclose()


async def test_a_message_is_stored_and_acknowledged_once(driver: Driver, state: State) -> None:
    await driver.deliver("My bin wasn't emptied")
    await driver.flush()
    await driver.flush()

    [item] = await state.store.open_items()
    assert item.channel == driver.name and item.text.endswith("My bin wasn't emptied")
    assert await driver.received() == [item.auto_reply]
    assert item.reference in item.auto_reply  # type: ignore[operator]


async def test_a_redelivery_is_ignored(driver: Driver, state: State) -> None:
    first = await driver.deliver("Is the tip open on Sunday?")
    await driver.deliver("Is the tip open on Sunday?", again=first)
    await driver.flush()

    assert len(await state.store.open_items()) == 1
    assert len(await driver.received()) == 1


async def test_a_rate_limited_reply_is_sent_after_the_time_given(
    driver: Driver, state: State, clock: Clock
) -> None:
    driver.fail_next_send("429")
    await driver.deliver("Where do I pay my council tax?")
    await driver.flush()
    assert await driver.received() == []
    clock.now += timedelta(seconds=driver.retry_after - 2)
    await driver.flush()
    assert await driver.received() == []
    clock.now += timedelta(seconds=3)
    await driver.flush()
    assert len(await driver.received()) == 1


async def test_a_permanent_refusal_is_a_dead_letter(
    driver: Driver, state: State, clock: Clock
) -> None:
    driver.fail_next_send("permanent")
    await driver.deliver("Hello?")
    await driver.flush()
    clock.now += timedelta(hours=1)
    await driver.flush()
    assert await driver.received() == []
    [dead] = await state.store.deliveries("dead")
    assert dead.channel == driver.name and dead.last_error


async def test_a_bad_webhook_secret_gets_403_and_nothing_is_stored(
    driver: Driver, state: State
) -> None:
    assert await driver.bad_secret() == 403
    assert await state.store.open_items() == []


async def test_a_restarted_channel_carries_on(driver: Driver, state: State) -> None:
    await driver.deliver("First message")
    await driver.flush()
    await driver.restart()
    await driver.restart()
    await driver.deliver("Second message")
    await driver.flush()
    assert len(await state.store.open_items()) == 2
    assert len(await driver.received()) == 1  # the second is within the cooldown
