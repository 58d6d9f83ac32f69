"""The digest as a document: parts made of blocks made of styled spans, in the reader's words.

Every renderer (:mod:`bot.core.digest.render`) walks this one document, so the plain
text, the Telegram HTML and the printable page say the same things in the same order.
All words come from the ``digest`` catalogs through :func:`~bot.locales.t`. The plain
text of a partner's section lives here too: it is what the balance figure measures
(:mod:`bot.core.digest.compose`), the same template whoever the partner is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot.core.digest.model import (
    AgendaItem,
    AlertView,
    Digest,
    PartnerSection,
    RoleScores,
    SkillCount,
)
from bot.locales import t
from bot.locales.formats import format_date, format_datetime, format_day, format_list, format_number

Style = Literal["plain", "bold", "italic", "code"]
BlockKind = Literal[
    "title", "heading", "subheading", "line", "note", "item", "subitem", "quote", "flag"
]
_MARK = "\x00"  # stands in for a styled value inside a catalog message


@dataclass(frozen=True)
class Span:
    """A run of text with one style."""

    text: str
    style: Style = "plain"


@dataclass(frozen=True)
class Block:
    """One line of the digest: a heading, a bullet, a quote, a flag..."""

    kind: BlockKind
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Part:
    """A part of the digest (header, one partner, together, safety, agenda, balance)."""

    name: str
    blocks: tuple[Block, ...]


# --- formatting helpers ------------------------------------------------------------


def _k(language: str, key: str, /, **params: object) -> str:
    return t(language, f"digest.{key}", **params)


def _signed(value: float, language: str) -> str:
    sign = "+" if value > 0 else "−"
    return sign + format_number(abs(value), language)


def _join(words: Iterable[str], language: str) -> str:
    return format_list(words, language)


def _styled(text: str, value: str, style: Style) -> tuple[Span, ...]:
    """Spans for a catalog message holding ``_MARK`` where ``value`` goes, styled."""
    before, _, after = text.partition(_MARK)
    spans = [Span(before), Span(value, style), Span(after)]
    return tuple(s for s in spans if s.text)


def _item(text: str, style: Style = "plain") -> Block:
    return Block("item", (Span(text, style),))


# --- the document ------------------------------------------------------------------


def _score_line(label: str, scores: RoleScores, language: str) -> Block:
    if scores.mean is None or scores.latest is None:
        return _item(_k(language, "scores.no_rating", role=label))
    if scores.change is None:
        change = _k(language, "scores.no_previous")
    elif abs(scores.change) < 0.05:
        change = _k(language, "scores.no_change")
    else:
        change = _k(language, "scores.change", change=_signed(scores.change, language))
    text = _k(
        language,
        "scores.line",
        role=label,
        sparkline=_MARK,
        mean=format_number(scores.mean, language),
        latest=format_number(scores.latest, language),
        change=change,
    )
    return Block("item", _styled(text, scores.sparkline, "code"))


def _skill_names(counts: tuple[SkillCount, ...], language: str) -> str:
    return _join(
        (
            c.name if c.times == 1 else _k(language, "skills.times", name=c.name, times=c.times)
            for c in counts
        ),
        language,
    )


def _partner_blocks(section: PartnerSection, language: str) -> tuple[Block, ...]:
    """One partner's blocks; the template is the same whoever the partner is."""
    blocks: list[Block] = [
        Block(
            "heading",
            (Span(_k(language, "partner_heading", name=section.display_name, slot=section.slot)),),
        )
    ]
    engagement = section.engagement
    blocks.append(Block("subheading", (Span(_k(language, "section.engagement")),)))
    if engagement.prompts_delivered:
        blocks.append(
            _item(
                _k(
                    language,
                    "engagement.prompts",
                    answered=engagement.prompts_answered,
                    delivered=engagement.prompts_delivered,
                )
            )
        )
    else:
        blocks.append(_item(_k(language, "engagement.no_prompts")))
    if engagement.checkins:
        blocks.append(
            _item(
                _k(
                    language,
                    "engagement.checkins",
                    complete=engagement.checkins_complete,
                    partial=engagement.checkins_partial,
                )
            )
        )
    else:
        blocks.append(_item(_k(language, "engagement.no_checkins")))
    # Shown for both partners alike, zero included: the same form for each.
    blocks.append(_item(_k(language, "engagement.missed", missed=engagement.checkins_missed)))
    blocks.append(
        _item(
            _k(
                language,
                "engagement.days",
                paused=engagement.paused_days,
                unreachable=engagement.unreachable_days,
            )
        )
    )

    blocks.append(Block("subheading", (Span(_k(language, "section.scores")),)))
    if all(s.mean is None for s in section.scores):
        blocks.append(_item(_k(language, "scores.no_checkins")))
    else:
        for scores in section.scores:
            label = _k(language, f"role.{scores.role}")
            blocks.append(_score_line(label, scores, language))

    skills = section.skills
    blocks.append(Block("subheading", (Span(_k(language, "section.skills")),)))
    if skills.prompts == 0:
        blocks.append(_item(_k(language, "skills.none")))
    else:
        for key, counts in (
            ("tried", skills.tried),
            ("partly", skills.partly),
            ("not_yet", skills.not_yet),
        ):
            label = _k(language, f"skills.{key}", count=sum(c.times for c in counts))
            if counts:
                label = _k(
                    language, "skills.named", label=label, names=_skill_names(counts, language)
                )
            blocks.append(_item(label))
        blocks.append(_item(_k(language, "skills.no_reply", count=skills.no_reply)))

    words = section.own_words
    blocks.append(Block("subheading", (Span(_k(language, "section.own_words")),)))
    for quote in words.quotes:
        blocks.append(
            Block(
                "quote",
                (
                    Span(_k(language, "words.quote", text=quote.text)),
                    Span(
                        " " + _k(language, "words.when", date=format_day(quote.at, language)),
                        "italic",
                    ),
                ),
            )
        )
    if not words.quotes:
        blocks.append(_item(_k(language, "words.none")))
    blocks.append(
        _item(
            _k(
                language,
                "words.budget",
                used=words.quoted_chars,
                budget=words.budget_chars,
                left_out=words.not_shown_for_space,
            )
        )
    )
    blocks.append(_item(_k(language, "words.private", count=words.private_count)))
    return tuple(blocks)


def digest_title(digest: Digest, language: str) -> str:
    """The digest's title: its first line, and the printable page's ``<title>``."""
    return _k(language, "title", label=digest.couple_label)


def _header(digest: Digest, language: str) -> Part:
    first, second = digest.partners
    blocks = [
        Block("title", (Span(digest_title(digest, language), "bold"),)),
        Block("line", (Span(_k(language, "handle_line", handle=digest.couple_handle)),)),
        Block(
            "line",
            (
                Span(
                    _k(
                        language,
                        "period",
                        start=format_date(digest.period_start, language),
                        end=format_date(digest.period_end, language),
                    )
                ),
            ),
        ),
    ]
    if digest.previous_session_at is None:
        blocks.append(Block("line", (Span(_k(language, "first_digest")),)))
    else:
        previous = format_date(digest.previous_session_at, language)
        blocks.append(Block("line", (Span(_k(language, "previous_session", date=previous)),)))
    blocks.append(
        Block(
            "note",
            (
                Span(
                    _k(
                        language,
                        "order_note",
                        first=first.display_name,
                        second=second.display_name,
                    ),
                    "italic",
                ),
            ),
        )
    )
    blocks.append(_balance(digest, language))
    return Part("header", tuple(blocks))


def _together(digest: Digest, language: str) -> Part:
    together = digest.together
    blocks: list[Block] = [Block("heading", (Span(_k(language, "section.together")),))]

    blocks.append(Block("subheading", (Span(_k(language, "section.themes")),)))
    if together.themes:
        blocks.append(_item(_join((theme.word for theme in together.themes), language)))
    else:
        blocks.append(_item(_k(language, "themes.none")))
    blocks.append(Block("note", (Span(_k(language, "themes.source"), "italic"),)))

    space = together.couple_space
    blocks.append(Block("subheading", (Span(_k(language, "section.couple_space")),)))
    if space.prompts_sent == 0 and not space.answers:
        blocks.append(_item(_k(language, "couple.none")))
    else:
        blocks.append(
            _item(
                _k(
                    language,
                    "couple.activity",
                    sent=space.prompts_sent,
                    answered=space.both_answered,
                    shared=space.both_shared,
                )
            )
        )
        for answer in space.answers:
            blocks.append(_item(answer.prompt_title, "italic"))
            for slot_answer in answer.answers:
                name = digest.partner(slot_answer.slot).display_name
                if slot_answer.private:
                    text = _k(language, "couple.kept_private", name=name)
                elif slot_answer.text is None:
                    text = _k(language, "couple.no_answer", name=name)
                else:
                    quoted = _k(language, "words.quote", text=slot_answer.text)
                    text = _k(language, "couple.answer", name=name, text=quoted)
                blocks.append(Block("subitem", (Span(text),)))

    alliance = together.alliance
    blocks.append(Block("subheading", (Span(_k(language, "section.alliance")),)))
    blocks.append(Block("note", (Span(_k(language, "alliance.about"), "italic"),)))
    for entry in alliance.entries:
        name = digest.partner(entry.slot).display_name
        blocks.append(_score_line(name, entry.scores, language))
    if alliance.gap is None:
        blocks.append(_item(_k(language, "alliance.no_gap")))
    elif alliance.previous_gap is None:
        blocks.append(
            _item(_k(language, "alliance.gap", gap=format_number(alliance.gap, language)))
        )
    else:
        blocks.append(
            _item(
                _k(
                    language,
                    "alliance.gap_previous",
                    gap=format_number(alliance.gap, language),
                    previous=format_number(alliance.previous_gap, language),
                )
            )
        )
    if alliance.split:
        reasons = []
        if "gap" in alliance.reasons and alliance.gap is not None:
            reasons.append(
                _k(
                    language,
                    "alliance.split_gap",
                    gap=format_number(alliance.gap, language),
                    threshold=format_number(alliance.threshold, language),
                )
            )
        if "widening" in alliance.reasons and alliance.widening is not None:
            reasons.append(
                _k(
                    language,
                    "alliance.split_widening",
                    widening=format_number(alliance.widening, language),
                    threshold=format_number(alliance.widening_threshold, language),
                )
            )
        text = _k(
            language,
            "alliance.split",
            reasons=_k(language, "format.reason_separator").join(reasons),
        )
        blocks.append(Block("flag", (Span(text, "bold"),)))
    else:
        blocks.append(
            _item(
                _k(
                    language,
                    "alliance.no_split",
                    threshold=format_number(alliance.threshold, language),
                    widening=format_number(alliance.widening_threshold, language),
                )
            )
        )
    return Part("together", tuple(blocks))


def _alert_kind(kind: str, language: str) -> str:
    known = {"safety_question", "crisis_words", "suicide", "self_harm", "violence"}
    return _k(language, f"safety.kind.{kind if kind in known else 'other'}")


def _alert_line(alert: AlertView, digest: Digest, language: str) -> Block:
    if not alert.open:
        status = _k(language, "safety.closed")
    elif alert.acknowledged:
        status = _k(language, "safety.open_seen")
    else:
        status = _k(language, "safety.open_unseen")
    text = _k(
        language,
        "safety.alert",
        kind=_alert_kind(alert.kind, language),
        name=digest.partner(alert.slot).display_name,
        slot=alert.slot,
        time=format_datetime(alert.at, language),
        status=status,
    )
    return _item(text, "bold" if alert.open and not alert.acknowledged else "plain")


def _safety(digest: Digest, language: str) -> Part:
    blocks: list[Block] = [Block("heading", (Span(_k(language, "section.safety")),))]
    if not digest.safety.alerts and not digest.safety.declined:
        blocks.append(_item(_k(language, "safety.none")))
    for slot, count in digest.safety.declined:
        name = digest.partner(slot).display_name
        blocks.append(_item(_k(language, "safety.declined", name=name, count=count)))
    for alert in digest.safety.alerts:
        blocks.append(_alert_line(alert, digest, language))
    if digest.safety.open_count:
        blocks.append(Block("note", (Span(_k(language, "safety.hold"), "italic"),)))
    return Part("safety", tuple(blocks))


def agenda_text(item: AgendaItem, digest: Digest, language: str) -> str:
    """One agenda bullet in words."""
    names = [digest.partner(slot).display_name for slot in item.slots]
    number = "" if item.number is None else format_number(item.number, language)
    return _k(
        language,
        f"agenda.{item.key}",
        name=names[0] if names else "",
        rising=names[0] if names else "",
        falling=names[1] if len(names) > 1 else "",
        gap=number,
        widening=number,
        themes=_join(item.words, language),
        skills=_join(item.words, language),
    )


def _agenda(digest: Digest, language: str) -> Part:
    blocks = [Block("heading", (Span(_k(language, "section.agenda")),))]
    blocks += [_item(agenda_text(item, digest, language)) for item in digest.agenda]
    return Part("agenda", tuple(blocks))


def _balance(digest: Digest, language: str) -> Block:
    first, second = digest.balance.shares
    text = _k(
        language,
        "balance",
        first=digest.partner(first.slot).display_name,
        first_share=round(first.share * 100),
        second=digest.partner(second.slot).display_name,
        second_share=round(second.share * 100),
    )
    return Block("note", (Span(text, "italic"),))


def document(digest: Digest, language: str) -> tuple[Part, ...]:
    """The digest as parts: header (with balance), each partner, together, safety, agenda."""
    first, second = digest.partners
    return (
        _header(digest, language),
        Part(f"partner_{first.slot}", _partner_blocks(first, language)),
        Part(f"partner_{second.slot}", _partner_blocks(second, language)),
        _together(digest, language),
        _safety(digest, language),
        _agenda(digest, language),
    )


# --- plain text ----------------------------------------------------------------------

_TEXT_PREFIX: dict[BlockKind, str] = {
    "title": "",
    "heading": "",
    "subheading": "",
    "line": "",
    "note": "",
    "item": "  • ",
    "subitem": "      ",
    "quote": "  > ",
    "flag": "  ⚑ ",
}


def _text_block(block: Block) -> str:
    line = _TEXT_PREFIX[block.kind] + "".join(span.text for span in block.spans)
    if block.kind in ("title", "heading"):
        return f"{line}\n{'=' * len(line)}"
    return line


def part_text(part: Part) -> str:
    """A part as plain text: one line per block, titles and headings underlined."""
    return "\n".join(_text_block(block) for block in part.blocks)


def partner_section_text(section: PartnerSection, language: str) -> str:
    """The plain-text rendering of one partner's section (what the balance figure measures)."""
    return part_text(Part("partner", _partner_blocks(section, language)))
