"""The balanced pre-session digest: the period's values in, a :class:`Digest` out (pure).

Both partners get the same sections in the same order and the same room for their
own words; which partner comes first is the caller's ``first_slot``, alternated from
one digest of a couple to the next. Only words a partner marked OK to raise are
quoted or used for themes; everything else is counted, never shown. Wording lives in
:mod:`bot.core.digest.document` and the ``digest`` catalogs; the values in and out are
in :mod:`bot.core.digest.model`.

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
* The balance figure is each partner's share of the characters of the two partner
  sections in plain text (``bot.core.digest.document.partner_section_text``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import datetime, tzinfo
from typing import Literal

from bot.core.digest.document import partner_section_text
from bot.core.digest.model import (
    SCORE_ROLES,
    SLOTS,
    AgendaItem,
    AgendaKey,
    AlertView,
    AllianceBalance,
    AllianceEntry,
    Balance,
    BalanceShare,
    CheckinData,
    CoupleAnswer,
    CoupleSpaceData,
    CoupleSpaceView,
    Digest,
    DigestInput,
    DigestSettings,
    Engagement,
    OwnWords,
    PartnerData,
    PartnerSection,
    Practice,
    Quote,
    QuoteSource,
    RoleScores,
    Safety,
    ScoreRole,
    SkillCount,
    SkillPractice,
    SkillPracticeData,
    Slot,
    SlotAnswer,
    Together,
)
from bot.core.themes import shared_themes

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
