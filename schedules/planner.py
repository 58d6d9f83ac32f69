"""The planner: turns each active couple's schedule into outbox rows for the next 48 hours.

For every active couple whose space is open and whose schedule is not paused, each
active, unpaused partner gets the same template planned in their own time zone and
window (``schedules.planning`` does the calendar maths). Rows are unique per
(partner, rule, local date), so running the planner again creates nothing new.
Under a safety hold, conflict-communication exercises are replaced at the same time by
other prompts of the same kind, identically for both partners: the cadence stays.

Promises the planner keeps, whatever was edited in between:

* **Couple-space prompts come in pairs**: the same prompt key on the same local date for
  both partners, each in their own window. A half is queued only when the other half is
  queued in the same pass or already exists, and halves are cancelled together
  (:func:`drop_pending`), so no partner answers a question the other never got.
* **A follow-up only follows a skill that was queued or sent** to that partner.
* **Messages outside the plan** (reveals, notices, reminders) are placed in the partner's
  window outside quiet hours on a day with room (:func:`place_in_window`), and they take
  their share of ``max_per_day`` first; the cap is reduced by the same number for both
  partners, so both keep the same count.
* **Settings re-plan at once** (:func:`replan_partner`): a change of window, time zone,
  language or a pause moves that partner's pending rows.
* **One broken practice or couple never stops the others**: the pass isolates each,
  counts the failure in ``/metrics``, reports itself degraded in ``/healthz`` and tells
  the practice's admin therapists once.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.core.clock import Clock
from bot.metrics import PLANNER_COUPLE_FAILURES, PLANNER_PRACTICE_FAILURES, PLANNER_RUNS
from bot.services.outbox import enqueue, notify, recipient_key
from bot.services.practice_config import PracticeConfig, parse_practice_config
from db.engine import Database
from db.models import Couple, Delivery, Partner, Practice
from db.repositories import insert_new
from db.uow import UnitOfWork
from schedules.check import default_schedules
from schedules.planning import (
    DayCache,
    PartnerTiming,
    PlannedDelivery,
    next_allowed,
    plan_deliveries,
    substitute_for_hold,
)

log = logging.getLogger(__name__)

HORIZON = timedelta(hours=48)
PROMPT_KINDS = ("checkin", "hope", "skill", "skill_followup", "couple_space")
LIVE = ("pending", "claimed", "sent")
"""Statuses of a row that was or will be sent."""
PLAN_PREFIX = "plan:"
_LiveRow = Any
"""A row of :func:`_live_rows` (partner_id, kind, key, local_date, dedupe_key, id, ...)."""
BATCH_COUPLES = 250
"""Couples planned together: read in a few queries, written in one transaction."""


@dataclass
class PlannerStats:
    """What one planner run did."""

    couples: int = 0
    planned: int = 0
    created: int = 0
    failed_couples: int = 0
    failed_practices: int = 0


def _plannable(partner: Partner, now: datetime) -> bool:
    return (
        partner.active
        and partner.reachable
        and partner.timezone is not None
        and (partner.paused_until is None or partner.paused_until <= now)
    )


def _couple_open(couple: Couple) -> bool:
    return (
        couple.status == "active"
        and not couple.schedule_paused
        and couple.space_ready_at is not None
    )


def timing_of(partner: Partner) -> PartnerTiming:
    """Where the partner's clock is and which window they chose."""
    assert partner.timezone is not None
    return PartnerTiming(partner.timezone, partner.window or "evening")


def plan_for_partner(
    couple: Couple,
    config: PracticeConfig,
    partner: Partner,
    start: datetime,
    end: datetime,
    *,
    reserved: dict[date, int] | None = None,
    days: DayCache | None = None,
) -> list[PlannedDelivery]:
    """What the couple's template holds for one partner in ``[start, end)`` (pure plan)."""
    schedules = config.schedules
    name = couple.schedule_template
    template = schedules.template(name if name in schedules.schedules else None)
    return plan_deliveries(
        template,
        schedules.delivery,
        config.library,
        timing_of(partner),
        start,
        end,
        couple_seed=str(couple.id),
        safety_hold=couple.safety_hold,
        reserved=reserved,
        days=days,
    )


def plan_key(planned: PlannedDelivery) -> str:
    """One row per rule per local date: a hold may swap the prompt, never add a second row.

    A follow-up also names how many days after its skill it comes: one rule's skills with
    different delays (a practice's own 3-day skill beside the 2-day ones) can bring two
    follow-ups to one day, and each needs its own row.
    """
    day = planned.local_date.isoformat()
    if planned.followup_origin is not None:
        delay = (planned.local_date - planned.followup_origin).days
        return f"{PLAN_PREFIX}{planned.rule_id}+{delay}d:{day}"
    return f"{PLAN_PREFIX}{planned.rule_id}:{day}"


@dataclass(frozen=True)
class _Queued:
    """What a partner already has in the outbox, as far as pairing and capping need it."""

    spaces: frozenset[tuple[str, str]]  # couple-space (key, local date), live
    skills: frozenset[tuple[str, str]]  # skill (key, local date), live
    outside_plan: dict[str, int]  # local date -> live rows not from the plan


async def _live_rows(uow: UnitOfWork, partner_ids: list[int], since: str) -> list[_LiveRow]:
    """The partners' rows that were or will be sent, on local dates from ``since``."""
    found: list[_LiveRow] = []
    for begin in range(0, len(partner_ids), 2 * BATCH_COUPLES):
        some = partner_ids[begin : begin + 2 * BATCH_COUPLES]
        rows = await uow.session.execute(
            select(
                Delivery.partner_id,
                Delivery.kind,
                Delivery.key,
                Delivery.local_date,
                Delivery.dedupe_key,
                Delivery.id,
                Delivery.status,
                Delivery.due_at,
            ).where(
                Delivery.partner_id.in_(some),
                Delivery.status.in_(LIVE),
                Delivery.local_date >= since,
            )
        )
        found.extend(rows.all())
    return found


async def _queued(uow: UnitOfWork, partner_ids: list[int], since: str) -> dict[int, _Queued]:
    return _queued_from(await _live_rows(uow, partner_ids, since), partner_ids)


def _queued_from(rows: Iterable[_LiveRow], partner_ids: Iterable[int]) -> dict[int, _Queued]:
    spaces: dict[int, set[tuple[str, str]]] = defaultdict(set)
    skills: dict[int, set[tuple[str, str]]] = defaultdict(set)
    outside: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for partner_id, kind, key, local_date, dedupe_key, *_ in rows:
        assert partner_id is not None and local_date is not None
        if kind == "couple_space":
            spaces[partner_id].add((key, local_date))
        elif kind == "skill":
            skills[partner_id].add((key, local_date))
        if not dedupe_key.startswith(PLAN_PREFIX):
            outside[partner_id][local_date] += 1
    return {
        pid: _Queued(frozenset(spaces[pid]), frozenset(skills[pid]), dict(outside[pid]))
        for pid in partner_ids
    }


async def couple_plan(
    uow: UnitOfWork,
    couple: Couple,
    config: PracticeConfig,
    partners: list[Partner],
    start: datetime,
    end: datetime,
    *,
    assume_open: bool = False,
) -> dict[int, list[PlannedDelivery]]:
    """What each plannable partner gets in ``[start, end)``, with the couple's promises kept.

    The one function both the planner and ``dyad schedules preview`` use, so a preview
    cannot differ from what is queued. Couple-space halves whose other half is neither
    planned here nor queued are left out, as are follow-ups of skills never queued.
    ``assume_open``: plan as if the couple space were open and the schedule on (a preview).
    """
    if not assume_open and not _couple_open(couple):
        return {}
    if not any(_plannable(p, start) for p in partners):
        return {}
    queued = await _queued(uow, [p.id for p in partners], _since(start))
    return _pair_up(couple, config, partners, queued, start, end)


def _since(start: datetime) -> str:
    """The first local date whose queued rows count (follow-ups look back a week)."""
    return (start - timedelta(days=8)).date().isoformat()


def _pair_up(
    couple: Couple,
    config: PracticeConfig,
    partners: list[Partner],
    queued: dict[int, _Queued],
    start: datetime,
    end: datetime,
    days: DayCache | None = None,
) -> dict[int, list[PlannedDelivery]]:
    """:func:`couple_plan` once what is queued is known: plans, with the promises kept."""
    ready = [p for p in partners if _plannable(p, start)]
    if not ready:
        return {}
    # Messages outside the plan take their share of the day first, alike for both partners.
    reserved: dict[date, int] = defaultdict(int)
    for each in (queued[p.id] for p in ready):
        for day, count in each.outside_plan.items():
            key = date.fromisoformat(day)
            reserved[key] = max(reserved[key], count)
    plans = {
        p.id: plan_for_partner(couple, config, p, start, end, reserved=dict(reserved), days=days)
        for p in ready
    }
    out: dict[int, list[PlannedDelivery]] = {}
    for partner in ready:
        others = [o for o in partners if o.id != partner.id]
        own_skills = queued[partner.id].skills | {
            (p.prompt_key, p.local_date.isoformat()) for p in plans[partner.id] if p.kind == "skill"
        }
        kept: list[PlannedDelivery] = []
        for planned in plans[partner.id]:
            if planned.kind == "skill_followup":
                origin = planned.followup_origin
                if origin is None or (planned.followup_of, origin.isoformat()) not in own_skills:
                    continue  # its skill was never queued for this partner
            if planned.kind == "couple_space":
                half = (planned.prompt_key, planned.local_date.isoformat())
                if not others or not all(
                    half in queued[o.id].spaces
                    or any(
                        (q.prompt_key, q.local_date.isoformat()) == half
                        for q in plans.get(o.id, ())
                        if q.kind == "couple_space"
                    )
                    for o in others
                ):
                    continue  # the other half does not exist: neither is queued
            kept.append(planned)
        out[partner.id] = kept
    return out


async def plan_couple(
    uow: UnitOfWork, couple: Couple, config: PracticeConfig | Practice, now: datetime
) -> int:
    """Queue the next 48 hours for both partners of one couple; returns rows created."""
    if isinstance(config, Practice):
        config = parse_practice_config(config.config_toml)
    partners = await uow.partners.of_couple(couple.id)
    by_id = {p.id: p for p in partners}
    created = 0
    plans = await couple_plan(uow, couple, config, partners, now, now + HORIZON)
    await _drop_stale(uow, plans, now, now + HORIZON)
    for partner_id, planned_rows in plans.items():
        for planned in planned_rows:
            params: dict[str, object] = {"rule": planned.rule_id}
            if planned.followup_of is not None:
                params["skill"] = planned.followup_of
            created += await enqueue(
                uow,
                by_id[partner_id],
                kind=planned.kind,
                key=planned.prompt_key,
                dedupe_key=plan_key(planned),
                due_at=planned.due_at_utc,
                not_after=planned.not_after_utc,
                local_date=planned.local_date.isoformat(),
                couple_id=couple.id,
                params=params,
            )
    return created


async def _drop_stale(
    uow: UnitOfWork, plans: dict[int, list[PlannedDelivery]], start: datetime, end: datetime
) -> None:
    """Pending planned rows the plan no longer holds go (a day's cap shrank because a reveal
    or reminder took a place, a setting changed): what is queued is what the plan says, for
    both partners alike. A couple-space half whose other half was sent stays, to complete."""
    for partner_id, planned_rows in plans.items():
        rows = await uow.session.scalars(
            select(Delivery).where(
                Delivery.partner_id == partner_id,
                Delivery.status == "pending",
                Delivery.kind.in_(PROMPT_KINDS),
                Delivery.dedupe_key.startswith(PLAN_PREFIX),
                Delivery.due_at >= start,
                Delivery.due_at < end,
            )
        )
        stale = await _stale(uow, planned_rows, list(rows))
        if stale:
            await uow.deliveries.delete_ids(stale)


async def _stale(
    uow: UnitOfWork, planned_rows: list[PlannedDelivery], pending: Sequence[Delivery | _LiveRow]
) -> list[int]:
    """Of a partner's pending planned rows in the horizon, those the plan no longer holds."""
    wanted = {plan_key(p) for p in planned_rows}
    stale = []
    for row in pending:
        if row.dedupe_key in wanted:
            continue
        if row.kind == "couple_space":
            other = await _other_half(uow, row)
            if other is not None and other.status != "pending":
                continue
        stale.append(row.id)
    return stale


# --- cancelling and re-planning ------------------------------------------------------------


async def _other_half(uow: UnitOfWork, row: Delivery | _LiveRow) -> Delivery | None:
    return await uow.session.scalar(
        select(Delivery)
        .where(
            Delivery.couple_id == row.couple_id,
            Delivery.partner_id != row.partner_id,
            Delivery.kind == "couple_space",
            Delivery.key == row.key,
            Delivery.local_date == row.local_date,
            Delivery.status.in_(LIVE),
        )
        .limit(1)
    )


async def drop_pending(
    uow: UnitOfWork,
    couple: Couple,
    *,
    partner: Partner | None = None,
    keep_started_pairs: bool = True,
) -> int:
    """Cancel planned rows not yet sent (one partner's, or the couple's); returns how many.

    A couple-space half goes together with its other half when that is still pending. With
    ``keep_started_pairs``, a half whose other half was already sent stays, so the pair
    completes (a template switch); without, it goes too (a pause, a leave, a close).
    """
    query = select(Delivery).where(
        Delivery.couple_id == couple.id,
        Delivery.status == "pending",
        Delivery.kind.in_(PROMPT_KINDS),
        Delivery.dedupe_key.startswith(PLAN_PREFIX),
    )
    if partner is not None:
        query = query.where(Delivery.partner_id == partner.id)
    doomed: dict[int, Delivery] = {}
    for row in await uow.session.scalars(query):
        if row.kind == "couple_space":
            other = await _other_half(uow, row)
            if other is not None and other.status != "pending":
                if keep_started_pairs:
                    continue
            elif other is not None:
                doomed[other.id] = other
        doomed[row.id] = row
    if doomed:
        await uow.deliveries.delete_ids(list(doomed))
    return len(doomed)


async def replan_partner(uow: UnitOfWork, partner: Partner, now: datetime) -> int:
    """A partner's settings changed (window, time zone, language, pause, resume): re-plan.

    Pending planned rows are planned again at once, the other partner's too (so both keep
    the same count per day, and couple-space pairs move together); a half whose other half
    was already sent stays and moves into the partner's new window, like their pending
    reveals and notices. A paused or departed partner's rows just go.
    Returns the rows created. The caller commits.
    """
    couple = await uow.couples.get(partner.couple_id)
    if couple is None or couple.status != "active":
        return 0
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    config = parse_practice_config(practice.config_toml)
    await uow.flush()
    plannable = _plannable(partner, now) and _couple_open(couple)
    await drop_pending(uow, couple, partner=partner, keep_started_pairs=plannable)
    if not plannable:
        return 0  # paused or gone: nothing of theirs stays queued, nothing new is planned
    # Both partners' pending rows are planned again in one go, so both keep the same count
    # per day (the cap shared with messages outside the plan is the same for both).
    await drop_pending(uow, couple)
    created = await plan_couple(uow, couple, config, now)
    await _move_into_window(uow, partner, config, now)
    return created


async def _move_into_window(
    uow: UnitOfWork, partner: Partner, config: PracticeConfig, now: datetime
) -> None:
    """The partner's pending rows outside the plan (and kept halves) move to their window."""
    rows = list(
        await uow.session.scalars(
            select(Delivery).where(
                Delivery.partner_id == partner.id,
                Delivery.status == "pending",
                Delivery.local_date.is_not(None),
                Delivery.kind != "digest",
            )
        )
    )
    delivery = config.schedules.delivery
    for row in rows:
        planned_here = row.dedupe_key.startswith(PLAN_PREFIX) and row.kind != "couple_space"
        if planned_here:
            continue  # just planned in the new settings
        placed = next_allowed(delivery, timing_of(partner), max(now, row.due_at))
        if placed is None:
            continue
        due, day, not_after = placed
        row.due_at = due
        row.local_date = day.isoformat()
        if row.not_after is not None:
            row.not_after = not_after


async def substitute_pending_for_hold(uow: UnitOfWork, couple: Couple) -> int:
    """A hold just opened: swap already-queued conflict exercises, the same for both partners.

    Part of raising a safety alert, so it never fails on the practice's file: one that
    cannot be used is read as the shipped library (logged and counted).
    """
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    try:
        library = parse_practice_config(practice.config_toml).library
    except Exception:
        PLANNER_PRACTICE_FAILURES.inc()
        log.exception(
            "a practice's configuration cannot be used: the hold swaps by the shipped library",
            extra={"practice_id": practice.id},
        )
        library = parse_practice_config(None).library
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


# --- messages outside the plan -------------------------------------------------------------


async def place_in_window(
    uow: UnitOfWork, partner: Partner, now: datetime
) -> tuple[datetime, str | None, datetime | None]:
    """When a message Dyad sends on its own initiative may reach a partner.

    The first minute from ``now`` in the partner's own window, outside quiet hours, on a
    local day that has not reached ``max_per_day``; returns (due, local date, not_after).
    A partner not yet through onboarding (no time zone) is reached at once. A practice
    whose file cannot be parsed gets the default delivery settings (logged and counted
    in ``/metrics`` like a planning failure).
    """
    if partner.timezone is None:
        return now, None, None
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    try:
        delivery = parse_practice_config(practice.config_toml).schedules.delivery
    except Exception:
        # A practice whose file cannot be used still reaches its partners, at the shipped
        # times: a notice (a close, a space opening) must not fail with the file.
        PLANNER_PRACTICE_FAILURES.inc()
        log.exception(
            "a practice's configuration cannot be used: placing at the default times",
            extra={"practice_id": practice.id},
        )
        delivery = default_schedules().delivery
    since = (now - timedelta(days=1)).date().isoformat()
    counts = (
        await uow.session.execute(
            select(Delivery.local_date, func.count())
            .where(
                Delivery.partner_id == partner.id,
                Delivery.status.in_(LIVE),
                Delivery.local_date >= since,
            )
            .group_by(Delivery.local_date)
        )
    ).all()
    full = [date.fromisoformat(d) for d, n in counts if d and n >= delivery.max_per_day]
    placed = next_allowed(delivery, timing_of(partner), now, full=full)
    if placed is None:
        return now, None, None
    due, day, _ = placed
    # No not_after: a reveal or notice waits for the next window rather than being lost.
    return due, day.isoformat(), None


async def notify_in_window(
    uow: UnitOfWork,
    partner: Partner,
    key: str,
    *,
    dedupe_key: str,
    now: datetime,
    couple_id: int | None,
    **params: object,
) -> bool:
    """Queue a notice for a partner, in their window and outside quiet hours."""
    due, local_date, _ = await place_in_window(uow, partner, now)
    return await enqueue(
        uow,
        partner,
        kind="notice",
        key=key,
        dedupe_key=dedupe_key,
        due_at=due,
        couple_id=couple_id,
        params=dict(params),
        local_date=local_date,
    )


# --- the pass ------------------------------------------------------------------------------


@dataclass
class PlannerHealth:
    """What the last pass could not plan: ``/healthz`` says degraded while any is left."""

    failed_practices: set[int] = field(default_factory=set)
    failed_couples: set[int] = field(default_factory=set)

    @property
    def state(self) -> str:
        """``ok``, or ``degraded`` when some practice or couple could not be planned."""
        return "degraded" if self.failed_practices or self.failed_couples else "ok"


def _fingerprint(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()[:12]


async def _tell_admins(
    uow: UnitOfWork, practice: Practice, key: str, dedupe: str, now: datetime, **params: object
) -> None:
    for therapist in await uow.therapists.of_practice(practice.id):
        if therapist.is_admin and therapist.chat_id is not None:
            await notify(
                uow,
                therapist,
                key,
                dedupe_key=dedupe,
                now=now,
                couple_id=None,
                practice=practice.name,
                **params,
            )


def _planned_row(partner: Partner, couple_id: int, planned: PlannedDelivery) -> dict[str, object]:
    """The outbox row of one planned message, as :func:`enqueue` would write it."""
    params: dict[str, object] = {"rule": planned.rule_id}
    if planned.followup_of is not None:
        params["skill"] = planned.followup_of
    return {
        "recipient": recipient_key(partner),
        "couple_id": couple_id,
        "partner_id": partner.id,
        "therapist_id": None,
        "channel": "telegram",
        "kind": planned.kind,
        "key": planned.prompt_key,
        "params": params,
        "dedupe_key": plan_key(planned),
        "local_date": planned.local_date.isoformat(),
        "due_at": planned.due_at_utc,
        "not_after": planned.not_after_utc,
        "status": "pending",
        "attempts": 0,
        "created_at": planned.due_at_utc,
    }


@dataclass
class _BatchResult:
    planned: int = 0
    created: int = 0
    failed: list[tuple[int, Exception]] = field(default_factory=list)


class Planner:
    """Plans every active couple; safe to run often and from several workers.

    Couples are planned in batches: read in a few queries, their new rows written with
    one ``INSERT … ON CONFLICT DO NOTHING`` per batch, in one transaction. The days it
    planned are kept (:class:`DayCache`), so a repeat pass plans only the days that came
    into the horizon since, and writes only what changed. A couple whose plan fails is
    left out of its batch; a batch whose write fails is planned again couple by couple.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.runs = 0
        self.health = PlannerHealth()
        self.days = DayCache()
        self._parsed: dict[str, PracticeConfig] = {}

    async def run(self) -> PlannerStats:
        """One pass over all active couples; a failure stays with its practice or couple."""
        now = self.clock.now()
        stats = PlannerStats()
        health = PlannerHealth()
        async with self.db.uow() as uow:
            couples = (
                await uow.session.execute(
                    select(Couple.id, Couple.practice_id)
                    .where(Couple.status == "active")
                    .order_by(Couple.id)
                )
            ).all()
            practices = {p.id: p for p in await uow.practices.all()}
        configs: dict[int, PracticeConfig | None] = {}
        for practice_id in {pid for _, pid in couples}:
            configs[practice_id] = await self._config(practices.get(practice_id), now, health)
        self.days.forget_before((now - timedelta(days=2)).date())
        plannable = [(cid, pid) for cid, pid in couples if configs.get(pid) is not None]
        for begin in range(0, len(plannable), BATCH_COUPLES):
            batch = plannable[begin : begin + BATCH_COUPLES]
            try:
                result = await self._plan_batch(batch, configs, now)
            except Exception:
                log.warning("a planning batch failed; its couples are planned one by one")
                result = await self._plan_each(batch, configs, now)
            stats.couples += result.planned
            stats.created += result.created
            practice_of = dict(batch)
            for couple_id, error in result.failed:
                stats.failed_couples += 1
                health.failed_couples.add(couple_id)
                PLANNER_COUPLE_FAILURES.inc()
                await self._tell_couple_failure(
                    practices.get(practice_of[couple_id]), couple_id, error, now
                )
        stats.failed_practices = len(health.failed_practices)
        self.health = health
        self.runs += 1
        PLANNER_RUNS.inc()
        log.info(
            "planner run",
            extra={
                "couples": stats.couples,
                "rows_created": stats.created,
                "failed_couples": stats.failed_couples,
                "failed_practices": stats.failed_practices,
            },
        )
        return stats

    async def _plan_batch(
        self,
        batch: list[tuple[int, int]],
        configs: dict[int, PracticeConfig | None],
        now: datetime,
    ) -> _BatchResult:
        """Plan some couples together: a few reads, one delete and batched inserts, one commit."""
        start, end = now, now + HORIZON
        result = _BatchResult()
        ids = [couple_id for couple_id, _ in batch]
        rows: list[dict[str, object]] = []
        stale: list[int] = []
        async with self.db.uow() as uow:
            couples = {
                c.id: c for c in await uow.session.scalars(select(Couple).where(Couple.id.in_(ids)))
            }
            partners = await uow.partners.of_couples(ids)
            pids = [p.id for members in partners.values() for p in members]
            live = await _live_rows(uow, pids, _since(start))
            by_partner: dict[int, list[_LiveRow]] = defaultdict(list)
            for row in live:
                by_partner[row.partner_id].append(row)
            for couple_id, practice_id in batch:
                couple, config = couples.get(couple_id), configs[practice_id]
                if couple is None or config is None:
                    continue
                try:
                    found = await self._plan_one(
                        uow, couple, config, partners[couple_id], by_partner, start, end
                    )
                except Exception as error:
                    log.exception("planning a couple failed", extra={"couple_id": couple_id})
                    result.failed.append((couple_id, error))
                    continue
                rows.extend(found[0])
                stale.extend(found[1])
                result.planned += 1
            for begin in range(0, len(stale), 2 * BATCH_COUPLES):
                doomed = stale[begin : begin + 2 * BATCH_COUPLES]
                await uow.deliveries.delete_ids(doomed)
            result.created = len(await insert_new(uow.session, Delivery, rows))
            await uow.commit()
        return result

    async def _plan_one(
        self,
        uow: UnitOfWork,
        couple: Couple,
        config: PracticeConfig,
        partners: list[Partner],
        live: dict[int, list[_LiveRow]],
        start: datetime,
        end: datetime,
    ) -> tuple[list[dict[str, object]], list[int]]:
        """One couple of a batch: the rows to insert and the ids of stale rows to delete."""
        if not _couple_open(couple) or not any(_plannable(p, start) for p in partners):
            return [], []
        queued = _queued_from(
            (r for p in partners for r in live.get(p.id, ())), [p.id for p in partners]
        )
        plans = _pair_up(couple, config, partners, queued, start, end, self.days)
        by_id = {p.id: p for p in partners}
        rows: list[dict[str, object]] = []
        stale: list[int] = []
        for partner_id, planned_rows in plans.items():
            mine = live.get(partner_id, ())
            pending = [
                r
                for r in mine
                if r.status == "pending"
                and r.kind in PROMPT_KINDS
                and r.dedupe_key.startswith(PLAN_PREFIX)
                and start <= r.due_at < end
            ]
            stale.extend(await _stale(uow, planned_rows, pending))
            existing = {r.dedupe_key for r in mine}
            rows.extend(
                _planned_row(by_id[partner_id], couple.id, planned)
                for planned in planned_rows
                if plan_key(planned) not in existing
            )
        return rows, stale

    async def _plan_each(
        self,
        batch: list[tuple[int, int]],
        configs: dict[int, PracticeConfig | None],
        now: datetime,
    ) -> _BatchResult:
        """The couples of a failed batch, each in its own transaction (the failure isolated)."""
        result = _BatchResult()
        for couple_id, practice_id in batch:
            config = configs[practice_id]
            if config is None:
                continue
            try:
                async with self.db.uow() as uow:
                    couple = await uow.couples.get(couple_id)
                    if couple is None:
                        continue
                    result.created += await plan_couple(uow, couple, config, now)
                    await uow.commit()
                result.planned += 1
            except Exception as error:
                log.exception("planning a couple failed", extra={"couple_id": couple_id})
                result.failed.append((couple_id, error))
        return result

    def _parse(self, text: str | None) -> PracticeConfig:
        """A practice's configuration, parsed once per text (the day cache keys on it)."""
        key = text or ""
        if key not in self._parsed:
            if len(self._parsed) > 256:
                self._parsed.clear()
                self.days.clear()
            self._parsed[key] = parse_practice_config(text)
        return self._parsed[key]

    async def _config(
        self, practice: Practice | None, now: datetime, health: PlannerHealth
    ) -> PracticeConfig | None:
        """The practice's configuration, or None (counted, admins told once) if unusable."""
        if practice is None:
            return None
        try:
            config = self._parse(practice.config_toml)
            # The default template must exist: couples without one of their own follow it.
            config.schedules.template()
            return config
        except Exception as error:
            health.failed_practices.add(practice.id)
            PLANNER_PRACTICE_FAILURES.inc()
            log.exception(
                "a practice's configuration cannot be planned", extra={"practice_id": practice.id}
            )
            try:
                async with self.db.uow() as uow:
                    await _tell_admins(
                        uow,
                        practice,
                        "schedule.config_broken",
                        f"config_broken:{practice.id}:{_fingerprint(practice.config_toml)}",
                        now,
                        error=_short(error),
                    )
                    await uow.commit()
            except Exception:
                log.exception("telling a practice's admins failed")
            return None

    async def _tell_couple_failure(
        self, practice: Practice | None, couple_id: int, error: Exception, now: datetime
    ) -> None:
        if practice is None:
            return
        try:
            async with self.db.uow() as uow:
                couple = await uow.couples.get(couple_id)
                handle = couple.handle if couple is not None else str(couple_id)
                await _tell_admins(
                    uow,
                    practice,
                    "schedule.couple_failed",
                    f"couple_failed:{couple_id}:{type(error).__name__}",
                    now,
                    handle=handle,
                    error=type(error).__name__,
                )
                await uow.commit()
        except Exception:
            log.exception("telling a practice's admins failed")


def _short(error: Exception) -> str:
    """The first line of an error, short enough for a chat message (no partner data in it)."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return html.escape(first[:300], quote=False)
