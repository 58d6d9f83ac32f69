"""Planning maths: which prompts a partner gets and when, from a schedule template.

Pure: values in, values out; no database, no clock, no randomness except the seed the
caller passes. The planner service calls :func:`plan_deliveries` for each partner over
the next 48 hours and stores the result in the outbox; running it again over an
overlapping interval gives the same rows, so re-planning is harmless.

How a day is planned, in the partner's own time zone:

1. APScheduler's ``CronTrigger`` (in the partner's zone) says on which local dates each
   rule fires. It fires at local noon, an hour no daylight-saving change uses, which
   keeps clear of APScheduler 3 skipping days around midnight transitions; the time
   within the day is then placed on the local wall clock and converted with zoneinfo.
2. Each firing is placed at the window's start plus an offset of up to ``jitter``
   minutes. The offset and the prompt come from a hash of the couple's seed, the rule
   and the local date, so both partners of a couple get the same offset and the same
   prompt on the same local date, and re-running gives the same answer.
3. A time in quiet hours, or one that does not exist that day (a clock jumping
   forward), moves to the next allowed minute of the window, else to the last allowed
   minute before it; with no allowed minute the firing is dropped.
4. Under a safety hold a prompt tagged ``conflict_communication`` is replaced by one
   that is not, of the same kind and at the same time (:func:`substitute_for_hold`).
5. A skill brings its follow-up ``followup_after`` days later, in the same window.
6. A day over ``max_per_day`` keeps its highest-priority messages: check-in, skill,
   skill follow-up, couple space, hope (a check-in is the clinical record, a skill
   without its follow-up is half an exercise, hope prompts are the most plentiful).
   Among equals the rule written first wins, so both partners keep the same kinds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from schedules.library import PromptLibrary, hold_substitutes
from schedules.model import DeliverySettings, Rule, ScheduleTemplate, TimeRange

PRIORITY: dict[str, int] = {
    "checkin": 0,
    "skill": 1,
    "skill_followup": 2,
    "couple_space": 3,
    "hope": 4,
}
"""Lower is kept first when a day holds more than ``max_per_day`` messages."""

_ONE_DAY = timedelta(days=1)
_FIRE_AT_NOON = 12


@dataclass(frozen=True)
class PartnerTiming:
    """Where a partner's clock is and when they like to hear from Dyad."""

    timezone: str  # IANA name, such as "Europe/Madrid"
    window: str  # "morning" | "afternoon" | "evening", or "HH:MM-HH:MM"


@dataclass(frozen=True)
class PlannedDelivery:
    """One message to queue for a partner."""

    kind: str  # checkin | hope | skill | skill_followup | couple_space
    rule_id: str  # the template rule; "<rule>.followup" for a follow-up
    local_date: date  # the partner's local date it belongs to
    due_at_utc: datetime
    prompt_key: str
    not_after_utc: datetime  # past this it would leave the window or enter quiet hours
    followup_of: str | None = None  # for a follow-up: the skill prompt it follows
    origin_date: date | None = None  # for a follow-up: the local date of that skill

    @property
    def dedupe_key(self) -> str:
        """One outbox row per prompt per partner per local date, however often we plan."""
        return f"prompt:{self.prompt_key}:{self.local_date.isoformat()}"


@dataclass(frozen=True)
class _Candidate:
    delivery: PlannedDelivery
    rank: tuple[int, int, int]  # priority, rule position, origin date


def includes_safety_question(checkin_number: int, safety_every: int) -> bool:
    """Whether the couple's ``checkin_number``-th check-in (from 1) asks the safety question.

    The first check-in always asks, then every ``safety_every``-th one after it.
    """
    if checkin_number < 1 or safety_every < 1:
        raise ValueError("check-ins count from 1, and safety_every is at least 1")
    return (checkin_number - 1) % safety_every == 0


def substitute_for_hold(
    prompt_key: str, library: PromptLibrary, seed: str, *, avoid: Iterable[str] = ()
) -> str:
    """The prompt to send instead of ``prompt_key`` while a safety hold is open.

    A prompt not tagged ``conflict_communication`` is returned unchanged. Otherwise the
    stand-in is a prompt of the same kind that is not paused (for skills and their
    follow-ups, one tagged appreciation or self_care), chosen from ``seed`` so both
    partners get the same one, and not in ``avoid`` when there is a choice.
    """
    prompt = library.get(prompt_key)
    if not prompt.is_conflict_communication:
        return prompt_key
    candidates = sorted(hold_substitutes(library, prompt.kind), key=lambda p: _digest(seed, p.key))
    if not candidates:
        raise LookupError(f"no {prompt.kind} prompt can stand in for {prompt_key}")
    skip = set(avoid)
    return next((p.key for p in candidates if p.key not in skip), candidates[0].key)


def plan_deliveries(
    template: ScheduleTemplate,
    delivery: DeliverySettings,
    library: PromptLibrary,
    partner: PartnerTiming,
    start: datetime,
    end: datetime,
    *,
    couple_seed: str,
    safety_hold: bool = False,
) -> list[PlannedDelivery]:
    """The deliveries due in ``[start, end)`` for one partner, ordered by due time.

    ``couple_seed`` must be the same for both partners of a couple (for example the
    couple's id): it fixes the offsets in the window and the prompt choices.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    planner = _Planner(template, delivery, library, partner, couple_seed, safety_hold)
    first = start.astimezone(planner.zone).date()
    last = end.astimezone(planner.zone).date()
    planner.find_firings(first, last)
    planned: list[PlannedDelivery] = []
    day = first
    while day <= last:
        planned.extend(d for d in planner.day(day) if start <= d.due_at_utc < end)
        day += _ONE_DAY
    return sorted(planned, key=lambda d: (d.due_at_utc, PRIORITY[d.kind], d.rule_id))


def _digest(*parts: object) -> int:
    # sha256, not hash(): the same answer in every process and on every machine.
    text = "|".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


class _Planner:
    def __init__(
        self,
        template: ScheduleTemplate,
        delivery: DeliverySettings,
        library: PromptLibrary,
        partner: PartnerTiming,
        seed: str,
        safety_hold: bool,
    ) -> None:
        self.rules = template.rules
        self.delivery = delivery
        self.library = library
        self.zone: tzinfo = ZoneInfo(partner.timezone)
        self.seed = seed
        self.safety_hold = safety_hold
        self.windows = {
            rule.id: delivery.resolve_window(rule.window, partner.window) for rule in self.rules
        }
        # The follow-up delays in use: a day looks back only that many days for skills.
        has_skills = any(rule.kind == "skill" for rule in self.rules)
        skills = library.by_kind("skill") if has_skills else ()
        self.delays = sorted({p.followup_days for p in skills if p.followup_days})
        self.lookback = max(self.delays, default=0)
        self.firings: dict[str, frozenset[date]] = {}
        self._base: dict[date, list[_Candidate]] = {}
        self._orders: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    # --- calendar ---------------------------------------------------------------------

    def find_firings(self, first: date, last: date) -> None:
        """The local dates each rule fires on, from CronTrigger in the partner's zone."""
        # Every rule, not just skills, over the look-back days: a day's check-ins decide
        # which of its skills survive the cap, and so which follow-ups fall in range.
        since = first - timedelta(days=self.lookback)
        for rule in self.rules:
            self.firings[rule.id] = self._cron_dates(rule, since, last)

    def _cron_dates(self, rule: Rule, first: date, last: date) -> frozenset[date]:
        trigger = CronTrigger(
            day_of_week=",".join(rule.days), hour=_FIRE_AT_NOON, minute=0, timezone=self.zone
        )
        begin = datetime.combine(first, time(0), tzinfo=self.zone)
        limit = datetime.combine(last + _ONE_DAY, time(0), tzinfo=self.zone)
        dates: set[date] = set()
        fire: datetime | None = trigger.get_next_fire_time(None, begin)
        while fire is not None and fire < limit:
            dates.add(fire.astimezone(self.zone).date())
            fire = trigger.get_next_fire_time(fire, fire)
        return frozenset(dates)

    # --- one day ------------------------------------------------------------------------

    def day(self, day: date) -> list[PlannedDelivery]:
        """Everything planned for one local date, after the daily cap."""
        arriving: list[_Candidate] = []
        for days_before in self.delays:
            for skill in self._kept_skills(day - timedelta(days=days_before)):
                followup = self._followup(skill, day, days_before)
                if followup is not None:
                    arriving.append(followup)
        kept = _keep(self._base_of(day) + arriving, self.delivery.max_per_day)
        return [candidate.delivery for candidate in kept]

    def _kept_skills(self, day: date) -> list[_Candidate]:
        # Follow-ups rank below skills, so whether a skill survives its day's cap depends
        # only on that day's check-ins and skills: no circularity between days.
        important = [
            c for c in self._base_of(day) if PRIORITY[c.delivery.kind] <= PRIORITY["skill"]
        ]
        return [
            c for c in _keep(important, self.delivery.max_per_day) if c.delivery.kind == "skill"
        ]

    def _base_of(self, day: date) -> list[_Candidate]:
        if day not in self._base:
            self._base[day] = self._plan_rules(day)
        return self._base[day]

    def _plan_rules(self, day: date) -> list[_Candidate]:
        used: set[str] = set()
        planned: list[_Candidate] = []
        for position, rule in enumerate(self.rules):
            if day not in self.firings.get(rule.id, frozenset()):
                continue
            key = self._choose(rule, day, used)
            if key is None:
                continue
            used.add(key)
            placed = self._place(day, rule.id, rule.jitter, self.windows[rule.id])
            if placed is None:
                continue
            due, not_after = placed
            planned.append(
                _Candidate(
                    PlannedDelivery(rule.kind, rule.id, day, due, key, not_after),
                    (PRIORITY[rule.kind], position, day.toordinal()),
                )
            )
        return planned

    def _followup(self, skill: _Candidate, day: date, days_after: int) -> _Candidate | None:
        prompt = self.library.get(skill.delivery.prompt_key)
        if prompt.followup is None or prompt.followup_days != days_after:
            return None
        rule = next(r for r in self.rules if r.id == skill.delivery.rule_id)
        rule_id = f"{rule.id}.followup"
        placed = self._place(day, rule_id, rule.jitter, self.windows[rule.id])
        if placed is None:
            return None
        due, not_after = placed
        _, position, origin = skill.rank
        return _Candidate(
            PlannedDelivery(
                "skill_followup",
                rule_id,
                day,
                due,
                prompt.followup,
                not_after,
                prompt.key,
                skill.delivery.local_date,
            ),
            (PRIORITY["skill_followup"], position, origin),
        )

    # --- prompt choice ------------------------------------------------------------------

    def _choose(self, rule: Rule, day: date, used: set[str]) -> str | None:
        if rule.prompt is not None:
            key = rule.prompt
        else:
            # One fixed order per couple and kind, walked one step per day (or week):
            # no prompt comes back before every other candidate has had its turn.
            keys = self._rotation(rule.kind, rule.tags)
            if not keys:
                return None
            ordinal = day.toordinal()
            period = ordinal if rule.rotation == "daily" else (ordinal - 1) // 7
            start = period % len(keys)
            turn = keys[start:] + keys[:start]
            key = next((k for k in turn if k not in used), turn[0])
        if self.safety_hold:
            key = substitute_for_hold(
                key, self.library, f"{self.seed}|{day.isoformat()}|{rule.id}", avoid=used
            )
        return key

    def _rotation(self, kind: str, tags: tuple[str, ...]) -> list[str]:
        if (kind, tags) not in self._orders:
            self._orders[kind, tags] = sorted(
                (p.key for p in self.library.with_tags(kind, tags)),
                key=lambda k: _digest(self.seed, "rotation", kind, k),
            )
        return self._orders[kind, tags]

    # --- time of day --------------------------------------------------------------------

    def _place(
        self, day: date, rule_id: str, jitter: int, window: TimeRange
    ) -> tuple[datetime, datetime] | None:
        span = min(jitter, window.end - window.start - 1)
        desired = window.start + _digest(self.seed, rule_id, day.isoformat()) % (span + 1)
        later = range(desired, window.end)
        earlier = range(desired - 1, window.start - 1, -1)
        for minute in (*later, *earlier):
            if self._allowed(minute):
                due = self._utc(day, minute)
                if due is not None:
                    return due, self._not_after(day, minute, window)
        return None

    def _allowed(self, minute: int) -> bool:
        quiet = self.delivery.quiet_hours
        return quiet is None or not quiet.contains(minute)

    def _utc(self, day: date, minute: int) -> datetime | None:
        """The instant of a local wall-clock minute, or None if the clock skips it."""
        wall = datetime.combine(day, time(minute // 60, minute % 60))
        instant = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) != wall:
            return None
        return instant

    def _not_after(self, day: date, minute: int, window: TimeRange) -> datetime:
        last = minute
        while last + 1 < window.end and self._allowed(last + 1):
            last += 1
        while (instant := self._utc(day, last)) is None:
            last -= 1  # the minute itself exists, so this stops at ``minute`` at worst
        return instant + timedelta(minutes=1)


def _keep(candidates: list[_Candidate], max_per_day: int) -> list[_Candidate]:
    """The day's messages after dropping duplicates and the lowest-priority overflow."""
    kept: list[_Candidate] = []
    keys: set[str] = set()
    for candidate in sorted(candidates, key=lambda c: c.rank):
        if candidate.delivery.prompt_key in keys:
            continue  # the outbox holds one row per prompt per local date
        keys.add(candidate.delivery.prompt_key)
        kept.append(candidate)
    return kept[:max_per_day]
