"""What every handler shares: the dependencies, the actor, and one way to reply."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, cast

from telegram import Update
from telegram.ext import ContextTypes

from bot.channels.base import Messenger, Outgoing, SendError, Sent
from bot.core.callbacks import ForgedCallback
from bot.locales import t
from bot.services.deps import Deps
from bot.services.identity import Actor, identify
from bot.services.onboarding import Person
from bot.services.texts import UserError
from bot.services.usecase import Caller, Reply, UseCase, perform

Context = ContextTypes.DEFAULT_TYPE
P = ParamSpec("P")
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


HandlerFn = Callable[[Update, Context], Coroutine[Any, Any, None]]


def kindly(handler: HandlerFn) -> HandlerFn:
    """Turn a refusal (:class:`UserError`, forged button) into a kind reply that changes nothing."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: Context) -> None:
        try:
            await handler(update, context)
        except (UserError, ForgedCallback) as error:
            actor = await current_actor(update, context)
            text = (
                error.text(actor.language)
                if isinstance(error, UserError)
                else t(actor.language, "common.stale_button")
            )
            query = update.callback_query
            if query is not None:
                await query.answer(text[:200], show_alert=True)
            else:
                await reply(update, context, Outgoing(text))

    return wrapper


def person_of(update: Update) -> Person:
    """The sender, without Telegram's types."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    return Person(user.id, chat.id, user.first_name or "", user.language_code)


async def send_all(update: Update, context: Context, messages: list[Outgoing]) -> None:
    """Reply with several messages, in order."""
    for message in messages:
        await reply(update, context, message)


def kick_dispatcher(context: Context) -> None:
    """Wake the dispatcher so queued notices go out now rather than on its next round."""
    wake = context.application.bot_data.get("dispatch_wake")
    if wake is not None:
        wake.set()


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


async def respond(update: Update, context: Context, answer: Reply) -> None:
    """Deliver a use case's reply: the button's pop-up first, then the messages, in order."""
    query = update.callback_query
    if query is not None:
        await query.answer(answer.popup, show_alert=answer.alert)
    await send_all(update, context, answer.messages)
    for chat_id, message_id in answer.delete:
        with contextlib.suppress(SendError):
            await messenger(context).delete(chat_id, message_id)
    if answer.wake:
        kick_dispatcher(context)


async def run(
    update: Update, context: Context, case: UseCase[P], /, *args: P.args, **kwargs: P.kwargs
) -> None:
    """Run a use case for the sender of ``update`` (one unit of work) and deliver its reply."""
    answer = await perform(deps(context), caller_of(update), case, *args, **kwargs)
    await respond(update, context, answer)
