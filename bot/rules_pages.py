"""The admins' rules pages in the inbox: Close now, Edit, Preview and History.

Every save goes through bot.versions.save: checked as `python -m bot check` checks, refused when
someone else saved since the page was opened (the text stays in the form), announced once to
the default alert route, and followed by every process within seconds (bot.live).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot import closing, when
from bot.auth import Session, csrf_ok
from bot.cli import preview_one
from bot.errors import Problem, RulesError, StoreError
from bot.inbox import common, current_session, notice, page, same_origin, wants_html
from bot.responses import SHIPPED
from bot.store import RulesVersion, Stale
from bot.triage import Triage
from bot.versions import RULES, check_files, diff, response_folders, save, summary_of, templates
from bot.web import STATE, State

log = logging.getLogger("bot.rules_pages")

MAX_FORM = 2 * 1024 * 1024  # a form with rules.toml in it, URL-encoded; the texts are limited too
MAX_NOTE = 200
MAX_MESSAGE = 4000
CHANNELS = ("web", "telegram", "x")
HISTORY = 30
SAVED = {
    "saved": "Saved. Every channel's replies follow within 5 seconds.",
    "restored": "Restored as a new version. Every channel's replies follow within 5 seconds.",
    "closed": "The desk is closed. Every channel's replies say so within 5 seconds.",
    "opened": "The closure has ended. Replies follow the usual hours within 5 seconds.",
}

Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


def admin(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Admins only (others get a 404, as if the page did not exist); a POST also needs the same
    origin and the CSRF token. Forms here may carry the whole of rules.toml."""

    async def route(request: web.Request) -> web.StreamResponse:
        big = request.clone(client_max_size=MAX_FORM)
        session = await current_session(big)
        if session is None:
            if wants_html(big):
                raise web.HTTPSeeOther("/login?" + urlencode({"next": big.path_qs}))
            return notice(big, "Log in again", "login", 401)
        if session.user.role != "admin":
            return notice(big, "Page not found", "missing", 404)
        if big.method == "POST":
            try:
                form = await big.post()
            except (web.HTTPRequestEntityTooLarge, ValueError):
                return notice(big, "Form too large", "expired", 413)
            token = form.get("csrf")
            if not same_origin(big) or not csrf_ok(
                session, token if isinstance(token, str) else None
            ):
                log.warning("csrf refused", extra={"path": big.path, "user": session.user.id})
                return notice(big, "Form expired", "expired", 403)
        return await handler(big, session)

    return route


async def form_of(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def newline(text: str) -> str:
    """Browsers send CRLF from a textarea; the files have LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def at_lines(problems: list[Problem], name: str, text: str) -> list[dict[str, Any]]:
    """Problems as the page shows them: the file, the line and its text, the message."""
    lines = text.splitlines()
    out = []
    for p in problems:
        line = int(p.where) if p.where.isdigit() else None
        quoted = lines[line - 1].strip() if line and p.file == name and line <= len(lines) else ""
        out.append(
            {
                "file": p.file,
                "line": line,
                "quoted": quoted,
                "message": p.message,
                "here": p.file == name,
            }
        )
    return out


def local_input(at: datetime, triage: Triage) -> str:
    """A value for <input type="datetime-local">, in the organisation's time."""
    return at.astimezone(triage.rules.timezone).strftime("%Y-%m-%dT%H:%M")


def read_local(text: str, triage: Triage) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=triage.rules.timezone)
    return value.astimezone(UTC)


def said(at: str | None, triage: Triage, now: datetime) -> str:
    if not at:
        return "none"
    tz = triage.rules.timezone
    return when.say_when(datetime.fromisoformat(at).astimezone(tz), now.astimezone(tz), "en")


def outcome(triage: Triage, channel: str, text: str, at: datetime) -> dict[str, Any]:
    result = preview_one(triage, channel, text, at)
    result["reply_by_words"] = said(result["reply_by"], triage, at)
    return result


async def newest(state: State) -> RulesVersion:
    found = await state.store.rules_version()
    if found is None:  # the server stores the first version as it starts; this is a fallback
        raise web.HTTPServiceUnavailable(text="No rules version is stored yet.")
    return found


def base(state: State, session: Session, title: str) -> dict[str, Any]:
    return {**common(state, session), "title": title, "version": state.rules_version}


# Edit.


def editable(version: RulesVersion) -> dict[str, str]:
    """Every file the Edit page offers: the version's own, then each shipped template the
    version does not override, under the name it takes once saved (the first folder of
    organisation.responses), with the shipped text. Saving one makes it the organisation's."""
    files = dict(version.files)
    folder = response_folders(version.files.get(RULES, ""))[0]
    for path in sorted(SHIPPED.glob("*/*.txt")):
        files.setdefault(f"{folder}/{path.parent.name}/{path.name}", path.read_text("utf-8"))
    return files


async def edit_page(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    version = await newest(state)
    name = request.query.get("file", RULES)
    files = editable(version)
    if name not in files:
        return notice(request, "Page not found", "missing", 404)
    confirmation = SAVED.get(request.query.get("done", ""))
    return render_edit(
        state, session, version, name, files[name], version.id, confirmation=confirmation
    )


def render_edit(
    state: State,
    session: Session,
    version: RulesVersion,
    name: str,
    text: str,
    based_on: int,
    *,
    problems: list[dict[str, Any]] | None = None,
    error: str | None = None,
    note: str = "",
    status: int = 200,
    confirmation: str | None = None,
) -> web.Response:
    context = {
        **base(state, session, f"Edit {name}"),
        "files": [RULES, *templates(version.files)],
        "shipped": [n for n in editable(version) if n not in version.files],
        "name": name,
        "text": text,
        "lines": max(1, len(text.splitlines()) + (1 if text.endswith("\n") else 0)),
        "bad_lines": {p["line"] for p in problems or [] if p["here"] and p["line"]},
        "based_on": based_on,
        "problems": problems or [],
        "error": error,
        "note": note,
        "confirmation": confirmation,
    }
    return page("rules-edit.html", context, status)


async def edit_post(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    form = await form_of(request)
    name, text = form.get("file", RULES), newline(form.get("text", ""))
    note = " ".join(form.get("note", "").split())[:MAX_NOTE]
    version = await newest(state)
    based_on = int(form["based_on"]) if form.get("based_on", "").isdigit() else 0
    if name not in editable(version):
        return notice(request, "Page not found", "missing", 404)
    base_version = await state.store.rules_version(based_on) or version
    files = {**base_version.files, name: text}

    def again(
        problems: list[dict[str, Any]] | None = None, error: str | None = None, status: int = 422
    ) -> web.Response:
        return render_edit(state, session, version, name, text, based_on, problems=problems,
                           error=error, note=note, status=status)  # fmt: skip

    if form.get("action") == "edit":  # back from a preview of the draft: nothing saved
        return again(status=200)
    if editable(base_version).get(name) == text:
        return again(error="Nothing has changed in this file, so nothing was saved.", status=200)
    try:
        await save(state.store, files, author=session.user.display_name, note=note,
                   source="browser", based_on=based_on, at=state.clock())  # fmt: skip
    except RulesError as exc:
        return again(problems=at_lines(exc.problems, name, text))
    except Stale as exc:
        return again(
            error=f"Not saved: the rules changed since you opened them (version {exc.latest} "
            "was saved meanwhile). Your text is still below: copy it, open the page again, "
            "and make your change there.",
            status=409,
        )
    except StoreError:
        return again(
            error="Not saved: the database is unavailable. Try again in a minute.", status=503
        )
    raise web.HTTPSeeOther("/inbox/rules?" + urlencode({"file": name, "done": "saved"}))


# Preview.


async def preview_page(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    form: Mapping[str, str] = await form_of(request) if request.method == "POST" else request.query
    triage = state.triage
    now = state.clock()
    message = form.get("message", "").strip()[:MAX_MESSAGE] or "Hello, my bin was not collected."
    channel = form.get("channel", "web") if form.get("channel") in CHANNELS else "web"
    at = read_local(form.get("at", ""), triage) or now
    name = form.get("file", "")
    draft_text = newline(form.get("text", "")) if name else ""
    context: dict[str, Any] = {
        **base(state, session, "Preview"),
        "message": message,
        "channel": channel,
        "channels": CHANNELS,
        "at": local_input(at, triage),
        "file": name,
        "text": draft_text,
        "based_on": form.get("based_on", ""),
        "saved": outcome(triage, channel, message, at),
        "draft": None,
        "problems": [],
    }
    if name:
        version = await newest(state)
        based_on = int(form["based_on"]) if form.get("based_on", "").isdigit() else version.id
        base_files = (await state.store.rules_version(based_on) or version).files
        if name in base_files:
            try:
                draft = await asyncio.to_thread(check_files, {**base_files, name: draft_text})
            except RulesError as exc:
                context["problems"] = at_lines(exc.problems, name, draft_text)
            else:
                context["draft"] = outcome(draft, channel, message, at)
    return page("rules-preview.html", context)


# History.


async def history_page(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    versions = await state.store.rules_versions(limit=HISTORY + 1)
    tz = state.triage.rules.timezone
    rows = []
    for i, v in enumerate(versions[:HISTORY]):
        before = versions[i + 1].files if i + 1 < len(versions) else None
        rows.append(
            {
                "version": v,
                "at": v.created_at.astimezone(tz).strftime("%A %-d %B %Y, %H:%M"),
                "changed": summary_of(before, v.files),
                "diff": diff(before, v.files) if before is not None else [],
            }
        )
    context = {
        **base(state, session, "History"),
        "rows": rows,
        "latest": versions[0].id if versions else 0,
        "confirmation": SAVED.get(request.query.get("done", "")),
        "error": {
            "stale": "Not restored: the rules changed since you opened this page. "
            "Look again, then restore."
        }.get(request.query.get("error", "")),
    }
    return page("rules-history.html", context)


async def restore(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    form = await form_of(request)
    number = form.get("version", "")
    old = await state.store.rules_version(int(number)) if number.isdigit() else None
    based_on = int(form["based_on"]) if form.get("based_on", "").isdigit() else 0
    if old is None:
        return notice(request, "Page not found", "missing", 404)
    try:
        await save(state.store, old.files, author=session.user.display_name,
                   note=f"restored version {old.id}", source="restore", based_on=based_on,
                   at=state.clock())  # fmt: skip
    except Stale:
        raise web.HTTPSeeOther("/inbox/rules/history?error=stale") from None
    except RulesError as exc:  # an old version the current code no longer accepts
        problems = "; ".join(str(p) for p in exc.problems[:3])
        raise web.HTTPBadRequest(
            text=f"Version {old.id} no longer passes the checks: {problems}"
        ) from None
    raise web.HTTPSeeOther("/inbox/rules/history?done=restored")


# Close now.


async def close_page(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    triage, now = state.triage, state.clock()
    version = await newest(state)
    was = closing.current(version.files[RULES])
    form: Mapping[str, str] = await form_of(request) if request.method == "POST" else {}
    until_text = form.get("until") or local_input(closing.default_until(triage.rules, now), triage)
    reason = " ".join(form.get("reason", "").split())
    message = " ".join(form.get("message", "").split())
    context: dict[str, Any] = {
        **base(state, session, "Close now"),
        "closing": was if was and was.until > now else None,
        "closing_until": said(was.until.isoformat(), triage, now) if was else "",
        "until": until_text,
        "reason": reason,
        "message": message,
        "based_on": version.id,
        "errors": {},
        "replies": [],
        "confirmation": SAVED.get(request.query.get("done", "")),
    }
    if request.method != "POST":
        return page("rules-close.html", context)
    until = read_local(until_text, triage)
    errors: dict[str, str] = {}
    if until is None:
        errors["until"] = "Enter the date and time the desk reopens, e.g. 2026-12-04 09:00."
    if not reason:
        errors["reason"] = "Say why the desk is closed, e.g. “severe weather”."
    files: dict[str, str] = {}
    if not errors and until is not None:
        try:
            block = closing.block(triage.rules, now, until, reason, message or None,
                                  session.user.display_name)  # fmt: skip
            files = closing.closed(dict(version.files), block)
            draft = await asyncio.to_thread(check_files, files)
        except closing.ClosingError as exc:
            errors[exc.field] = str(exc)
        except RulesError as exc:
            errors["reason"] = "; ".join(p.message for p in exc.problems[:3])
        else:
            enabled = [
                c for c in CHANNELS if c in draft.rules.channels and draft.rules.channel(c).enabled
            ]
            context["replies"] = [
                (c, outcome(draft, c, "Hello, is anyone there?", now)) for c in enabled or ["web"]
            ]
    context["errors"] = errors
    if errors or form.get("action") != "close":
        return page("rules-close.html", context, 422 if errors else 200)
    assert until is not None
    words = closing.closed_words(session.user.display_name, until, reason, triage.rules, now)
    try:
        await save(state.store, files, author=session.user.display_name, note=f"closed: {reason}",
                   source="closure", based_on=version.id, at=now, announce=words)  # fmt: skip
    except Stale:
        context["errors"] = {"reason": "The rules changed a moment ago: check the replies again."}
        return page("rules-close.html", context, 409)
    raise web.HTTPSeeOther("/inbox/rules/close?done=closed")


async def end_closure(request: web.Request, session: Session) -> web.StreamResponse:
    state = request.app[STATE]
    version = await newest(state)
    was = closing.current(version.files[RULES])
    if was is not None:
        words = closing.reopened_words(session.user.display_name, was)
        for _ in range(2):  # a closure's end applies to whatever the newest version is
            try:
                await save(state.store, closing.reopened(dict(version.files)),
                           author=session.user.display_name, note="ended the closure early",
                           source="closure", based_on=version.id, at=state.clock(),
                           announce=words)  # fmt: skip
                break
            except Stale:
                version = await newest(state)
    raise web.HTTPSeeOther("/inbox/rules/close?done=opened")


def add_routes(app: web.Application) -> None:
    """Before the inbox's /inbox/{reference}, which would otherwise take these paths."""
    app.router.add_get("/inbox/rules", admin(edit_page))
    app.router.add_post("/inbox/rules", admin(edit_post))
    app.router.add_get("/inbox/rules/preview", admin(preview_page))
    app.router.add_post("/inbox/rules/preview", admin(preview_page))
    app.router.add_get("/inbox/rules/history", admin(history_page))
    app.router.add_post("/inbox/rules/restore", admin(restore))
    app.router.add_get("/inbox/rules/close", admin(close_page))
    app.router.add_post("/inbox/rules/close", admin(close_page))
    app.router.add_post("/inbox/rules/open", admin(end_closure))
