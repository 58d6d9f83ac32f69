"""The composition root: builds the PTB Application with its database and services."""

from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeDefault
from telegram.ext import AIORateLimiter, Application

import handlers
from bot.channels.telegram import TelegramMessenger
from bot.locales import SUPPORTED_LANGUAGES, t
from bot.services.deps import Deps

log = logging.getLogger(__name__)

PARTNER_COMMANDS = (
    "checkin",
    "settings",
    "pause",
    "resume",
    "privacy",
    "export",
    "deleteme",
    "stop",
    "help",
)
THERAPIST_COMMANDS = (
    "newcouple",
    "couples",
    "invite",
    "goal",
    "schedule",
    "session",
    "sessions",
    "digest",
    "alerts",
    "clearhold",
    "close",
    "help",
)


def bot_commands(names: tuple[str, ...], language: str) -> list[BotCommand]:
    """The command menu for one role, in one language."""
    return [BotCommand(name, t(language, f"common.commands.{name}")) for name in names]


def file_url_for(api_url: str) -> str:
    """Telegram's file URL beside a Bot API URL (``…/bot`` -> ``…/file/bot``)."""
    return api_url[: -len("bot")] + "file/bot" if api_url.endswith("/bot") else api_url


async def _post_init(application: Application) -> None:  # type: ignore[type-arg]
    deps: Deps = application.bot_data["deps"]
    deps.bot_username = application.bot.username
    for language in SUPPORTED_LANGUAGES:
        await application.bot.set_my_commands(
            bot_commands(PARTNER_COMMANDS, language),
            scope=BotCommandScopeDefault(),
            language_code=None if language == "en" else language,
        )


def build_application(deps: Deps, token: str) -> Application:  # type: ignore[type-arg]
    """A PTB Application wired to Dyad's handlers, database and clock."""
    api_url = deps.settings.telegram_api_url
    application = (
        Application.builder()
        .token(token)
        .base_url(api_url)
        .base_file_url(file_url_for(api_url))
        .rate_limiter(AIORateLimiter(max_retries=3))
        .post_init(_post_init)
        .build()
    )
    application.bot_data["deps"] = deps
    application.bot_data["messenger"] = TelegramMessenger(application.bot)
    handlers.register(application)
    return application
