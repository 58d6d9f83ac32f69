"""The planner's batched pass plans exactly what planning couple by couple plans.

Couples are read in bulk and their rows written in one batch, and the days already
planned are kept between passes: none of that may change a single row. A repeat pass
plans no day again and writes nothing; a batch whose write fails is planned again
couple by couple.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from bot.core.clock import ManualClock
from bot.services.outbox import enqueue
from db.engine import Database
from db.models import Couple, Delivery, Partner, Practice
from schedules import planner as planner_module
from schedules.planner import Planner, plan_couple
from tests.integration.schedule_world import practice_with_couple

MONDAY = datetime(2026, 10, 19, 10, 0, tzinfo=UTC)
LATER = MONDAY + timedelta(minutes=5)

Plan = Callable[[datetime], Awaitable[int]]


async def _couples(db: Database) -> list[int]:
    practices = [("North", 100, "Europe/Madrid"), ("South", 300, "Asia/Tokyo")]
    ids = []
    for name, chat_base, zone in practices:
        _, couple_id, _ = await practice_with_couple(
            db,
            MONDAY,
            name=name,
            chat_base=chat_base,
            partners=(("America/New_York", "evening", "en"), (zone, "morning", "es")),
        )
        ids.append(couple_id)
    async with db.uow() as uow:
        couple = await uow.couples.get(ids[1])
        assert couple is not None
        couple.safety_hold = True  # conflict exercises swapped, alike for both partners
        await uow.commit()
    return ids


async def _rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.uow() as uow:
        rows = await uow.session.execute(
            select(
                Delivery.recipient,
                Delivery.dedupe_key,
                Delivery.kind,
                Delivery.key,
                Delivery.due_at,
                Delivery.not_after,
                Delivery.local_date,
                Delivery.status,
                Delivery.params,
            )
        )
        return sorted((tuple(str(v) for v in row) for row in rows), key=str)


async def _scenario(db: Database, plan: Plan) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Plan, fill a partner's first planned day with notices, plan again five minutes on."""
    async with db.uow() as uow:
        await uow.session.execute(delete(Delivery))
        await uow.commit()
    created = [await plan(MONDAY)]
    async with db.uow() as uow:
        partner = await uow.session.scalar(select(Partner).order_by(Partner.id).limit(1))
        assert partner is not None
        day = await uow.session.scalar(
            select(Delivery.local_date)
            .where(Delivery.partner_id == partner.id)
            .order_by(Delivery.local_date)
            .limit(1)
        )
        assert day is not None
        for number in range(3):  # max_per_day: the plan must give that day up, for both
            await enqueue(
                uow,
                partner,
                kind="notice",
                key="schedule.paused",
                dedupe_key=f"notice:{number}",
                due_at=MONDAY,
                couple_id=partner.couple_id,
                local_date=day,
            )
        await uow.commit()
    before = len(await _rows(db))
    created.append(await plan(LATER))
    after = await _rows(db)
    assert len(after) < before, "the filled day's planned rows went"
    return after, created


async def test_a_batched_pass_plans_what_couple_by_couple_planning_plans(db: Database) -> None:
    await _couples(db)
    clock = ManualClock(MONDAY)
    planner = Planner(db, clock)

    async def batched(now: datetime) -> int:
        clock.set(now)
        return (await planner.run()).created

    async def one_by_one(now: datetime) -> int:
        created = 0
        async with db.uow() as uow:
            couples = [c.id for c in await uow.couples.active()]
        for couple_id in couples:
            async with db.uow() as uow:
                couple = await uow.session.get(Couple, couple_id)
                assert couple is not None
                practice = await uow.session.get(Practice, couple.practice_id)
                assert practice is not None
                created += await plan_couple(uow, couple, practice, now)
                await uow.commit()
        return created

    batched_rows, batched_created = await _scenario(db, batched)
    single_rows, single_created = await _scenario(db, one_by_one)
    assert batched_rows == single_rows
    assert batched_created == single_created
    assert batched_created[0] > 0
    planned = [row for row in batched_rows if row[1].startswith("plan:")]
    assert planned, "the couples have planned rows"


async def test_a_repeat_pass_plans_no_day_again_and_writes_nothing(db: Database) -> None:
    await _couples(db)
    clock = ManualClock(MONDAY)
    planner = Planner(db, clock)
    first = await planner.run()
    rows = await _rows(db)
    misses = planner.days.misses
    clock.set(LATER)
    again = await planner.run()
    assert first.created > 0 and first.couples == 2
    assert (again.created, again.couples, again.failed_couples) == (0, 2, 0)
    assert planner.days.misses == misses, "every day came from the day cache"
    assert planner.days.hits > 0
    assert await _rows(db) == rows
    # A fresh planner (a restart) plans the same days from scratch and finds them queued.
    assert (await Planner(db, clock).run()).created == 0
    assert await _rows(db) == rows


async def test_a_batch_that_cannot_be_written_is_planned_couple_by_couple(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _couples(sqlite_db)

    async def refuse(*_: object) -> list[int]:
        raise RuntimeError("the batch insert failed")

    monkeypatch.setattr(planner_module, "insert_new", refuse)
    stats = await Planner(sqlite_db, ManualClock(MONDAY)).run()
    assert (stats.couples, stats.failed_couples) == (2, 0)
    assert stats.created == len(await _rows(sqlite_db)) > 0
