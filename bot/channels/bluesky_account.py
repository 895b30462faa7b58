"""What Holding Reply does on its own Bluesky account: post announcements, find them again after
a crash, and keep the profile's description current. The Bluesky channel (bot/channels/bluesky.py)
calls these with its session; `python -m bot profile sync` with a session of its own.

Posting is com.atproto.repo.createRecord of an app.bsky.feed.post, links made clickable (facets);
its link is https://bsky.app/profile/<handle>/post/<rkey>. Finding reads the account's own
records (com.atproto.repo.listRecords, newest first, straight from its server: nothing waits for
Bluesky's app view to index them).

The profile is one record (app.bsky.actor.profile, rkey "self") rewritten whole, so only its
description is changed: it is read as JSON with com.atproto.repo.getRecord, the description
replaced, and written back untouched otherwise (avatar, banner, display name, pinned post and
any field this code has never heard of) with com.atproto.repo.putRecord and swapRecord = the CID
read. If anything changed it in between (a person editing the avatar in the app), the server
answers InvalidSwap and it is read and changed again, up to SWAP_TRIES times: never written
blindly over someone else's edit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.channels import MaybePosted, TryLater, Undeliverable

PROFILE = "app.bsky.actor.profile"
POST = "app.bsky.feed.post"
POST_LIMIT = 300  # graphemes
DESCRIPTION_LIMIT = 256  # graphemes
SWAP_TRIES = 5
FIND_PAGES = 3
FIND_PAGE_SIZE = 100  # listRecords' most


class SwapConflict(Exception):
    """The profile kept changing under us: SWAP_TRIES reads and writes were all overtaken."""


def post_link(handle: str, uri: str) -> str:
    """The bsky.app address of a post, from its at:// URI."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


def _when(value: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


async def create_post(
    client: Any, did: str, text: str, facets: list[Any], langs: list[str]
) -> tuple[str, str]:
    """Post `text` on the account; return its (at:// URI, CID)."""
    from atproto_client import models

    record = models.AppBskyFeedPost.Record(
        text=text,
        created_at=client.get_current_time_iso(),
        facets=facets or None,
        langs=langs[:3] or None,  # Bluesky takes three at most
    )
    created = await client.app.bsky.feed.post.create(did, record)
    return str(created.uri), str(created.cid)


async def find_post(client: Any, did: str, text: str, since: datetime) -> str | None:
    """The URI of the account's post with exactly `text`, created at or after `since` (the
    oldest such, the first attempt), or None."""
    from atproto_client import models

    found: str | None = None
    cursor: str | None = None
    for _ in range(FIND_PAGES):
        params = models.ComAtprotoRepoListRecords.Params(
            repo=did, collection=POST, limit=FIND_PAGE_SIZE, cursor=cursor
        )
        page = await client.com.atproto.repo.list_records(params)
        older = False
        for item in page.records:  # newest first
            created = _when(getattr(item.value, "created_at", None))
            if created is None:
                continue
            if created < since:
                older = True
            elif getattr(item.value, "text", None) == text:
                found = str(item.uri)
        cursor = page.cursor
        if older or not cursor:
            break
    return found


async def set_description(client: Any, did: str, description: str) -> bool:
    """Make the profile's description `description`, changing nothing else. Return False if it
    already was. Raises SwapConflict when it was changed under us SWAP_TRIES times running."""
    from atproto_client.exceptions import BadRequestError

    for _ in range(SWAP_TRIES):
        cid, record = await _read_profile(client, did)
        if record.get("description") == description:
            return False
        body: dict[str, Any] = {
            "repo": did,
            "collection": PROFILE,
            "rkey": "self",
            "record": {**record, "$type": PROFILE, "description": description},
            "swapRecord": cid,  # None: there is no profile yet, and it must still not exist
        }
        try:
            await client.invoke_procedure(
                "com.atproto.repo.putRecord",
                content=json.dumps(body, ensure_ascii=False).encode(),
                input_encoding="application/json",
            )
            return True
        except BadRequestError as exc:
            if getattr(exc.response.content, "error", None) != "InvalidSwap":
                raise
    raise SwapConflict(
        f"the Bluesky profile changed {SWAP_TRIES} times while its description was being set"
    )


async def _read_profile(client: Any, did: str) -> tuple[str | None, dict[str, Any]]:
    """The profile record as the server holds it (raw JSON), and its CID; (None, {}) if the
    account has none yet."""
    from atproto_client import models
    from atproto_client.exceptions import BadRequestError

    params = models.ComAtprotoRepoGetRecord.Params(repo=did, collection=PROFILE, rkey="self")
    try:
        response = await client.invoke_query("com.atproto.repo.getRecord", params=params)
    except BadRequestError as exc:
        if getattr(exc.response.content, "error", None) == "RecordNotFound":
            return None, {}
        raise
    content = response.content
    if isinstance(content, bytes | str):
        content = json.loads(content)
    value = content.get("value")
    return content.get("cid"), dict(value) if isinstance(value, dict) else {}


def post_failure(exc: BaseException, why: str, reset_in: Callable[[Any], float]) -> Exception:
    """What a failed createRecord means for the announcement: TryLater (nothing was posted),
    Undeliverable (Bluesky refused it, saying why) or MaybePosted (it may be on the account)."""
    import httpx
    from atproto_client.exceptions import (
        BadRequestError,
        RateLimitExceededError,
        RequestErrorBase,
        UnauthorizedError,
    )

    if isinstance(exc, RateLimitExceededError):
        wait = reset_in(exc)
        return TryLater(f"Bluesky's rate limit: it can be posted in {wait:.0f} s", wait)
    if isinstance(exc, UnauthorizedError):
        return TryLater(
            "Bluesky refused the account's app password: check BLUESKY_HANDLE and "
            f"BLUESKY_APP_PASSWORD ({why})"
        )
    if isinstance(exc, BadRequestError):
        return Undeliverable(f"Bluesky refused the post: {refusal(exc)}")
    if isinstance(exc, RequestErrorBase) and exc.response is not None:  # 5xx, 409, 413
        return TryLater(f"Bluesky could not take it now: {why}")
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TryLater(f"Bluesky could not be reached: {why}")
    # A timeout, or the connection dropped, after the post was sent.
    return MaybePosted("Bluesky did not answer in time: the post may be on the account")


# Refusals in words a comms officer can act on, by the error Bluesky names.
_REFUSALS = {
    "AccountTakedown": "the account has been taken down by Bluesky's moderators",
    "RepoTakendown": "the account has been taken down by Bluesky's moderators",
    "RepoDeactivated": "the account is deactivated",
    "AccountDeactivated": "the account is deactivated",
    "RepoSuspended": "the account is suspended",
}


def refusal(exc: Any) -> str:
    """Why Bluesky refused, in plain words where the error is known, else in its own."""
    content = getattr(exc.response, "content", None)
    error = str(getattr(content, "error", None) or "")
    message = str(getattr(content, "message", None) or "")
    if error in _REFUSALS:
        return _REFUSALS[error]
    if "grapheme" in message or "longer than" in message:
        return f"it is longer than Bluesky's {POST_LIMIT} characters ({message})"
    return message or error or "no reason given"
