"""The command menus Telegram shows each role."""

from __future__ import annotations

from telegram import Bot, BotCommand, BotCommandScopeChat

from bot.locales import t
from handlers.commands import menu_of

PARTNER_COMMANDS = menu_of("partner")
THERAPIST_COMMANDS = menu_of("therapist")


def bot_commands(names: tuple[str, ...], language: str) -> list[BotCommand]:
    """The command menu for one role, in one language."""
    return [BotCommand(name, t(language, f"common.commands.{name}")) for name in names]


async def set_therapist_commands(bot: Bot, chat_id: int, language: str) -> None:
    """Give a therapist's chat the therapist command menu."""
    await bot.set_my_commands(
        bot_commands(THERAPIST_COMMANDS, language), scope=BotCommandScopeChat(chat_id)
    )
