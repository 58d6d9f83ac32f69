"""Therapist commands: /newcouple, /couples, /invite, /goal, /close, and the couple picker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from telegram import Update

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.services import confirmations, couples, digests, safety_flow, sessions
from bot.services import console as therapist_console
from bot.services import notes as kept_notes
from bot.services.texts import UserError, msg
from db.models import Couple, Therapist
from db.uow import UnitOfWork
from handlers._base import (
    Context,
    HandlerFn,
    command_args,
    deps,
    kick_dispatcher,
    kindly,
    person_of,
    reply,
)


async def _therapist(uow: UnitOfWork, user_id: int) -> Therapist:
    therapist = await uow.therapists.by_user(user_id)
    if therapist is None:
        raise UserError("common.not_for_you")
    return therapist


def _ttl(context: Context) -> timedelta:
    return timedelta(days=deps(context).settings.invite_ttl_days)


async def _picker(uow: UnitOfWork, therapist: Therapist, command: str) -> Outgoing:
    own = await uow.couples.of_therapist(therapist.id)
    if not own:
        return Outgoing(msg(therapist.language, "couple.list_empty"))
    rows = tuple(
        (Button(f"{c.handle} · {c.label}"[:60], callbacks.encode("pick", command, c.id)),)
        for c in own
    )
    return Outgoing(msg(therapist.language, "couple.pick"), rows)


@kindly
async def newcouple(update: Update, context: Context) -> None:
    """``/newcouple LABEL``: enrol a couple and reply with one invite link per partner."""
    d = deps(context)
    async with d.db.uow() as uow:
        therapist = await _therapist(uow, person_of(update).user_id)
        created = await couples.new_couple(
            uow, therapist, " ".join(command_args(context)), now=d.clock.now(), ttl=_ttl(context)
        )
        text = msg(
            therapist.language,
            "couple.created",
            handle=created.couple.handle,
            label=created.couple.label,
            days=d.settings.invite_ttl_days,
            link_a=created.invite_a.link(d.bot_username),
            link_b=created.invite_b.link(d.bot_username),
        )
    await reply(update, context, Outgoing(text))


@kindly
async def couples_command(update: Update, context: Context) -> None:
    """``/couples``: handle, label, partners' state and next session of each couple."""
    d = deps(context)
    now = d.clock.now()
    async with d.db.uow() as uow:
        therapist = await _therapist(uow, person_of(update).user_id)
        rows = await couples.couples_of(uow, therapist, now)
    lang = therapist.language
    if not rows:
        await reply(update, context, Outgoing(msg(lang, "couple.list_empty")))
        return
    lines = [msg(lang, "couple.list_header")]
    for row in rows:
        states = []
        for p in row.partners:
            if p.left_at is not None:
                state = "left"
            elif p.onboarding_step == "done":
                state = "joined"
                if not p.reachable:
                    state = "unreachable"
                elif p.paused_until is not None and p.paused_until > now:
                    state = "paused"
            elif p.telegram_user_id is not None:
                state = "onboarding"
            else:
                state = "invited"
            states.append(msg(lang, f"couple.list_partner_{state}", slot=p.slot))
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
                msg(
                    lang,
                    "couple.list_missed",
                    a=row.missed.get("A", 0),
                    b=row.missed.get("B", 0),
                )
            )
    await reply(update, context, Outgoing("\n".join(lines)))


def _slot_picker(therapist: Therapist, couple: Couple) -> Outgoing:
    row = tuple(Button(s, callbacks.encode("slot", couple.id, s)) for s in ("A", "B"))
    return Outgoing(msg(therapist.language, "couple.pick_slot", handle=couple.handle), (row,))


async def _new_link(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, slot: str
) -> Outgoing:
    d = deps(context)
    issued = await couples.reinvite(
        uow, therapist, couple, slot, now=d.clock.now(), ttl=_ttl(context)
    )
    text = msg(
        therapist.language,
        "couple.new_link",
        slot=slot.upper(),
        handle=couple.handle,
        link=issued.link(d.bot_username),
    )
    return Outgoing(text)


# What each couple command does once it knows the therapist's own couple; ``rest`` holds the
# words after the handle (empty when the couple was picked from buttons).
CoupleAction = Callable[
    [Context, UnitOfWork, Therapist, Couple, list[str]], Awaitable[Outgoing | None]
]


async def _invite(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> Outgoing:
    if not rest:
        return _slot_picker(therapist, couple)
    return await _new_link(context, uow, therapist, couple, rest[0])


async def _goal(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> Outgoing:
    d = deps(context)
    if not rest:
        assert therapist.telegram_user_id is not None
        await uow.conversations.set(
            therapist.telegram_user_id, "goal", {"couple_id": couple.id}, d.clock.now()
        )
        await uow.commit()
        return Outgoing(msg(therapist.language, "couple.goal_prompt", handle=couple.handle))
    await couples.set_goal(uow, therapist, couple, " ".join(rest), d.clock.now())
    kick_dispatcher(context)
    return Outgoing(msg(therapist.language, "couple.goal_saved", handle=couple.handle))


async def _close(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> Outgoing:
    assert therapist.telegram_user_id is not None
    now = deps(context).clock.now()
    await confirmations.ask(uow, therapist.telegram_user_id, "close", couple.id, now)
    return _close_confirmation(therapist, couple)


async def _alerts(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> Outgoing:
    d = deps(context)
    return Outgoing(await safety_flow.alerts_view(uow, therapist, couple, d.clock.now(), d.cipher))


async def _notes(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> Outgoing:
    d = deps(context)
    return Outgoing(await kept_notes.notes_view(uow, therapist, couple, d.cipher, d.clock.now()))


async def _clearhold(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> Outgoing:
    now = deps(context).clock.now()
    return Outgoing(await safety_flow.clear_hold(uow, therapist, couple, now))


async def _schedule(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> Outgoing:
    now = deps(context).clock.now()
    choice = rest[0] if rest else None
    return Outgoing(await couples.schedule(uow, therapist, couple, choice, now))


async def _digest(
    context: Context, uow: UnitOfWork, therapist: Therapist, couple: Couple, rest: list[str]
) -> None:
    d = deps(context)
    await digests.queue_digest(
        uow, couple, d.cipher, d.clock.now(), key=None, actor=f"therapist:{therapist.id}"
    )
    await uow.commit()
    kick_dispatcher(context)


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


READ_AFTER_CLOSE = frozenset({"alerts", "notes"})
"""A closed couple's safety record and kept-private words stay readable by its therapist."""


def couple_command(name: str, doc: str) -> HandlerFn:
    """A therapist command on one of their couples: a picker without a handle."""

    @kindly
    async def handler(update: Update, context: Context) -> None:
        d = deps(context)
        args = command_args(context)
        async with d.db.uow() as uow:
            therapist = await _therapist(uow, person_of(update).user_id)
            if not args:
                message: Outgoing | None = await _picker(uow, therapist, name)
            else:
                couple = await couples.own_couple(
                    uow, therapist, args[0], include_closed=name in READ_AFTER_CLOSE
                )
                message = await COUPLE_ACTIONS[name](context, uow, therapist, couple, args[1:])
        if message is not None:
            await reply(update, context, message)

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    return handler


invite = couple_command("invite", "``/invite HANDLE A|B``: a fresh link for one partner place.")
goal = couple_command("goal", "``/goal HANDLE TEXT``: set the shared goal both partners see.")
close = couple_command("close", "``/close HANDLE``: asks first, then ends the couple's use.")
alerts = couple_command("alerts", "``/alerts HANDLE``: safety alerts with the words; audited.")
notes = couple_command("notes", "``/notes HANDLE``: words kept for the therapist only; audited.")
clearhold = couple_command("clearhold", "``/clearhold HANDLE``: lift the safety hold.")
schedule = couple_command("schedule", "``/schedule HANDLE [TEMPLATE|pause|resume]``.")
digest = couple_command("digest", "``/digest HANDLE``: the digest now; the read is audited.")


async def typed_goal(update: Update, context: Context, couple_id: int, text: str) -> None:
    """The goal text a therapist sends after ``/goal HANDLE``."""
    d = deps(context)
    async with d.db.uow() as uow:
        therapist = await _therapist(uow, person_of(update).user_id)
        couple = await couples.own_couple_by_id(uow, therapist, couple_id)
        await uow.conversations.clear(person_of(update).user_id)
        await couples.set_goal(uow, therapist, couple, text, d.clock.now())
        reply_text = msg(therapist.language, "couple.goal_saved", handle=couple.handle)
    await reply(update, context, Outgoing(reply_text))
    kick_dispatcher(context)


def _close_confirmation(therapist: Therapist, couple: Couple) -> Outgoing:
    lang = therapist.language
    row = (
        Button(msg(lang, "couple.close_yes"), callbacks.encode("close", couple.id, "yes")),
        Button(msg(lang, "couple.close_no"), callbacks.encode("close", couple.id, "no")),
    )
    return Outgoing(
        msg(lang, "couple.close_confirm", handle=couple.handle, label=couple.label), (row,)
    )


@kindly
async def therapist_button(update: Update, context: Context) -> None:
    """Picker, slot and close-confirmation buttons; each re-checks the couple is the therapist's."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    async with d.db.uow() as uow:
        therapist = await _therapist(uow, person_of(update).user_id)
        if data.action == "pick":
            command = data.arg(0)
            if command not in COUPLE_ACTIONS:
                raise UserError("common.stale_button")
            couple = await couples.own_couple_by_id(uow, therapist, data.int_arg(1))
            await query.answer()
            message = await COUPLE_ACTIONS[command](context, uow, therapist, couple, [])
            if message is not None:
                await reply(update, context, message)
            return
        couple = await couples.own_couple_by_id(uow, therapist, data.int_arg(0))
        if data.action == "slot":
            await query.answer()
            await reply(
                update, context, await _new_link(context, uow, therapist, couple, data.arg(1))
            )
            return
        if data.action == "close":
            choice = data.arg(1)
            if choice not in ("yes", "no"):
                raise UserError("common.stale_button")
            await confirmations.take(uow, person_of(update).user_id, "close", couple.id)
            if choice == "yes":
                await couples.close_couple(uow, therapist, couple, d.clock.now())
                text = msg(therapist.language, "couple.close_done", handle=couple.handle)
            else:
                await uow.commit()
                text = msg(therapist.language, "couple.close_kept")
            await query.answer()
            await reply(update, context, Outgoing(text))
            kick_dispatcher(context)
            return
    raise UserError("common.stale_button")


@kindly
async def session(update: Update, context: Context) -> None:
    """``/session HANDLE YYYY-MM-DD HH:MM`` | ``weekly WEEKDAY HH:MM`` | ``skip DATE`` |
    ``move [DATE] DATE HH:MM`` | ``cancel`` (the next one) | ``end`` (the weekly series)."""
    d = deps(context)
    args = command_args(context)
    async with d.db.uow() as uow:
        therapist = await _therapist(uow, person_of(update).user_id)
        if not args:
            raise UserError("sessions.usage")
        couple = await couples.own_couple(uow, therapist, args[0])
        text = await sessions.command(uow, therapist, couple, args[1:], d.clock.now())
    await reply(update, context, Outgoing(text))


@kindly
async def sessions_command(update: Update, context: Context) -> None:
    """``/sessions``: upcoming sessions across the therapist's couples."""
    d = deps(context)
    async with d.db.uow() as uow:
        therapist = await _therapist(uow, person_of(update).user_id)
        text = await sessions.upcoming(uow, therapist, d.clock.now())
    await reply(update, context, Outgoing(text))


@kindly
async def console(update: Update, context: Context) -> None:
    """``/console``: a one-time link into the therapist console (and a Mini App button when
    the pages are served over https)."""
    d = deps(context)
    url = d.settings.webapp_url
    async with d.db.uow() as uow:
        therapist = await _therapist(uow, person_of(update).user_id)
        if url is None:
            await reply(update, context, Outgoing(msg(therapist.language, "console.not_served")))
            return
        minutes = d.settings.console_link_minutes
        token = await therapist_console.issue_login_link(
            uow, therapist, d.clock.now(), timedelta(minutes=minutes)
        )
    lang = therapist.language
    text = msg(lang, "console.link_message", minutes=minutes, link=f"{url}/console/login/{token}")
    rows: tuple[tuple[Button, ...], ...] = ()
    if url.startswith("https://"):
        label = msg(lang, "console.link_button")
        rows = ((Button(label, "", web_app_url=f"{url}/console/app"),),)
    await reply(update, context, Outgoing(text, rows))
