"""Free text in a private chat: one use case (:func:`bot.services.free_text.route`) decides
what it answers, screens it for crisis words first where no question will, and replies."""

from __future__ import annotations

from telegram import Update

from bot.services import free_text
from handlers._base import Context, run


async def on_text(update: Update, context: Context) -> None:
    """Plain text in a private chat."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    replied = message.reply_to_message
    await run(
        update,
        context,
        free_text.route,
        message.text,
        message_id=message.message_id,
        reply_to=replied.message_id if replied is not None else None,
    )
