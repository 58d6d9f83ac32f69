"""The linked group's use cases: codes, linking, consent, unlinking, members, migration.

Run with :func:`bot.services.usecase.perform`, one unit of work each; the rules live in
:mod:`bot.services.groups`, the authorisation in :mod:`bot.services.access`. The Telegram
handlers in ``handlers/group.py`` only read the update and deliver the reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.channels.base import SendError
from bot.core import callbacks
from bot.locales import pick_locale
from bot.services import access, groups
from bot.services.outbox import recipient_key
from bot.services.texts import UserError, msg
from bot.services.usecase import Call, Reply
from db.models import Couple


async def _own_couple(call: Call, args: list[str], usage: str) -> tuple[Couple, str]:
    """The couple a private command is about, and who asks (their outbox recipient key)."""
    if call.actor.therapist is not None:
        if not args:
            raise UserError(usage)
        couple = await access.own_couple(call.uow, call.actor.therapist, args[0])
        return couple, recipient_key(call.actor.therapist)
    partner = await access.joined_partner(call.uow, call.caller.user_id, actor=call.actor)
    return await access.partners_couple(call.uow, partner), recipient_key(partner)


async def issue_code(call: Call, args: list[str]) -> Reply:
    """``/linkgroup`` (partner) or ``/linkgroup HANDLE`` (therapist): a one-time group code."""
    couple, asker = await _own_couple(call, args, "group.therapist_usage")
    issued = await groups.issue_code(call.uow, couple, asker, call.now)
    return Reply.say(
        msg(
            call.language,
            "group.code",
            code=issued.code,
            bot=call.deps.bot_username,
            minutes=issued.minutes,
        )
    )


async def unlink(call: Call, args: list[str]) -> Reply:
    """``/unlinkgroup`` (partner) or ``/unlinkgroup HANDLE`` (therapist)."""
    couple, asker = await _own_couple(call, args, "group.unlink_usage")
    await groups.unlink(call.uow, couple, asker, call.now)
    return Reply(wake=True)  # everyone, the asker included, hears it privately


def how_to_link(language_code: str | None) -> Reply:
    """``/linkgroup@bot`` without a code, in a group."""
    return Reply.say(msg(pick_locale(language_code), "group.how_to_link"))


async def redeem_code(
    call: Call, probe: groups.MembershipProbe, code: str, chat: groups.GroupChat
) -> Reply:
    """``/linkgroup@bot CODE`` in a group: checks the code and the members, then asks both.

    A refusal's reason may have been queued for the partners (and committed): the
    dispatcher is woken either way.
    """
    try:
        answer = await groups.redeem_code(
            call.uow, probe, code, call.caller.user_id, chat, call.now
        )
    except SendError as error:
        raise UserError("group.try_later") from error
    except UserError as error:
        return Reply.say(error.text(call.language), wake=True)
    return Reply.say(answer, wake=True)


async def unlink_in_group(call: Call, chat_id: int) -> Reply:
    """``/unlinkgroup@bot`` in a linked group, by a partner or the therapist."""
    answer = await groups.unlink_from_group(call.uow, chat_id, call.caller.user_id, call.now)
    return Reply.say(answer, wake=True)


async def consent(call: Call, raw: str | None) -> Reply:
    """``1|gl|link|attempt|yes|no``: a partner's private answer about using the group."""
    data = callbacks.decode(raw)
    partner = await access.joined_partner(call.uow, call.caller.user_id, actor=call.actor)
    answer = await groups.answer_consent(
        call.uow, partner, data.int_arg(0), data.int_arg(1), data.arg(2), call.now
    )
    return Reply.say(answer, wake=True)


async def membership(
    call: Call,
    chat_id: int,
    bot_id: int,
    joined: Sequence[int] = (),
    left: int | None = None,
    *,
    greet: bool = False,
) -> Reply:
    """Members came or went (a service message or a member update).

    ``greet``: a service message that shows the bot itself joining an unlinked group is
    answered with how to link it (a member update is not: the same join arrives as both).
    """
    changed = False
    hello: list[str] = []
    if joined:
        changed = await groups.members_joined(call.uow, chat_id, joined, bot_id, call.now)
        if greet and bot_id in joined and await groups.link_of_chat(call.uow, chat_id) is None:
            hello.append(msg(pick_locale(call.caller.language_code), "group.hello"))
    if left is not None:
        changed = await groups.member_left(call.uow, chat_id, left, bot_id, call.now) or changed
    return Reply.say(*hello, wake=changed)


async def migrated(call: Call, old_chat_id: int) -> Reply:
    """Telegram upgraded a group to a supergroup: the old chat id's link is suspended."""
    return Reply(wake=await groups.migrated(call.uow, old_chat_id, call.now))
