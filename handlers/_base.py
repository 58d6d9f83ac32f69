"""What every handler shares: who sent the update, and one way to deliver a use case's reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, cast

from telegram import Update

from bot.channels.base import Outgoing, SendError, Sent
from bot.services.usecase import Caller, Reply, UseCase, perform
from handlers.context import DyadContext

Context = DyadContext
P = ParamSpec("P")


async def reply(update: Update, context: Context, message: Outgoing) -> Sent | None:
    """Send ``message`` to the chat this update came from."""
    chat = update.effective_chat
    if chat is None:
        return None
    return await context.messenger.send(chat.id, message)


def command_args(context: Context) -> list[str]:
    """The words after the command (``/goal c3 be kind`` -> ``["c3", "be", "kind"]``)."""
    return list(cast(list[Any], context.args or []))


HandlerFn = Callable[[Update, Context], Coroutine[Any, Any, None]]


def caller_of(update: Update) -> Caller:
    """Who sent this update, without Telegram's types."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    return Caller(
        user.id,
        chat.id,
        user.language_code,
        user.first_name or "",
        pressed_button=update.callback_query is not None,
    )


def pressed_message_id(update: Update) -> int | None:
    """The id of the message whose button was pressed (None if Telegram did not say)."""
    query = update.callback_query
    return query.message.message_id if query is not None and query.message is not None else None


async def respond(update: Update, context: Context, answer: Reply) -> None:
    """Deliver a use case's reply.

    A button's pop-up comes first; a silent acknowledgement goes alongside the messages
    (the spinner stops as the next question arrives: one round trip). Then the messages
    to delete first go, the pressed message is edited, the messages go out in order, the
    deletions after them, the dispatcher is woken if something was queued, and the
    reply's :attr:`~bot.services.usecase.Reply.after_sent` runs with the last message's id.
    """
    query = update.callback_query
    acknowledging: asyncio.Future[bool] | None = None
    if query is not None:
        if answer.popup is not None:
            await query.answer(answer.popup, show_alert=answer.alert)
        else:
            acknowledging = asyncio.ensure_future(query.answer())
    try:
        await _deliver(update, context, answer)
    finally:
        if acknowledging is not None:
            await acknowledging


async def _deliver(update: Update, context: Context, answer: Reply) -> None:
    chat = update.effective_chat
    if chat is not None:
        for message_id in answer.delete_first:
            with contextlib.suppress(SendError):
                await context.messenger.delete(chat.id, message_id)
    pressed = pressed_message_id(update)
    if answer.edit is not None and chat is not None and pressed is not None:
        await context.messenger.edit(chat.id, pressed, answer.edit)
    last = None
    for message in answer.messages:
        last = await reply(update, context, message)
    for chat_id, message_id in answer.delete:
        with contextlib.suppress(SendError):
            await context.messenger.delete(chat_id, message_id)
    if answer.wake:
        context.wake_dispatcher()
    if answer.after_sent is not None and last is not None:
        # The second unit of work only stores an id; it says nothing (a button press was
        # acknowledged above, once).
        await _deliver(
            update, context, await perform_for(update, context, answer.after_sent, last.message_id)
        )


async def perform_for(
    update: Update, context: Context, case: UseCase[P], /, *args: P.args, **kwargs: P.kwargs
) -> Reply:
    """Run a use case for the sender of ``update`` in one unit of work; its reply, undelivered."""
    return await perform(context.deps, caller_of(update), case, *args, **kwargs)


async def run(
    update: Update, context: Context, case: UseCase[P], /, *args: P.args, **kwargs: P.kwargs
) -> None:
    """Run a use case for the sender of ``update`` (one unit of work) and deliver its reply."""
    await respond(update, context, await perform_for(update, context, case, *args, **kwargs))
