"""Notices Dyad sends on its own initiative keep the partner's window, quiet hours and daily
maximum, on both databases, whatever the practice's file says; a reply to a partner's own
action does not wait.

Each test drives the real services, planner and dispatcher in-process (sends go to a
recording Messenger) and looks at what each partner received, and when.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core.clock import ManualClock
from bot.locales import t
from bot.metrics import METRICS
from bot.services import couples, groups, onboarding
from db.engine import Database
from db.models import Delivery, GroupLink, Therapist
from db.uow import UnitOfWork
from tests.integration.schedule_world import World, practice_with_couple, world

MADRID = ZoneInfo("Europe/Madrid")
TUESDAY_LATE = datetime(2026, 10, 20, 21, 0, tzinfo=UTC)  # 23:00 in Madrid: quiet hours
WEDNESDAY_EVENING = datetime(2026, 10, 21, 16, 0, tzinfo=UTC)  # 18:00 in Madrid
BROKEN_TOML = "[delivery\nquiet_hours = "  # stored before any check: cannot be parsed
# A in her evening window, B in his morning one, both in Madrid.
PARTNERS = (("Europe/Madrid", "evening", "en"), ("Europe/Madrid", "morning", "es"))

Trigger = Callable[[UnitOfWork, int, datetime], Awaitable[None]]


async def _close(uow: UnitOfWork, couple_id: int, now: datetime) -> None:
    couple = await uow.couples.get(couple_id)
    therapist = await uow.session.scalar(select(Therapist))
    assert couple is not None and therapist is not None
    await couples.close_couple(uow, therapist, couple, now)


async def _second_partner_joins(uow: UnitOfWork, couple_id: int, now: datetime) -> None:
    b = (await uow.partners.of_couple(couple_id))[1]
    await onboarding.choose(uow, b, "discreet", "no", now)


async def _group_suspended(uow: UnitOfWork, couple_id: int, now: datetime) -> None:
    link = await uow.session.scalar(select(GroupLink).filter_by(couple_id=couple_id))
    assert link is not None
    assert await groups.suspend(uow, link.id, "outsider", now)
    await uow.commit()


async def _goal_set(uow: UnitOfWork, couple_id: int, now: datetime) -> None:
    couple = await uow.couples.get(couple_id)
    therapist = await uow.session.scalar(select(Therapist))
    assert couple is not None and therapist is not None
    await couples.set_goal(uow, therapist, couple, "Listen first", now)


TRIGGERS: dict[str, tuple[Trigger, str, dict[str, str]]] = {
    "close": (_close, "couple.closed", {}),
    "space_ready": (_second_partner_joins, "couple.space_ready", {}),
    "group_suspended": (_group_suspended, "group.suspended_outsider", {}),
    "goal": (_goal_set, "couple.goal_set", {"goal": "Listen first"}),
}


async def _couple(
    db: Database, now: datetime, *, config_toml: str | None = None, joining: bool = False
) -> tuple[int, list[int]]:
    """A couple with a linked group; with ``joining``, B is at the last onboarding step."""
    _, couple_id, ids = await practice_with_couple(
        db, now, partners=PARTNERS, config_toml=config_toml
    )
    async with db.uow() as uow:
        uow.session.add(
            GroupLink(
                couple_id=couple_id,
                chat_id=-900,
                status="active",
                linked_by=f"partner:{ids[0]}",
                created_at=now,
                active_since=now,
            )
        )
        if joining:
            couple = await uow.couples.get(couple_id)
            b = await uow.partners.get(ids[1])
            assert couple is not None and b is not None
            couple.space_ready_at = None
            b.onboarding_step, b.joined_at = "discreet", None
        await uow.commit()
    return couple_id, ids


async def _sent(db: Database, partner_id: int, key: str) -> list[Delivery]:
    async with db.uow() as uow:
        rows = await uow.session.scalars(
            select(Delivery).filter_by(partner_id=partner_id, key=key, status="sent")
        )
        return list(rows)


def _local(row: Delivery) -> tuple[str, int, int]:
    assert row.sent_at is not None
    local = row.sent_at.astimezone(MADRID)
    return local.date().isoformat(), local.hour, local.minute


def _practice_failures() -> float:
    value = METRICS.get_sample_value("dyad_planner_practice_failures_total")
    assert value is not None
    return value


def _chat(w: World, chat_id: int) -> list[str]:
    return w.messenger.sent.get(chat_id, [])


@pytest.mark.parametrize("config_toml", [None, BROKEN_TOML], ids=["default_file", "broken_file"])
@pytest.mark.parametrize("trigger", list(TRIGGERS))
async def test_a_notice_in_quiet_hours_reaches_each_partner_in_their_next_window(
    db: Database, trigger: str, config_toml: str | None
) -> None:
    """Closing, the space opening, a group suspended, a goal: at 23:00 nobody is woken;
    each partner hears the next morning or evening, as they chose. A practice whose file
    cannot be parsed still reaches its partners, at the shipped default times."""
    clock = ManualClock(TUESDAY_LATE)
    w = world(db, clock)
    action, key, params = TRIGGERS[trigger]
    couple_id, (a, b) = await _couple(
        db, TUESDAY_LATE, config_toml=config_toml, joining=trigger == "space_ready"
    )
    failures = _practice_failures()
    async with db.uow() as uow:
        await action(uow, couple_id, TUESDAY_LATE)
    if config_toml is not None:
        assert _practice_failures() > failures, "an unusable file is counted"
    await w.dispatcher.run_until_idle()
    assert _chat(w, 100) == _chat(w, 101) == [], "nothing during quiet hours"
    await w.tick(WEDNESDAY_EVENING)
    for partner_id, chat, language, hour in ((a, 100, "en", 17), (b, 101, "es", 8)):
        (row,) = await _sent(db, partner_id, key)
        assert _local(row) == ("2026-10-21", hour, 0), "the start of their own window"
        assert _chat(w, chat).count(t(language, key, **params)) == 1


async def test_the_partner_who_acted_is_answered_at_once_the_other_in_their_window(
    db: Database,
) -> None:
    """``/unlinkgroup`` at 23:00: its answer is a reply; for the other partner the same news
    is Dyad's initiative, and waits for his morning."""
    clock = ManualClock(TUESDAY_LATE)
    w = world(db, clock)
    couple_id, (a, b) = await _couple(db, TUESDAY_LATE)
    async with db.uow() as uow:
        couple = await uow.couples.get(couple_id)
        assert couple is not None
        await groups.unlink(uow, couple, f"partner:{a}", TUESDAY_LATE)
    await w.dispatcher.run_until_idle()
    assert _chat(w, 100) == [t("en", "group.unlinked")]
    assert _chat(w, 101) == []
    await w.tick(WEDNESDAY_EVENING)
    (row,) = await _sent(db, b, "group.unlinked")
    assert _local(row) == ("2026-10-21", 8, 0)
    assert _chat(w, 101).count(t("es", "group.unlinked")) == 1


async def test_a_notice_beyond_the_daily_maximum_waits_for_the_next_day(db: Database) -> None:
    """Three goal notices fill Tuesday (the shipped maximum is 3): the farewell comes on
    Wednesday, in each partner's window, never as a fourth message on Tuesday."""
    tuesday_morning = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)  # 10:00 in Madrid
    clock = ManualClock(tuesday_morning)
    w = world(db, clock)
    couple_id, (a, b) = await _couple(db, tuesday_morning)
    for minute in range(3):
        async with db.uow() as uow:
            await _goal_set(uow, couple_id, tuesday_morning + timedelta(minutes=minute))
    async with db.uow() as uow:
        await _close(uow, couple_id, tuesday_morning + timedelta(minutes=3))
    await w.tick(WEDNESDAY_EVENING)
    for partner_id, hour in ((a, 17), (b, 8)):
        goals = await _sent(db, partner_id, "couple.goal_set")
        assert {_local(row)[0] for row in goals} == {"2026-10-20"} and len(goals) == 3
        (farewell,) = await _sent(db, partner_id, "couple.closed")
        assert _local(farewell) == ("2026-10-21", hour, 0), "the next day, in their window"
    assert _chat(w, 101)[-1] == t("es", "couple.closed")
