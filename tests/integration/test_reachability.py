"""Whether a partner can be reached: one rule, and the therapist is told once per change,
however many workers notice it at the same time (on both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.services import reachability
from db.engine import Database
from db.models import Delivery
from tests.integration.schedule_world import practice_with_couple

MONDAY = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)


async def _told(db: Database, key: str) -> list[Delivery]:
    async with db.uow() as uow:
        rows = await uow.session.scalars(select(Delivery).filter_by(key=key))
        return [row for row in rows if row.therapist_id is not None]


async def test_two_workers_that_see_a_block_at_once_tell_the_therapist_once(
    db: Database,
) -> None:
    _, _, (a, _) = await practice_with_couple(db, MONDAY)
    later = MONDAY + timedelta(seconds=1)
    async with db.uow() as first, db.uow() as second:
        # Both workers load the partner while they are still reachable...
        for uow in (first, second):
            partner = await uow.partners.get(a)
            assert partner is not None and partner.reachable
        # ...and both get Telegram's 403, a second apart: one change, one notice.
        assert await reachability.mark_unreachable(first, a, MONDAY)
        await first.commit()
        assert not await reachability.mark_unreachable(second, a, later)
        await second.commit()
    (told,) = await _told(db, "couple.partner_unreachable")
    assert told.params["slot"] == "A"
    async with db.uow() as uow:
        partner = await uow.partners.get(a)
        assert partner is not None
        assert (partner.reachable, partner.unreachable_since) == (False, MONDAY)

    # Coming back is the same rule the other way: told once, since cleared.
    for when in (later, later + timedelta(seconds=1)):
        async with db.uow() as uow:
            await reachability.mark_reachable(uow, a, when)
            await uow.commit()
    assert len(await _told(db, "couple.partner_back")) == 1
    async with db.uow() as uow:
        partner = await uow.partners.get(a)
        assert partner is not None
        assert (partner.reachable, partner.unreachable_since) == (True, None)
