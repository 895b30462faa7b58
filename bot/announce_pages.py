"""The inbox's announcement pages: a list by day, a form with each channel's preview and
character count, approve, cancel, publish now, and suspend and resume for admins.

Registered beside the inbox's routes (bot.inbox.add_routes), behind the same login and CSRF
check; every change goes through the same store calls as `python -m bot announce`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from itertools import groupby
from typing import Any

from aiohttp import web

from bot.announcement import AnnouncementError
from bot.announcements import NotWritten, approve, channels_that_post, compose
from bot.auth import Session
from bot.channels.posting import LIMITS
from bot.web import STATE

ROOT = "/inbox/announcements"
RECENT_DAYS = 7
DONE = {
    "added": "Announcement scheduled.",
    "approval": "Announcement written: it waits for another admin to approve it.",
    "approved": "Announcement approved.",
    "cancelled": "Announcement cancelled.",
    "publish": "It will be published now.",
    "suspended": "Announcements suspended: nothing will be published until you resume.",
    "resumed": "Announcements resumed. Anything that fell due meanwhile is held for you.",
}


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def announcements_page(
    request: web.Request,
    session: Session,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    status: int = 200,
) -> web.StreamResponse:
    from bot.inbox import common, page

    state = request.app[STATE]
    rules = state.triage.rules
    zone = rules.timezone
    now = state.clock()
    found = await state.store.announcements(now - timedelta(days=RECENT_DAYS))
    days = [
        (day, list(group))
        for day, group in groupby(found, key=lambda a: a.due_at.astimezone(zone).date())
    ]
    values = values or {}
    channels = channels_that_post(rules)
    previews = []
    for name in values.get("channels", []):
        text = (values.get(f"{name}_text") or values.get("text") or "").strip()
        limit = LIMITS[name]
        previews.append((name, text, limit.length(text), limit.most))
    return page(
        "announcements.html",
        {
            **common(state, session),
            "days": days,
            "zone": zone,
            "channels": channels,
            "suspension": await state.store.suspension(),
            "errors": errors or {},
            "values": values,
            "previews": previews,
            "confirmation": DONE.get(request.query.get("done", "")),
        },
        status,
    )


async def write(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    rules = state.triage.rules
    form = await request.post()
    chosen = [c for c in channels_that_post(rules) if form.get(f"channel-{c}") == "on"]
    values: dict[str, Any] = {
        "when": _field(form, "when"),
        "text": _field(form, "text"),
        "channels": chosen,
        **{f"{c}_text": _field(form, f"{c}_text") for c in LIMITS},
    }
    if form.get("action") == "preview":
        return await announcements_page(request, session, values=values)
    try:
        new = compose(
            rules,
            when=values["when"],
            channels=",".join(chosen),
            text=values["text"],
            versions={c: values[f"{c}_text"] for c in LIMITS},
            by=session.user.username,
            now=state.clock(),
        )
    except NotWritten as exc:
        errors = {_anchor(m.field): str(m) for m in exc.mistakes}
        return await announcements_page(request, session, errors, values, 400)
    await state.store.add_announcement(new, state.clock())
    raise web.HTTPSeeOther(f"{ROOT}?done={'approval' if new.state == 'approval' else 'added'}")


def _anchor(field: str) -> str:
    return {"when": "when", "channels": "channels", "text": "text"}.get(field, field)


async def act(request: web.Request, session: Session) -> web.StreamResponse:
    from bot.inbox import notice

    state = request.app[STATE]
    store = state.store
    action = request.match_info["action"]
    aid = int(request.match_info["id"])
    by, now = session.user.username, state.clock()
    try:
        if action == "approve":
            await approve(store, aid, by, now)
            done = "approved"
        elif action == "cancel":
            if not await store.cancel_announcement(aid, by, now):
                raise AnnouncementError("nothing left to cancel")
            done = "cancelled"
        else:
            if not await store.republish_announcement(aid, by, now):
                raise AnnouncementError("nothing to publish again")
            done = "publish"
    except AnnouncementError:
        return notice(request, "That could not be done", "expired", 409)
    raise web.HTTPSeeOther(f"{ROOT}?done={done}")


async def suspend(request: web.Request, session: Session) -> web.StreamResponse:
    from bot.inbox import notice

    state = request.app[STATE]
    if session.user.role != "admin":
        return notice(request, "Page not found", "missing", 404)
    form = await request.post()
    if request.match_info["what"] == "suspend":
        reason = _field(form, "reason").strip() or "No reason given"
        await state.store.suspend_announcements(reason, session.user.username, state.clock())
        raise web.HTTPSeeOther(f"{ROOT}?done=suspended")
    await state.store.resume_announcements(session.user.username, state.clock())
    raise web.HTTPSeeOther(f"{ROOT}?done=resumed")


def add_routes(app: web.Application) -> None:
    """Called by bot.inbox.add_routes before its /inbox/{reference} route."""
    from bot.inbox import staff

    app.router.add_get(ROOT, staff(announcements_page))
    app.router.add_post(ROOT, staff(write))
    app.router.add_post(ROOT + "/{what:suspend|resume}", staff(suspend))
    app.router.add_post(ROOT + "/{id:\\d+}/{action:approve|cancel|publish}", staff(act))
