"""Facebook, Instagram and WhatsApp beyond the contract: Meta's windows at each edge, comments,
and what Meta's errors become. The channel sends through the outbox to the fake Graph API, which
enforces the same windows itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.channels import TryLater, Undeliverable
from bot.channels.messenger import MessengerChannel
from bot.channels.meta import MetaSettings, failure
from bot.channels.whatsapp import WhatsAppChannel
from bot.check import load
from bot.outbox import Sender
from bot.web import State
from bot.windows import window
from tests.conftest import Clock, copy_rules
from tests.fakes.meta import FakeMeta
from tests.test_channel_optout import opted_out

SECOND = timedelta(seconds=1)
DAY = timedelta(hours=24)
WEEK = timedelta(days=7)


class Rig:
    def __init__(self, fake: FakeMeta, state: State, clock: Clock, channel: Any) -> None:
        self.fake, self.state, self.clock, self.channel = fake, state, clock, channel
        self.sender = Sender(state.store, {channel.name: channel}, "test", clock=clock)
        state.wake = lambda: None

    def delivery(self, text: str, sender: str = "2401") -> dict[str, Any]:
        """A person's message, as Meta delivers it to this channel's webhook."""
        name = self.channel.name
        if name == "whatsapp":
            return self.fake.whatsapp(text, sender)
        return self.fake.messaging(name, text, sender)

    async def message(self, text: str, sender: str = "2401") -> str:
        await self.channel.process(self.delivery(text, sender))
        await self.sender.once()
        [item] = [i for i in await self.state.store.open_items() if i.text == text]
        return item.reference

    async def reply(self, reference: str, text: str) -> None:
        await self.state.store.send_human_reply(reference, text, "sam", self.clock())
        await self.sender.once()


RIGS: list[Rig] = []


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeMeta]:
    async with FakeMeta(now=clock) as meta:
        yield meta
        while RIGS:
            await RIGS.pop().channel.stop()


def rig(fake: FakeMeta, state: State, clock: Clock, name: str) -> Rig:
    settings = MetaSettings(fake.env(name))
    channel: Any = (
        WhatsAppChannel(state, settings)
        if name == "whatsapp"
        else MessengerChannel(state, settings, name)
    )
    RIGS.append(Rig(fake, state, clock, channel))
    return RIGS[-1]


@pytest.mark.parametrize(
    ("channel", "age", "human", "how"),
    [
        ("facebook", DAY - SECOND, False, "response"),
        ("facebook", DAY + SECOND, False, "closed"),
        ("facebook", DAY - SECOND, True, "response"),
        ("facebook", DAY + SECOND, True, "human_agent"),
        ("instagram", WEEK - SECOND, True, "human_agent"),
        ("instagram", WEEK + SECOND, True, "closed"),
        ("whatsapp", DAY - SECOND, True, "response"),
        ("whatsapp", DAY + SECOND, True, "template"),
        ("whatsapp", DAY + SECOND, False, "template"),
    ],
)
def test_the_windows_at_each_edge(channel: str, age: timedelta, human: bool, how: str) -> None:
    last = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the clocks go forward at 01:00
    assert window(channel, last, last + age, human=human).how == how


@pytest.mark.parametrize("name", ["facebook", "instagram"])
async def test_a_persons_reply_uses_the_human_agent_tag_after_24_hours_and_none_after_7_days(
    fake: FakeMeta, state: State, clock: Clock, name: str
) -> None:
    r = rig(fake, state, clock, name)
    started = clock.now
    reference = await r.message("My bin wasn't emptied")
    for age, text in ((DAY - SECOND, "one"), (DAY + SECOND, "two"), (WEEK - SECOND, "three")):
        clock.now = started + age
        await r.reply(reference, text)
    clock.now = started + WEEK + SECOND
    await r.reply(reference, "four")

    calls = [c["body"] for c in fake.sent]
    assert [c["message"]["text"] for c in calls[1:]] == ["one", "two", "three"]
    assert [c["messaging_type"] for c in calls] == ["RESPONSE", "RESPONSE"] + ["MESSAGE_TAG"] * 2
    assert [c.get("tag") for c in calls[2:]] == ["HUMAN_AGENT", "HUMAN_AGENT"]
    [dead] = await state.store.deliveries("dead")
    assert dead.text == "four" and "7 days" in (dead.last_error or "")


async def test_an_automatic_reply_held_past_24_hours_is_not_sent(
    fake: FakeMeta, state: State, clock: Clock
) -> None:
    r = rig(fake, state, clock, "facebook")
    fake.fail_next("temporary")
    await r.message("Hello?")
    clock.now += DAY + SECOND
    await r.sender.once()
    assert fake.sent == []
    [dead] = await state.store.deliveries("dead")
    assert dead.kind == "auto" and "24-hour" in (dead.last_error or "")


async def test_whatsapp_text_until_24_hours_then_only_the_template(
    fake: FakeMeta, state: State, clock: Clock, tmp_path: Path
) -> None:
    rules = copy_rules(tmp_path, '\n[channels.whatsapp]\ntemplate = "reply_waiting"\n')
    state.triage = load(rules)
    r = rig(fake, state, clock, "whatsapp")
    started = clock.now
    reference = await r.message("Where do I pay?", "447700900123")
    clock.now = started + DAY - SECOND
    await r.reply(reference, "inside")
    clock.now = started + DAY + SECOND
    await r.reply(reference, "outside")
    item = await state.store.get(reference)
    assert item is not None
    from bot.models import Outgoing

    await state.store.enqueue(
        Outgoing("whatsapp", "template:447700900123", "human", "(template)", item.id), clock.now
    )
    clock.now += timedelta(minutes=1)
    await r.sender.once()

    assert fake.texts("whatsapp")[1:] == ["inside", "template:reply_waiting"]
    assert fake.sent[-1]["body"]["template"]["language"] == {"code": "en_GB"}
    [dead] = await state.store.deliveries("dead")
    assert dead.text == "outside" and "template" in (dead.last_error or "")


@pytest.mark.parametrize("name", ["facebook", "instagram", "whatsapp"])
async def test_stop_turns_automatic_replies_off_and_start_turns_them_back_on(
    fake: FakeMeta, state: State, clock: Clock, name: str
) -> None:
    r = rig(fake, state, clock, name)
    assert await r.channel.process(r.delivery("STOP")) == 0  # nothing stored for the team
    assert await opted_out(state.store, name, "2401")
    assert await state.store.open_items(include_done=True) == []

    reference = await r.message("My bin wasn't emptied")  # and the sender loop runs
    item = await state.store.get(reference)
    assert item is not None and (item.auto_reply, item.held_back) == (None, "opted-out")
    assert await state.store.deliveries("pending") == []

    assert await r.channel.process(r.delivery("start.")) == 0
    assert not await opted_out(state.store, name, "2401")
    assert fake.sent == []  # nothing said in answer to either

    reference = await r.message("stop the roadworks outside my house please")  # not a command
    assert len(await state.store.open_items()) == 2
    [text] = fake.texts()
    assert reference in text
    assert not await opted_out(state.store, name, "2401")


@pytest.mark.parametrize("name", ["facebook", "instagram"])
async def test_a_comment_saying_stop_is_a_comment_not_an_opt_out(
    fake: FakeMeta, state: State, clock: Clock, name: str
) -> None:
    assert await rig(fake, state, clock, name).channel.process(fake.comment(name, "STOP")) == 1
    [item] = await state.store.open_items()
    assert item.text.startswith("STOP\n\n[Comment: ")
    assert not await opted_out(state.store, name, "5200000000000001")


@pytest.mark.parametrize("name", ["facebook", "instagram"])
async def test_comments_are_queued_and_only_an_emergency_gets_a_private_reply(
    fake: FakeMeta, state: State, clock: Clock, name: str
) -> None:
    r = rig(fake, state, clock, name)
    await r.channel.process(fake.comment(name, "When is the next bin day?"))
    urgent = fake.comment(name, "my dad has collapsed and isn't breathing", "77")
    await r.channel.process(urgent)
    await r.channel.process(urgent)  # redelivered: stored and answered once
    await r.sender.once()

    ordinary, emergency = sorted(await state.store.open_items(), key=lambda i: bool(i.emergency))
    assert "[Comment:" in ordinary.text and ordinary.auto_reply is None
    assert ordinary.held_back == "comment: no automatic public answer"
    assert emergency.emergency and emergency.auto_reply
    [private] = fake.sent
    assert private["body"]["recipient"] == {"comment_id": emergency.thread}
    assert "999" in private["body"]["message"]["text"]


async def test_a_comment_can_be_answered_publicly(
    fake: FakeMeta, state: State, clock: Clock
) -> None:
    from bot.models import Outgoing

    r = rig(fake, state, clock, "facebook")
    await r.channel.process(fake.comment("facebook", "When is the next bin day?"))
    [item] = await state.store.open_items()
    await state.store.enqueue(
        Outgoing("facebook", f"public:{item.thread}", "human", "Tuesday", item.id), clock.now
    )
    await r.sender.once()
    assert fake.sent[0]["path"] == f"{item.thread}/comments"
    assert fake.sent[0]["body"] == {"message": "Tuesday"}


async def test_an_expired_token_alerts_the_team_once_and_the_reply_waits(
    fake: FakeMeta, state: State, clock: Clock, tmp_path: Path
) -> None:
    rules = copy_rules(tmp_path, '\n[alerts]\ndefault = ["email:comms@example.org"]\n')
    state.triage = load(rules)
    r = rig(fake, state, clock, "facebook")
    fake.fail_next("token")
    await r.message("First", "2401")
    fake.fail_next("token")
    await r.message("Second", "2402")

    pending = await state.store.deliveries("pending")
    alerts = [d for d in pending if d.kind == "alert"]
    assert len(alerts) == 1 and "access token has expired" in alerts[0].text
    assert all("15 minutes" not in (d.last_error or "") for d in pending)
    clock.now += timedelta(minutes=16)
    await r.sender.once()
    assert len(fake.texts()) == 2  # both replies went once the token worked
    assert await state.store.get_state("facebook", "needs_fix") == ""


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (400, {"code": 613}, TryLater),
        (400, {"code": 4}, TryLater),
        (400, {"code": 17}, TryLater),
        (400, {"code": 32}, TryLater),
        (500, {"code": 1}, TryLater),
        (500, {"code": 2, "is_transient": True}, TryLater),
        (400, {"code": 551}, Undeliverable),
        (400, {"code": 10, "error_subcode": 2018278}, Undeliverable),
        (400, {"code": 10, "error_subcode": 2534022}, Undeliverable),
        (400, {"code": 131047}, Undeliverable),
        (400, {"code": 131056}, TryLater),
        (400, {"code": 100, "error_subcode": 2018001}, Undeliverable),
    ],
)
def test_meta_errors_map_to_retry_or_dead_letter(
    status: int, error: dict[str, Any], outcome: type
) -> None:
    found = failure(status, {"error": {"message": "m", **error}}, {})
    assert type(found) is outcome


@pytest.mark.parametrize("code", [190, 10, 200, 299])
def test_token_and_permission_errors_are_for_the_team_to_fix(code: int) -> None:
    from bot.channels.meta import NeedsFix

    found = failure(400, {"error": {"message": "m", "code": code}}, {})
    assert isinstance(found, NeedsFix) and found.retry_after == 900


async def test_whatsapp_statuses_update_our_replies_and_make_no_items(
    fake: FakeMeta, state: State, clock: Clock
) -> None:
    r = rig(fake, state, clock, "whatsapp")
    await r.message("Hello", "447700900123")
    [sent] = await state.store.deliveries("sent")
    assert sent.platform_message_id is not None
    for status in ("sent", "delivered", "read"):
        await r.channel.process(fake.whatsapp_status(sent.platform_message_id, status))
    assert await state.store.deliveries("dead") == []
    await r.channel.process(fake.whatsapp_status(sent.platform_message_id, "failed"))
    [dead] = await state.store.deliveries("dead")
    assert dead.id == sent.id and "131026" in (dead.last_error or "")
    assert len(await state.store.open_items()) == 1


@pytest.mark.parametrize("name", ["facebook", "instagram", "whatsapp"])
async def test_the_webhook_handshake_answers_the_challenge_only_with_the_verify_token(
    fake: FakeMeta, state: State, clock: Clock, aiohttp_client: Any, name: str
) -> None:
    from aiohttp import web

    from tests.fakes.meta import VERIFY_TOKEN

    app = web.Application()
    app.router.add_routes(rig(fake, state, clock, name).channel.routes())
    client = await aiohttp_client(app)
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": ""}
    right = await client.get(
        f"/webhooks/{name}", params={**query, "hub.verify_token": VERIFY_TOKEN}
    )
    assert right.status == 200 and await right.text() == "1158201444"
    for wrong in ({**query, "hub.verify_token": "guess"}, {**query, "hub.mode": "unsubscribe"}):
        response = await client.get(f"/webhooks/{name}", params=wrong)
        assert response.status == 403 and "1158201444" not in await response.text()


@pytest.mark.parametrize("name", ["facebook", "instagram"])
async def test_the_senders_name_comes_from_the_profile_api_when_meta_gives_it(
    fake: FakeMeta, state: State, clock: Clock, name: str
) -> None:
    r = rig(fake, state, clock, name)
    await r.channel.process(fake.messaging(name, "Hello", "2401", name="Priya Shah"))
    await r.channel.process(fake.messaging(name, "Hi", "2402", name=None))  # Meta will not say
    named = {i.sender: i.sender_name for i in await state.store.open_items()}
    assert named == {"2401": "Priya Shah", "2402": None}
