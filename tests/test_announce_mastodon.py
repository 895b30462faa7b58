"""Mastodon's own account: announcements posted, found again after a crash, and the profile's note
kept current, through the real Mastodon.py against the fake instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.announcement import NewAnnouncement
from bot.announcements import NotWritten, compose
from bot.channels import MaybePosted, TryLater, Undeliverable
from bot.channels import mastodon as mastodon_module
from bot.channels.mastodon import MastodonChannel
from bot.channels.posting import LIMITS, too_long
from bot.check import load
from bot.profile import mastodon_text
from bot.publisher import LEASE, Publisher
from bot.store import open_store
from bot.web import State
from tests.conftest import Clock, copy_rules, london
from tests.fakes.mastodon import FakeMastodon
from tests.test_channel_mastodon import environment
from tests.test_cli import run

LONG_LINK = "https://www.anytown.gov.uk/bins/christmas-and-new-year-collection-days"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    async with FakeMastodon(max_characters=1000) as running:
        yield running


async def started(fake: FakeMastodon, state: State) -> MastodonChannel:
    channel = MastodonChannel(state, environment(fake, MASTODON_POLL_SECONDS="3600"))
    await channel.start()
    await asyncio.wait_for(channel.ready.wait(), 10)
    return channel


@pytest.fixture
async def channel(fake: FakeMastodon, state: State) -> AsyncIterator[MastodonChannel]:
    channel = await started(fake, state)
    yield channel
    await channel.stop()


async def test_an_announcement_is_a_public_status_with_its_link(
    fake: FakeMastodon, channel: MastodonChannel
) -> None:
    posted = await channel.post("Closed on Monday.\n\nOpening times: " + LONG_LINK)
    [status] = fake.posted
    assert status["visibility"] == "public" and status["in_reply_to_id"] is None
    assert status["text"] == "Closed on Monday.\n\nOpening times: " + LONG_LINK
    [request] = fake.requests_to("statuses")
    assert "Idempotency-Key" not in request.headers  # two identical announcements are two posts
    assert posted.platform_id == status["id"]
    assert posted.link == f"https://example.social/@council/{status['id']}"


async def test_the_instances_own_limit_is_the_one_announcements_are_checked_against(
    fake: FakeMastodon, state: State
) -> None:
    text = "Road closures this week. " * 30  # 750 characters: over 500, within this instance's
    assert too_long("mastodon", text) is not None
    channel = await started(fake, state)
    try:
        assert LIMITS["mastodon"].most == 1000
        assert too_long("mastodon", text) is None
        compose(
            state.triage.rules, when="2026-12-01T09:00", channels="mastodon", text=text,
            by="amy", now=london("2026-11-27 10:00"),
        )  # fmt: skip
        await channel.post(text)
    finally:
        await channel.stop()
    assert LIMITS["mastodon"].most == 500  # only while the instance's channel runs
    with pytest.raises(NotWritten, match="mastodon"):
        compose(
            state.triage.rules, when="2026-12-01T09:00", channels="mastodon", text=text,
            by="amy", now=london("2026-11-27 10:00"),
        )  # fmt: skip


async def test_a_link_counts_23_as_mastodon_counts_it() -> None:
    text = "x" * 470 + " " + LONG_LINK  # 470 + 1 + 23 = 494 as Mastodon counts
    assert len(text) > 500 and too_long("mastodon", text) is None


async def test_a_refusal_says_why_in_plain_words(
    fake: FakeMastodon, channel: MastodonChannel
) -> None:
    with pytest.raises(Undeliverable) as refused:
        await channel.post("Road closures this week. " * 50)  # 1,250 characters
    assert "longer than the instance allows" in str(refused.value)
    assert "character limit of 1000" in str(refused.value)
    assert fake.posted == []


@pytest.mark.parametrize("kind", ["429", "503"])
async def test_a_rate_limit_or_a_server_error_is_tried_later(
    fake: FakeMastodon, channel: MastodonChannel, kind: str
) -> None:
    fake.fail_next("statuses", kind)
    with pytest.raises(TryLater) as later:
        await channel.post("Closed on Monday.")
    if kind == "429":
        assert later.value.retry_after is not None and 1 <= later.value.retry_after <= 5
    assert fake.posted == []
    await channel.post("Closed on Monday.")
    assert [s["text"] for s in fake.posted] == ["Closed on Monday."]


async def test_no_answer_after_the_post_was_sent_is_maybe_posted(
    fake: FakeMastodon, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mastodon_module, "REQUEST_SECONDS", 1.0)
    channel = await started(fake, state)
    try:
        fake.hang_after("statuses")
        with pytest.raises(MaybePosted, match="may be on the account"):
            await channel.post("Closed on Monday.")
    finally:
        await channel.stop()
    assert [s["text"] for s in fake.posted] == ["Closed on Monday."]


async def test_an_instance_that_cannot_be_reached_is_tried_later(
    fake: FakeMastodon, channel: MastodonChannel
) -> None:
    await fake.stop()  # nothing listens on its port now: the connection is refused
    with pytest.raises(TryLater, match="could not be reached"):
        await channel.post("Closed on Monday.")


async def test_find_returns_the_status_made_since_or_none(
    fake: FakeMastodon, channel: MastodonChannel
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    text = "Bins are a day late this week.\nDetails: " + LONG_LINK
    await channel.post("Closed on Monday.")
    posted = await channel.post(text)
    fake.add_mention("@council is the tip open?")  # someone else's status
    await channel.post("Closed on Tuesday.")
    assert "<br />" in fake.posted[1]["content"]  # compared as Mastodon renders it, not as sent
    assert await channel.find(text, before) == posted
    assert await channel.find("Bins are a day late this week.", before) is None
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await channel.find(text, later) is None
    [call, *_] = fake.requests_to(f"accounts/{fake.me['id']}/statuses")
    assert call.method == "GET"


async def test_find_looks_past_the_first_page(fake: FakeMastodon, channel: MastodonChannel) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = await channel.post("The first one.")
    for i in range(50):
        await channel.post(f"filler {i}")
    assert await channel.find("The first one.", before) == first
    assert len(fake.requests_to(f"accounts/{fake.me['id']}/statuses")) == 2


async def test_the_note_is_set_and_no_other_field_is_sent(
    fake: FakeMastodon, channel: MastodonChannel
) -> None:
    assert await channel.set_note("Staffed Mon–Fri 9am–5pm. Emergencies: 999.") is True
    assert fake.credential_updates == [{"note": "Staffed Mon–Fri 9am–5pm. Emergencies: 999."}]
    [patch] = fake.requests_to("update_credentials")
    assert patch.method == "PATCH" and patch.status == 200
    assert fake.me["display_name"] == "Anytown Council"
    # Already current: nothing is sent (each change goes out to every follower's instance).
    assert await channel.set_note("Staffed Mon–Fri 9am–5pm. Emergencies: 999.") is False
    assert len(fake.credential_updates) == 1


async def test_profile_sync_sets_mastodons_note_from_the_command_line(
    tmp_path: Path, fake: FakeMastodon
) -> None:
    rules = copy_rules(tmp_path)
    env = {**environment(fake), "TELEGRAM_BOT_TOKEN": ""}
    result = await asyncio.to_thread(run, "profile", "sync", "--rules", str(rules), env=env)
    assert result.returncode == 0, result.stderr
    assert "Mastodon: profile note set." in result.stdout
    expected = mastodon_text(load(rules), datetime.now(UTC))
    assert expected.startswith("Anytown Borough Council. Staffed")
    assert fake.credential_updates == [{"note": expected}]
    assert fake.token not in result.stdout + result.stderr


async def test_profile_sync_reports_a_refused_token_and_fails(
    tmp_path: Path, fake: FakeMastodon
) -> None:
    env = {**environment(fake), "MASTODON_ACCESS_TOKEN": "wrong", "TELEGRAM_BOT_TOKEN": ""}
    result = await asyncio.to_thread(
        run, "profile", "sync", "--rules", str(copy_rules(tmp_path)), env=env
    )
    assert result.returncode == 1
    assert "Mastodon: not set:" in result.stderr and "access token is invalid" in result.stderr
    assert "Traceback" not in result.stderr and fake.credential_updates == []


async def test_an_announcement_to_mastodon_is_published_once_with_its_link(
    tmp_path: Path, database: str, fake: FakeMastodon
) -> None:
    clock = Clock(london("2026-11-02 09:00"))
    async with open_store(database) as store:
        state = State(load(copy_rules(tmp_path)), store, clock=clock)
        new = compose(
            state.triage.rules, when="2026-11-02T09:00", channels="mastodon",
            text="Closed on Monday.", by="amy", now=london("2026-10-20 10:00"),
        )  # fmt: skip
        aid = await store.add_announcement(new, london("2026-10-20 10:00"))
        channel = await started(fake, state)
        try:
            publisher = Publisher(state, {"mastodon": channel}, "a")
            assert await publisher.once() == 1
            assert await publisher.once() == 0
        finally:
            await channel.stop()
        found = await store.announcement(aid)
    assert found is not None
    [status] = fake.posted
    [post] = found.posts
    assert (post.state, post.platform_id) == ("published", status["id"])
    assert post.link == f"https://example.social/@council/{status['id']}"


async def test_find_knows_a_post_whose_mentions_mastodon_shows_without_their_domain(
    fake: FakeMastodon, channel: MastodonChannel
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    fake.add_account("200", "Sam", "Sam", domain="other.example")
    fake.add_account("201", "jobloggs", "Another Jo", domain="elsewhere.example")
    text = (
        "Thanks to @JoBloggs@example.org and @sam@other.example for telling us about the "
        "flood.\n\nUpdates: @council@example.social, and @nobody@unknown.example"
    )
    posted = await channel.post(text)
    [status] = fake.posted
    # As Mastodon shows it: a known account by its username alone, or with its domain when two
    # known accounts share the username; an account it does not know, as typed.
    assert mastodon_module.plain_text(status["content"]) == (
        "Thanks to @jobloggs@example.org and @Sam for telling us about the flood.\n\n"
        "Updates: @council, and @nobody@unknown.example"
    )
    assert (
        '<a href="https://example.social/@Sam@other.example" class="u-url mention">'
        in (status["content"])
    )
    assert [m["acct"] for m in status["mentions"]] == [
        "jobloggs@example.org", "Sam@other.example", "council",
    ]  # fmt: skip
    assert await channel.find(text, before) == posted
    assert await channel.find(text.replace("the flood", "the fire"), before) is None
    assert await channel.find(text.replace("@sam@", "@samuel@"), before) is None


async def test_a_post_with_mentions_that_got_no_answer_is_found_and_not_posted_twice(
    tmp_path: Path, database: str, fake: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mastodon_module, "REQUEST_SECONDS", 1.0)
    now = datetime.now(UTC).replace(microsecond=0)  # the fake stamps statuses with the real time
    clock = Clock(now)
    text = "Thanks to @jobloggs@example.org for telling us about the flood on Mill Lane."
    wall = now.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%dT%H:%M")
    async with open_store(database) as store:
        state = State(load(copy_rules(tmp_path)), store, clock=clock)
        aid = await store.add_announcement(
            NewAnnouncement(text, now, wall, "Europe/London", (("mastodon", None),), "amy",
                            "scheduled"), now,
        )  # fmt: skip
        channel = await started(fake, state)
        try:
            fake.hang_after("statuses")  # Mastodon posts it; its answer never comes
            assert await Publisher(state, {"mastodon": channel}, "a").once() == 0
            clock.now += LEASE
            assert await Publisher(state, {"mastodon": channel}, "b").once() == 0
        finally:
            await channel.stop()
        found = await store.announcement(aid)
    [status] = fake.posted  # once
    assert found is not None
    [post] = found.posts
    assert (post.state, post.platform_id, post.found_by_check) == ("published", status["id"], True)
