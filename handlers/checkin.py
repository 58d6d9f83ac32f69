"""The check-in conversation: /checkin, the Start button of a scheduled one, the item buttons.

The typed note is a step of the free-text route (:mod:`handlers.text`). Each handler runs
a use case of :mod:`bot.services.partner_desk` and delivers its reply.
"""

from __future__ import annotations

from telegram import Update

from bot.services import partner_desk
from handlers._base import Context, pressed_message_id, run


async def checkin_command(update: Update, context: Context) -> None:
    """``/checkin``: start a private check-in, or resume the open one (or on one page)."""
    await run(update, context, partner_desk.checkin_command)


async def start_button(update: Update, context: Context) -> None:
    """``1|cis|delivery``: the Start button of a scheduled check-in."""
    query = update.callback_query
    assert query is not None
    await run(update, context, partner_desk.start_button, query.data, pressed_message_id(update))


async def item_button(update: Update, context: Context) -> None:
    """``1|ci|checkin|item|value``: an answer (or Skip) to the current item."""
    query = update.callback_query
    assert query is not None
    await run(update, context, partner_desk.item_button, query.data, pressed_message_id(update))
