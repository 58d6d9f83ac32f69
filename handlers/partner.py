"""Partner commands: /settings, /pause, /resume, /privacy, /stop."""

from __future__ import annotations

import contextlib

from telegram import Update

from bot.channels.base import Outgoing, SendError
from bot.core import callbacks
from bot.services import confirmations, miniapp, partners
from bot.services.access import joined_partner
from bot.services.texts import UserError, msg
from handlers._base import (
    Context,
    command_args,
    deps,
    kick_dispatcher,
    kindly,
    messenger,
    person_of,
    reply,
)


@kindly
async def settings(update: Update, context: Context) -> None:
    """``/settings``: the partner's own settings, each behind a button (and on one page)."""
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
    menu = partners.settings_menu(partner)
    if d.settings.webapp_url is not None:
        menu = miniapp.with_page_button(menu, partner, f"{d.settings.webapp_url}/settings")
    await reply(update, context, menu)


@kindly
async def settings_button(update: Update, context: Context) -> None:
    """``1|set|partner|name`` opens a setting; ``1|setv|partner|name|value`` applies it."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    user_id = person_of(update).user_id
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, user_id)
        if partner.id != data.int_arg(0):
            raise UserError("common.stale_button")
        if data.action == "set":
            name = data.arg(1)
            message = await partners.setting_options(uow, partner, name)
            if name == "timezone":
                await uow.conversations.set(user_id, "settings_tz", {}, d.clock.now())
                await uow.commit()
        else:
            message = await partners.change_setting(
                uow, partner, data.arg(1), data.arg(2), d.clock.now()
            )
            await uow.conversations.clear(user_id)
            await uow.commit()
    await query.answer()
    await reply(update, context, message)


async def typed_timezone(update: Update, context: Context, text: str) -> None:
    """A time zone typed after choosing it in /settings."""
    d = deps(context)
    user_id = person_of(update).user_id
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, user_id)
        message = await partners.typed_timezone(uow, partner, text, d.clock.now())
        await uow.conversations.clear(user_id)
        await uow.commit()
    await reply(update, context, message)


@kindly
async def pause(update: Update, context: Context) -> None:
    """``/pause [DAYS]``: this partner's prompts only; the other partner is not told."""
    d = deps(context)
    args = command_args(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
        message = await partners.pause(uow, partner, args[0] if args else None, d.clock.now())
    await reply(update, context, message)


@kindly
async def resume(update: Update, context: Context) -> None:
    """``/resume``: this partner's prompts start again."""
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
        message = await partners.resume(uow, partner, d.clock.now())
    await reply(update, context, message)


@kindly
async def privacy(update: Update, context: Context) -> None:
    """``/privacy``: the consent text again."""
    async with deps(context).db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
    await reply(update, context, Outgoing(msg(partner.language, "onboarding.privacy")))


@kindly
async def stop(update: Update, context: Context) -> None:
    """``/stop``: asks for confirmation before leaving."""
    d = deps(context)
    user_id = person_of(update).user_id
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, user_id)
        await confirmations.ask(uow, user_id, "stop", partner.id, d.clock.now())
    await reply(update, context, partners.stop_confirmation(partner))


@kindly
async def stop_button(update: Update, context: Context) -> None:
    """``1|stop|partner|yes|no``: leave, or stay."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
        if partner.id != data.int_arg(0) or data.arg(1) not in ("yes", "no"):
            raise UserError("common.stale_button")
        await confirmations.take(uow, person_of(update).user_id, "stop", partner.id)
        language = partner.language
        if data.arg(1) == "yes":
            await partners.leave(uow, partner, d.clock.now())
            text = msg(language, "partner.stopped")
        else:
            await uow.commit()
            text = msg(language, "partner.stayed")
    await query.answer()
    await reply(update, context, Outgoing(text))
    kick_dispatcher(context)


@kindly
async def crisis_done(update: Update, context: Context) -> None:
    """``1|cd|partner``: a discreet partner has read the crisis card; it leaves the chat."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    async with deps(context).db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
    if partner.id != data.int_arg(0):
        raise UserError("common.stale_button")
    await query.answer()
    if query.message is not None:
        with contextlib.suppress(SendError):
            await messenger(context).delete(person_of(update).chat_id, query.message.message_id)
