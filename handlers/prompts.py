"""Prompt buttons: open a discreet note, a follow-up's choice, OK to raise, share or not.

Replies to prompts and a follow-up's words are steps of the free-text route
(:mod:`handlers.text`).
"""

from __future__ import annotations

from telegram import Update

from bot.services import partner_desk
from handlers._base import Context, run


async def button(update: Update, context: Context) -> None:
    """``po``/``ro``/``no`` open a discreet note, ``pr`` follow-up choice, ``rr`` OK to
    raise, ``sh`` share choice."""
    query = update.callback_query
    assert query is not None
    await run(update, context, partner_desk.prompt_button, query.data)
