"""Invite links (``/start TOKEN``), the onboarding buttons, and blocking or coming back.

Each handler reads the update and runs a use case of :mod:`bot.services.partner_desk`
(one unit of work), then delivers its reply.
"""

from __future__ import annotations

from telegram import ChatMember, Update

from bot.services import partner_desk
from handlers._base import Context, command_args, perform_for, respond, run
from handlers.menus import set_therapist_commands


async def start(update: Update, context: Context) -> None:
    """``/start`` with or without an invitation; a returning partner is reachable again."""
    args = command_args(context)
    answer = await perform_for(update, context, partner_desk.start, args[0] if args else None)
    chat = update.effective_chat
    if answer.therapist_menu is not None and chat is not None:
        await set_therapist_commands(context.bot, chat.id, answer.therapist_menu)
    await respond(update, context, answer)


async def onboarding_button(update: Update, context: Context) -> None:
    """A button of an onboarding step (``1|ob|partner|step|value``)."""
    query = update.callback_query
    assert query is not None
    await run(update, context, partner_desk.onboarding_button, query.data)


async def chat_member(update: Update, context: Context) -> None:
    """The bot was blocked (or unblocked) in a private chat."""
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    blocked = change.new_chat_member.status in (ChatMember.BANNED, ChatMember.LEFT)
    await run(update, context, partner_desk.chat_member, blocked)
