"""The planner: turns each active couple's schedule into outbox rows for the next 48 hours.

For every active couple whose space is open and whose schedule is not paused, each
active, unpaused partner gets the same template planned in their own time zone and
window (``schedules.planning`` does the calendar maths). Rows are unique per
(partner, rule, local date), so running the planner again creates nothing new.
Under a safety hold, conflict-communication exercises are replaced at the same time by
other prompts of the same kind, identically for both partners: the cadence stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.core.clock import Clock
from bot.metrics import PLANNER_RUNS
from bot.services.outbox import enqueue
from bot.services.practice_config import parse_practice_config
from db.engine import Database
from db.models import Couple, Delivery, Partner, Practice
from db.uow import UnitOfWork
from schedules.planning import PartnerTiming, PlannedDelivery, plan_deliveries, substitute_for_hold

log = logging.getLogger(__name__)

HORIZON = timedelta(hours=48)
PROMPT_KINDS = ("checkin", "hope", "skill", "skill_followup", "couple_space")


@dataclass
class PlannerStats:
    """What one planner run did."""

    couples: int = 0
    planned: int = 0
    created: int = 0


def _plannable(partner: Partner, now: datetime) -> bool:
    return (
        partner.active
        and partner.reachable
        and partner.timezone is not None
        and (partner.paused_until is None or partner.paused_until <= now)
    )


def plan_for_partner(
    couple: Couple, practice: Practice, partner: Partner, start: datetime, end: datetime
) -> list[PlannedDelivery]:
    """What the couple's template holds for one partner in ``[start, end)``."""
    config = parse_practice_config(practice.config_toml)
    schedules = config.schedules
    name = couple.schedule_template
    template = schedules.template(name if name in schedules.schedules else None)
    assert partner.timezone is not None
    return plan_deliveries(
        template,
        schedules.delivery,
        config.library,
        PartnerTiming(partner.timezone, partner.window or "evening"),
        start,
        end,
        couple_seed=str(couple.id),
        safety_hold=couple.safety_hold,
    )


def plan_key(planned: PlannedDelivery) -> str:
    """One row per rule per local date: a hold may swap the prompt, never add a second row.

    A follow-up also names how many days after its skill it comes: one rule's skills with
    different delays (a practice's own 3-day skill beside the 2-day ones) can bring two
    follow-ups to one day, and each needs its own row.
    """
    day = planned.local_date.isoformat()
    if planned.origin_date is not None:
        return f"plan:{planned.rule_id}+{(planned.local_date - planned.origin_date).days}d:{day}"
    return f"plan:{planned.rule_id}:{day}"


async def plan_couple(uow: UnitOfWork, couple: Couple, practice: Practice, now: datetime) -> int:
    """Queue the next 48 hours for both partners of one couple; returns rows created."""
    created = 0
    if couple.status != "active" or couple.schedule_paused or couple.space_ready_at is None:
        return 0
    for partner in await uow.partners.of_couple(couple.id):
        if not _plannable(partner, now):
            continue
        for planned in plan_for_partner(couple, practice, partner, now, now + HORIZON):
            created += await enqueue(
                uow,
                partner,
                kind=planned.kind,
                key=planned.prompt_key,
                dedupe_key=plan_key(planned),
                due_at=planned.due_at_utc,
                not_after=planned.not_after_utc,
                local_date=planned.local_date.isoformat(),
                couple_id=couple.id,
                params={"rule": planned.rule_id},
            )
    return created


async def substitute_pending_for_hold(uow: UnitOfWork, couple: Couple) -> int:
    """A hold just opened: swap already-queued conflict exercises, the same for both partners."""
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    library = parse_practice_config(practice.config_toml).library
    rows = await uow.session.scalars(
        select(Delivery).where(
            Delivery.couple_id == couple.id,
            Delivery.status == "pending",
            Delivery.kind.in_(("skill", "skill_followup", "hope", "couple_space")),
        )
    )
    changed = 0
    for row in rows:
        if row.key not in library:
            continue
        replacement = substitute_for_hold(row.key, library, f"{couple.id}:{row.local_date}")
        if replacement != row.key:
            row.key = replacement
            changed += 1
    return changed


class Planner:
    """Plans every active couple; safe to run often and from several workers."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.runs = 0

    async def run(self) -> PlannerStats:
        """One planning pass over all active couples."""
        now = self.clock.now()
        stats = PlannerStats()
        async with self.db.uow() as uow:
            couple_ids = [c.id for c in await uow.couples.active()]
        for couple_id in couple_ids:
            async with self.db.uow() as uow:
                couple = await uow.couples.get(couple_id)
                if couple is None:
                    continue
                practice = await uow.practices.get(couple.practice_id)
                assert practice is not None
                stats.created += await plan_couple(uow, couple, practice, now)
                await uow.commit()
            stats.couples += 1
        self.runs += 1
        PLANNER_RUNS.inc()
        log.info("planner run", extra={"couples": stats.couples, "rows_created": stats.created})
        return stats
