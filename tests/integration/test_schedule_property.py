"""A property over random sequences of edits and simulated days: the schedule's promises
hold after every step.

Edits: template switches, settings changes (window, time zone, language), pauses and
resumes, leaving and a new person taking the seat, the couple's schedule paused and
resumed, sessions moved. After each step, with the real planner and dispatcher:

* every pending couple-space prompt has its other half (same key, same local date);
* nothing pending falls inside the partner's quiet hours, and no local day holds more
  than ``max_per_day`` messages for a partner;
* every follow-up follows a skill that partner was sent (or has queued before it);
* while both partners are in, both have the same number of planned prompts of each
  kind on every local day the planner has fully planned for both;
* every coming session's digest is due its lead time before the session.

In-process, on SQLite files copied from one migrated template, bounded examples.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.core.clock import ManualClock
from bot.services import couples, partners, sessions
from bot.services.practice_config import parse_practice_config
from db.engine import Database
from db.models import Couple, Delivery, Partner, Therapist, TherapySession
from schedules.planner import HORIZON, LIVE, PLAN_PREFIX
from tests.integration.schedule_world import World, practice_with_couple, world

PRACTICE_TOML = """\
[delivery]
quiet_hours = "21:30-07:30"
max_per_day = 2
default_template = "standard"

[schedules.standard]
[[schedules.standard.rules]]
id = "checkin"
kind = "checkin"
days = ["mon", "thu"]
jitter = 30
[[schedules.standard.rules]]
id = "hope"
kind = "hope"
days = "daily"
jitter = 90
[[schedules.standard.rules]]
id = "skill"
kind = "skill"
days = ["wed"]
rotation = "weekly"
[[schedules.standard.rules]]
id = "space"
kind = "couple_space"
days = ["wed", "sun"]
jitter = 60

[schedules.light]
[[schedules.light.rules]]
id = "checkin"
kind = "checkin"
days = ["mon"]
[[schedules.light.rules]]
id = "practice"
kind = "skill"
days = ["sat"]
tags = ["appreciation", "self_care"]
[[schedules.light.rules]]
id = "together"
kind = "couple_space"
days = ["sat", "sun"]
window = "afternoon"
"""

ZONES = ("America/New_York", "Europe/Madrid", "Europe/London", "Asia/Tokyo", "UTC")
START = datetime(2026, 10, 21, 9, 0, tzinfo=UTC)  # a Wednesday; clocks change on 25 Oct

slots = st.sampled_from(["A", "B"])
edits = st.one_of(
    st.tuples(st.just("template"), st.sampled_from(["standard", "light"])),
    st.tuples(st.just("window"), slots, st.sampled_from(["morning", "afternoon", "evening"])),
    st.tuples(st.just("tz"), slots, st.sampled_from(ZONES)),
    st.tuples(st.just("language"), slots, st.sampled_from(["en", "es"])),
    st.tuples(st.just("pause"), slots, st.integers(1, 3)),
    st.tuples(st.just("resume"), slots),
    st.tuples(st.just("leave_rejoin"), slots),
    st.tuples(st.just("couple_pause")),
    st.tuples(st.just("couple_resume")),
    st.tuples(st.just("move_session"), st.integers(1, 6), st.integers(8, 19)),
    st.tuples(st.just("days"), st.integers(1, 3)),  # half-days of planning and sending
)


async def _template_db(folder: Path) -> Path:
    path = folder / "template.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    await db.dispose()
    return path


async def _apply(w: World, couple_id: int, step: tuple[object, ...]) -> None:
    now = w.clock.now()
    kind = step[0]
    if kind == "days":
        assert isinstance(step[1], int)
        await w.tick(now + timedelta(hours=12 * step[1]))
        await w.planner.run()  # as `dyad run` would, a few minutes later
        return
    async with w.db.uow() as uow:
        couple = await uow.couples.get(couple_id)
        therapist = await uow.session.scalar(select(Therapist))
        assert couple is not None and therapist is not None
        by_slot: dict[str, Partner] = {p.slot: p for p in await uow.partners.of_couple(couple_id)}
        partner = by_slot.get(str(step[1])) if len(step) > 1 else None
        if kind == "template":
            await couples.schedule(uow, therapist, couple, str(step[1]), now)
        elif kind == "couple_pause":
            await couples.schedule(uow, therapist, couple, "pause", now)
        elif kind == "couple_resume":
            await couples.schedule(uow, therapist, couple, "resume", now)
        elif kind == "move_session":
            assert isinstance(step[1], int) and isinstance(step[2], int)
            local = now.astimezone(ZoneInfo(therapist.timezone)) + timedelta(days=step[1])
            args = ["move", f"{local:%Y-%m-%d}", f"{step[2]:02d}:15"]
            await sessions.command(uow, therapist, couple, args, now)
        elif partner is None or not partner.active:
            return
        elif kind == "window":
            await partners.change_setting(uow, partner, "window", str(step[2]), now)
        elif kind == "language":
            await partners.change_setting(uow, partner, "language", str(step[2]), now)
        elif kind == "tz":
            await partners.typed_timezone(uow, partner, str(step[2]), now)
        elif kind == "pause":
            await partners.pause(uow, partner, str(step[2]), now)
        elif kind == "resume":
            await partners.resume(uow, partner, now)
        elif kind == "leave_rejoin":
            await partners.leave(uow, partner, now)
            # A new person takes the seat (the end state of onboarding through a new invite).
            partner.telegram_user_id = partner.chat_id = 7000 + partner.id + int(now.timestamp())
            partner.onboarding_step, partner.left_at, partner.joined_at = "done", None, now
            partner.paused_until = partner.paused_since = None
            await uow.commit()
    await w.planner.run()


def _plannable(partner: Partner, now: datetime) -> bool:
    return partner.active and (partner.paused_until is None or partner.paused_until <= now)


async def _check(w: World, couple_id: int) -> None:
    now = w.clock.now()
    async with w.db.uow() as uow:
        couple = await uow.couples.get(couple_id)
        assert isinstance(couple, Couple)
        practice = await uow.practices.get(couple.practice_id)
        assert practice is not None
        both = await uow.partners.of_couple(couple_id)
        rows = list(
            await uow.session.scalars(
                select(Delivery).where(
                    Delivery.couple_id == couple_id,
                    Delivery.partner_id.is_not(None),
                    Delivery.status.in_(LIVE),
                )
            )
        )
        coming = list(
            await uow.session.scalars(
                select(TherapySession).where(
                    TherapySession.couple_id == couple_id,
                    TherapySession.cancelled_at.is_(None),
                    TherapySession.starts_at > now,
                )
            )
        )
    config = parse_practice_config(practice.config_toml)
    delivery = config.schedules.delivery
    quiet = delivery.quiet_hours
    assert quiet is not None
    zone = {p.id: ZoneInfo(p.timezone or "UTC") for p in both}
    pending = [r for r in rows if r.status == "pending"]

    halves = {(r.partner_id, r.key, r.local_date) for r in rows if r.kind == "couple_space"}
    for row in pending:
        if row.kind == "couple_space":
            others = [p.id for p in both if p.id != row.partner_id]
            assert all((o, row.key, row.local_date) in halves for o in others), (
                f"couple-space {row.key} on {row.local_date} has one half only"
            )
        local = row.due_at.astimezone(zone[row.partner_id or 0])
        assert not quiet.contains(local.hour * 60 + local.minute), (row.kind, local)

    per_day = Counter((r.partner_id, r.local_date) for r in rows if r.local_date)
    assert max(per_day.values(), default=0) <= delivery.max_per_day, per_day

    skills = [r for r in rows if r.kind == "skill"]
    for row in rows:
        if row.kind == "skill_followup" and "skill" in row.params:
            assert any(
                s.partner_id == row.partner_id
                and s.key == row.params["skill"]
                and s.due_at < row.due_at
                for s in skills
            ), f"follow-up {row.key} without its skill"

    open_ = couple.space_ready_at is not None and not couple.schedule_paused
    if open_ and all(_plannable(p, now) for p in both):
        days: list[set[date]] = []
        for p in both:
            first = now.astimezone(zone[p.id]).date() + timedelta(days=1)
            last = (now + HORIZON).astimezone(zone[p.id]).date() - timedelta(days=1)
            days.append({first + timedelta(days=n) for n in range((last - first).days + 1)})
        common = {d.isoformat() for d in set.intersection(*days)}
        counts = [
            Counter(
                (r.local_date, r.kind)
                for r in rows
                if r.partner_id == p.id
                and r.local_date in common
                and r.dedupe_key.startswith(PLAN_PREFIX)
                and r.kind != "skill_followup"  # follows each one's own skills, checked above
            )
            for p in both
        ]
        assert counts[0] == counts[1], f"unequal cadence on {sorted(common)}: {counts}"

    lead = timedelta(hours=config.digest.lead_hours)
    for session in coming:
        assert session.digest_due_at == session.starts_at - lead


async def _scenario(template: Path, steps: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "dyad.db"
        shutil.copy(template, path)
        db = Database(f"sqlite+aiosqlite:///{path}")
        clock = ManualClock(START)
        w = world(db, clock)
        _, couple_id, _ = await practice_with_couple(db, START, config_toml=PRACTICE_TOML)
        async with db.uow() as uow:
            couple = await uow.couples.get(couple_id)
            therapist = await uow.session.scalar(select(Therapist))
            assert couple is not None and therapist is not None
            await sessions.command(uow, therapist, couple, ["weekly", "fri", "18:00"], START)
        await w.planner.run()
        await _check(w, couple_id)
        try:
            for step in steps:
                await _apply(w, couple_id, step)
                await _check(w, couple_id)
        finally:
            await db.dispose()


_TEMPLATE: list[Path] = []


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example is a whole run
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(edits, min_size=1, max_size=7))
def test_every_edit_keeps_pairs_quiet_hours_caps_follow_ups_and_equal_cadence(
    steps: list[tuple[object, ...]],
) -> None:
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="dyad-property-"))
        _TEMPLATE.append(asyncio.run(_template_db(folder)))
    asyncio.run(_scenario(_TEMPLATE[0], steps))
