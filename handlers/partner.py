"""Partner commands: /settings, /pause, /resume, /privacy, /stop, and their buttons.

Each handler runs a use case of :mod:`bot.services.partner_desk` and delivers its reply;
a time zone typed after /settings is a step of the free-text route (:mod:`handlers.text`).
"""

from __future__ import annotations

from telegram import Update

from bot.services import partner_desk
from handlers._base import Context, command_args, pressed_message_id, run


async def settings(update: Update, context: Context) -> None:
    """``/settings``: the partner's own settings, each behind a button (and on one page)."""
    await run(update, context, partner_desk.settings)


async def settings_button(update: Update, context: Context) -> None:
    """``1|set|partner|name`` opens a setting; ``1|setv|partner|name|value`` applies it."""
    query = update.callback_query
    assert query is not None
    await run(update, context, partner_desk.settings_button, query.data)


async def pause(update: Update, context: Context) -> None:
    """``/pause [DAYS]``: this partner's prompts only; the other partner is not told."""
    await run(update, context, partner_desk.pause, command_args(context))


async def resume(update: Update, context: Context) -> None:
    """``/resume``: this partner's prompts start again."""
    await run(update, context, partner_desk.resume)


async def privacy(update: Update, context: Context) -> None:
    """``/privacy``: the consent text again."""
    await run(update, context, partner_desk.privacy)


async def stop(update: Update, context: Context) -> None:
    """``/stop``: asks for confirmation before leaving."""
    await run(update, context, partner_desk.stop)


async def stop_button(update: Update, context: Context) -> None:
    """``1|stop|partner|yes|no``: leave, or stay."""
    query = update.callback_query
    assert query is not None
    await run(update, context, partner_desk.stop_button, query.data)


async def crisis_done(update: Update, context: Context) -> None:
    """``1|cd|partner``: a discreet partner has read the crisis card; it leaves the chat."""
    query = update.callback_query
    assert query is not None
    await run(update, context, partner_desk.crisis_done, query.data, pressed_message_id(update))
