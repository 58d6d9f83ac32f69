"""Telegram update handlers: parse the update, call a service, send the reply."""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from handlers import common


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Attach every handler, in the order Telegram updates should meet them."""
    private = filters.ChatType.PRIVATE
    application.add_handler(TypeHandler(Update, common.record_update), group=-1)
    application.add_handler(CommandHandler("start", common.start_without_invite, filters=private))
    application.add_handler(CommandHandler("help", common.help_command, filters=private))
    application.add_handler(MessageHandler(filters.COMMAND & private, common.unknown_command))
    application.add_handler(MessageHandler(filters.TEXT & private, common.stray_text))
    application.add_handler(CallbackQueryHandler(common.stale_button))
    application.add_error_handler(common.on_error)
