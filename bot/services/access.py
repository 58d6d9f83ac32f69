"""Who may do what: every authorisation rule of Dyad, each written once.

Each check either returns what the caller may act on or raises a
:class:`~bot.services.texts.UserError` whose words reveal nothing (a therapist asking for
another therapist's couple hears the same as for a handle that does not exist).
"""

from __future__ import annotations

from bot.services import partners
from bot.services.identity import Actor
from bot.services.texts import UserError
from db.models import Couple, Partner, Therapist
from db.uow import UnitOfWork


def therapist(actor: Actor) -> Therapist:
    """The therapist who is calling; anyone else is told the command is not for them."""
    if actor.therapist is None:
        raise UserError("common.not_for_you")
    return actor.therapist


async def joined_partner(
    uow: UnitOfWork, user_id: int, *, in_programme: bool = False, actor: Actor | None = None
) -> Partner:
    """The partner behind this user, fully joined; anyone else gets a kind refusal.

    ``in_programme``: for answering (check-ins, prompts), the couple must still be in the
    programme; after ``/close`` the partner is told kindly, with the crisis lines.
    ``actor``: who the unit of work already identified (its partner is not read again).
    """
    known = actor.partner if actor is not None and actor.user_id == user_id else None
    partner = known if known is not None else await uow.partners.by_user(user_id)
    if partner is None or partner.left_at is not None:
        if await uow.therapists.by_user(user_id) is not None:
            raise UserError("common.unknown_command")
        raise UserError("common.help_stranger")
    if partner.onboarding_step != "done":
        raise UserError("partner.not_joined")
    if in_programme:
        await partners.require_programme(uow, partner)
    return partner


async def own_couple(
    uow: UnitOfWork, therapist: Therapist, handle: str, *, include_closed: bool = False
) -> Couple:
    """The therapist's own active couple with this handle, or a refusal that reveals nothing.

    ``include_closed``: a closed couple too (its safety record stays readable).
    """
    couple = await uow.couples.by_handle(therapist.practice_id, handle.strip().lower())
    if couple is None or couple.therapist_id != therapist.id:
        raise UserError("couple.unknown_handle", handle=handle[:16])
    couple = await uow.hold_couple(couple.id)  # read again once no partner's update runs
    if couple is None:
        raise UserError("couple.unknown_handle", handle=handle[:16])
    if couple.status != "active" and not include_closed:
        raise UserError("couple.unknown_handle", handle=handle[:16])
    return couple


async def own_couple_by_id(uow: UnitOfWork, therapist: Therapist, couple_id: int) -> Couple:
    """The same check for a couple id from a button."""
    couple = await uow.couples.get(couple_id)
    if couple is None or couple.therapist_id != therapist.id:
        raise UserError("common.stale_button")
    couple = await uow.hold_couple(couple_id)
    if couple is None or couple.status != "active":
        raise UserError("common.stale_button")
    return couple


async def partners_couple(uow: UnitOfWork, partner: Partner) -> Couple:
    """A joined partner's own couple, while it is in the programme."""
    couple = await uow.couples.get(partner.couple_id)
    if couple is None or couple.status != "active":
        raise UserError("common.help_stranger")
    return couple
