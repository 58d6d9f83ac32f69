"""`dyad schedules preview`: whole keys and first words, one row per local date, and the
same deliveries the planner queues (it is built from the planner's own code)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.core.clock import ManualClock
from bot.services.schedule_preview import first_words, preview_lines
from db.engine import Database
from db.models import Delivery, Partner
from schedules.check import default_schedules
from tests.integration.schedule_world import practice_with_couple, world

MONDAY = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)


async def test_the_preview_shows_what_the_planner_queues_by_local_date(
    sqlite_db: Database,
) -> None:
    clock = ManualClock(MONDAY)
    w = world(sqlite_db, clock)
    await practice_with_couple(sqlite_db, MONDAY)
    async with sqlite_db.uow() as uow:
        lines = await preview_lines(uow, "c1", None, MONDAY, 2)
    await w.planner.run()  # 48 hours, like the two days previewed
    async with sqlite_db.uow() as uow:
        partners = {p.id: p for p in await uow.session.scalars(select(Partner))}
        rows = list(await uow.session.scalars(select(Delivery).filter_by(status="pending")))
    assert lines[0].startswith("date") and "A: America/New_York (evening)" in lines[0]
    slots = [partners[r.partner_id or 0].slot for r in rows]
    assert lines[-1] == f"2 days: A {slots.count('A')}, B {slots.count('B')} deliveries"
    library = default_schedules().library()
    body = lines[2:-1]
    for row in rows:
        partner = partners[row.partner_id or 0]
        local = row.due_at.astimezone(ZoneInfo(partner.timezone or "UTC"))
        cell = f"{local:%H:%M} {row.kind:<14} {row.key}"
        # The row's cell sits in the block of its local date (its label, then blank labels).
        start = next(i for i, line in enumerate(body) if line.startswith(f"{local:%a %Y-%m-%d}"))
        end = next((i for i in range(start + 1, len(body)) if body[i][:1].strip()), len(body))
        block = body[start:end]
        assert any(cell in line for line in block), (cell, block)
        if row.kind != "checkin":
            words = first_words(library.text(row.key, partner.language, name="Partner A"))
            assert any(row.key in line for line in body)
            assert words.split()[0] in "\n".join(body)


def test_first_words_keep_the_opening_of_a_prompt() -> None:
    assert first_words("What small thing went well between you today, Alex?") == (
        "What small thing went well between…"
    )
    assert first_words("Short one") == "Short one"
