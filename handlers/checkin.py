"""The check-in conversation: /checkin, the item buttons, the note, discreet clean-up."""

from __future__ import annotations

import asyncio
import contextlib

from telegram import Update

from bot.channels.base import SendError
from bot.core import callbacks
from bot.services import checkins, miniapp
from bot.services.access import joined_partner
from handlers._base import Context, deps, kick_dispatcher, kindly, messenger, person_of, reply


async def _send_step(update: Update, context: Context, step: checkins.Step) -> None:
    d = deps(context)
    chat = person_of(update).chat_id
    for message_id in step.delete:
        with contextlib.suppress(SendError):
            await messenger(context).delete(chat, message_id)
    last = None
    for message in step.messages:
        last = await reply(update, context, message)
    if last is not None and not step.finished:
        async with d.db.uow() as uow:
            partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
            await checkins.remember_question(uow, partner, last.message_id)
    kick_dispatcher(context)  # an alert may be waiting for the therapist


@kindly
async def checkin_command(update: Update, context: Context) -> None:
    """``/checkin``: start a private check-in, or resume the open one (or on one page)."""
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
        step = await checkins.start(uow, partner, d.clock.now())
    if d.settings.webapp_url is not None and step.messages and not step.finished:
        page = f"{d.settings.webapp_url}/checkin"
        step.messages[0] = miniapp.with_page_button(step.messages[0], partner, page)
    await _send_step(update, context, step)


@kindly
async def start_button(update: Update, context: Context) -> None:
    """``1|cis|delivery``: the Start button of a scheduled check-in."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
        step = await checkins.start_scheduled(uow, partner, data.int_arg(0), d.clock.now())
    await query.answer()
    if partner.discreet and query.message is not None:
        step.delete.append(query.message.message_id)
    await _send_step(update, context, step)


@kindly
async def item_button(update: Update, context: Context) -> None:
    """``1|ci|checkin|item|value``: an answer (or Skip) to the current item."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
        step = await checkins.answer_button(
            uow,
            partner,
            d.cipher,
            data.int_arg(0),
            data.arg(1),
            data.arg(2),
            d.clock.now(),
            question_message_id=query.message.message_id if query.message else None,
        )
    # The button's spinner stops and the next question goes out together: one round trip.
    answering = asyncio.ensure_future(query.answer())
    try:
        await _send_step(update, context, step)
    finally:
        await answering


async def note_text(update: Update, context: Context, text: str) -> bool:
    """A typed message while the check-in's note is the current item; False if it is not."""
    d = deps(context)
    message = update.effective_message
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id, in_programme=True)
        checkin = await checkins.open_checkin(uow, partner)
        if checkin is None or not await checkins.awaits_note(uow, partner, checkin):
            return False
        step = await checkins.answer_note(
            uow,
            partner,
            d.cipher,
            text,
            d.clock.now(),
            user_message_id=message.message_id if message else None,
        )
    await _send_step(update, context, step)
    return True
