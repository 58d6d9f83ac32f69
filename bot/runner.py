"""``dyad run``: the bot process, with its database migrated first."""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.app import DyadBot
from bot.config import ConfigError, Settings
from bot.core.clock import SystemClock
from bot.services.crypto import load_cipher
from bot.services.deps import Deps
from db.engine import Database

log = logging.getLogger(__name__)


async def run_bot(settings: Settings) -> None:
    """Migrate, then serve Telegram until SIGINT or SIGTERM."""
    if settings.bot_token is None:
        raise ConfigError("DYAD_BOT_TOKEN: required to run the bot (ask @BotFather for one)")
    cipher = load_cipher(settings)  # before anything else: refuse to start without a key
    db = Database(settings.database_url)
    await db.migrate()
    deps = Deps(settings=settings, db=db, clock=SystemClock(), cipher=cipher)
    bot = DyadBot(deps, settings.bot_token.get_secret_value())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await bot.start()
    log.info("dyad is running (polling)")
    try:
        await stop.wait()
    finally:
        await bot.stop()
        await db.dispose()


async def run_worker(settings: Settings, *, once: bool = False) -> None:
    """Plan and dispatch (no update intake): a separate worker, or one pass with ``once``."""
    if settings.bot_token is None:
        raise ConfigError("DYAD_BOT_TOKEN: required to send messages (ask @BotFather for one)")
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
        await bot.start(poll=False)
        log.info("dyad worker is running")
        await stop.wait()
    finally:
        await bot.stop()
        await db.dispose()
