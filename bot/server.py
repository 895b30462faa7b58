"""Running the server: start, follow the rules (bot.live) and reload on SIGHUP, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from bot.alerts import Alerter, alert_channels
from bot.channels import X_CREDENTIALS, Channel
from bot.channels.posting import Poster
from bot.errors import StoreError
from bot.jobs import holder_name, run_jobs
from bot.live import Live, settle
from bot.outbox import Sender
from bot.profile import keep_current, setters
from bot.publisher import Publisher
from bot.store import open_store
from bot.web import State, make_app

log = logging.getLogger("bot.server")

DEFAULT_DATABASE_URL = "sqlite:///data/holding-reply.sqlite3"
SHUTDOWN_SECONDS = 8.0  # in-flight requests get this long; the whole exit stays under 10 s


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def auto_migrate() -> bool:
    """AUTO_MIGRATE=0 (or false, no, off): never change the schema except by `migrate`."""
    value = (os.environ.get("AUTO_MIGRATE") or "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def build_channels(state: State, env: Mapping[str, str]) -> dict[str, Channel]:
    """The sending channels whose credentials are set (and that rules.toml does not switch off)."""
    channels: dict[str, Channel] = {}
    rules = state.triage.rules
    if env.get("TELEGRAM_BOT_TOKEN"):
        if rules.channel("telegram").enabled:
            from bot.channels.telegram import TelegramChannel, TelegramSettings

            channels["telegram"] = TelegramChannel(state, TelegramSettings(env))
        else:
            log.warning("TELEGRAM_BOT_TOKEN is set but rules.toml switches telegram off")
    if any(env.get(name) for name in X_CREDENTIALS):
        if rules.channel("x").enabled:
            from bot.channels.x import XChannel

            channels["x"] = XChannel(state, env)
        else:
            log.warning("X credentials are set but rules.toml switches x off")
    switches = {
        "facebook": env.get("FACEBOOK_PAGE_ACCESS_TOKEN"),
        "instagram": env.get("INSTAGRAM_ACCOUNT_ID"),
        "whatsapp": env.get("WHATSAPP_PHONE_NUMBER_ID") or env.get("WHATSAPP_ACCESS_TOKEN"),
    }
    for name, switch in switches.items():
        if not switch:
            continue
        if not rules.channel(name).enabled:
            log.warning("%s is set up but rules.toml switches it off", name)
            continue
        from bot.channels.meta import MetaSettings

        meta = MetaSettings(env)
        if name == "whatsapp":
            from bot.channels.whatsapp import WhatsAppChannel

            channels[name] = WhatsAppChannel(state, meta)
        else:
            from bot.channels.messenger import MessengerChannel

            channels[name] = MessengerChannel(state, meta, name)
    if env.get("IMAP_HOST"):
        if rules.channel("email").enabled:
            from bot.channels.email import EmailChannel, EmailSettings

            # Also sends the email alerts, in place of the alert-only email channel.
            channels["email"] = EmailChannel(state, EmailSettings(env))
        else:
            log.warning("IMAP_HOST is set but rules.toml switches email off")
    if env.get("MASTODON_ACCESS_TOKEN") or env.get("MASTODON_API_BASE_URL"):
        if rules.channel("mastodon").enabled:
            from bot.channels.mastodon import MastodonChannel

            channels["mastodon"] = MastodonChannel(state, env)
        else:
            log.warning("MASTODON_* is set but rules.toml switches mastodon off")
    if env.get("BLUESKY_HANDLE") or env.get("BLUESKY_APP_PASSWORD"):
        if rules.channel("bluesky").enabled:
            from bot.channels.bluesky import BlueskyChannel

            channels["bluesky"] = BlueskyChannel(state, env)
        else:
            log.warning("BLUESKY_* is set but rules.toml switches bluesky off")
    return channels


async def serve(host: str, port: int, rules_path: Path, url: str) -> None:
    """Run until SIGTERM or SIGINT. Raises RulesError or StoreError before listening."""
    store = open_store(url, migrate=auto_migrate())
    async with store:
        live = Live(store, rules_path)  # the newest stored version; see bot.live
        try:
            triage = await live.start()
        except BaseException:
            live.close()
            raise
        state = State(triage, store, rules_version=live.version)
        channels = build_channels(state, os.environ)
        holder = holder_name()
        # Alert-only channels (email, Slack, Teams) send from the outbox but receive nothing.
        senders = {**alert_channels(os.environ), **channels}
        sender = Sender(store, senders, holder, metrics=state.metrics)
        alerter = Alerter(state, holder, os.environ, set(channels))
        # Channels that post announcements (bot.channels.posting.Poster): capabilities.posts.
        posters = {
            n: c for n, c in channels.items() if c.capabilities.posts and isinstance(c, Poster)
        }
        publisher = Publisher(state, posters, holder)

        def wake() -> None:  # something new in the outbox, or a new message to alert
            sender.wake()
            alerter.wake()

        state.wake = wake
        app = make_app(state)
        for channel in channels.values():
            app.router.add_routes(channel.routes())
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        settle()  # before the first request: see bot.live.settle
        site = web.TCPSite(runner, host, port, shutdown_timeout=SHUTDOWN_SECONDS)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port  # the real one when port=0
        log.info(
            "listening",
            extra={
                "host": host,
                "port": bound,
                "rules": str(rules_path),
                "organisation": triage.rules.name,
            },
        )
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks: set[asyncio.Task[object]] = set()

        def on_hup() -> None:
            task = loop.create_task(live.reload(state, "SIGHUP"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        watcher = loop.create_task(live.follow(state))
        jobs = loop.create_task(run_jobs(state, holder))
        for channel in senders.values():
            await channel.start()
        sending = loop.create_task(sender.run())
        alerting = loop.create_task(alerter.run())
        publishing = loop.create_task(publisher.run())
        profiles: asyncio.Task[None] | None = None
        if profile_setters := setters(channels):  # daily and after each rules change
            profiles = loop.create_task(keep_current(state, profile_setters))
        try:
            await stop.wait()
            log.info("stopping: no new connections; finishing requests in flight")
        finally:
            watcher.cancel()
            live.close()
            jobs.cancel()
            alerting.cancel()
            publishing.cancel()
            if profiles is not None:
                profiles.cancel()
            await asyncio.gather(
                jobs,
                alerting,
                publishing,
                *([profiles] if profiles else []),
                return_exceptions=True,
            )
            await runner.cleanup()  # a second SIGTERM meanwhile only sets `stop` again
            for channel in channels.values():
                await channel.stop()
            await sender.stop(sending)
            for channel in senders.values():
                if channel.name not in channels:
                    await channel.stop()
            try:  # another process may take this one's scheduled work at once
                await asyncio.wait_for(store.release_jobs(holder), 2.0)
            except (StoreError, TimeoutError) as exc:
                log.warning(
                    "leases not released; they expire by themselves", extra={"error": str(exc)}
                )
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
    log.info("stopped")
