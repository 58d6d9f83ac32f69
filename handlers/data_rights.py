"""Partner commands over their own data: /export and /deleteme (with its confirmation)."""

from __future__ import annotations

from telegram import Update

from bot.services import data_rights
from handlers._base import Context, run


async def export(update: Update, context: Context) -> None:
    """``/export``: one JSON document of the partner's own data, nothing of the other's."""
    await run(update, context, data_rights.export_own)


async def deleteme(update: Update, context: Context) -> None:
    """``/deleteme``: asks for confirmation before erasing anything."""
    await run(update, context, data_rights.ask_erasure)


async def delete_button(update: Update, context: Context) -> None:
    """``1|del|partner|yes|no``: erase and leave, or keep everything."""
    query = update.callback_query
    assert query is not None
    await run(update, context, data_rights.answer_erasure, query.data)
