"""Free text in a private chat: one use case decides what it answers, in one unit of work.

What a text answers comes from what is stored, never from memory: the onboarding step,
the conversation state (a goal, a follow-up's words, a time zone asked for in
``/settings``), the check-in whose note is the current item, the open prompt. Every text
a partner sends is screened for crisis words: a check-in note, a prompt's reply and a
follow-up's words where they are stored, every other text here, before anything else.
"""

from __future__ import annotations

from bot.services import (
    checkins,
    everyone,
    onboarding,
    partner_desk,
    prompts,
    safety_flow,
    therapist_desk,
)
from bot.services.texts import UserError, msg
from bot.services.usecase import Call, Reply

MAX_TEXT = 4000
"""The longest text accepted in one message."""


async def route(call: Call, text: str, *, message_id: int | None, reply_to: int | None) -> Reply:
    """Plain text: ``message_id`` is its own message, ``reply_to`` the one it replies to."""
    if len(text) > MAX_TEXT:
        raise UserError("common.too_long", limit=MAX_TEXT)
    actor = call.actor
    partner = actor.partner
    state = await call.uow.conversations.get(call.caller.user_id)
    kind, data = (state.kind, dict(state.data)) if state is not None else (None, {})
    if partner is not None and partner.onboarding_step == "timezone":
        crisis = await _crisis_first(call, text, reply_to, to_question=False)
        if crisis is not None:
            return crisis
        return Reply(messages=await onboarding.typed_timezone(call.uow, partner, text, call.now))
    if kind == "goal" and actor.therapist is not None:
        return await therapist_desk.typed_goal(call, int(data["couple_id"]), text)
    if kind == "followup_words" and partner is not None:
        return await partner_desk.followup_words(call, int(data["response_id"]), text, message_id)
    # Awaiting a time zone, the text is taken as one, even with a prompt open.
    awaits_zone = kind == "settings_tz" and partner is not None
    crisis = await _crisis_first(call, text, reply_to, to_question=not awaits_zone)
    if crisis is not None:
        return crisis
    if awaits_zone:
        return await partner_desk.typed_timezone(call, text)
    if actor.role == "partner":
        answered = await partner_desk.note(call, text, message_id)
        if answered is None:
            answered = await partner_desk.prompt_reply(call, text, message_id, reply_to)
        if answered is not None:
            return answered
    if partner is not None and partner.onboarding_step not in ("done", "left"):
        return Reply.say(msg(call.language, "partner.not_joined"))
    return await everyone.stray_text(call)


async def _crisis_first(
    call: Call, text: str, reply_to: int | None, *, to_question: bool
) -> Reply | None:
    """Crisis words in a text that no open question will screen: the answer; else None.

    ``to_question``: the text goes on to the check-in's note or an open prompt if one
    waits (which screen it where they store it); otherwise it is screened here whatever
    waits. A partner gets their crisis resources, the therapist a private alert, the
    couple the safety hold; someone Dyad does not know gets the general emergency guidance.
    """
    actor = call.actor
    if actor.therapist is not None:
        return None
    partner = actor.partner
    if partner is None:
        resources = safety_flow.crisis_guidance(call.language, text)
    else:
        if to_question and actor.role == "partner":
            checkin = await checkins.open_checkin(call.uow, partner)
            if checkin is not None and await checkins.awaits_note(call.uow, partner, checkin):
                return None  # the check-in screens its own note
            if await prompts.open_prompt(call.uow, partner, call.now, reply_to) is not None:
                return None  # so does a prompt's reply (the same prompt it will answer)
        resources = await safety_flow.screen_free_text(
            call.uow, partner, call.deps.cipher, text, call.now
        )
    if resources is None:
        return None
    return Reply.say(resources, wake=True)
