"""The real tweepy AsyncClient, built by bot.xapi, against the fake X API in tests/fakes/x.py."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import tweepy  # type: ignore[import-untyped]

from bot.xapi import AsyncClient, XConfig, XConfigError, make_client, make_session, open_client
from tests.fakes.x import DUPLICATE, FakeX

SECRETS = {
    "X_BEARER_TOKEN": "bearer-SECRET-1",
    "X_API_KEY": "key-SECRET-2",
    "X_API_SECRET": "secret-SECRET-3",
    "X_ACCESS_TOKEN": "1600000000000000001-SECRET-4",
    "X_ACCESS_TOKEN_SECRET": "tokensecret-SECRET-5",
}
TWEET_FIELDS = [
    "author_id",
    "conversation_id",
    "created_at",
    "in_reply_to_user_id",
    "referenced_tweets",
]
DM_FIELDS = [
    "id",
    "text",
    "event_type",
    "dm_conversation_id",
    "created_at",
    "sender_id",
    "participant_ids",
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    async with FakeX() as running:
        yield running


@pytest.fixture
async def client(fake: FakeX) -> AsyncIterator[AsyncClient]:
    async with open_client({**SECRETS, "X_API_URL": fake.url}) as opened:
        yield opened


async def test_get_me_uses_user_context(fake: FakeX, client: AsyncClient) -> None:
    response = await client.get_me()
    assert response.data.id == int(fake.me.id)  # tweepy turns ids into ints
    assert response.data.username == "AnytownCouncil"
    [request] = fake.requests
    assert (request.method, request.path, request.auth_scheme) == ("GET", "/2/users/me", "OAuth")


async def test_mentions_since_id_returns_only_newer_tweets_with_authors(
    fake: FakeX, client: AsyncClient
) -> None:
    old = fake.add_mention("@AnytownCouncil old news")
    reply = fake.add_mention("@AnytownCouncil my bin was missed", in_reply_to="1234")
    retweet = fake.add_mention(
        "RT @jobloggs: @AnytownCouncil bins", author=fake.bot, retweet_of="9"
    )

    response = await client.get_users_mentions(
        fake.me.id,
        since_id=old["id"],
        max_results=5,
        tweet_fields=TWEET_FIELDS,
        expansions=["author_id"],
    )

    assert [t.id for t in response.data] == [int(retweet["id"]), int(reply["id"])]  # newest first
    newest, older = response.data
    assert newest.referenced_tweets[0].type == "retweeted"
    assert older.in_reply_to_user_id == int(fake.me.id)
    assert older.conversation_id == 1234
    assert older.created_at is not None and older.author_id == int(fake.citizen.id)
    assert {u.username for u in response.includes["users"]} == {"jobloggs", "BinDayBot"}
    assert response.meta == {
        "newest_id": retweet["id"],
        "oldest_id": reply["id"],
        "result_count": 2,
    }
    [request] = fake.requests_to("mentions")
    assert request.auth_scheme == "Bearer"  # tweepy's default for mentions is app-only
    assert request.query["since_id"] == old["id"]
    assert request.query["tweet.fields"] == ",".join(TWEET_FIELDS)
    assert request.query["expansions"] == "author_id"


async def test_mentions_with_nothing_new(fake: FakeX, client: AsyncClient) -> None:
    newest = fake.add_mention()
    response = await client.get_users_mentions(fake.me.id, since_id=newest["id"], user_auth=True)
    assert response.data is None
    assert response.meta == {"result_count": 0}
    assert fake.requests[-1].auth_scheme == "OAuth"


async def test_mentions_paginate_newest_first(fake: FakeX, client: AsyncClient) -> None:
    ids = [fake.add_mention(f"@AnytownCouncil number {n}")["id"] for n in range(7)]
    first = await client.get_users_mentions(fake.me.id, max_results=5)
    second = await client.get_users_mentions(
        fake.me.id, max_results=5, pagination_token=first.meta["next_token"]
    )
    assert [str(t.id) for t in first.data + second.data] == ids[::-1]
    assert "next_token" not in second.meta


async def test_bad_query_parameter_is_400(fake: FakeX, client: AsyncClient) -> None:
    with pytest.raises(tweepy.BadRequest) as caught:
        await client.get_users_mentions(fake.me.id, max_results=500)
    assert "max_results" in str(caught.value)


async def test_dm_events(fake: FakeX, client: AsyncClient) -> None:
    first = fake.add_dm("My bin wasn't collected")
    second = fake.add_dm("Still waiting", sender=fake.bot)
    response = await client.get_direct_message_events(
        dm_event_fields=DM_FIELDS, event_types="MessageCreate", expansions=["sender_id"]
    )
    assert [e.id for e in response.data] == [int(second["id"]), int(first["id"])]
    event = response.data[1]
    assert event.text == "My bin wasn't collected"
    assert event.event_type == "MessageCreate"
    assert event.sender_id == int(fake.citizen.id)
    assert event.dm_conversation_id == f"{fake.me.id}-{fake.citizen.id}"
    assert event.created_at is not None
    assert response.meta == {"result_count": 2}
    [request] = fake.requests_to("dm_events")
    assert request.auth_scheme == "OAuth"
    assert request.query["event_types"] == "MessageCreate"


async def test_create_reply_is_recorded(fake: FakeX, client: AsyncClient) -> None:
    mention = fake.add_mention()
    response = await client.create_tweet(
        text="@jobloggs Thanks, we've passed this on.", in_reply_to_tweet_id=mention["id"]
    )
    assert response.data["text"] == "@jobloggs Thanks, we've passed this on."
    [request] = fake.requests_to("create_tweet")
    assert request.auth_scheme == "OAuth"
    assert request.status == 201
    assert request.json == {
        "text": "@jobloggs Thanks, we've passed this on.",
        "reply": {"in_reply_to_tweet_id": mention["id"]},
    }
    [posted] = fake.posted
    assert posted["id"] == response.data["id"]
    assert posted["in_reply_to_user_id"] == fake.citizen.id
    assert posted["conversation_id"] == mention["id"]


async def test_duplicate_tweet_is_forbidden(fake: FakeX, client: AsyncClient) -> None:
    await client.create_tweet(text="We are looking into it.")
    with pytest.raises(tweepy.Forbidden) as caught:
        await client.create_tweet(text="We are looking into it.")
    assert caught.value.api_messages == [DUPLICATE]
    assert len(fake.posted) == 1


async def test_create_direct_message_is_recorded(fake: FakeX, client: AsyncClient) -> None:
    response = await client.create_direct_message(
        participant_id=fake.citizen.id, text="Thanks, we have your message."
    )
    [request] = fake.requests_to("create_dm")
    assert request.path == f"/2/dm_conversations/with/{fake.citizen.id}/messages"
    assert request.json == {"text": "Thanks, we have your message."}
    assert request.auth_scheme == "OAuth"
    [sent] = fake.dms_sent
    assert response.data == {
        "dm_conversation_id": sent["dm_conversation_id"],
        "dm_event_id": sent["id"],
    }
    # Sent messages come back from GET /2/dm_events too: the channel must skip its own.
    events = await client.get_direct_message_events(dm_event_fields=["sender_id"])
    assert events.data[0].sender_id == int(fake.me.id)


async def test_rate_limited(fake: FakeX, client: AsyncClient) -> None:
    fake.fail_next("mentions", "429")
    with pytest.raises(tweepy.TooManyRequests) as caught:
        await client.get_users_mentions(fake.me.id)
    headers = caught.value.response.headers
    assert headers["x-rate-limit-remaining"] == "0"
    assert int(time.time()) < int(headers["x-rate-limit-reset"]) <= int(time.time()) + 5
    assert caught.value.reset_time == int(headers["x-rate-limit-reset"])
    assert caught.value.api_messages == ["Too Many Requests"]
    assert (await client.get_users_mentions(fake.me.id)).meta == {"result_count": 0}


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("400", tweepy.BadRequest),
        ("401", tweepy.Unauthorized),
        ("403", tweepy.Forbidden),
        ("500", tweepy.TwitterServerError),
        ("503", tweepy.TwitterServerError),
    ],
)
async def test_failures_on_demand(
    fake: FakeX, client: AsyncClient, kind: str, error: type[Exception]
) -> None:
    fake.fail_next("create_dm", kind, count=2, detail="You cannot send messages to this user.")
    for _ in range(2):
        with pytest.raises(error):
            await client.create_direct_message(participant_id=fake.citizen.id, text="Hello")
    await client.create_direct_message(participant_id=fake.citizen.id, text="Hello")
    assert [r.status for r in fake.requests] == [int(kind), int(kind), 201]
    assert len(fake.dms_sent) == 1


async def test_forbidden_detail_reaches_tweepy(fake: FakeX, client: AsyncClient) -> None:
    fake.fail_next("/2/tweets", "403")
    with pytest.raises(tweepy.Forbidden) as caught:
        await client.create_tweet(text="hello")
    assert caught.value.api_messages == ["You are not permitted to perform this action."]


async def test_non_json_error_body_is_not_a_tweepy_error(fake: FakeX, client: AsyncClient) -> None:
    """tweepy parses every error body as JSON, so a plain-text 503 escapes its error types."""
    fake.fail_next("me", "503-text")
    with pytest.raises(aiohttp.ContentTypeError):
        await client.get_me()


async def test_bearer_token_is_refused_for_user_context_endpoints(
    fake: FakeX, client: AsyncClient
) -> None:
    with pytest.raises(tweepy.Forbidden) as caught:
        await client.create_tweet(text="hello", user_auth=False)
    assert "Application-Only is forbidden" in str(caught.value)
    assert fake.posted == []


async def test_missing_credentials_are_named_without_values() -> None:
    env = {**SECRETS, "X_API_KEY": "", "X_ACCESS_TOKEN_SECRET": "  "}
    del env["X_BEARER_TOKEN"]
    with pytest.raises(XConfigError) as caught:
        XConfig.from_env(env)
    message = str(caught.value)
    assert "X_BEARER_TOKEN, X_API_KEY, X_ACCESS_TOKEN_SECRET" in message
    assert "SECRET-" not in message
    with pytest.raises(XConfigError):
        async with open_client(env):
            pass


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1:1", "http://127.0.0.1:1/2", "127.0.0.1:8082", "http://u:p@h:1"]
)
def test_bad_api_url(url: str) -> None:
    with pytest.raises(XConfigError, match="X_API_URL"):
        XConfig.from_env({**SECRETS, "X_API_URL": url})


def test_config_repr_hides_secrets() -> None:
    config = XConfig.from_env({**SECRETS, "X_API_URL": "http://127.0.0.1:8082"})
    assert "SECRET" not in repr(config)
    assert "127.0.0.1:8082" in repr(config)


async def test_caller_owned_session(fake: FakeX) -> None:
    env = {**SECRETS, "X_API_URL": fake.url + "/"}
    async with make_session(env) as session:
        client = make_client(env, session)
        assert client.session is session
        await client.get_me()
        await client.get_me()
        assert not session.closed
    assert len(fake.requests_to("me")) == 2


async def test_debug_log_hides_tokens(
    fake: FakeX, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_mention()
    with caplog.at_level(logging.DEBUG, logger="tweepy"):
        await client.get_users_mentions(fake.me.id)
        await client.get_me()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Authorization" in text
    assert "SECRET" not in text


async def test_unknown_path_is_404(fake: FakeX, client: AsyncClient) -> None:
    with pytest.raises(tweepy.NotFound):
        await client.get_tweet("1")
    assert fake.requests[-1].endpoint is None


async def test_fail_next_rejects_unknown_names(fake: FakeX) -> None:
    with pytest.raises(ValueError, match="kind"):
        fake.fail_next("me", "418")
    with pytest.raises(ValueError, match="endpoint"):
        fake.fail_next("tweets", "500")
