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
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import chain
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from schedules.library import PromptKind, PromptLibrary, hold_substitutes
from schedules.model import (
    PARTNER_WINDOW,
    WINDOW_NAMES,
    DeliverySettings,
    PracticeSchedules,
    Rule,
    ScheduleTemplate,
    TimeRange,
)

PRIORITY: dict[PromptKind, int] = {
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

    kind: PromptKind
    rule_id: str  # the template rule; "<rule>.followup" for a follow-up
    local_date: date  # the partner's local date it belongs to
    due_at_utc: datetime
    prompt_key: str
    not_after_utc: datetime  # past this it would leave the window or enter quiet hours
    followup_of: str | None = None  # for a follow-up: the skill prompt it follows
    followup_origin: date | None = None  # for a follow-up: the local date of its skill

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
    reserved: Mapping[date, int] | None = None,
    days: DayCache | None = None,
) -> list[PlannedDelivery]:
    """The deliveries due in ``[start, end)`` for one partner, ordered by due time.

    ``couple_seed`` must be the same for both partners of a couple (for example the
    couple's id): it fixes the offsets in the window and the prompt choices.
    ``reserved`` counts, per local date, messages already queued outside the plan
    (reveals, notices, reminders): they take their share of ``max_per_day`` first.
    ``days``: local dates planned before with the same inputs come from there, and only
    the others are planned (the answer is the same either way).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    planner = _Planner(
        template, delivery, library, partner, couple_seed, safety_hold, reserved or {}
    )
    first = start.astimezone(planner.zone).date()
    last = end.astimezone(planner.zone).date()
    scope = None if days is None else days.scope(template, delivery, library)
    planned: list[PlannedDelivery] = []
    day = first
    while day <= last:
        found: Iterable[PlannedDelivery]
        if days is None or scope is None:
            found = planner.day(day)
        else:
            key = (scope, partner, couple_seed, safety_hold, day, planner.caps_behind(day))
            found = days.get(key, day, planner.day)
        planned.extend(d for d in found if start <= d.due_at_utc < end)
        day += _ONE_DAY
    return sorted(planned, key=lambda d: (d.due_at_utc, PRIORITY[d.kind], d.rule_id))


class DayCache:
    """Days already planned, kept from one planning pass to the next.

    A day's plan depends only on the template, the delivery settings and the library (kept
    here by identity, so the caller should reuse the same parsed configuration), on the
    partner's zone and window, the couple's seed and hold, and on the daily caps left on
    that day and on the days whose skills bring follow-ups to it. With all of those the
    same, the stored answer is the answer: a repeat pass plans only days it has not seen.
    """

    def __init__(self, max_days: int = 400_000) -> None:
        self.max_days = max_days
        self._days: dict[Hashable, tuple[date, tuple[PlannedDelivery, ...]]] = {}
        self._scopes: dict[tuple[int, int, int], tuple[object, ...]] = {}
        self.hits = 0
        self.misses = 0

    def scope(
        self, template: ScheduleTemplate, delivery: DeliverySettings, library: PromptLibrary
    ) -> tuple[int, int, int]:
        """A key for these three objects; holding them keeps their ids from being reused."""
        key = (id(template), id(delivery), id(library))
        self._scopes.setdefault(key, (template, delivery, library))
        return key

    def get(
        self, key: Hashable, day: date, plan: Callable[[date], list[PlannedDelivery]]
    ) -> tuple[PlannedDelivery, ...]:
        """The stored plan for ``key``, or ``plan(day)``'s, stored."""
        found = self._days.get(key)
        if found is not None:
            self.hits += 1
            return found[1]
        self.misses += 1
        if len(self._days) >= self.max_days:
            self._days.clear()
        planned = tuple(plan(day))
        self._days[key] = (day, planned)
        return planned

    def forget_before(self, day: date) -> None:
        """Drop the days before ``day``: a pass never plans them again."""
        self._days = {k: v for k, v in self._days.items() if v[0] >= day}

    def clear(self) -> None:
        """Forget everything (the configurations it was keyed on changed)."""
        self._days.clear()
        self._scopes.clear()

    def __len__(self) -> int:
        return len(self._days)


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
        reserved: Mapping[date, int],
    ) -> None:
        self.reserved = reserved
        self.rules = template.rules
        self.delivery = delivery
        self.library = library
        self.zone: tzinfo = zone_of(partner.timezone)
        self.seed = seed
        self.safety_hold = safety_hold
        self.windows = {
            rule.id: delivery.resolve_window(rule.window, partner.window) for rule in self.rules
        }
        # The follow-up delays in use: a day looks back only that many days for skills.
        has_skills = any(rule.kind == "skill" for rule in self.rules)
        self.delays = list(_followup_delays(library)) if has_skills else []
        self.lookback = max(self.delays, default=0)
        self._timezone = partner.timezone
        self._base: dict[date, list[_Candidate]] = {}
        self._orders: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    # --- calendar ---------------------------------------------------------------------

    def caps_behind(self, day: date) -> tuple[int, ...]:
        """The caps a day's plan depends on: its own, and those of the days its
        follow-ups' skills came on."""
        return (self._cap(day), *(self._cap(day - timedelta(days=d)) for d in self.delays))

    def _fires_on(self, rule: Rule, day: date) -> bool:
        # Every rule, not just skills, over the look-back days: a day's check-ins decide
        # which of its skills survive the cap, and so which follow-ups fall in range.
        return day in firing_dates(rule.days, self._timezone, _week_of(day))

    # --- one day ------------------------------------------------------------------------

    def day(self, day: date) -> list[PlannedDelivery]:
        """Everything planned for one local date, after the daily cap."""
        arriving: list[_Candidate] = []
        for days_before in self.delays:
            for skill in self._kept_skills(day - timedelta(days=days_before)):
                followup = self._followup(skill, day, days_before)
                if followup is not None:
                    arriving.append(followup)
        kept = _keep(self._base_of(day) + arriving, self._cap(day))
        return [candidate.delivery for candidate in kept]

    def _cap(self, day: date) -> int:
        return max(0, self.delivery.max_per_day - self.reserved.get(day, 0))

    def _kept_skills(self, day: date) -> list[_Candidate]:
        # Follow-ups rank below skills, so whether a skill survives its day's cap depends
        # only on that day's check-ins and skills: no circularity between days.
        important = [
            c for c in self._base_of(day) if PRIORITY[c.delivery.kind] <= PRIORITY["skill"]
        ]
        return [c for c in _keep(important, self._cap(day)) if c.delivery.kind == "skill"]

    def _base_of(self, day: date) -> list[_Candidate]:
        if day not in self._base:
            self._base[day] = self._plan_rules(day)
        return self._base[day]

    def _plan_rules(self, day: date) -> list[_Candidate]:
        used: set[str] = set()
        planned: list[_Candidate] = []
        for position, rule in enumerate(self.rules):
            if not self._fires_on(rule, day):
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
            self._orders[kind, tags] = list(_rotation(self.library, self.seed, kind, tags))
        return self._orders[kind, tags]

    # --- time of day --------------------------------------------------------------------

    def _place(
        self, day: date, rule_id: str, jitter: int, window: TimeRange
    ) -> tuple[datetime, datetime] | None:
        span = min(jitter, window.end - window.start - 1)
        desired = window.start + _digest(self.seed, rule_id, day.isoformat()) % (span + 1)
        later = range(desired, window.end)
        earlier = range(desired - 1, window.start - 1, -1)
        for minute in chain(later, earlier):
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
        last = _last_allowed(self.delivery.quiet_hours, window, minute)
        while (instant := self._utc(day, last)) is None:
            last -= 1  # the minute itself exists, so this stops at ``minute`` at worst
        return instant + timedelta(minutes=1)


def _week_of(day: date) -> date:
    """The Monday of a date's week: firing dates are computed (and cached) a week at a time."""
    return day - timedelta(days=day.weekday())


@lru_cache(maxsize=8192)
def firing_dates(days: tuple[str, ...], timezone: str, monday: date) -> frozenset[date]:
    """The local dates of one week (from ``monday``) a rule on ``days`` fires on in a zone.

    APScheduler's ``CronTrigger`` in the partner's zone, once per (days, zone, week): every
    rule and partner in that zone shares the answer.
    """
    zone = zone_of(timezone)
    trigger = CronTrigger(day_of_week=",".join(days), hour=_FIRE_AT_NOON, minute=0, timezone=zone)
    begin = datetime.combine(monday, time(0), tzinfo=zone)
    limit = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
    dates: set[date] = set()
    fire: datetime | None = trigger.get_next_fire_time(None, begin)
    while fire is not None and fire < limit:
        dates.add(fire.astimezone(zone).date())
        fire = trigger.get_next_fire_time(fire, fire)
    return frozenset(dates)


@lru_cache(maxsize=1024)
def zone_of(name: str) -> tzinfo:
    """The zone called ``name``, kept (zoneinfo keeps only the last few zones it loaded)."""
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _rotation(
    library: PromptLibrary, seed: str, kind: str, tags: tuple[str, ...]
) -> tuple[str, ...]:
    """One couple's fixed order of a kind's prompts (both partners share it)."""
    return tuple(
        sorted(
            (p.key for p in library.with_tags(kind, tags)),
            key=lambda k: _digest(seed, "rotation", kind, k),
        )
    )


@lru_cache(maxsize=64)
def _followup_delays(library: PromptLibrary) -> tuple[int, ...]:
    """The days after a skill its follow-ups come, in this library (sorted, once per library)."""
    return tuple(sorted({p.followup_days for p in library.by_kind("skill") if p.followup_days}))


@lru_cache(maxsize=8192)
def _last_allowed(quiet: TimeRange | None, window: TimeRange, minute: int) -> int:
    """The last minute of the window reached from ``minute`` without entering quiet hours."""
    last = minute
    while last + 1 < window.end and (quiet is None or not quiet.contains(last + 1)):
        last += 1
    return last


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


_TRIAL_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
_TRIAL_DAYS = 14


def rules_never_sent(
    config: PracticeSchedules, library: PromptLibrary, template_name: str
) -> set[str]:
    """The template's rules that two weeks of planning never send, for some partner window.

    ``dyad schedules check`` runs this with the planner's own code, so a file it accepts
    is one the planner can use; an exception here is one the planner would raise.
    """
    template = config.schedules[template_name]
    end = _TRIAL_START + timedelta(days=_TRIAL_DAYS)
    never: set[str] = set()
    for window in WINDOW_NAMES:
        planned = plan_deliveries(
            template,
            config.delivery,
            library,
            PartnerTiming("UTC", window),
            _TRIAL_START,
            end,
            couple_seed="check",
            safety_hold=window == WINDOW_NAMES[0],  # a hold must find its stand-ins too
        )
        sent = {p.rule_id for p in planned}
        never |= {rule.id for rule in template.rules if rule.id not in sent}
    return never


def next_allowed(
    delivery: DeliverySettings,
    partner: PartnerTiming,
    after: datetime,
    *,
    full: Iterable[date] = (),
    days: int = 14,
) -> tuple[datetime, date, datetime] | None:
    """The first minute at or after ``after`` in the partner's own window, outside quiet
    hours, on a local date not in ``full`` (a day already at ``max_per_day``).

    Returns the instant, its local date, and when it would leave the window (its
    ``not_after``); None if no such minute comes within ``days`` days. Messages Dyad
    sends on its own initiative (reveals, notices, reminders) are placed with this.
    """
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    zone = ZoneInfo(partner.timezone)
    window = delivery.resolve_window(PARTNER_WINDOW, partner.window)
    skip = set(full)
    local = after.astimezone(zone)
    first = local.date()
    quiet = delivery.quiet_hours
    for offset in range(days + 1):
        day = first + timedelta(days=offset)
        if day in skip:
            continue
        start_minute = window.start
        if offset == 0:
            # The current minute counts if it has begun less than a minute ago.
            start_minute = max(window.start, local.hour * 60 + local.minute)
        for minute in range(start_minute, window.end):
            if quiet is not None and quiet.contains(minute):
                continue
            wall = datetime.combine(day, time(minute // 60, minute % 60))
            instant = wall.replace(tzinfo=zone).astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) != wall:
                continue  # a minute the clock skips
            if offset == 0 and instant < after.astimezone(UTC).replace(second=0, microsecond=0):
                continue
            last = minute
            while last + 1 < window.end and (quiet is None or not quiet.contains(last + 1)):
                last += 1
            end_wall = datetime.combine(day, time(last // 60, last % 60))
            not_after = end_wall.replace(tzinfo=zone).astimezone(UTC) + timedelta(minutes=1)
            return max(instant, after.astimezone(UTC)), day, not_after
    return None
