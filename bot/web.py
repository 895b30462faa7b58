"""The web channel: the JSON API, the public "Message us" page, and the health check.

A message is answered 2xx only after it and its decision are committed to the store.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot import catalogue
from bot.desk import desk
from bot.errors import BadRequest, StoreError
from bot.language import split_bilingual, welsh_or_none
from bot.metrics import Metrics, authorised
from bot.models import Decision, Ingested, Message, QueueItem, SenderState
from bot.store import Store
from bot.triage import Triage
from bot.typical import NOTHING, Typical

log = logging.getLogger("bot.web")

MAX_BODY = 64 * 1024
MAX_TEXT = 4000
MAX_FIELD = 200
FIELDS = ("sender", "text", "id", "name")


@dataclass
class State:
    """What the routes need: the current triage (swapped on reload) and the store."""

    triage: Triage
    store: Store
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    wake: Callable[[], None] = field(default=lambda: None)  # something new in the outbox
    metrics: Metrics = field(default_factory=Metrics)  # this app's own registry
    typical: Typical = NOTHING  # how long replies have lately taken; refreshed by bot.jobs
    rules_version: int = 0  # the stored version `triage` was loaded from (bot.live)


STATE = web.AppKey("state", State)


def parse_body(raw: bytes) -> dict[str, str]:
    """Validate a POST /api/messages body, or raise BadRequest saying what to change."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the body is not valid UTF-8 (bad byte at position {exc.start})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object such as {"sender": "...", "text": "..."}')
    for key in data:
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f'; did you mean "{close[0]}"?' if close else f"; allowed: {', '.join(FIELDS)}"
            raise BadRequest(f"unknown field {key!r}{hint}", 422)
    out: dict[str, str] = {}
    for key in FIELDS:
        value = data.get(key)
        if value is None:
            if key in ("sender", "text"):
                raise BadRequest(f'"{key}" is required', 422)
            continue
        if not isinstance(value, str):
            raise BadRequest(f'"{key}" must be a string, got {type(value).__name__}', 422)
        if "\x00" in value:
            raise BadRequest(f'"{key}" contains a NUL character', 422)
        limit = MAX_TEXT if key == "text" else MAX_FIELD
        if len(value) > limit:
            raise BadRequest(
                f'"{key}" is {len(value)} characters long; at most {limit} allowed', 422
            )
        if key in ("sender", "text", "id") and not value.strip():
            raise BadRequest(f'"{key}" is empty', 422)
        out[key] = value
    return out


async def receive(state: State, message: Message) -> tuple[Ingested, Triage]:
    """Decide and store one message from any channel; raise StoreError if the store is unavailable.

    A message with a `conversation` has its reply put in the outbox in the same transaction;
    `state.wake` then tells the sender loop there is something to send.
    """
    triage = state.triage  # the rules in force when the message arrived, even if reloaded meanwhile

    # The costly part of the decision runs here, on the event loop, before the transaction;
    # inside it, only the sender's cooldown and the reference remain to be applied.
    started = time.perf_counter()
    draft = triage.draft(message, typical=state.typical)
    deciding = time.perf_counter() - started

    def decide(sender: SenderState, reference: str) -> Decision:
        nonlocal deciding
        started = time.perf_counter()
        try:
            return triage.finish(draft, sender, reference, message.received_at, message.no_reply)
        finally:
            deciding += time.perf_counter() - started

    result = await state.store.ingest(message, decide)
    item = result.item
    state.metrics.decision.observe(deciding)
    state.metrics.received(message.channel, result.duplicate)
    log.info(
        "message %s",
        "duplicate" if result.duplicate else "accepted",
        extra={
            "reference": item.reference,
            "channel": item.channel,
            "template": item.template,
            "emergency": item.emergency,
            "team": item.team,
        },
    )
    # Something to send (a reply to a sending channel), or an emergency to alert at once.
    if not result.duplicate and (
        (message.conversation is not None and item.auto_reply is not None) or item.emergency
    ):
        state.wake()
    return result, triage


async def ingest(
    state: State, fields: Mapping[str, str], language: str | None = None
) -> tuple[Ingested, Triage]:
    """Store one web message with its decision; raise StoreError if the store is unavailable.

    `language`: the language of the page it was sent from, which the reply is in whatever
    words the message uses (None: read from the message)."""
    message = Message(
        channel="web",
        platform_id=fields.get("id") or uuid.uuid4().hex,
        sender=fields["sender"].strip(),
        text=fields["text"],
        received_at=state.clock(),
        sender_name=(fields.get("name") or "").strip() or None,
        language=language,
    )
    return await receive(state, message)


def answer(item: QueueItem, triage: Triage) -> dict[str, Any]:
    tz = triage.rules.timezone
    return {
        "id": item.platform_id,
        "reference": item.reference,
        "reply": item.auto_reply,
        "reply_by": item.reply_by.astimezone(tz).isoformat() if item.reply_by else None,
        "emergency": item.emergency,
        "redirect": item.redirect,
        "team": item.team,
        "staffed": item.staffed,
        "language": item.language,
    }


def error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def read_limited(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadRequest(
            f"the body is {request.content_length} bytes; at most {MAX_BODY} allowed", 413
        )
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(f"the body is over {MAX_BODY} bytes", 413) from None


async def post_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        fields = parse_body(await read_limited(request))
        result, triage = await ingest(state, fields)
    except BadRequest as exc:
        return error(exc.status, str(exc))
    except StoreError:
        log.exception("store unavailable")
        return error(
            503, "the message could not be stored; please try again shortly", **{"Retry-After": "5"}
        )
    headers = {"X-Duplicate": "true"} if result.duplicate else {}
    return web.json_response(answer(result.item, triage), status=202, headers=headers)


PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HOME = {"en": "/", "cy": "/cy/"}  # where each language's pages are
HTML_LANG = {"en": "en-GB", "cy": "cy"}


def form_errors(values: Mapping[str, str], _: Callable[[str], str]) -> dict[str, str]:
    """What is wrong with the form, said in the page's language, field by field."""
    errors: dict[str, str] = {}
    if len(values["name"]) > MAX_FIELD:
        errors["name"] = _("Your name must be %(limit)s characters or fewer.") % {
            "limit": MAX_FIELD
        }
    if not values["sender"].strip():
        errors["sender"] = _("Enter an email address or phone number so we can reply.")
    elif len(values["sender"]) > MAX_FIELD:
        errors["sender"] = _(
            "Your email address or phone number must be %(limit)s characters or fewer."
        ) % {"limit": MAX_FIELD}
    if not values["text"].strip():
        errors["text"] = _("Enter your message.")
    elif len(values["text"]) > MAX_TEXT:
        errors["text"] = _("Your message must be %(limit)s characters or fewer.") % {
            "limit": MAX_TEXT
        }
    for key in ("name", "sender", "text", "id"):
        if "\x00" in values[key]:
            errors.setdefault("text" if key == "id" else key, _("Remove the unusual characters."))
    return errors


async def message_us(request: web.Request) -> web.Response:
    """The public form, in English at / and in Welsh at /cy/ (only when rules.toml names "cy").

    Works without JavaScript: a plain POST renders the reply. A message sent from the Welsh
    form is answered in Welsh, whatever words it uses.
    """
    state = request.app[STATE]
    rules = state.triage.rules
    language = "cy" if request.path.startswith("/cy") else "en"
    if language not in rules.languages and language != "en":
        raise web.HTTPNotFound()
    _ = catalogue.gettext_for(language)
    twin = next((lang for lang in rules.languages if lang != language and lang in HOME), None)
    context: dict[str, Any] = {
        "organisation": rules.name_in(language),
        "html_lang": HTML_LANG[language],
        "home": HOME[language],
        "twin": {"href": HOME[twin], "lang": twin, "name": catalogue.NAMES[twin]} if twin else None,
        "values": {},
        "errors": {},
        "desk": desk(state.triage, state.clock(), language),
    }
    status = 200
    if request.method == "POST":
        try:
            form: Mapping[str, Any] = await request.post()
        except (web.HTTPRequestEntityTooLarge, ValueError):
            form = {}
            context["errors"]["text"] = _("Your message is too long.")
        values = {k: str(form.get(k, "")) for k in ("name", "sender", "text", "id")}
        context["values"] = values
        if str(form.get("website", "")):  # a hidden field only robots fill in
            return web.Response(status=204)
        if not context["errors"]:
            context["errors"] = form_errors(values, _)
        if not context["errors"]:
            fields = {k: v for k, v in values.items() if v.strip()}
            try:
                result, triage = await ingest(state, fields, language if language != "en" else None)
                context["result"] = answer(result.item, triage)
                reply = result.item.auto_reply or ""
                context["reply_parts"] = reply_parts(reply, result.item.language, triage, language)
            except StoreError:
                log.exception("store unavailable")
                context["errors"]["text"] = _(
                    "Sorry, we could not take your message just now. Please try again in a minute."
                )
                status = 503
        if context["errors"] and status == 200:
            status = 422
    context["form_id"] = uuid.uuid4().hex
    page = catalogue.pages(language).get_template("message-us.html").render(context)
    return web.Response(text=page, content_type="text/html", status=status, headers=PAGE_HEADERS)


@dataclass(frozen=True, slots=True)
class Part:
    """One language's block of a reply, as a page shows it: `lang` is None when it is the
    page's own language (nothing to mark)."""

    lang: str | None
    text: str


def reply_parts(
    reply: str, language: str | None, triage: Triage, page_language: str = "en"
) -> list[Part]:
    """A reply as blocks of one language each, each marked with its language when that is not
    the page's (WCAG 3.1.2). `language`: the automatic reply's; a bilingual one is split where
    its second language begins. None: a person's reply, whose language is read from its words.
    """
    rules = triage.rules
    if language is None:
        blocks = [(welsh_or_none(reply) or "en", reply)]
    elif rules.bilingual:
        blocks = split_bilingual(reply, rules.languages)
    else:
        blocks = [(language, reply)]
    return [Part(None if lang == page_language else lang, text) for lang, text in blocks]


async def cy_home(request: web.Request) -> web.Response:
    if "cy" not in request.app[STATE].triage.rules.languages:
        raise web.HTTPNotFound()
    raise web.HTTPPermanentRedirect("/cy/")


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        counts = await state.store.counts()
    except StoreError:
        return web.json_response({"status": "store unavailable"}, status=503)
    return web.json_response(
        {
            "status": "ok",
            "organisation": state.triage.rules.name,
            "rules_loaded_at": state.loaded_at.isoformat(),
            "queue": counts,
        }
    )


METRICS_TOKEN = web.AppKey("metrics_token", str)
BEARER = {"WWW-Authenticate": 'Bearer realm="metrics"'}


async def metrics(request: web.Request) -> web.Response:
    """For a Prometheus server that sends `Authorization: Bearer $METRICS_TOKEN`."""
    if not authorised(request.headers.get("Authorization"), request.app[METRICS_TOKEN]):
        return error(401, "this needs Authorization: Bearer <METRICS_TOKEN>", **BEARER)
    state = request.app[STATE]
    try:
        body = await state.metrics.exposition(state.store, state.clock())
    except StoreError:
        return error(503, "store unavailable", **{"Retry-After": "5"})
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(state: State) -> web.Application:
    token = (os.environ.get("METRICS_TOKEN") or "").strip()
    # Off unless a token is set: then no /metrics route and no timing of requests at all.
    middlewares = [state.metrics.middleware()] if token else []
    app = web.Application(client_max_size=MAX_BODY, middlewares=middlewares)
    app[STATE] = state
    if token:
        app[METRICS_TOKEN] = token
        app.router.add_get("/metrics", metrics)
    app.router.add_get("/", message_us)
    app.router.add_post("/", message_us)
    app.router.add_get("/cy/", message_us)
    app.router.add_post("/cy/", message_us)
    app.router.add_get("/cy", cy_home)
    app.router.add_post("/api/messages", post_message)
    app.router.add_get("/healthz", healthz)
    from bot.inbox import add_routes  # here: bot.inbox imports this module

    add_routes(app)
    return app
