"""What a therapist does with their couples: enrol, list, re-invite, set the goal, close.

Every function takes the acting therapist and looks couples up within that therapist's
own couples only, so a handle that belongs to someone else reads as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.services import events, groups
from bot.services.practice_config import parse_practice_config
from bot.services.practices import IssuedInvite, issue_invite
from bot.services.reminders import missed_checkins
from bot.services.texts import UserError, msg
from db.models import SLOTS, Couple, Partner, Slot, Therapist, is_slot
from db.uow import UnitOfWork
from schedules.planner import drop_pending, notify_in_window, plan_couple

MAX_LABEL = 60
MAX_GOAL = 500
MISSED_PERIOD = timedelta(days=14)  # /couples counts missed check-ins over this span


@dataclass(frozen=True)
class NewCouple:
    """A freshly enrolled couple and its two invites."""

    couple: Couple
    invite_a: IssuedInvite
    invite_b: IssuedInvite


async def new_couple(
    uow: UnitOfWork, therapist: Therapist, label: str, *, now: datetime, ttl: timedelta
) -> NewCouple:
    """Enrol a couple: two empty partner places and one invite for each."""
    label = " ".join(label.split())
    if not label:
        raise UserError("couple.label_missing")
    if len(label) > MAX_LABEL:
        raise UserError("couple.label_too_long", limit=MAX_LABEL)
    number = await uow.practices.take_couple_number(therapist.practice_id)
    couple = await uow.couples.add(
        Couple(
            practice_id=therapist.practice_id,
            therapist_id=therapist.id,
            handle=f"c{number}",
            label=label,
            created_at=now,
        )
    )
    practice = await uow.practices.get(therapist.practice_id)
    assert practice is not None
    for slot in SLOTS:
        await uow.partners.add(Partner(couple_id=couple.id, slot=slot, language=practice.language))
    invites = [
        await issue_invite(
            uow, practice_id=therapist.practice_id, now=now, ttl=ttl, couple_id=couple.id, slot=s
        )
        for s in SLOTS
    ]
    uow.audit.record(
        actor=f"therapist:{therapist.id}", action="couple.create", couple_id=couple.id, at=now
    )
    await uow.commit()
    return NewCouple(couple, invites[0], invites[1])


@dataclass(frozen=True)
class CoupleStatus:
    """One line of ``/couples``."""

    couple: Couple
    partners: list[Partner]
    next_session: datetime | None
    missed: dict[Slot, int] = field(default_factory=dict)  # check-ins not completed


async def couples_of(uow: UnitOfWork, therapist: Therapist, now: datetime) -> list[CoupleStatus]:
    """The therapist's active couples with their partners and next session."""
    couples = await uow.couples.of_therapist(therapist.id)
    partners = await uow.partners.of_couples([c.id for c in couples])
    out = []
    practice = await uow.practices.get(therapist.practice_id)
    assert practice is not None
    for couple in couples:
        upcoming = await uow.sessions.next_for(couple.id, now)
        missed = await missed_checkins(uow, couple, practice, now - MISSED_PERIOD, now)
        out.append(
            CoupleStatus(
                couple, partners[couple.id], upcoming.starts_at if upcoming else None, missed
            )
        )
    return out


async def reinvite(
    uow: UnitOfWork,
    therapist: Therapist,
    couple: Couple,
    slot: str,
    *,
    now: datetime,
    ttl: timedelta,
) -> IssuedInvite:
    """A fresh link for one partner place; the old, unused one stops working."""
    slot = slot.strip().upper()
    if not is_slot(slot):
        raise UserError("couple.slot_invalid")
    partner = next(p for p in await uow.partners.of_couple(couple.id) if p.slot == slot)
    if partner.telegram_user_id is not None:
        raise UserError("couple.slot_joined", handle=couple.handle, slot=slot)
    await uow.invites.revoke_open(couple.id, slot, now)
    issued = await issue_invite(
        uow, practice_id=couple.practice_id, now=now, ttl=ttl, couple_id=couple.id, slot=slot
    )
    if partner.onboarding_step != "invited":
        await new_seat_holder(uow, partner, now)
    uow.audit.record(
        actor=f"therapist:{therapist.id}",
        action="couple.reinvite",
        couple_id=couple.id,
        at=now,
        detail=f"slot={slot}",
    )
    await uow.commit()
    return issued


async def new_seat_holder(uow: UnitOfWork, previous: Partner, now: datetime) -> Partner:
    """Retire a seat's previous holder and give the seat a new, empty partner identity.

    Everything the previous holder left (check-ins, notes, replies, alerts, group consent)
    stays under their own, retired id for the therapist's record; nothing is read through
    the newcomer's id, so the newcomer's export, digest and chats hold nothing of theirs.
    """
    previous.retired_at = now
    await uow.flush()  # one current holder per seat: free the seat before it is taken again
    couple = await uow.couples.get(previous.couple_id)
    assert couple is not None
    couple.space_ready_at = None  # the space opens again, for both, once the newcomer joins
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    newcomer = await uow.partners.add(
        Partner(couple_id=previous.couple_id, slot=previous.slot, language=practice.language)
    )
    await groups.seat_changed(uow, couple, now)
    return newcomer


async def set_goal(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, goal: str, now: datetime
) -> None:
    """Set the shared goal; both joined partners see it in the same words."""
    goal = " ".join(goal.split())
    if not goal:
        raise UserError("couple.goal_missing")
    if len(goal) > MAX_GOAL:
        raise UserError("couple.goal_too_long", limit=MAX_GOAL)
    couple.shared_goal = goal
    if couple.space_ready_at is not None:
        for partner in await uow.partners.of_couple(couple.id):
            if partner.active:
                await notify_in_window(
                    uow,
                    partner,
                    "couple.goal_set",
                    dedupe_key=f"goal:{couple.id}:{now.isoformat()}",
                    now=now,
                    couple_id=couple.id,
                    goal=goal,
                )
    await groups.post_goal(uow, couple, now)
    uow.audit.record(
        actor=f"therapist:{therapist.id}", action="couple.goal", couple_id=couple.id, at=now
    )
    await uow.commit()


async def close_couple(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, now: datetime
) -> None:
    """End the couple's use of Dyad; both partners are told in the same words.

    The therapist's confirmation is the reply; the partners' farewell is Dyad's initiative
    and reaches each in their own window, outside quiet hours.
    """
    await drop_pending(uow, couple, keep_started_pairs=False)
    couple.status = "closed"
    couple.closed_at = now
    for partner in await uow.partners.of_couple(couple.id):
        if partner.telegram_user_id is not None and partner.left_at is None:
            await notify_in_window(
                uow,
                partner,
                "couple.closed",
                dedupe_key=f"closed:{couple.id}",
                now=now,
                couple_id=couple.id,
            )
    await events.couple_closed(uow, couple, now)
    uow.audit.record(
        actor=f"therapist:{therapist.id}", action="couple.close", couple_id=couple.id, at=now
    )
    await uow.commit()


def local_time(when: datetime, zone: str) -> str:
    """``2026-10-21 18:00`` in a time zone, for lists."""
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


async def schedule(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, choice: str | None, now: datetime
) -> str:
    """Show, switch, pause or resume the couple's prompt schedule (both partners alike)."""
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    schedules = parse_practice_config(practice.config_toml).schedules
    names = sorted(schedules.schedules)
    current = couple.schedule_template or schedules.delivery.default_template
    lang, handle = therapist.language, couple.handle
    if choice is None:
        return msg(
            lang,
            "schedule.status",
            handle=handle,
            template=current,
            paused=msg(lang, "schedule.paused_mark") if couple.schedule_paused else "",
            templates=", ".join(names),
        )
    actor = f"therapist:{therapist.id}"
    if choice == "pause":
        couple.schedule_paused = True
        await drop_pending(uow, couple, keep_started_pairs=False)
        text = msg(lang, "schedule.paused", handle=handle)
    elif choice == "resume":
        couple.schedule_paused = False
        await plan_couple(uow, couple, practice, now)
        text = msg(lang, "schedule.resumed", handle=handle)
    elif choice in schedules.schedules:
        couple.schedule_template = choice
        await drop_pending(uow, couple)  # both halves of a couple-space pair go, or stay
        await plan_couple(uow, couple, practice, now)
        text = msg(lang, "schedule.switched", handle=handle, template=choice)
    else:
        raise UserError(
            "schedule.unknown_template", template=choice[:40], templates=", ".join(names)
        )
    uow.audit.record(actor=actor, action=f"schedule.{choice}"[:64], couple_id=couple.id, at=now)
    await uow.commit()
    return text


def partner_state(partner: Partner, now: datetime) -> str:
    """Where a seat's holder stands, in the therapist's words: ``invited``, ``onboarding``,
    ``joined``, ``paused``, ``unreachable`` or ``left`` (the chat and the console alike)."""
    if partner.left_at is not None:
        return "left"
    if partner.onboarding_step == "done":
        if not partner.reachable:
            return "unreachable"
        if partner.paused_until is not None and partner.paused_until > now:
            return "paused"
        return "joined"
    return "onboarding" if partner.telegram_user_id is not None else "invited"
