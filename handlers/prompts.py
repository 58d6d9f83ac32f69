"""Prompt buttons and replies: open a discreet note, answer a follow-up, share or not."""

from __future__ import annotations

import contextlib

from telegram import Update

from bot.channels.base import SendError
from bot.core import callbacks
from bot.services import prompts
from bot.services.access import joined_partner
from handlers._base import Context, deps, kick_dispatcher, kindly, messenger, person_of, reply


async def _send(update: Update, context: Context, result: prompts.Replied) -> None:
    chat = person_of(update).chat_id
    for message_id in result.delete:
        with contextlib.suppress(SendError):
            await messenger(context).delete(chat, message_id)
    for message in result.messages:
        await reply(update, context, message)
    kick_dispatcher(context)


@kindly
async def button(update: Update, context: Context) -> None:
    """``po``/``ro``/``no`` open a discreet note, ``pr`` follow-up choice, ``rr`` OK to
    raise, ``sh`` share choice."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    now = d.clock.now()
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
        if data.action == "po":
            opened = await prompts.reveal_discreet(uow, partner, data.int_arg(0))
            await query.answer()
            if query.message is not None:
                await messenger(context).edit(
                    person_of(update).chat_id, query.message.message_id, opened
                )
            return
        if data.action in ("ro", "no"):
            opened = await prompts.open_discreet(
                uow, partner, d.cipher, data.action, data.int_arg(0)
            )
            await query.answer()
            if query.message is not None:
                await messenger(context).edit(
                    person_of(update).chat_id, query.message.message_id, opened
                )
            return
        if data.action == "pr":
            result = await prompts.choose(uow, partner, data.int_arg(0), data.arg(1), now)
            await query.answer()
            await _send(update, context, result)
            return
        if data.action == "rr":
            answer = await prompts.set_ok_to_raise(uow, partner, data.int_arg(0), data.arg(1))
        else:
            answer = await prompts.set_share(uow, partner, data.int_arg(0), data.arg(1), now)
    await query.answer()
    await reply(update, context, answer)
    kick_dispatcher(context)


async def followup_words(update: Update, context: Context, response_id: int, text: str) -> None:
    """The optional words after a follow-up's button."""
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
        message = update.effective_message
        result = await prompts.followup_words(
            uow,
            partner,
            d.cipher,
            response_id,
            text,
            d.clock.now(),
            message_id=message.message_id if message is not None else None,
        )
    await _send(update, context, result)


async def reply_text(update: Update, context: Context, text: str) -> bool:
    """A text answering an open prompt (replied to, or the latest); False if none is open."""
    d = deps(context)
    message = update.effective_message
    reply_to = (
        message.reply_to_message.message_id
        if message is not None and message.reply_to_message is not None
        else None
    )
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
        delivery = await prompts.open_prompt(uow, partner, d.clock.now(), reply_to)
        if delivery is None:
            return False
        result = await prompts.reply_text(
            uow,
            partner,
            d.cipher,
            delivery,
            text,
            d.clock.now(),
            message_id=message.message_id if message is not None else None,
        )
    await _send(update, context, result)
    return True
