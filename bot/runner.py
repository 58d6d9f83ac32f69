"""``dyad run``: the bot process, with its database migrated first."""

from __future__ import annotations

import asyncio
import logging
import signal

from sqlalchemy.engine import make_url

from bot.app import DyadBot, IntakeMode
from bot.config import ConfigError, Settings
from bot.core.clock import SystemClock
from bot.logs import register_secret
from bot.services.crypto import load_cipher
from bot.services.deps import Deps
from db.engine import Database

log = logging.getLogger(__name__)


def protect_secrets(settings: Settings) -> None:
    """Keep the token, webhook secret, keys and database password out of every log line."""
    for secret in (settings.bot_token, settings.webhook_secret, settings.encryption_keys):
        if secret is not None:
            register_secret(secret.get_secret_value())
            for part in secret.get_secret_value().split(","):
                register_secret(part.strip())
    register_secret(make_url(settings.database_url).password)


def intake_mode(settings: Settings) -> IntakeMode:
    """Webhooks when a webhook URL is configured, long polling otherwise."""
    return "webhook" if settings.webhook_url else "poll"


async def run_bot(settings: Settings) -> None:
    """Migrate, then serve Telegram (webhook or polling) until SIGINT or SIGTERM."""
    if settings.bot_token is None:
        raise ConfigError("DYAD_BOT_TOKEN: required to run the bot (ask @BotFather for one)")
    protect_secrets(settings)
    cipher = load_cipher(settings)  # before anything else: refuse to start without a key
    db = Database(settings.database_url)
    await db.migrate()
    deps = Deps(settings=settings, db=db, clock=SystemClock(), cipher=cipher)
    bot = DyadBot(deps, settings.bot_token.get_secret_value())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    mode = intake_mode(settings)
    try:
        await bot.start(mode)
        log.info(
            "dyad is running",
            extra={"mode": mode, "send_rate": bot.options.rate_per_second},
        )
        await stop.wait()
    finally:
        await bot.stop()
        await db.dispose()


async def run_worker(settings: Settings, *, once: bool = False) -> None:
    """Plan and dispatch (no update intake): a separate worker, or one pass with ``once``."""
    if settings.bot_token is None:
        raise ConfigError("DYAD_BOT_TOKEN: required to send messages (ask @BotFather for one)")
    protect_secrets(settings)
    cipher = load_cipher(settings)
    db = Database(settings.database_url)
    await db.migrate()
    deps = Deps(settings=settings, db=db, clock=SystemClock(), cipher=cipher)
    bot = DyadBot(deps, settings.bot_token.get_secret_value(), background_dispatch=not once)
    try:
        if once:
            await bot.application.initialize()
            await bot.maintain()
            await bot.dispatcher.run_until_idle()
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await bot.start("none")
        log.info("dyad worker is running", extra={"send_rate": bot.options.rate_per_second})
        await stop.wait()
    finally:
        await bot.stop()
        await db.dispose()
