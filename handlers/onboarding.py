"""Invite links (``/start TOKEN``), the onboarding buttons, and coming back after a block."""

from __future__ import annotations

from telegram import ChatMember, Update

from bot.core import callbacks
from bot.services import onboarding, reachability
from bot.services.identity import identify
from bot.services.texts import UserError
from handlers._base import (
    Context,
    command_args,
    deps,
    kick_dispatcher,
    kindly,
    person_of,
    send_all,
)
from handlers.common import start_without_invite
from handlers.menus import set_therapist_commands


@kindly
async def start(update: Update, context: Context) -> None:
    """``/start`` with or without an invitation; a returning partner is reachable again."""
    args = command_args(context)
    d = deps(context)
    person = person_of(update)
    await _mark_reachable(context, person.user_id)
    if not args:
        async with d.db.uow() as uow:
            actor = await identify(uow, person.user_id, person.language_code)
            partner = actor.partner
            if partner is not None and partner.onboarding_step not in ("done", "left"):
                await send_all(update, context, await onboarding.step_messages(uow, partner))
                return
        await start_without_invite(update, context)
        return
    async with d.db.uow() as uow:
        messages = await onboarding.redeem(uow, args[0], person, d.clock.now())
        actor = await identify(uow, person.user_id, person.language_code)
    if actor.therapist is not None:
        await set_therapist_commands(context.bot, person.chat_id, actor.language)
    await send_all(update, context, messages)
    kick_dispatcher(context)


async def _mark_reachable(context: Context, user_id: int) -> None:
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await uow.partners.by_user(user_id)
        if partner is None or not await reachability.mark_reachable(uow, partner.id, d.clock.now()):
            return
        await uow.commit()
    kick_dispatcher(context)


@kindly
async def onboarding_button(update: Update, context: Context) -> None:
    """A button of an onboarding step (``1|ob|partner|step|value``)."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    partner_id, step, value = data.int_arg(0), data.arg(1), data.arg(2)
    d = deps(context)
    person = person_of(update)
    async with d.db.uow() as uow:
        partner = await uow.partners.by_user(person.user_id)
        if partner is None or partner.id != partner_id:
            raise UserError("common.stale_button")
        messages = await onboarding.choose(uow, partner, step, value, d.clock.now())
    await query.answer()
    await send_all(update, context, messages)
    kick_dispatcher(context)


async def chat_member(update: Update, context: Context) -> None:
    """The bot was blocked (or unblocked) in a private chat."""
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    blocked = change.new_chat_member.status in (ChatMember.BANNED, ChatMember.LEFT)
    if not blocked:
        return
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await uow.partners.by_user(change.from_user.id)
        if partner is None or not await reachability.mark_unreachable(
            uow, partner.id, d.clock.now()
        ):
            return
        await uow.commit()
    kick_dispatcher(context)
