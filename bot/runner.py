"""``dyad run``: the bot process (polling for now), with its database migrated first."""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.app import build_application
from bot.config import ConfigError, Settings
from bot.core.clock import SystemClock
from bot.services.deps import Deps
from db.engine import Database

log = logging.getLogger(__name__)


async def run_bot(settings: Settings) -> None:
    """Migrate, then poll Telegram until SIGINT or SIGTERM."""
    if settings.bot_token is None:
        raise ConfigError("DYAD_BOT_TOKEN: required to run the bot (ask @BotFather for one)")
    db = Database(settings.database_url)
    await db.migrate()
    deps = Deps(settings=settings, db=db, clock=SystemClock())
    application = build_application(deps, settings.bot_token.get_secret_value())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=["message", "callback_query", "my_chat_member"])
        log.info("dyad is running (polling)")
        await stop.wait()
        await application.updater.stop()
        await application.stop()
    await db.dispose()
