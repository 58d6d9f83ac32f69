"""The digest's values: what the composer reads (``DigestInput``) and what it returns (``Digest``).

Plain frozen data, no rules and no wording: the rules are in
:mod:`bot.core.digest.compose`, the words in :mod:`bot.core.digest.document` and the
``digest`` catalogs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from bot.core.themes import Theme

Slot = Literal["A", "B"]
ScoreRole = Literal["wellbeing", "hope", "alliance"]
Practice = Literal["yes", "partly", "no"]
QuoteSource = Literal["note", "reply"]

SLOTS: tuple[Slot, Slot] = ("A", "B")
SCORE_ROLES: tuple[ScoreRole, ...] = ("wellbeing", "hope", "alliance")


# --- input -------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckinData:
    """One check-in: role-level scores (0-10), the skill answer, the note and its choice.

    ``scores`` maps a role (``wellbeing``, ``hope``, ``alliance``) to that role's
    score; a role the partner skipped is absent. ``ok_to_raise`` is the partner's
    answer to "OK to raise in session?"; ``None`` (not answered) keeps the note private.
    """

    at: datetime
    scores: Mapping[str, float] = field(default_factory=dict)
    skill_practised: Practice | None = None
    note: str | None = None
    ok_to_raise: bool | None = None
    partial: bool = False
    safety_declined: bool = False  # "Prefer not to say" to the private safety question


@dataclass(frozen=True)
class ReplyData:
    """A partner's free-text reply to a hope or skill prompt; quoted only if OK to raise."""

    at: datetime
    text: str
    ok_to_raise: bool


@dataclass(frozen=True)
class SkillPracticeData:
    """A skill-practice follow-up: the skill's title (therapist's language) and the answer."""

    skill_name: str
    tried: Practice | None


@dataclass(frozen=True)
class PartnerData:
    """Everything about one partner in the period; the caller selects the period's rows.

    ``previous_scores`` holds the previous period's mean per role (for "change since
    the last session" and split-alliance widening); ``language`` is the language the
    partner writes in (it picks the stop words for themes).
    """

    slot: Slot
    display_name: str
    language: str = "en"
    checkins: tuple[CheckinData, ...] = ()
    previous_scores: Mapping[str, float] = field(default_factory=dict)
    prompts_delivered: int = 0
    prompts_answered: int = 0
    skill_prompts: tuple[SkillPracticeData, ...] = ()
    paused_days: int = 0
    unreachable_days: int = 0
    replies: tuple[ReplyData, ...] = ()
    checkins_missed: int = 0  # scheduled check-ins not completed before they expired


@dataclass(frozen=True)
class CoupleAnswerData:
    """A couple-space prompt both partners received, and what of each answer may be quoted.

    An answer is given here only when it may be quoted: revealed to both, or marked OK to
    raise by its author, and never one that raised a safety flag. Otherwise the text is
    None and ``private_a``/``private_b`` says whether the partner answered at all (an
    answer kept private is counted, never shown).
    """

    prompt_title: str
    answer_a: str | None
    answer_b: str | None
    private_a: bool = False
    private_b: bool = False


@dataclass(frozen=True)
class CoupleSpaceData:
    """Couple-space activity: prompts sent, answered by both, revealed to both; the answers."""

    prompts_sent: int = 0
    both_answered: int = 0
    both_shared: int = 0
    answers: tuple[CoupleAnswerData, ...] = ()


@dataclass(frozen=True)
class AlertData:
    """A safety alert about one partner: its kind and time only, never the words behind it.

    ``kind`` is a code such as ``safety_question`` or ``crisis_words``.
    """

    slot: Slot
    kind: str
    at: datetime
    acknowledged: bool
    open: bool


@dataclass(frozen=True)
class DigestSettings:
    """Practice settings for the digest (documented defaults)."""

    quote_budget_chars: int = 600
    split_alliance_threshold: float = 3.0
    split_alliance_widening: float = 2.0
    min_quote_fragment: int = 40
    couple_answer_chars: int = 280
    theme_limit: int = 6


@dataclass(frozen=True)
class DigestInput:
    """One couple's period, as the digest service reads it from the database.

    ``partners`` holds slot A and slot B (in either order). ``therapist_tz`` is the
    zone times are shown in (a ``zoneinfo.ZoneInfo`` from the caller). Alerts may
    include older ones: the digest keeps those still open or raised in the period.
    """

    couple_handle: str
    couple_label: str
    therapist_language: str
    period_start: datetime
    period_end: datetime
    previous_session_at: datetime | None
    first_slot: Slot
    partners: tuple[PartnerData, PartnerData]
    couple_space: CoupleSpaceData = CoupleSpaceData()
    alerts: tuple[AlertData, ...] = ()
    settings: DigestSettings = DigestSettings()
    therapist_tz: tzinfo = UTC


# --- output ------------------------------------------------------------------------


@dataclass(frozen=True)
class Engagement:
    """How much of the between-session work reached and came back from one partner."""

    prompts_delivered: int
    prompts_answered: int
    checkins_complete: int
    checkins_partial: int
    paused_days: int
    unreachable_days: int
    checkins: int  # complete and partial
    checkins_missed: int = 0  # scheduled ones not completed before they expired


@dataclass(frozen=True)
class RoleScores:
    """One role's ratings over the period, with its sparkline and change since last time."""

    role: ScoreRole
    values: tuple[float, ...]
    sparkline: str
    mean: float | None
    latest: float | None
    previous: float | None
    change: float | None


@dataclass(frozen=True)
class SkillCount:
    """A skill and how many follow-ups gave one answer for it."""

    name: str
    times: int


@dataclass(frozen=True)
class SkillPractice:
    """Skill follow-ups by answer: tried, partly, not yet, and not answered."""

    tried: tuple[SkillCount, ...]
    partly: tuple[SkillCount, ...]
    not_yet: tuple[SkillCount, ...]
    no_reply: int
    prompts: int  # skill follow-ups in the period, answered or not


@dataclass(frozen=True)
class Quote:
    """Words a partner marked OK to raise, as quoted (possibly cut with an ellipsis)."""

    at: datetime
    text: str
    truncated: bool
    source: QuoteSource


@dataclass(frozen=True)
class OwnWords:
    """The partner's quotes within the shared budget, and what was left out and why."""

    quotes: tuple[Quote, ...]
    quoted_chars: int
    budget_chars: int
    not_shown_for_space: int
    private_count: int


@dataclass(frozen=True)
class PartnerSection:
    """One partner's part of the digest; both partners' have the same shape."""

    slot: Slot
    display_name: str
    engagement: Engagement
    scores: tuple[RoleScores, ...]
    skills: SkillPractice
    own_words: OwnWords

    def role(self, role: ScoreRole) -> RoleScores:
        """This partner's scores for one role."""
        return next(s for s in self.scores if s.role == role)


@dataclass(frozen=True)
class SlotAnswer:
    """One partner's couple-space answer (None: not answered, or ``private``: kept private)."""

    slot: Slot
    text: str | None
    truncated: bool
    private: bool = False


@dataclass(frozen=True)
class CoupleAnswer:
    """A couple-space prompt with both answers, first partner first."""

    prompt_title: str
    answers: tuple[SlotAnswer, SlotAnswer]


@dataclass(frozen=True)
class CoupleSpaceView:
    """Couple-space activity of the period."""

    prompts_sent: int
    both_answered: int
    both_shared: int
    answers: tuple[CoupleAnswer, ...]


@dataclass(frozen=True)
class AllianceEntry:
    """One partner's alliance ratings, for the side-by-side view."""

    slot: Slot
    scores: RoleScores


@dataclass(frozen=True)
class AllianceBalance:
    """Both partners' alliance ratings side by side, the gap, and the split-alliance flag."""

    entries: tuple[AllianceEntry, AllianceEntry]
    gap: float | None
    previous_gap: float | None
    widening: float | None
    split: bool
    reasons: tuple[Literal["gap", "widening"], ...]
    threshold: float
    widening_threshold: float


@dataclass(frozen=True)
class Together:
    """What belongs to the relationship: shared themes, couple space, alliance balance."""

    themes: tuple[Theme, ...]
    couple_space: CoupleSpaceView
    alliance: AllianceBalance


@dataclass(frozen=True)
class AlertView:
    """A safety alert as the digest shows it: who, what kind, when, open, seen."""

    slot: Slot
    kind: str
    at: datetime
    open: bool
    acknowledged: bool


@dataclass(frozen=True)
class Safety:
    """Open alerts and alerts raised in the period, oldest first."""

    alerts: tuple[AlertView, ...]
    open_count: int
    declined: tuple[tuple[Slot, int], ...] = ()
    """Partners who chose "Prefer not to say" to the safety question, and how often."""


AgendaKey = Literal[
    "safety_open",
    "split_gap",
    "split_widening",
    "hope_both_rising",
    "hope_both_falling",
    "hope_diverging",
    "hope_rising",
    "hope_falling",
    "themes",
    "skills_both",
    "skills_uneven",
    "skills_none",
    "engagement_uneven",
    "engagement_none",
    "unreachable",
    "default",
]
# The only bullets that may name one partner alone: a change in that partner's own
# hope, which is about how they feel, never about what they did.
SINGLE_PARTNER_AGENDA: frozenset[str] = frozenset({"hope_rising", "hope_falling"})


@dataclass(frozen=True)
class AgendaItem:
    """A suggested agenda bullet: a catalog key, the partners it names, and its values.

    ``slots`` names partners in the order the wording uses them (``hope_diverging``:
    rising, falling); ``words`` holds themes or skill names; ``number`` a gap.
    """

    key: AgendaKey
    slots: tuple[Slot, ...] = ()
    words: tuple[str, ...] = ()
    number: float | None = None


@dataclass(frozen=True)
class BalanceShare:
    """One partner's share of the partner text in the plain-text rendering."""

    slot: Slot
    chars: int
    share: float


@dataclass(frozen=True)
class Balance:
    """How evenly the digest's partner text falls between the two partners."""

    shares: tuple[BalanceShare, BalanceShare]
    ratio: float  # shorter partner section over longer; 1.0 is perfectly even


@dataclass(frozen=True)
class Digest:
    """The composed digest: partner sections first-partner first, then what is shared."""

    couple_handle: str
    couple_label: str
    language: str
    timezone: str
    period_start: datetime
    period_end: datetime
    previous_session_at: datetime | None
    first_slot: Slot
    partners: tuple[PartnerSection, PartnerSection]
    together: Together
    safety: Safety
    agenda: tuple[AgendaItem, ...]
    balance: Balance

    def partner(self, slot: Slot) -> PartnerSection:
        """The section of the partner in ``slot``."""
        return next(p for p in self.partners if p.slot == slot)

    def to_dict(self) -> dict[str, Any]:
        """The digest as JSON-ready values (datetimes as ISO 8601 text)."""
        result = _plain(self)
        assert isinstance(result, dict)
        return result


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
