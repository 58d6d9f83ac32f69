"""What every handler shares: the dependencies, the actor, and one way to reply."""

from __future__ import annotations

from typing import Any, cast

from telegram import Update
from telegram.ext import ContextTypes

from bot.channels.base import Messenger, Outgoing, Sent
from bot.services.deps import Deps
from bot.services.identity import Actor, identify

Context = ContextTypes.DEFAULT_TYPE
MAX_TEXT = 4000  # longest partner text accepted in one message


def deps(context: Context) -> Deps:
    """The process's dependencies, stored on the Application by the composition root."""
    return cast(Deps, context.application.bot_data["deps"])


def messenger(context: Context) -> Messenger:
    """The Messenger adapter for this Application's bot."""
    return cast(Messenger, context.application.bot_data["messenger"])


async def current_actor(update: Update, context: Context) -> Actor:
    """The therapist, partner or stranger who sent this update."""
    user = update.effective_user
    assert user is not None
    async with deps(context).db.uow() as uow:
        return await identify(uow, user.id, user.language_code)


async def reply(update: Update, context: Context, message: Outgoing) -> Sent | None:
    """Send ``message`` to the chat this update came from."""
    chat = update.effective_chat
    if chat is None:
        return None
    return await messenger(context).send(chat.id, message)


def command_args(context: Context) -> list[str]:
    """The words after the command (``/goal c3 be kind`` -> ``["c3", "be", "kind"]``)."""
    return list(cast(list[Any], context.args or []))
