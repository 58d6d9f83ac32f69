"""The practice schedule model: what a practice writes in ``practice.toml`` to say when
Dyad sends prompts and check-ins.

Format (every section is optional; what a practice leaves out keeps the shipped value
from ``schedules/default_practice.toml``)::

    [delivery]
    quiet_hours = "21:30-07:30"   # partner's local time; may cross midnight; "off" for none
    max_per_day = 3               # at most this many scheduled messages per partner per day
    default_template = "standard" # the template new couples get

    [delivery.windows]            # the three windows a partner chooses from
    morning = "08:00-12:00"
    afternoon = "12:00-17:00"
    evening = "17:00-21:00"

    [checkin]
    instrument = "dyad_checkin"   # which check-in instrument scheduled check-ins use
    safety_every = 2              # the private safety question every Nth check-in
    remind_after_hours = 4        # an unfinished or unstarted check-in: one reminder
                                  # this long after it was sent, in the partner's window
    expire_after_hours = 24       # then it is stored as partial (or counted as missed)

    [schedules.standard]          # a named template of rules
    description = "Twice-weekly check-in, hope prompts, a skill of the week"

    [[schedules.standard.rules]]
    id = "hope"                   # optional, stable name; default "<kind>-<n>"
    kind = "hope"                 # hope | skill | couple_space | checkin
    days = ["tue", "sat"]         # mon tue wed thu fri sat sun, or "daily"
    window = "partner"            # "partner" (the partner's own choice, the default),
                                  # "morning" | "afternoon" | "evening", or "HH:MM-HH:MM"
    jitter = 60                   # minutes: start somewhere in the window's first hour
    rotation = "daily"            # "daily": a new prompt each day it fires;
                                  # "weekly": the same prompt all week (skill of the week)
    tags = ["noticing"]           # optional: rotate only among prompts with one of these
    # prompt = "hope.small_win"   # or a fixed prompt instead of rotation and tags

    [[prompts]]                   # add a prompt, or replace a shipped one (same key)
    key = "hope.our_garden"
    kind = "hope"
    answer = "text"
    text.en = "What grew in your garden this week, {name}?"
    text.es = "¿Qué creció en el jardín esta semana, {name}?"
    text.pt = "O que cresceu no jardim esta semana, {name}?"

Times are the partner's local wall-clock times. A rule fires on each listed day at the
start of its window plus an offset of up to ``jitter`` minutes, the same offset for
both partners of a couple. A time inside quiet hours moves to the next allowed minute
of the window (or, failing that, the last allowed minute before it); a window entirely
inside quiet hours is a configuration error. Skill rules bring their follow-up
automatically, ``followup_after`` days later in the same window. When a day holds more
than ``max_per_day`` messages, the lowest-priority ones are dropped: check-in, then
skill, skill follow-up, couple space, hope (highest first); among equals, the rule
written first wins. ``dyad schedules check FILE`` validates a file with line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)

from schedules.library import ConfigValueError, Prompt, PromptLibrary, load_library

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = get_args(Day)
RuleKind = Literal["hope", "skill", "couple_space", "checkin"]
RULE_KINDS: tuple[str, ...] = get_args(RuleKind)
WindowName = Literal["morning", "afternoon", "evening"]
WINDOW_NAMES: tuple[str, ...] = get_args(WindowName)
PARTNER_WINDOW = "partner"
Rotation = Literal["daily", "weekly"]

DEFAULT_PRACTICE_FILE = Path(__file__).with_name("default_practice.toml")
DEFAULT_TEMPLATE = "standard"
MINUTES_PER_DAY = 24 * 60

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_WINDOW_CHOICES = "'partner', 'morning', 'afternoon', 'evening' or \"HH:MM-HH:MM\""


@dataclass(frozen=True, order=True)
class TimeRange:
    """A span of local wall-clock time, in minutes after midnight; end is exclusive.

    ``end < start`` means the span crosses midnight (quiet hours such as 21:30-07:30).
    """

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @property
    def crosses_midnight(self) -> bool:
        """Whether the span runs past midnight into the next day."""
        return self.end < self.start

    def contains(self, minute: int) -> bool:
        """Whether a minute of the day falls inside the span."""
        if self.crosses_midnight:
            return minute >= self.start or minute < self.end
        return self.start <= minute < self.end


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_time_range(value: object, *, what: str, may_cross_midnight: bool) -> TimeRange:
    """A ``"HH:MM-HH:MM"`` text as a :class:`TimeRange`, or a ConfigValueError saying why not."""
    if isinstance(value, TimeRange):
        return value
    match = _RANGE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigValueError(
            f"{what} {value!r} is not a time range",
            'Write it as "HH:MM-HH:MM", such as "08:00-12:00"',
        )
    text = match.string.strip()
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    bounds = []
    for hours, minutes in ((h1, m1), (h2, m2)):
        if minutes > 59 or hours > 24 or (hours == 24 and minutes > 0):
            raise ConfigValueError(
                f"{what} '{text}' is outside the day",
                "Use times from 00:00 to 24:00",
            )
        bounds.append(hours * 60 + minutes)
    start, end = bounds
    if may_cross_midnight:
        start, end = start % MINUTES_PER_DAY, end % MINUTES_PER_DAY
        if start == end:
            raise ConfigValueError(
                f"{what} '{text}' starts and ends at the same time",
                'Give two different times, or write "off" for none',
            )
    elif end <= start:
        raise ConfigValueError(
            f"{what} '{text}' ends before it starts",
            "A window stays within one day: make the end later than the start",
        )
    return TimeRange(start, end)


def _window(value: object) -> TimeRange:
    return parse_time_range(value, what="window", may_cross_midnight=False)


def _quiet_hours(value: object) -> TimeRange | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    return parse_time_range(value, what="quiet_hours", may_cross_midnight=True)


Window = Annotated[TimeRange, PlainValidator(_window)]
QuietHours = Annotated[TimeRange | None, PlainValidator(_quiet_hours)]


class DeliveryWindows(BaseModel):
    """The three delivery windows a partner chooses from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    morning: Window = TimeRange(8 * 60, 12 * 60)
    afternoon: Window = TimeRange(12 * 60, 17 * 60)
    evening: Window = TimeRange(17 * 60, 21 * 60)

    def named(self, name: str) -> TimeRange:
        """The window called ``name`` (morning, afternoon or evening)."""
        if name not in WINDOW_NAMES:
            raise KeyError(name)
        window: TimeRange = getattr(self, name)
        return window


class DeliverySettings(BaseModel):
    """When messages may arrive at all: quiet hours, daily cap, windows, default template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quiet_hours: QuietHours = TimeRange(21 * 60 + 30, 7 * 60 + 30)
    max_per_day: int = Field(default=3, ge=1, le=12)
    default_template: str = DEFAULT_TEMPLATE
    windows: DeliveryWindows = DeliveryWindows()

    def resolve_window(self, rule_window: str, partner_window: str) -> TimeRange:
        """The local window a rule uses for a partner who chose ``partner_window``."""
        chosen = partner_window if rule_window == PARTNER_WINDOW else rule_window
        if chosen in WINDOW_NAMES:
            return self.windows.named(chosen)
        return _window(chosen)


class CheckinSettings(BaseModel):
    """Scheduled check-ins: which instrument, how often the safety question comes, and
    when an unfinished or missed check-in gets its one reminder and when it expires."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instrument: str = Field(default="dyad_checkin", min_length=1)
    safety_every: int = Field(default=2, ge=1, le=12)
    remind_after_hours: float = Field(default=4.0, ge=0.5, le=72)
    expire_after_hours: float = Field(default=24.0, ge=1, le=168)

    @model_validator(mode="after")
    def _remind_before_expiry(self) -> CheckinSettings:
        if self.expire_after_hours <= self.remind_after_hours:
            raise ConfigValueError(
                f"expire_after_hours ({self.expire_after_hours:g}) must be later than "
                f"remind_after_hours ({self.remind_after_hours:g})",
                "A reminder comes before the check-in expires: raise expire_after_hours",
                at=("expire_after_hours",),
            )
        return self


def _one_of(value: object, allowed: tuple[str, ...], what: str) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    raise ConfigValueError(f"unknown {what} {value!r}", f"Use one of: {', '.join(allowed)}")


class Rule(BaseModel):
    """One line of a template: a kind of prompt on some days, in a window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: RuleKind
    days: tuple[Day, ...]
    window: str = PARTNER_WINDOW
    jitter: int = Field(default=0, ge=0, le=MINUTES_PER_DAY)
    prompt: str | None = None
    rotation: Rotation = "daily"
    tags: tuple[str, ...] = ()

    @field_validator("id", mode="before")
    @classmethod
    def _id_shape(cls, value: object) -> object:
        if not isinstance(value, str) or not _NAME.match(value):
            raise ConfigValueError(
                f"rule id {value!r} has the wrong shape",
                "Use letters, digits, - and _ (at most 40)",
            )
        return value

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_known(cls, value: object) -> object:
        if value == "skill_followup":
            raise ConfigValueError(
                "a rule cannot have kind skill_followup",
                "Follow-ups are planned after their skill automatically; remove this rule",
            )
        return _one_of(value, RULE_KINDS, "kind")

    @field_validator("days", mode="before")
    @classmethod
    def _days_known(cls, value: object) -> object:
        if value == "daily":
            return DAYS
        if not isinstance(value, list | tuple) or not value:
            raise ConfigValueError(
                f"days {value!r} is not a list of days",
                'Write days = ["mon", "thu"], or days = "daily"',
            )
        for day in value:
            if day not in DAYS:
                raise ConfigValueError(
                    f"bad day name {day!r}",
                    'Use mon, tue, wed, thu, fri, sat, sun, or days = "daily"',
                )
        return tuple(day for day in DAYS if day in value)

    @field_validator("window", mode="before")
    @classmethod
    def _window_known(cls, value: object) -> object:
        if value == PARTNER_WINDOW or value in WINDOW_NAMES:
            return value
        if isinstance(value, str) and _RANGE.match(value):
            return str(_window(value))
        raise ConfigValueError(f"unknown window {value!r}", f"Use {_WINDOW_CHOICES}")

    @field_validator("rotation", mode="before")
    @classmethod
    def _rotation_known(cls, value: object) -> object:
        return _one_of(value, get_args(Rotation), "rotation")

    @model_validator(mode="after")
    def _prompt_or_rotation(self) -> Rule:
        if self.prompt is not None and {"rotation", "tags"} & self.model_fields_set:
            raise ConfigValueError(
                "a rule with a fixed prompt cannot also rotate",
                "Keep prompt, or keep rotation/tags, not both",
            )
        return self

    def fires_on(self, weekday: int) -> bool:
        """Whether the rule fires on a weekday (0 = Monday)."""
        return DAYS[weekday] in self.days


class ScheduleTemplate(BaseModel):
    """A named set of rules a couple follows (``[schedules.<name>]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _default_rule_ids(cls, data: Any) -> Any:
        # A missing id becomes "<kind>-<n>" so that outbox rows and logs can name the rule.
        if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list | tuple):
            return data
        counts: dict[str, int] = {}
        rules: list[object] = []
        for raw in data["rules"]:
            if isinstance(raw, Mapping) and "id" not in raw:
                kind = raw.get("kind")
                kind = kind if isinstance(kind, str) and _NAME.match(kind) else "rule"
                counts[kind] = counts.get(kind, 0) + 1
                raw = {"id": f"{kind}-{counts[kind]}", **raw}
            rules.append(raw)
        return {**data, "rules": rules}

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            if rule.id in seen:
                raise ConfigValueError(
                    f"two rules have the id '{rule.id}'",
                    "Give each rule its own id",
                    at=(index, "id"),
                )
            seen.add(rule.id)
        return rules


class PracticeSchedules(BaseModel):
    """The schedule part of a practice's configuration, once checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery: DeliverySettings = DeliverySettings()
    checkin: CheckinSettings = CheckinSettings()
    schedules: dict[str, ScheduleTemplate]
    prompts: tuple[Prompt, ...] = ()

    def template(self, name: str | None = None) -> ScheduleTemplate:
        """The template ``name``, or the practice's default template."""
        return self.schedules[name or self.delivery.default_template]

    def library(self) -> PromptLibrary:
        """The shipped prompt library with this practice's prompts added or replacing."""
        return load_library(self.prompts)


SECTIONS: tuple[str, ...] = ("delivery", "checkin", "schedules", "prompts")
"""The top-level ``practice.toml`` sections this package reads."""
