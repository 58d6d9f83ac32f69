"""Free text: routed to whatever this user's stored conversation state is waiting for."""

from __future__ import annotations

from telegram import Update

from bot.channels.base import Outgoing
from bot.services import checkins, onboarding, prompts, safety_flow
from bot.services.identity import Actor
from bot.services.texts import UserError, msg
from handlers import checkin as checkin_handlers
from handlers import partner as partner_handlers
from handlers import prompts as prompt_handlers
from handlers import therapist as therapist_handlers
from handlers._base import (
    MAX_TEXT,
    Context,
    current_actor,
    deps,
    kick_dispatcher,
    kindly,
    person_of,
    reply,
    send_all,
)
from handlers.common import stray_text


@kindly
async def on_text(update: Update, context: Context) -> None:
    """Plain text in a private chat."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    text = message.text
    actor = await current_actor(update, context)
    if len(text) > MAX_TEXT:
        raise UserError("common.too_long", limit=MAX_TEXT)
    d = deps(context)
    user_id = person_of(update).user_id
    async with d.db.uow() as uow:
        state = await uow.conversations.get(user_id)
        kind, data = (state.kind, dict(state.data)) if state is not None else (None, {})
        partner = await uow.partners.get(actor.partner.id) if actor.partner else None
        if partner is not None and partner.onboarding_step == "timezone":
            if await _crisis_first(update, context, actor, text):
                return
            messages = await onboarding.typed_timezone(uow, partner, text, d.clock.now())
            await send_all(update, context, messages)
            return
    # A check-in note, a prompt's reply and a follow-up's words are screened where they are
    # stored; every other text a partner sends is screened here, before anything else.
    if kind == "goal" and actor.therapist is not None:
        await therapist_handlers.typed_goal(update, context, int(data["couple_id"]), text)
    elif kind == "followup_words" and actor.partner is not None:
        await prompt_handlers.followup_words(update, context, int(data["response_id"]), text)
    elif await _crisis_first(update, context, actor, text):
        return
    elif kind == "settings_tz" and actor.partner is not None:
        await partner_handlers.typed_timezone(update, context, text)
    elif actor.role == "partner" and (
        await checkin_handlers.note_text(update, context, text)
        or await prompt_handlers.reply_text(update, context, text)
    ):
        return
    elif actor.partner is not None and actor.partner.onboarding_step not in ("done", "left"):
        await reply(update, context, Outgoing(msg(actor.language, "partner.not_joined")))
    else:
        await stray_text(update, context)


async def _crisis_first(update: Update, context: Context, actor: Actor, text: str) -> bool:
    """Crisis words in a text that no open question will screen: answered now; True if so.

    A partner gets their crisis resources, the therapist a private alert, the couple the
    safety hold; someone Dyad does not know gets the general emergency guidance.
    """
    if actor.therapist is not None:
        return False
    d = deps(context)
    if actor.partner is not None:
        async with d.db.uow() as uow:
            partner = await uow.partners.get(actor.partner.id)
            assert partner is not None
            if actor.role == "partner":
                checkin = await checkins.open_checkin(uow, partner)
                if checkin is not None and await checkins.awaits_note(uow, partner, checkin):
                    return False  # the check-in screens its own note
                message = update.effective_message
                replied = message.reply_to_message if message is not None else None
                reply_to = replied.message_id if replied is not None else None
                if await prompts.open_prompt(uow, partner, d.clock.now(), reply_to) is not None:
                    return False  # so does a prompt's reply (the same prompt it will answer)
            resources = await safety_flow.screen_free_text(
                uow, partner, d.cipher, text, d.clock.now()
            )
    else:
        resources = safety_flow.crisis_guidance(actor.language, text)
    if resources is None:
        return False
    await reply(update, context, resources)
    kick_dispatcher(context)
    return True
