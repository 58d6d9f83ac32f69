"""The partner's use cases: joining, check-ins, prompts, settings, pausing and leaving.

Each public function is a use case run with :func:`bot.services.usecase.perform`: it
authorises through :mod:`bot.services.access` (a partner's own seat and own buttons only),
works in the call's one unit of work and returns the reply; the rules live in the service
modules it calls (:mod:`~bot.services.onboarding`, :mod:`~bot.services.checkins`,
:mod:`~bot.services.prompts`, :mod:`~bot.services.partners`). The Telegram handlers only
parse the update and deliver the reply. The typed answers (the note, a prompt's reply, a
follow-up's words, a time zone) are steps of :func:`bot.services.free_text.route`, which
decides what a text answers.
"""

from __future__ import annotations

from bot.core import callbacks
from bot.services import (
    access,
    checkins,
    confirmations,
    everyone,
    miniapp,
    onboarding,
    partners,
    prompts,
    reachability,
    safety_flow,
)
from bot.services.texts import UserError, msg
from bot.services.usecase import Call, Caller, Reply
from db.models import Partner

# --- joining ----------------------------------------------------------------------------------


def _person(caller: Caller) -> onboarding.Person:
    return onboarding.Person(
        caller.user_id, caller.chat_id, caller.first_name, caller.language_code
    )


async def _reachable_again(call: Call) -> bool:
    """A partner who blocked the bot and writes again is reachable; True if this changed it."""
    partner = call.actor.partner
    return partner is not None and await reachability.mark_reachable(call.uow, partner.id, call.now)


async def start(call: Call, token: str | None) -> Reply:
    """``/start`` with or without an invitation; a returning partner is reachable again.

    Without a token, a partner half-way through onboarding is asked the current step
    again; anyone else hears what Dyad is, or their commands.
    """
    back = await _reachable_again(call)
    if token is None:
        partner = call.actor.partner
        if partner is not None and partner.onboarding_step not in ("done", "left"):
            steps = await onboarding.step_messages(call.uow, partner)
            return Reply(messages=steps, wake=back)
        answer = await everyone.start_without_invite(call)
        answer.wake = answer.wake or back
        return answer
    try:
        messages = await onboarding.redeem(call.uow, token, _person(call.caller), call.now)
    except UserError as error:
        if not back:
            raise
        # Refused before it changed anything; the partner being reachable again still holds.
        return Reply.say(error.text(call.language), wake=True)
    answer = Reply(messages=messages, wake=True)
    therapist = await call.uow.therapists.by_user(call.caller.user_id)
    if therapist is not None:  # a therapist's invitation: they get their command menu
        answer.therapist_menu = therapist.language
    return answer


async def onboarding_button(call: Call, raw: str | None) -> Reply:
    """A button of an onboarding step (``1|ob|partner|step|value``), the presser's own."""
    data = callbacks.decode(raw)
    partner_id, step, value = data.int_arg(0), data.arg(1), data.arg(2)
    partner = await call.uow.partners.by_user(call.caller.user_id)
    if partner is None or partner.id != partner_id:
        raise UserError("common.stale_button")
    messages = await onboarding.choose(call.uow, partner, step, value, call.now)
    return Reply(messages=messages, wake=True)


async def chat_member(call: Call, blocked: bool) -> Reply:
    """The bot was blocked (or unblocked) in a partner's private chat.

    Blocking makes the partner unreachable (their therapist is told once). Unblocking
    changes nothing by itself: the partner is reachable again with their next ``/start``,
    which Telegram's Restart button sends.
    """
    if not blocked:
        return Reply()
    partner = await call.uow.partners.by_user(call.caller.user_id)
    if partner is None:
        return Reply()
    return Reply(wake=await reachability.mark_unreachable(call.uow, partner.id, call.now))


# --- check-ins --------------------------------------------------------------------------------


async def _answering(call: Call) -> Partner:
    """The joined partner calling, while their couple is in the programme (to answer)."""
    return await access.joined_partner(
        call.uow, call.caller.user_id, in_programme=True, actor=call.actor
    )


def _step_reply(partner: Partner, step: checkins.Step) -> Reply:
    """A check-in step as a reply; the dispatcher is woken (an alert may be waiting).

    Discreet mode deletes each question once it is answered. A button answer brings its
    own message's id; the note is typed, and a typed message does not say which question
    it answers, so the note question's id is kept once it is sent (:func:`remember_question`).
    """
    answer = Reply(messages=step.messages, delete_first=step.delete, wake=True)
    if partner.discreet and step.awaiting_note and not step.finished:
        answer.after_sent = remember_question
    return answer


async def remember_question(call: Call, message_id: int) -> Reply:
    """Keep the id of the note question just sent to a discreet partner.

    The one second unit of work of an update: it runs after the sending, because Telegram
    gives a message's id only then, and only for this question (see :func:`_step_reply`).
    """
    partner = await call.uow.partners.by_user(call.caller.user_id)
    if partner is not None:
        await checkins.remember_question(call.uow, partner, message_id)
    return Reply()


async def checkin_command(call: Call) -> Reply:
    """``/checkin``: start a private check-in, or resume the open one (or on one page)."""
    partner = await _answering(call)
    step = await checkins.start(call.uow, partner, call.now)
    url = call.deps.settings.webapp_url
    if url is not None and step.messages and not step.finished:
        step.messages[0] = miniapp.with_page_button(step.messages[0], partner, f"{url}/checkin")
    return _step_reply(partner, step)


async def start_button(call: Call, raw: str | None, message_id: int | None) -> Reply:
    """``1|cis|delivery``: the Start button of a scheduled check-in (on ``message_id``)."""
    data = callbacks.decode(raw)
    partner = await _answering(call)
    step = await checkins.start_scheduled(call.uow, partner, data.int_arg(0), call.now)
    if partner.discreet and message_id is not None:
        step.delete.append(message_id)  # the invitation goes as the first question comes
    return _step_reply(partner, step)


async def item_button(call: Call, raw: str | None, message_id: int | None) -> Reply:
    """``1|ci|checkin|item|value``: an answer (or Skip) to the current item, whose question
    is the message ``message_id``."""
    data = callbacks.decode(raw)
    partner = await _answering(call)
    step = await checkins.answer_button(
        call.uow,
        partner,
        call.deps.cipher,
        data.int_arg(0),
        data.arg(1),
        data.arg(2),
        call.now,
        question_message_id=message_id,
    )
    return _step_reply(partner, step)


async def note(call: Call, text: str, message_id: int | None) -> Reply | None:
    """A typed message while the check-in's note is the current item; None if it is not."""
    partner = await _answering(call)
    checkin = await checkins.open_checkin(call.uow, partner)
    if checkin is None or not await checkins.awaits_note(call.uow, partner, checkin):
        return None
    step = await checkins.answer_note(
        call.uow, partner, call.deps.cipher, text, call.now, user_message_id=message_id
    )
    return _step_reply(partner, step)


# --- prompts ----------------------------------------------------------------------------------


def _replied(result: prompts.Replied) -> Reply:
    return Reply(messages=result.messages, delete_first=result.delete, wake=True)


async def prompt_button(call: Call, raw: str | None) -> Reply:
    """``po``/``ro``/``no`` open a discreet note (the message then shows it), ``pr`` a
    follow-up's choice, ``rr`` OK to raise, ``sh`` the share choice."""
    data = callbacks.decode(raw)
    partner = await _answering(call)
    if data.action == "po":
        return Reply(edit=await prompts.reveal_discreet(call.uow, partner, data.int_arg(0)))
    if data.action in ("ro", "no"):
        opened = await prompts.open_discreet(
            call.uow, partner, call.deps.cipher, data.action, data.int_arg(0)
        )
        return Reply(edit=opened)
    if data.action == "pr":
        return _replied(
            await prompts.choose(call.uow, partner, data.int_arg(0), data.arg(1), call.now)
        )
    if data.action == "rr":
        said = await prompts.set_ok_to_raise(call.uow, partner, data.int_arg(0), data.arg(1))
    elif data.action == "sh":
        said = await prompts.set_share(call.uow, partner, data.int_arg(0), data.arg(1), call.now)
    else:
        raise UserError("common.stale_button")
    return Reply.say(said, wake=True)


async def followup_words(call: Call, response_id: int, text: str, message_id: int | None) -> Reply:
    """The optional words after a follow-up's button."""
    partner = await _answering(call)
    try:
        result = await prompts.followup_words(
            call.uow,
            partner,
            call.deps.cipher,
            response_id,
            text,
            call.now,
            message_id=message_id,
        )
    except UserError as error:
        if error.key != "prompts.no_open":
            raise
        # The follow-up is gone or already has its words: the wait for them ends all the
        # same (its state stays cleared), and the partner hears why. The words reach no
        # question that would screen them, so they are screened here.
        resources = await safety_flow.screen_free_text(
            call.uow, partner, call.deps.cipher, text, call.now
        )
        if resources is not None:
            return Reply.say(resources, wake=True)
        return Reply.say(error.text(partner.language))
    return _replied(result)


async def prompt_reply(
    call: Call, text: str, message_id: int | None, reply_to: int | None
) -> Reply | None:
    """A text answering an open prompt (the one replied to, or the latest); None if none is."""
    partner = await _answering(call)
    delivery = await prompts.open_prompt(call.uow, partner, call.now, reply_to)
    if delivery is None:
        return None
    result = await prompts.reply_text(
        call.uow, partner, call.deps.cipher, delivery, text, call.now, message_id=message_id
    )
    return _replied(result)


# --- settings, pausing, leaving ---------------------------------------------------------------


async def _own(call: Call) -> Partner:
    """The joined partner calling (also after the programme ended: settings, leaving)."""
    return await access.joined_partner(call.uow, call.caller.user_id, actor=call.actor)


async def settings(call: Call) -> Reply:
    """``/settings``: the partner's own settings, each behind a button (and on one page)."""
    partner = await _own(call)
    menu = partners.settings_menu(partner)
    url = call.deps.settings.webapp_url
    if url is not None:
        menu = miniapp.with_page_button(menu, partner, f"{url}/settings")
    return Reply.say(menu)


async def settings_button(call: Call, raw: str | None) -> Reply:
    """``1|set|partner|name`` opens a setting; ``1|setv|partner|name|value`` applies it.

    Opening the time zone also waits for one typed (:func:`typed_timezone`).
    """
    data = callbacks.decode(raw)
    partner = await _own(call)
    if partner.id != data.int_arg(0):
        raise UserError("common.stale_button")
    user_id = call.caller.user_id
    if data.action == "set":
        name = data.arg(1)
        message = await partners.setting_options(call.uow, partner, name)
        if name == "timezone":
            await call.uow.conversations.set(user_id, "settings_tz", {}, call.now)
    else:
        message = await partners.change_setting(
            call.uow, partner, data.arg(1), data.arg(2), call.now
        )
        await call.uow.conversations.clear(user_id)
    return Reply.say(message)


async def typed_timezone(call: Call, text: str) -> Reply:
    """A time zone typed after choosing it in /settings."""
    partner = await _own(call)
    message = await partners.typed_timezone(call.uow, partner, text, call.now)
    await call.uow.conversations.clear(call.caller.user_id)
    return Reply.say(message)


async def pause(call: Call, args: list[str]) -> Reply:
    """``/pause [DAYS]``: this partner's prompts only; the other partner is not told."""
    partner = await _own(call)
    return Reply.say(await partners.pause(call.uow, partner, args[0] if args else None, call.now))


async def resume(call: Call) -> Reply:
    """``/resume``: this partner's prompts start again."""
    partner = await _own(call)
    return Reply.say(await partners.resume(call.uow, partner, call.now))


async def privacy(call: Call) -> Reply:
    """``/privacy``: the consent text again."""
    partner = await _own(call)
    return Reply.say(msg(partner.language, "onboarding.privacy"))


async def stop(call: Call) -> Reply:
    """``/stop``: asks for confirmation before leaving."""
    partner = await _own(call)
    await confirmations.ask(call.uow, call.caller.user_id, "stop", partner.id, call.now)
    return Reply.say(partners.stop_confirmation(partner))


async def stop_button(call: Call, raw: str | None) -> Reply:
    """``1|stop|partner|yes|no``: leave, or stay (only while the question is pending)."""
    data = callbacks.decode(raw)
    partner = await _own(call)
    if partner.id != data.int_arg(0) or data.arg(1) not in ("yes", "no"):
        raise UserError("common.stale_button")
    await confirmations.take(call.uow, call.caller.user_id, "stop", partner.id)
    language = partner.language
    if data.arg(1) == "yes":
        await partners.leave(call.uow, partner, call.now)
        return Reply.say(msg(language, "partner.stopped"), wake=True)
    return Reply.say(msg(language, "partner.stayed"), wake=True)


async def crisis_done(call: Call, raw: str | None, message_id: int | None) -> Reply:
    """``1|cd|partner``: a discreet partner has read the crisis card (``message_id``); it
    leaves the chat."""
    data = callbacks.decode(raw)
    partner = await _own(call)
    if partner.id != data.int_arg(0):
        raise UserError("common.stale_button")
    if message_id is None:
        return Reply()
    return Reply(delete=[(call.caller.chat_id, message_id)])
