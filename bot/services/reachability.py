"""Whether Dyad can reach a partner in their private chat: one rule for every entry point.

A partner who blocks the bot (Telegram's 403 on a send, or the chat-member update saying
so) becomes unreachable; one who comes back (``/start`` again) is reachable again. Either
way their therapist is told, without content. The change is a conditional update, so of
several workers noticing the same thing at once only one tells the therapist.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from bot.services import events
from bot.services.outbox import notify
from db.models import Partner
from db.uow import UnitOfWork


async def mark_unreachable(uow: UnitOfWork, partner_id: int, now: datetime) -> bool:
    """The partner blocked the bot: True if this call made the change (and told)."""
    return await _change(uow, partner_id, reachable=False, now=now)


async def mark_reachable(uow: UnitOfWork, partner_id: int, now: datetime) -> bool:
    """The partner came back: True if this call made the change (and told)."""
    return await _change(uow, partner_id, reachable=True, now=now)


async def _change(uow: UnitOfWork, partner_id: int, *, reachable: bool, now: datetime) -> bool:
    """Flip ``reachable`` only if it still holds the old value; the caller commits."""
    changed = await uow.session.execute(
        update(Partner)
        .where(Partner.id == partner_id, Partner.reachable.is_(not reachable))
        .values(reachable=reachable, unreachable_since=None if reachable else now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return False  # already so: another worker (or an earlier update) told them
    partner = await uow.partners.get(partner_id)
    assert partner is not None
    await uow.session.refresh(partner)
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    therapist = await uow.therapists.get(couple.therapist_id)
    assert therapist is not None
    what = "back" if reachable else "unreachable"
    await notify(
        uow,
        therapist,
        f"couple.partner_{what}",
        dedupe_key=f"{what}:{partner.id}:{now.isoformat()}",
        now=now,
        couple_id=couple.id,
        handle=couple.handle,
        slot=partner.slot,
    )
    if not reachable:
        await events.partner_unreachable(uow, couple, partner, now)
    return True
