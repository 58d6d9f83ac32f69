"""Commands everyone has: /start without an invitation, /help, and the fallbacks."""

from __future__ import annotations

import logging
import traceback

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler

from bot.channels.base import Outgoing
from bot.locales import t
from bot.metrics import UPDATES_HANDLED
from bot.services import everyone
from handlers._base import Context, current_actor, reply, run

log = logging.getLogger(__name__)


async def start_without_invite(update: Update, context: Context) -> None:
    """``/start`` with no invitation: explain Dyad, or show the known user their commands."""
    await run(update, context, everyone.start_without_invite)


async def help_command(update: Update, context: Context) -> None:
    """``/help``: the commands for the user's role."""
    await run(update, context, everyone.help_command)


async def unknown_command(update: Update, context: Context) -> None:
    """Any command Dyad does not know."""
    await run(update, context, everyone.unknown_command)


async def stray_text(update: Update, context: Context) -> None:
    """Text nobody is waiting for."""
    await run(update, context, everyone.stray_text)


class ButtonOutsidePrivateChat(CallbackQueryHandler[Context, None]):
    """A button pressed anywhere but the presser's private chat with the bot.

    Partner and therapist buttons act only there (their answers and replies are private);
    the one exception is the group consent button, which its own handler takes first.
    """

    def __init__(self) -> None:
        super().__init__(private_button_elsewhere)

    def check_update(self, update: object) -> bool:
        """Whether this is a button press on a message outside a private chat."""
        if not super().check_update(update):
            return False
        assert isinstance(update, Update) and update.callback_query is not None
        message = update.callback_query.message
        return message is None or message.chat.type != ChatType.PRIVATE


async def private_button_elsewhere(update: Update, context: Context) -> None:
    """Refuse, kindly and privately (a pop-up only the presser sees); nothing changes."""
    await run(update, context, everyone.private_button_elsewhere)


async def stale_button(update: Update, context: Context) -> None:
    """A button press that no handler recognised (old, forged or foreign)."""
    if update.callback_query is not None:
        await run(update, context, everyone.stale_button)


async def record_update(update: Update, context: Context) -> None:
    """Count the update; the inbox (``bot.intake``) stored and claimed it before this runs."""
    UPDATES_HANDLED.inc()


async def on_error(update: object, context: Context) -> None:
    """Log the failure without message text or personal data; tell the user kindly."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    # The traceback's frames, never the exception's message: it may quote what a user wrote.
    trace = "".join(traceback.format_tb(error.__traceback__)) if error is not None else ""
    log.error(
        "handler failed: %s",
        type(error).__name__,
        extra={"update_id": update_id, "error_type": type(error).__name__, "trace": trace},
    )
    if isinstance(update, Update) and update.effective_chat is not None:
        language = "en"
        try:
            language = (await current_actor(update, context)).language
        except Exception:  # the database may be what failed; reply in English then
            log.warning("could not identify the user after an error")
        try:
            await reply(update, context, Outgoing(t(language, "common.error")))
        except Exception:
            log.warning("could not tell the user about an error")
