"""The therapist's use cases: enrol and list couples, act on one couple, sessions.

Each public function is a use case run with :func:`bot.services.usecase.perform`: it
authorises through :mod:`bot.services.access` (the therapist's own couples only), works in
the call's one unit of work and returns the reply. The Telegram handlers in
``handlers/therapist.py`` only parse commands and buttons and deliver the reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.services import access, confirmations, couples, digests, safety_flow, sessions
from bot.services import notes as kept_notes
from bot.services.texts import UserError, msg, msgn
from bot.services.usecase import Call, Reply
from db.models import Couple, Therapist


def _ttl(call: Call) -> timedelta:
    return timedelta(days=call.deps.settings.invite_ttl_days)


async def new_couple(call: Call, label: str) -> Reply:
    """``/newcouple LABEL``: enrol a couple and reply with one invite link per partner."""
    therapist = access.therapist(call.actor)
    created = await couples.new_couple(call.uow, therapist, label, now=call.now, ttl=_ttl(call))
    d = call.deps
    return Reply.say(
        msgn(
            therapist.language,
            "couple.created",
            d.settings.invite_ttl_days,
            handle=created.couple.handle,
            label=created.couple.label,
            days=d.settings.invite_ttl_days,
            link_a=created.invite_a.link(d.bot_username),
            link_b=created.invite_b.link(d.bot_username),
        )
    )


async def list_couples(call: Call) -> Reply:
    """``/couples``: handle, label, partners' state and next session of each couple."""
    therapist = access.therapist(call.actor)
    rows = await couples.couples_of(call.uow, therapist, call.now)
    lang = therapist.language
    if not rows:
        return Reply.say(msg(lang, "couple.list_empty"))
    lines = [msg(lang, "couple.list_header")]
    for row in rows:
        states = [
            msg(lang, f"couple.list_partner_{couples.partner_state(p, call.now)}", slot=p.slot)
            for p in row.partners
        ]
        when = (
            msg(
                lang,
                "couple.list_next_session",
                when=couples.local_time(row.next_session, therapist.timezone),
            )
            if row.next_session
            else ""
        )
        lines.append(
            msg(
                lang,
                "couple.list_line",
                handle=row.couple.handle,
                label=row.couple.label,
                partners=", ".join(states),
                next_session=when,
            )
        )
        if any(row.missed.values()):
            # Both partners side by side, in the same neutral words, whoever missed them.
            lines.append(
                msg(lang, "couple.list_missed", a=row.missed.get("A", 0), b=row.missed.get("B", 0))
            )
    return Reply.say("\n".join(lines))


def _picker_of(therapist: Therapist, own: list[Couple], command: str) -> Outgoing:
    if not own:
        return Outgoing(msg(therapist.language, "couple.list_empty"))
    rows = tuple(
        (Button(f"{c.handle} · {c.label}"[:60], callbacks.encode("pick", command, c.id)),)
        for c in own
    )
    return Outgoing(msg(therapist.language, "couple.pick"), rows)


def _slot_picker(therapist: Therapist, couple: Couple) -> Outgoing:
    row = tuple(Button(s, callbacks.encode("slot", couple.id, s)) for s in ("A", "B"))
    return Outgoing(msg(therapist.language, "couple.pick_slot", handle=couple.handle), (row,))


async def _new_link(call: Call, therapist: Therapist, couple: Couple, slot: str) -> Reply:
    issued = await couples.reinvite(call.uow, therapist, couple, slot, now=call.now, ttl=_ttl(call))
    return Reply.say(
        msg(
            therapist.language,
            "couple.new_link",
            slot=slot.upper(),
            handle=couple.handle,
            link=issued.link(call.deps.bot_username),
        )
    )


def _close_confirmation(therapist: Therapist, couple: Couple) -> Outgoing:
    lang = therapist.language
    row = (
        Button(msg(lang, "couple.close_yes"), callbacks.encode("close", couple.id, "yes")),
        Button(msg(lang, "couple.close_no"), callbacks.encode("close", couple.id, "no")),
    )
    return Outgoing(
        msg(lang, "couple.close_confirm", handle=couple.handle, label=couple.label), (row,)
    )


# What each couple command does once it knows the therapist's own couple; ``rest`` holds the
# words after the handle (empty when the couple was picked from buttons).
CoupleAction = Callable[[Call, Therapist, Couple, list[str]], Awaitable[Reply]]


async def _invite(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    if not rest:
        return Reply.say(_slot_picker(therapist, couple))
    return await _new_link(call, therapist, couple, rest[0])


async def _goal(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    if not rest:
        assert therapist.telegram_user_id is not None
        await call.uow.conversations.set(
            therapist.telegram_user_id, "goal", {"couple_id": couple.id}, call.now
        )
        return Reply.say(msg(therapist.language, "couple.goal_prompt", handle=couple.handle))
    await couples.set_goal(call.uow, therapist, couple, " ".join(rest), call.now)
    return Reply.say(msg(therapist.language, "couple.goal_saved", handle=couple.handle), wake=True)


async def _close(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    assert therapist.telegram_user_id is not None
    await confirmations.ask(call.uow, therapist.telegram_user_id, "close", couple.id, call.now)
    return Reply.say(_close_confirmation(therapist, couple))


async def _alerts(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    view = await safety_flow.alerts_view(call.uow, therapist, couple, call.now, call.deps.cipher)
    return Reply.say(view)


async def _notes(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    view = await kept_notes.notes_view(call.uow, therapist, couple, call.deps.cipher, call.now)
    return Reply.say(view)


async def _clearhold(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    return Reply.say(await safety_flow.clear_hold(call.uow, therapist, couple, call.now))


async def _schedule(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    choice = rest[0] if rest else None
    return Reply.say(await couples.schedule(call.uow, therapist, couple, choice, call.now))


async def _digest(call: Call, therapist: Therapist, couple: Couple, rest: list[str]) -> Reply:
    await digests.queue_digest(
        call.uow, couple, call.deps.cipher, call.now, key=None, actor=f"therapist:{therapist.id}"
    )
    return Reply(wake=True)  # the digest itself comes through the outbox


COUPLE_ACTIONS: dict[str, CoupleAction] = {
    "invite": _invite,
    "goal": _goal,
    "close": _close,
    "alerts": _alerts,
    "notes": _notes,
    "clearhold": _clearhold,
    "schedule": _schedule,
    "digest": _digest,
}
"""The commands that act on one couple, by name (``/invite HANDLE …``, ``/goal HANDLE …``)."""

READ_AFTER_CLOSE = frozenset({"alerts", "notes"})
"""A closed couple's safety record and kept-private words stay readable by its therapist."""


async def couple_command(call: Call, name: str, args: list[str]) -> Reply:
    """A command on one of the therapist's couples; without a handle, a couple picker."""
    therapist = access.therapist(call.actor)
    if not args:
        own = list(await call.uow.couples.of_therapist(therapist.id))
        return Reply.say(_picker_of(therapist, own, name))
    couple = await access.own_couple(
        call.uow, therapist, args[0], include_closed=name in READ_AFTER_CLOSE
    )
    return await COUPLE_ACTIONS[name](call, therapist, couple, args[1:])


async def typed_goal(call: Call, couple_id: int, text: str) -> Reply:
    """The goal text a therapist sends after ``/goal HANDLE``."""
    therapist = access.therapist(call.actor)
    couple = await access.own_couple_by_id(call.uow, therapist, couple_id)
    await call.uow.conversations.clear(call.caller.user_id)
    await couples.set_goal(call.uow, therapist, couple, text, call.now)
    return Reply.say(msg(therapist.language, "couple.goal_saved", handle=couple.handle), wake=True)


async def button(call: Call, raw: str | None) -> Reply:
    """Picker, slot and close-confirmation buttons; each re-checks the couple is the therapist's."""
    therapist = access.therapist(call.actor)
    data = callbacks.decode(raw)
    if data.action == "pick":
        command = data.arg(0)
        if command not in COUPLE_ACTIONS:
            raise UserError("common.stale_button")
        couple = await access.own_couple_by_id(call.uow, therapist, data.int_arg(1))
        return await COUPLE_ACTIONS[command](call, therapist, couple, [])
    couple = await access.own_couple_by_id(call.uow, therapist, data.int_arg(0))
    if data.action == "slot":
        return await _new_link(call, therapist, couple, data.arg(1))
    if data.action == "close":
        choice = data.arg(1)
        if choice not in ("yes", "no"):
            raise UserError("common.stale_button")
        await confirmations.take(call.uow, call.caller.user_id, "close", couple.id)
        if choice == "yes":
            await couples.close_couple(call.uow, therapist, couple, call.now)
            text = msg(therapist.language, "couple.close_done", handle=couple.handle)
        else:
            text = msg(therapist.language, "couple.close_kept")
        return Reply.say(text, wake=True)
    raise UserError("common.stale_button")


async def session(call: Call, args: list[str]) -> Reply:
    """``/session HANDLE …``: set, skip, move or end a couple's sessions."""
    therapist = access.therapist(call.actor)
    if not args:
        raise UserError("sessions.usage")
    couple = await access.own_couple(call.uow, therapist, args[0])
    return Reply.say(await sessions.command(call.uow, therapist, couple, args[1:], call.now))


async def upcoming_sessions(call: Call) -> Reply:
    """``/sessions``: upcoming sessions across the therapist's couples."""
    therapist = access.therapist(call.actor)
    return Reply.say(await sessions.upcoming(call.uow, therapist, call.now))
