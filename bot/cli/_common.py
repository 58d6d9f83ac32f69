"""What every ``dyad`` command shares: settings, running a coroutine, the admin's unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging

if TYPE_CHECKING:
    from db.uow import UnitOfWork

T = TypeVar("T")


def settings() -> Settings:
    """The process's settings, with logging configured as they say."""
    loaded = load_settings()
    configure_logging(loaded.log_level, loaded.log_format)
    return loaded


def run(coro_factory: Callable[[], Coroutine[Any, Any, object]]) -> object:
    """Run a coroutine to completion in a fresh event loop."""
    return asyncio.run(coro_factory())


def admin(work: Callable[[UnitOfWork, datetime], Awaitable[T]]) -> T:
    """Run one admin action in a unit of work; an :class:`AdminError` is one line, exit 1."""
    from bot.services.practices import AdminError
    from db.engine import Database

    current = settings()

    async def _go() -> T:
        db = Database(current.database_url)
        try:
            await db.migrate()
            async with db.uow() as uow:
                result = await work(uow, datetime.now(UTC))
                await uow.commit()
                return result
        finally:
            await db.dispose()

    try:
        return asyncio.run(_go())
    except AdminError as error:
        raise click.ClickException(str(error)) from None


async def bot_username(current: Settings) -> str:
    """The bot's username, from getMe on the configured Bot API."""
    from telegram import Bot

    if current.bot_token is None:
        raise ConfigError("DYAD_BOT_TOKEN: required to make invite links (ask @BotFather)")
    bot = Bot(current.bot_token.get_secret_value(), base_url=current.telegram_api_url)
    async with bot:
        me = await bot.get_me()
    if not me.username:
        raise click.ClickException("the Bot API did not tell the bot's username (getMe)")
    return me.username
