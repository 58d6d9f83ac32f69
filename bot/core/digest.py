"""The balanced pre-session digest: the period's values in, a :class:`Digest` out (pure).

Both partners get the same sections in the same order and the same room for their
own words; which partner comes first is the caller's ``first_slot``, alternated from
one digest of a couple to the next. Only words a partner marked OK to raise are
quoted or used for themes; everything else is counted, never shown. Wording lives in
the renderers (``bot.core.digest_render``) and the ``digest`` catalogs.

Decisions worth knowing:

* Scores are on a fixed 0-10 scale; a sparkline has one block per check-in, oldest
  first, at most :data:`SPARKLINE_MAX` (the most recent).
* "Change since the last session" compares this period's mean with the previous
  period's mean for the same role.
* The split-alliance gap compares the two partners' **period means** for the
  alliance role, not their latest ratings: a single rating is noisy, and a mean is
  what the previous period is summarised as, so "widening" compares like with like.
  The flag is raised when the gap reaches ``split_alliance_threshold`` or grew by at
  least ``split_alliance_widening`` since the previous period.
* Quotes: most recent first, each whole while it fits, then one last quote cut at a
  word boundary with an ellipsis if at least ``min_quote_fragment`` characters are
  left; the quoted characters never exceed ``quote_budget_chars``, the same for both.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from bot.core.digest_render import partner_section_text
from bot.core.themes import Theme, shared_themes

Slot = Literal["A", "B"]
ScoreRole = Literal["wellbeing", "hope", "alliance"]
Practice = Literal["yes", "partly", "no"]
QuoteSource = Literal["note", "reply"]

SLOTS: tuple[Slot, Slot] = ("A", "B")
SCORE_ROLES: tuple[ScoreRole, ...] = ("wellbeing", "hope", "alliance")
SCALE_MAX = 10.0
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARKLINE_MAX = 28
# A change in mean hope of this many points (0-10) is worth a line on the agenda.
HOPE_CHANGE_POINTS = 1.5
# Check-in counts this far apart (and the smaller at most half the larger) read as uneven.
UNEVEN_CHECKINS = 3
# Shares of prompts answered this far apart read as uneven.
UNEVEN_ANSWER_SHARE = 0.5
AGENDA_MAX = 6
_SPACES = re.compile(r"\s+")


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


# --- composition -------------------------------------------------------------------


def _aware(when: datetime, what: str) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime")


def _validate(data: DigestInput) -> None:
    slots = sorted(p.slot for p in data.partners)
    if slots != ["A", "B"]:
        raise ValueError(f"a digest needs partners in slots A and B, got {slots}")
    if data.first_slot not in SLOTS:
        raise ValueError(f"first_slot must be A or B, got {data.first_slot!r}")
    _aware(data.period_start, "period_start")
    _aware(data.period_end, "period_end")
    if data.previous_session_at is not None:
        _aware(data.previous_session_at, "previous_session_at")
    if data.settings.quote_budget_chars < 0 or data.settings.min_quote_fragment < 2:
        raise ValueError("quote budget must be >= 0 and the minimum fragment >= 2")
    for partner in data.partners:
        for checkin in partner.checkins:
            _aware(checkin.at, "check-in time")
            for role, score in checkin.scores.items():
                if not 0.0 <= score <= SCALE_MAX or math.isnan(score):
                    raise ValueError(f"{role} score {score} is outside 0-10")
        for role, score in partner.previous_scores.items():
            if not 0.0 <= score <= SCALE_MAX or math.isnan(score):
                raise ValueError(f"previous {role} score {score} is outside 0-10")
        for reply in partner.replies:
            _aware(reply.at, "reply time")
    for alert in data.alerts:
        _aware(alert.at, "alert time")


def sparkline(values: tuple[float, ...]) -> str:
    """One block per value on a fixed 0-10 scale, so two partners' lines compare."""
    top = len(SPARK_BLOCKS) - 1
    recent = values[-SPARKLINE_MAX:]
    return "".join(SPARK_BLOCKS[min(top, max(0, round(v / SCALE_MAX * top)))] for v in recent)


def _mean(values: tuple[float, ...]) -> float | None:
    return sum(values) / len(values) if values else None


def _role_scores(
    role: ScoreRole, checkins: tuple[CheckinData, ...], previous: float | None
) -> RoleScores:
    values = tuple(float(c.scores[role]) for c in checkins if role in c.scores)
    mean = _mean(values)
    change = None if mean is None or previous is None else round(mean - previous, 2)
    return RoleScores(
        role=role,
        values=values,
        sparkline=sparkline(values),
        mean=None if mean is None else round(mean, 2),
        latest=values[-1] if values else None,
        previous=None if previous is None else round(float(previous), 2),
        change=change,
    )


def _skill_counts(
    skills: tuple[SkillPracticeData, ...], answer: Practice
) -> tuple[SkillCount, ...]:
    counts = Counter(s.skill_name for s in skills if s.tried == answer)
    return tuple(
        SkillCount(name=name, times=times)
        for name, times in sorted(counts.items(), key=lambda item: (item[0].casefold(), item[0]))
    )


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def cut_at_word(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    room = limit - 1  # one character for the ellipsis
    head = text[:room]
    if text[room] != " ":
        space = head.rfind(" ")
        # A very long "word" (a link, say) is cut hard rather than dropped whole.
        if space >= room // 2:
            head = head[:space]
    head = head.rstrip(" ,;:.-–—") or text[:room]
    return head + "…"


def choose_quotes(
    items: list[tuple[datetime, str, QuoteSource]], budget: int, min_fragment: int
) -> tuple[tuple[Quote, ...], int]:
    """Most recent first, whole while they fit, then one cut to what is left of ``budget``.

    Returns the quotes and how many OK-to-raise items did not fit.
    """
    ordered = sorted(items, key=lambda item: (item[0], item[1]), reverse=True)
    quotes: list[Quote] = []
    left = budget
    for at, text, source in ordered:
        if len(text) <= left:
            quotes.append(Quote(at=at, text=text, truncated=False, source=source))
            left -= len(text)
            continue
        if left >= min_fragment:
            cut = cut_at_word(text, left)
            quotes.append(Quote(at=at, text=cut, truncated=True, source=source))
        break
    return tuple(quotes), len(ordered) - len(quotes)


def ok_to_raise_texts(partner: PartnerData) -> list[tuple[datetime, str, QuoteSource]]:
    """The partner's notes and replies marked OK to raise (the only words ever shown)."""
    items: list[tuple[datetime, str, QuoteSource]] = []
    for checkin in partner.checkins:
        if checkin.note and checkin.ok_to_raise is True and _clean(checkin.note):
            items.append((checkin.at, _clean(checkin.note), "note"))
    for reply in partner.replies:
        if reply.ok_to_raise is True and _clean(reply.text):
            items.append((reply.at, _clean(reply.text), "reply"))
    return items


def _private_count(partner: PartnerData) -> int:
    notes = sum(
        1 for c in partner.checkins if c.note and _clean(c.note) and c.ok_to_raise is not True
    )
    replies = sum(1 for r in partner.replies if _clean(r.text) and r.ok_to_raise is not True)
    return notes + replies


def _partner_section(partner: PartnerData, settings: DigestSettings, tz: tzinfo) -> PartnerSection:
    checkins = tuple(sorted(partner.checkins, key=lambda c: c.at))
    scores = tuple(
        _role_scores(role, checkins, partner.previous_scores.get(role)) for role in SCORE_ROLES
    )
    items = [(at.astimezone(tz), text, src) for at, text, src in ok_to_raise_texts(partner)]
    quotes, left_out = choose_quotes(
        items, settings.quote_budget_chars, settings.min_quote_fragment
    )
    return PartnerSection(
        slot=partner.slot,
        display_name=partner.display_name,
        engagement=Engagement(
            prompts_delivered=partner.prompts_delivered,
            prompts_answered=partner.prompts_answered,
            checkins_complete=sum(1 for c in checkins if not c.partial),
            checkins_partial=sum(1 for c in checkins if c.partial),
            paused_days=partner.paused_days,
            unreachable_days=partner.unreachable_days,
            checkins=len(checkins),
            checkins_missed=partner.checkins_missed,
        ),
        scores=scores,
        skills=SkillPractice(
            tried=_skill_counts(partner.skill_prompts, "yes"),
            partly=_skill_counts(partner.skill_prompts, "partly"),
            not_yet=_skill_counts(partner.skill_prompts, "no"),
            no_reply=sum(1 for s in partner.skill_prompts if s.tried is None),
            prompts=len(partner.skill_prompts),
        ),
        own_words=OwnWords(
            quotes=quotes,
            quoted_chars=sum(len(q.text) for q in quotes),
            budget_chars=settings.quote_budget_chars,
            not_shown_for_space=left_out,
            private_count=_private_count(partner),
        ),
    )


def _couple_space(space: CoupleSpaceData, order: tuple[Slot, Slot], limit: int) -> CoupleSpaceView:
    def answer(slot: Slot, text: str | None, private: bool) -> SlotAnswer:
        if text is None or not _clean(text):
            return SlotAnswer(slot=slot, text=None, truncated=False, private=private)
        cleaned = _clean(text)
        cut = cut_at_word(cleaned, limit)
        return SlotAnswer(slot=slot, text=cut, truncated=cut != cleaned)

    answers = []
    for item in space.answers:
        by_slot = {"A": (item.answer_a, item.private_a), "B": (item.answer_b, item.private_b)}
        first, second = (answer(slot, *by_slot[slot]) for slot in order)
        answers.append(
            CoupleAnswer(prompt_title=_clean(item.prompt_title), answers=(first, second))
        )
    return CoupleSpaceView(
        prompts_sent=space.prompts_sent,
        both_answered=space.both_answered,
        both_shared=space.both_shared,
        answers=tuple(answers),
    )


def _alliance(
    sections: tuple[PartnerSection, PartnerSection], settings: DigestSettings
) -> AllianceBalance:
    first, second = (s.role("alliance") for s in sections)
    gap = None
    if first.mean is not None and second.mean is not None:
        gap = round(abs(first.mean - second.mean), 2)
    previous_gap = None
    if first.previous is not None and second.previous is not None:
        previous_gap = round(abs(first.previous - second.previous), 2)
    widening = None if gap is None or previous_gap is None else round(gap - previous_gap, 2)
    reasons: list[Literal["gap", "widening"]] = []
    if gap is not None and gap >= settings.split_alliance_threshold:
        reasons.append("gap")
    if widening is not None and widening >= settings.split_alliance_widening:
        reasons.append("widening")
    return AllianceBalance(
        entries=(
            AllianceEntry(slot=sections[0].slot, scores=first),
            AllianceEntry(slot=sections[1].slot, scores=second),
        ),
        gap=gap,
        previous_gap=previous_gap,
        widening=widening,
        split=bool(reasons),
        reasons=tuple(reasons),
        threshold=settings.split_alliance_threshold,
        widening_threshold=settings.split_alliance_widening,
    )


def _safety(data: DigestInput, order: tuple[Slot, Slot], tz: tzinfo) -> Safety:
    kept = [a for a in data.alerts if a.open or data.period_start <= a.at <= data.period_end]
    kept.sort(key=lambda a: (a.at, order.index(a.slot), a.kind, a.open, a.acknowledged))
    return Safety(
        alerts=tuple(
            AlertView(
                slot=a.slot,
                kind=a.kind,
                at=a.at.astimezone(tz),
                open=a.open,
                acknowledged=a.acknowledged,
            )
            for a in kept
        ),
        open_count=sum(1 for a in kept if a.open),
        declined=tuple(
            (slot, count)
            for slot in order
            if (
                count := sum(
                    c.safety_declined for p in data.partners if p.slot == slot for c in p.checkins
                )
            )
        ),
    )


def _hope_direction(section: PartnerSection) -> int:
    change = section.role("hope").change
    if change is None:
        return 0
    if change >= HOPE_CHANGE_POINTS:
        return 1
    if change <= -HOPE_CHANGE_POINTS:
        return -1
    return 0


def _hope_agenda(sections: tuple[PartnerSection, PartnerSection]) -> list[AgendaItem]:
    (s1, d1), (s2, d2) = ((s, _hope_direction(s)) for s in sections)
    if d1 == d2 == 1:
        return [AgendaItem("hope_both_rising")]
    if d1 == d2 == -1:
        return [AgendaItem("hope_both_falling")]
    if d1 * d2 == -1:
        rising, falling = (s1, s2) if d1 == 1 else (s2, s1)
        return [AgendaItem("hope_diverging", slots=(rising.slot, falling.slot))]
    for section, direction in ((s1, d1), (s2, d2)):
        if direction:
            key: AgendaKey = "hope_rising" if direction == 1 else "hope_falling"
            return [AgendaItem(key, slots=(section.slot,))]
    return []


def _skills_agenda(sections: tuple[PartnerSection, PartnerSection]) -> list[AgendaItem]:
    practices = [s.skills for s in sections]
    if all(p.prompts == 0 for p in practices):
        return []
    tried = [bool(p.tried or p.partly) for p in practices]
    if all(tried):
        names = sorted(
            {c.name for p in practices for c in (*p.tried, *p.partly)},
            key=lambda n: (n.casefold(), n),
        )
        return [AgendaItem("skills_both", words=tuple(names))]
    if any(tried):
        return [AgendaItem("skills_uneven")]
    return [AgendaItem("skills_none")]


def _answer_share(engagement: Engagement) -> float | None:
    if engagement.prompts_delivered <= 0:
        return None
    return min(1.0, engagement.prompts_answered / engagement.prompts_delivered)


def _engagement_agenda(sections: tuple[PartnerSection, PartnerSection]) -> list[AgendaItem]:
    e1, e2 = (s.engagement for s in sections)
    low, high = sorted((e1.checkins, e2.checkins))
    if high == 0:
        return [AgendaItem("engagement_none")]
    uneven = low == 0 or (high - low >= UNEVEN_CHECKINS and low * 2 <= high)
    shares = (_answer_share(e1), _answer_share(e2))
    if shares[0] is not None and shares[1] is not None:
        uneven = uneven or abs(shares[0] - shares[1]) >= UNEVEN_ANSWER_SHARE
    return [AgendaItem("engagement_uneven")] if uneven else []


def _agenda(
    sections: tuple[PartnerSection, PartnerSection], together: Together, safety: Safety
) -> tuple[AgendaItem, ...]:
    items: list[AgendaItem] = []
    if safety.open_count:
        items.append(AgendaItem("safety_open"))
    alliance = together.alliance
    if "gap" in alliance.reasons:
        items.append(AgendaItem("split_gap", number=alliance.gap))
    elif "widening" in alliance.reasons:
        items.append(AgendaItem("split_widening", number=alliance.widening))
    items += _hope_agenda(sections)
    if together.themes:
        items.append(AgendaItem("themes", words=tuple(t.word for t in together.themes[:3])))
    items += _skills_agenda(sections)
    items += _engagement_agenda(sections)
    if any(s.engagement.unreachable_days > 0 for s in sections):
        items.append(AgendaItem("unreachable"))
    return tuple(items[:AGENDA_MAX]) or (AgendaItem("default"),)


def compose_digest(data: DigestInput) -> Digest:
    """The balanced digest of one couple's period (pure: no clock, no I/O)."""
    _validate(data)
    tz = data.therapist_tz
    second_slot: Slot = "B" if data.first_slot == "A" else "A"
    order: tuple[Slot, Slot] = (data.first_slot, second_slot)
    by_slot = {p.slot: p for p in data.partners}
    first, second = by_slot[order[0]], by_slot[order[1]]
    sections = (
        _partner_section(first, data.settings, tz),
        _partner_section(second, data.settings, tz),
    )
    themes = shared_themes(
        [text for _, text, _ in ok_to_raise_texts(first)],
        first.language,
        [text for _, text, _ in ok_to_raise_texts(second)],
        second.language,
        exclude=(first.display_name, second.display_name),
        limit=data.settings.theme_limit,
    )
    together = Together(
        themes=themes,
        couple_space=_couple_space(data.couple_space, order, data.settings.couple_answer_chars),
        alliance=_alliance(sections, data.settings),
    )
    safety = _safety(data, order, tz)
    chars = [len(partner_section_text(s, data.therapist_language)) for s in sections]
    total = sum(chars) or 1
    balance = Balance(
        shares=(
            BalanceShare(slot=order[0], chars=chars[0], share=round(chars[0] / total, 4)),
            BalanceShare(slot=order[1], chars=chars[1], share=round(chars[1] / total, 4)),
        ),
        ratio=1.0 if max(chars) == 0 else round(min(chars) / max(chars), 4),
    )
    return Digest(
        couple_handle=data.couple_handle,
        couple_label=data.couple_label,
        language=data.therapist_language,
        timezone=str(tz),
        period_start=data.period_start.astimezone(tz),
        period_end=data.period_end.astimezone(tz),
        previous_session_at=(
            None if data.previous_session_at is None else data.previous_session_at.astimezone(tz)
        ),
        first_slot=data.first_slot,
        partners=sections,
        together=together,
        safety=safety,
        agenda=_agenda(sections, together, safety),
        balance=balance,
    )
