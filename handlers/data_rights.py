"""Partner commands over their own data: /export and /deleteme (with its confirmation)."""

from __future__ import annotations

import contextlib

from telegram import Update

from bot.channels.base import Outgoing, SendError
from bot.core import callbacks
from bot.services import confirmations, data_rights
from bot.services.access import joined_partner
from bot.services.texts import UserError, msg
from handlers._base import Context, deps, kick_dispatcher, kindly, messenger, person_of, reply


@kindly
async def export(update: Update, context: Context) -> None:
    """``/export``: one JSON document of the partner's own data, nothing of the other's."""
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
        message = await data_rights.export(uow, partner, d.cipher, d.clock.now())
    await reply(update, context, message)


@kindly
async def deleteme(update: Update, context: Context) -> None:
    """``/deleteme``: asks for confirmation before erasing anything."""
    d = deps(context)
    user_id = person_of(update).user_id
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, user_id)
        await confirmations.ask(uow, user_id, "erase", partner.id, d.clock.now())
    await reply(update, context, data_rights.erase_confirmation(partner))


@kindly
async def delete_button(update: Update, context: Context) -> None:
    """``1|del|partner|yes|no``: erase and leave, or keep everything."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
        # The pressing user must own the partner the button names; anything else is refused.
        if partner.id != data.int_arg(0) or data.arg(1) not in ("yes", "no"):
            raise UserError("common.stale_button")
        await confirmations.take(uow, person_of(update).user_id, "erase", partner.id)
        erased = None
        if data.arg(1) == "yes":
            erased = await data_rights.erase(uow, partner, d.cipher, d.clock.now())
            message = erased.message
        else:
            await uow.commit()
            message = Outgoing(msg(partner.language, "data.kept"))
    await query.answer()
    await reply(update, context, message)
    if erased is not None:
        for chat_id, message_id in erased.group_posts:
            # Best effort: past Telegram's 48 hours, or already gone, a post stays deleted
            # from Dyad's side only; the link has ended either way.
            with contextlib.suppress(SendError):
                await messenger(context).delete(chat_id, message_id)
    kick_dispatcher(context)
