"""Telegram update handlers: parse the update, run one use case, deliver its reply."""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from handlers import (
    checkin,
    common,
    data_rights,
    onboarding,
    partner,
    prompts,
    text,
    therapist,
)
from handlers import group as linked_group
from handlers.commands import COMMANDS
from handlers.context import DyadApplication


def register(application: DyadApplication) -> None:
    """Attach every handler, in the order Telegram updates should meet them."""
    private = filters.ChatType.PRIVATE
    add = application.add_handler
    add(TypeHandler(Update, common.record_update), group=-1)
    linked_group.register(application)  # before the catch-alls and onboarding's member handler
    add(CommandHandler("start", onboarding.start, filters=private))
    for command in COMMANDS:
        add(CommandHandler(command.name, command.handler, filters=private))
    add(MessageHandler(filters.COMMAND & private, common.unknown_command))
    add(MessageHandler(filters.TEXT & private, text.on_text))
    add(common.ButtonOutsidePrivateChat())  # after the group consent button, before the rest
    add(CallbackQueryHandler(onboarding.onboarding_button, pattern=r"^1\|ob\|"))
    add(CallbackQueryHandler(partner.settings_button, pattern=r"^1\|setv?\|"))
    add(CallbackQueryHandler(partner.stop_button, pattern=r"^1\|stop\|"))
    add(CallbackQueryHandler(partner.crisis_done, pattern=r"^1\|cd\|"))
    add(CallbackQueryHandler(checkin.item_button, pattern=r"^1\|ci\|"))
    add(CallbackQueryHandler(checkin.start_button, pattern=r"^1\|cis\|"))
    add(CallbackQueryHandler(data_rights.delete_button, pattern=r"^1\|del\|"))
    add(CallbackQueryHandler(prompts.button, pattern=r"^1\|(po|ro|no|pr|rr|sh)\|"))
    add(CallbackQueryHandler(therapist.therapist_button, pattern=r"^1\|(pick|slot|close)\|"))
    add(CallbackQueryHandler(common.stale_button))
    add(ChatMemberHandler(onboarding.chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(common.on_error)
