"""Commands everyone has: /help, and the fallbacks (unknown commands, stale buttons, errors).

``/start`` is onboarding's (:mod:`handlers.onboarding`), text nobody waits for the
free-text route's (:mod:`handlers.text`).
"""

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
from handlers._base import Context, perform_for, reply, run

log = logging.getLogger(__name__)


async def help_command(update: Update, context: Context) -> None:
    """``/help``: the commands for the user's role."""
    await run(update, context, everyone.help_command)


async def unknown_command(update: Update, context: Context) -> None:
    """Any command Dyad does not know."""
    await run(update, context, everyone.unknown_command)


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
        said = [Outgoing(t("en", "common.error"))]
        try:
            if update.effective_user is not None:
                said = (await perform_for(update, context, everyone.something_failed)).messages
        except Exception:  # the database may be what failed; reply in English then
            log.warning("could not identify the user after an error")
        try:
            for message in said:  # a message even after a button: it may have been answered
                await reply(update, context, message)
        except Exception:
            log.warning("could not tell the user about an error")
