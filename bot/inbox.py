"""The team's inbox: log in, see the queue for your teams, claim, reply, note, reassign, close.

Every page is rendered on the server and works without JavaScript; a small script adds live
updates from /inbox/events. The live stream polls the store every POLL_SECONDS rather than
listening inside this process, so it sees messages that any process sharing the database took in.
Sessions and CSRF tokens come from bot.auth; an agent sees only their teams' items, and anything
else answers 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web

from bot import replying
from bot.auth import SESSION_LENGTH, Session, TooManyAttempts, csrf_ok, log_in, session_for
from bot.auth import token_hash as hash_token
from bot.config import CHANNELS
from bot.errors import StoreError
from bot.language import welsh_or_none
from bot.models import QueueItem, StoredReply, User
from bot.web import STATE, State, reply_parts

log = logging.getLogger("bot.inbox")

COOKIE = "hr_session"
LOGIN_COOKIE = "hr_login"  # a double-submit token, so nobody can log a browser in as themselves
POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0  # PaaS routers drop a connection idle for about 55 s
MAX_REPLY = 4000
MAX_NOTE = 4000
STATUSES = ("open", "done", "all")
DONE_MESSAGES = {
    "claimed": "You are on this message now.",
    "unclaimed": "Nobody is on this message now.",
    "replied": "Your reply is on its way.",
    "recorded": "Your reply is recorded. Contact the citizen at the address they gave.",
    "noted": "Your note is added.",
    "reassigned": "The message is given to another team.",
    "done": "The message is marked done.",
    "reopened": "The message is open again.",
    "logged-out": "You have logged out.",
}
PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "web_templates" / "inbox")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
STATIC = Path(__file__).parent / "static"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # the pages carry citizens' messages
}
STOPPING = web.AppKey("inbox_stopping", asyncio.Event)

Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


# Who is asking.


def client_address(request: web.Request) -> str:
    """The address login failures are counted against.

    Behind a PaaS router (a private or loopback peer), the router appends the real client to
    X-Forwarded-For, so its last entry is the one to trust; a client talking to us directly
    cannot use the header to dodge the limit.
    """
    peer = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For", "")
    try:
        behind_proxy = ipaddress.ip_address(peer).is_private
    except ValueError:
        behind_proxy = False
    if behind_proxy and forwarded.strip():
        return forwarded.split(",")[-1].strip()[:64]
    return peer


def is_https(request: web.Request) -> bool:
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or proto == "https"


def same_origin(request: web.Request) -> bool:
    """A form posted from another site is refused even before its CSRF token is checked."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


def wants_html(request: web.Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", "")


def safe_next(value: str | None) -> str:
    """Only a path in the inbox, never another site ("//evil.example" or "/\\evil")."""
    if value and value.startswith("/inbox") and "\\" not in value and "//" not in value:
        return value
    return "/inbox"


async def current_session(request: web.Request) -> Session | None:
    state = request.app[STATE]
    return await session_for(state.store, request.cookies.get(COOKIE), state.clock())


def staff(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A route that needs a session; a POST also needs the same origin and the CSRF token."""

    async def route(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            if wants_html(request):
                raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
            return notice(request, "Log in again", "login", 401)
        if request.method == "POST":
            form = await request.post()
            token = form.get("csrf")
            if not same_origin(request) or not csrf_ok(
                session, token if isinstance(token, str) else None
            ):
                log.warning("csrf refused", extra={"path": request.path, "user": session.user.id})
                return notice(request, "Form expired", "expired", 403)
        return await handler(request, session)

    return route


def may_see(user: User, item: QueueItem) -> bool:
    return user.role == "admin" or (item.team or "default") in user.teams


def visible_teams(user: User) -> list[str] | None:
    return None if user.role == "admin" else list(user.teams)


async def item_for(request: web.Request, session: Session) -> QueueItem:
    item = await request.app[STATE].store.get(request.match_info["reference"])
    if item is None or not may_see(session.user, item):
        missing = notice(request, "Page not found", "missing", 404)
        raise web.HTTPNotFound(text=missing.text, content_type="text/html", headers=HEADERS)
    return item


# Pages.


def render(name: str, context: Mapping[str, Any]) -> str:
    return PAGES.get_template(name).render(context)


def page(name: str, context: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=render(name, context), content_type="text/html", status=status, headers=HEADERS
    )


def notice(request: web.Request, title: str, kind: str, status: int) -> web.Response:
    """A short page that says what went wrong and where to go: no session, a bad form, a 404."""
    organisation = request.app[STATE].triage.rules.name
    return page("message.html", {"organisation": organisation, "title": title, kind: True}, status)


def span(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    said = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n][:2]
    return " ".join(said) or "less than a minute"


@dataclass(frozen=True, slots=True)
class Row:
    """One item as a page shows it: times in the organisation's zone, people by name."""

    item: QueueItem
    on_it: str | None
    received: str
    due: str  # "in 2 hours 5 minutes", "overdue by 1 day 3 hours", "no promise"
    overdue: bool


def row(item: QueueItem, on_it: str | None, state: State) -> Row:
    tz = state.triage.rules.timezone
    now = state.clock()
    received = f"{item.received_at.astimezone(tz):%a %-d %b, %H:%M}"
    if item.done_at is not None:
        due, overdue = "done", False
    elif item.reply_by is None:
        due, overdue = "no promise", False
    elif item.reply_by >= now:
        due, overdue = f"in {span(item.reply_by - now)}", False
    else:
        due, overdue = f"overdue by {span(now - item.reply_by)}", True
    return Row(item, on_it, received, due, overdue)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the platform said became of a reply: "Delivered 10:02", "Read 10:05"."""

    said: str  # "Delivered" or "Read"
    at: datetime
    shown: str  # in the organisation's zone; with the day when not the day it was sent


def receipts(reply: StoredReply, zone: tzinfo) -> list[Receipt]:
    day = reply.created_at.astimezone(zone).date()
    found = []
    for said, at in (("Delivered", reply.delivered_at), ("Read", reply.read_at)):
        if at is not None:
            local = at.astimezone(zone)
            shown = f"{local:%H:%M}" if local.date() == day else f"{local:%a %-d %b, %H:%M}"
            found.append(Receipt(said, at, shown))
    if len(found) == 2 and reply.delivered_at == reply.read_at:
        del found[0]  # a read with no delivery of its own: "Read" says both
    return found


async def names(state: State) -> dict[int, str]:
    return {u.id: u.display_name for u in await state.store.users()}


def team_choices(state: State, user: User) -> list[str]:
    every = [t.name for t in state.triage.rules.teams] + ["default"]
    return every if user.role == "admin" else [t for t in every if t in user.teams]


@dataclass(frozen=True, slots=True)
class Filters:
    team: str
    channel: str
    status: str

    @classmethod
    def read(cls, query: Mapping[str, str]) -> Filters:
        status = query.get("status", "open")
        channel = query.get("channel", "")
        return cls(
            team=query.get("team", ""),
            channel=channel if channel in CHANNELS else "",
            status=status if status in STATUSES else "open",
        )

    def teams(self, user: User) -> list[str] | None:
        mine = visible_teams(user)
        if not self.team:
            return mine
        return [self.team] if mine is None or self.team in mine else []

    def query(self) -> str:
        chosen = {"team": self.team, "channel": self.channel, "status": self.status}
        return urlencode({k: v for k, v in chosen.items() if v})


async def listing(state: State, session: Session, filters: Filters) -> tuple[list[Row], int]:
    """The rows the filters pick, and how many are open in all of the user's teams."""
    user = session.user
    store = state.store
    items = await store.inbox(filters.teams(user), filters.channel or None, filters.status)
    mine = visible_teams(user)
    if filters == Filters("", "", "open"):
        open_count = len(items)
    else:
        open_count = len(await store.inbox(mine, None, "open"))
    who = await names(state)
    rows = [row(i, who.get(i.assigned_to) if i.assigned_to else None, state) for i in items]
    return rows, open_count


def common(state: State, session: Session) -> dict[str, Any]:
    return {"organisation": state.triage.rules.name, "user": session.user, "csrf": session.csrf}


async def inbox_page(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    filters = Filters.read(request.query)
    rows, open_count = await listing(state, session, filters)
    query = filters.query()
    return page(
        "inbox.html",
        {
            **common(state, session),
            "rows": rows,
            "open_count": open_count,
            "filters": filters,
            "teams": team_choices(state, session.user),
            "channels": CHANNELS,
            "statuses": STATUSES,
            "events": "/inbox/events" + (f"?{query}" if query else ""),
            "refresh": "/inbox" + (f"?{query}" if query else ""),
            "confirmation": DONE_MESSAGES.get(request.query.get("done", "")),
        },
    )


async def item_page(
    request: web.Request,
    session: Session,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.StreamResponse:
    state = request.app[STATE]
    store = state.store
    item = await item_for(request, session)
    who = await names(state)
    by_username = {u.username: u.display_name for u in await store.users()}
    history = [
        row(h, who.get(h.assigned_to) if h.assigned_to else None, state)
        for h in await store.history(item)
        if may_see(session.user, h)
    ]
    done = request.query.get("done", "")
    open_count = len(await store.inbox(visible_teams(session.user), None, "open"))
    return page(
        "item.html",
        {
            **common(state, session),
            "row": row(item, who.get(item.assigned_to) if item.assigned_to else None, state),
            "item": item,
            "history": history,
            "replies": [
                (r, reply_parts(r.text, item.language if r.kind == "auto" else None, state.triage))
                for r in await store.replies(item.reference)
            ],
            "lang_of": welsh_or_none,  # to mark the citizen's Welsh lang="cy"
            "notes": await store.notes(item.reference),
            "names": by_username,
            "teams": [t.name for t in state.triage.rules.teams] + ["default"],
            "confirmation": DONE_MESSAGES.get(done),
            "errors": errors or {},
            "values": values or {},
            "open_count": open_count,
            "mine": item.assigned_to == session.user.id,
            "when": lambda at: f"{at.astimezone(state.triage.rules.timezone):%a %-d %b, %H:%M}",
            "receipts": lambda reply: receipts(reply, state.triage.rules.timezone),
            "max_reply": replying.max_length(item.channel, MAX_REPLY),
            "options": await replying.options(state, item),
            "has_original": await store.original(item.id) is not None,
        },
        status=status,
    )


async def original(request: web.Request, session: Session) -> web.StreamResponse:
    """The message as it arrived (a mail with its attachments), to open in a mail program."""
    item = await item_for(request, session)
    raw = await request.app[STATE].store.original(item.id)
    if raw is None:
        missing = notice(request, "Page not found", "missing", 404)
        raise web.HTTPNotFound(text=missing.text, content_type="text/html", headers=HEADERS)
    return web.Response(
        body=raw,
        content_type="message/rfc822",
        headers={
            **HEADERS,
            "Content-Disposition": f'attachment; filename="{item.reference}.eml"',
        },
    )


def back_to(item: QueueItem, done: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/inbox/{item.reference}?done={done}")


async def field(request: web.Request, name: str) -> str:
    value = (await request.post()).get(name, "")
    return value if isinstance(value, str) else ""


async def claim(request: web.Request, session: Session) -> web.StreamResponse:
    item = await item_for(request, session)
    await request.app[STATE].store.claim(item.reference, session.user.id)
    raise back_to(item, "claimed")


async def unclaim(request: web.Request, session: Session) -> web.StreamResponse:
    item = await item_for(request, session)
    await request.app[STATE].store.claim(item.reference, None)
    raise back_to(item, "unclaimed")


async def reply(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    item = await item_for(request, session)
    text = (await field(request, "text")).replace("\r\n", "\n")
    problem = None
    if not text.strip():
        problem = "Enter your reply."
    elif len(text) > (most := replying.max_length(item.channel, MAX_REPLY)):
        problem = f"Your reply is {len(text)} characters; it must be {most} or fewer."
    if problem:
        return await item_page(request, session, {"reply": problem}, {"reply": text}, 422)
    how = await field(request, "how")  # a comment: "public" or "private"
    sent = await replying.send(state, item, text, session.user.username, how)
    if not sent.sendable:  # Meta's window closed since the page was shown
        return await item_page(request, session, {"reply": sent.closed or ""}, {"reply": text}, 422)
    log.info("human reply", extra={"reference": item.reference, "user": session.user.id})
    raise back_to(item, "replied" if item.conversation is not None else "recorded")


async def note(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    item = await item_for(request, session)
    text = (await field(request, "text")).replace("\r\n", "\n")
    if not text.strip() or len(text) > MAX_NOTE:
        problem = (
            "Enter a note." if not text.strip() else f"Notes are {MAX_NOTE} characters at most."
        )
        return await item_page(request, session, {"note": problem}, {"note": text}, 422)
    await state.store.add_note(item.reference, session.user.username, text, state.clock())
    raise back_to(item, "noted")


async def reassign(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    item = await item_for(request, session)
    team = await field(request, "team")
    if team not in [t.name for t in state.triage.rules.teams] + ["default"]:
        return await item_page(request, session, {"team": "Choose a team from the list."}, {}, 422)
    moved = await state.store.reassign(item.reference, None if team == "default" else team)
    log.info("reassigned", extra={"reference": item.reference, "team": team})
    if not may_see(session.user, moved):  # handed to a team this agent is not in
        raise web.HTTPSeeOther("/inbox?" + urlencode({"done": "reassigned"}))
    raise back_to(moved, "reassigned")


async def mark_done(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    item = await item_for(request, session)
    await state.store.mark_done(item.reference, session.user.username, state.clock())
    raise back_to(item, "done")


async def reopen(request: web.Request, session: Session) -> web.StreamResponse:
    item = await item_for(request, session)
    await request.app[STATE].store.reopen(item.reference)
    raise back_to(item, "reopened")


# Live updates.


async def events(request: web.Request, session: Session) -> web.StreamResponse:
    """Server-sent events: the rows and the open count, whenever they change.

    Polls the store (cheap: one indexed query per POLL_SECONDS), so a message another process
    stored shows up as quickly as one this process stored. Ends when the session does.
    """
    state = request.app[STATE]
    stopping = request.app[STOPPING]
    filters = Filters.read(request.query)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 5000\n\n")
    last: str | None = None
    quiet = 0.0
    while not stopping.is_set():
        try:
            if await current_session(request) is None:
                await response.write(b"event: logged-out\ndata: {}\n\n")
                break
            rows, open_count = await listing(state, session, filters)
        except StoreError:
            log.warning("inbox events: store unavailable")
            rows, open_count = [], -1
        if open_count >= 0:
            body = render("rows.html", {"rows": rows, "csrf": session.csrf})
            data = json.dumps({"open": open_count, "rows": body})
            if data != last:
                last, quiet = data, 0.0
                await response.write(f"event: inbox\ndata: {data}\n\n".encode())
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            await response.write(b": still here\n\n")
        try:
            async with asyncio.timeout(POLL_SECONDS):  # not wait_for: see Alerter.run
                await stopping.wait()
        except TimeoutError:
            quiet += POLL_SECONDS
    return response


# Logging in and out.


def login_page(
    request: web.Request, token: str, error: str | None = None, status: int = 200
) -> web.Response:
    state = request.app[STATE]
    done = DONE_MESSAGES.get(request.query.get("done", ""))
    response = page(
        "login.html",
        {
            "organisation": state.triage.rules.name,
            "error": error,
            "confirmation": done,
            "next": safe_next(request.query.get("next")),
            "login_token": token,
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="Strict", secure=is_https(request),
        path="/login", max_age=3600,
    )  # fmt: skip
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if await current_session(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return login_page(request, secrets.token_urlsafe(16))


async def login_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    form = await request.post()
    given = form.get("login_token")
    expected = request.cookies.get(LOGIN_COOKIE)
    fresh = secrets.token_urlsafe(16)
    if (
        not same_origin(request)
        or not expected
        or not isinstance(given, str)
        or not secrets.compare_digest(given, expected)
    ):
        return login_page(request, fresh, "Your login form expired. Please try again.", status=403)
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))[:1024]
    if not username or not password:
        return login_page(request, fresh, "Enter your username and password.", status=422)
    try:
        session = await log_in(
            state.store, username, password, client_address(request), state.clock()
        )
    except TooManyAttempts as exc:
        log.warning("login refused: too many attempts")
        return login_page(request, fresh, str(exc), status=429)
    if session is None:
        log.info("login failed")  # nothing about who, and never the password
        return login_page(request, fresh, "The username or password is not right.", status=401)
    log.info("logged in", extra={"user": session.user.id})
    target = safe_next(str(form.get("next", "")))
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE, session.token, httponly=True, samesite="Lax", secure=is_https(request), path="/",
        max_age=int(SESSION_LENGTH.total_seconds()),
    )  # fmt: skip
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request, session: Session) -> web.StreamResponse:
    await request.app[STATE].store.end_session(hash_token(session.token))
    log.info("logged out", extra={"user": session.user.id})
    response = web.HTTPSeeOther("/login?done=logged-out")
    response.del_cookie(COOKIE, path="/")
    raise response


REPORT_DAYS = 30
# The report is one self-contained file (inline CSS and SVG, no script), the same as
# `python -m bot report --format html` writes, so its page allows inline styles and nothing else.
REPORT_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
}


async def report_page(request: web.Request, session: Session) -> web.StreamResponse:
    """The business-case report for the last 30 days, for admins (it covers every team)."""
    from bot import reports

    if session.user.role != "admin":
        return notice(request, "Page not found", "missing", 404)
    state = request.app[STATE]
    rules = state.triage.rules
    now = state.clock()
    end = now.astimezone(rules.timezone).date() + timedelta(days=1)  # today included
    start = end - timedelta(days=REPORT_DAYS)
    first, last = reports.local_range(start, end, rules)
    data = await state.store.report(first, last, rules.timezone)
    html = reports.to_html(reports.build(data, rules, start, end, now))
    return web.Response(text=html, content_type="text/html", headers=REPORT_HEADERS)


def add_routes(app: web.Application) -> None:
    """Mount the inbox on the web app (bot.web.make_app calls this)."""
    stopping = asyncio.Event()
    app[STOPPING] = stopping

    async def stop_streams(_: web.Application) -> None:  # lets the server stop at once
        stopping.set()

    app.on_shutdown.append(stop_streams)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", staff(logout))
    app.router.add_get("/inbox", staff(inbox_page))
    app.router.add_get("/inbox/events", staff(events))
    app.router.add_get("/inbox/reports", staff(report_page))
    from bot.rules_pages import add_routes as add_rules_routes  # here: it imports this module

    add_rules_routes(app)  # before /inbox/{reference}, which would take /inbox/rules

    from bot import announce_pages  # before /inbox/{reference}, which would match them

    announce_pages.add_routes(app)
    app.router.add_get("/inbox/{reference}", staff(item_page))
    app.router.add_get("/inbox/{reference}/original", staff(original))
    for name, handler in ACTIONS.items():
        app.router.add_post(f"/inbox/{{reference}}/{name}", staff(handler))
    app.router.add_static("/static/", STATIC)


ACTIONS: dict[str, Handler] = {
    "claim": claim,
    "unclaim": unclaim,
    "reply": reply,
    "note": note,
    "reassign": reassign,
    "done": mark_done,
    "reopen": reopen,
}
