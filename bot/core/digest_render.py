"""Rendering a :class:`~bot.core.digest.Digest`: plain text, Telegram HTML, a printable page, JSON.

Every renderer walks one document model built here (parts made of blocks made of
styled spans), so the four outputs say the same things in the same order. All words
come from the ``digest`` catalogs through :func:`~bot.locales.t`; all user text is
escaped. Telegram output is split into messages of at most 4,096 characters between
parts, or between lines (closing and reopening tags) when one part is too long.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.locales import resolve, t
from bot.locales.formats import format_date, format_datetime, format_day, format_list, format_number

if TYPE_CHECKING:  # digest.py imports this module to measure balance
    from bot.core.digest import (
        AgendaItem,
        AlertView,
        Digest,
        PartnerSection,
        RoleScores,
        SkillCount,
    )

TELEGRAM_LIMIT = 4096

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


def _header(digest: Digest, language: str) -> Part:
    first, second = digest.partners
    blocks = [
        Block("title", (Span(_k(language, "title", label=digest.couple_label), "bold"),)),
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


def _document(digest: Digest, language: str) -> tuple[Part, ...]:
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


def _text_part(part: Part) -> str:
    return "\n".join(_text_block(block) for block in part.blocks)


def partner_section_text(section: PartnerSection, language: str) -> str:
    """The plain-text rendering of one partner's section (what the balance figure measures)."""
    return _text_part(Part("partner", _partner_blocks(section, language)))


def render_text(digest: Digest, language: str) -> str:
    """The digest as plain text."""
    return "\n\n".join(_text_part(part) for part in _document(digest, language)) + "\n"


# --- Telegram HTML ---------------------------------------------------------------

_TG_STYLE: dict[Style, tuple[str, str]] = {
    "plain": ("", ""),
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "code": ("<code>", "</code>"),
}


def _tg_spans(spans: Iterable[Span]) -> str:
    out = []
    for span in spans:
        opening, closing = _TG_STYLE[span.style]
        out.append(f"{opening}{html.escape(span.text)}{closing}")
    return "".join(out)


def _tg_block(block: Block) -> str:
    inner = _tg_spans(block.spans)
    match block.kind:
        case "title":
            return inner  # its one span is bold already
        case "subheading":
            return f"<b>{inner}</b>"
        case "heading":
            return f"<b><u>{inner}</u></b>"
        case "item":
            return f"• {inner}"
        case "subitem":
            return f"    {inner}"
        case "quote":
            return f"<blockquote>{inner}</blockquote>"
        case "flag":
            return f"⚑ {inner}"
        case _:
            return inner


def _measure(text: str) -> int:
    # Telegram counts UTF-16 code units; raw HTML is never shorter than what it parses to.
    return len(text.encode("utf-16-le")) // 2


_TOKEN = re.compile(r"<[^>]*>|[^<]+")
_TAG_NAME = re.compile(r"</?([a-zA-Z]+)")
_WORDS = re.compile(r"\s+|\S+")
_UNIT = re.compile(r"&[#\w]+;|.", re.DOTALL)


def _closing(stack: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def _reopening(stack: list[tuple[str, str]]) -> str:
    return "".join(tag for _, tag in stack)


def _after(stack: list[tuple[str, str]], atom: str) -> list[tuple[str, str]]:
    if not atom.startswith("<"):
        return stack
    found = _TAG_NAME.match(atom)
    if found is None:
        return stack
    if atom.startswith("</"):
        return stack[:-1] if stack and stack[-1][0] == found.group(1) else stack
    return [*stack, (found.group(1), atom)]


def _atoms(line: str) -> list[str]:
    atoms: list[str] = []
    for token in _TOKEN.findall(line):
        atoms.extend([token] if token.startswith("<") else _WORDS.findall(token))
    return atoms


def split_html(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split Telegram HTML into chunks of at most ``limit``, between lines where possible.

    A tag open at a split is closed at the end of one chunk and reopened at the start
    of the next; a line longer than a chunk is split between words, and a word longer
    than a chunk between characters (never inside an entity such as ``&amp;``).
    """
    chunks: list[str] = []
    stack: list[tuple[str, str]] = []
    current = ""
    filled = False  # whether ``current`` holds anything beyond reopened tags

    def flush() -> None:
        nonlocal current, filled
        if filled:
            chunks.append(current + _closing(stack))
        current, filled = _reopening(stack), False

    def add(atom: str) -> None:
        nonlocal current, filled, stack
        after = _after(stack, atom)
        if _measure(current + atom + _closing(after)) > limit and filled:
            flush()
        if not filled and not atom.strip():
            return  # no chunk starts with the space or newline it was split at
        if _measure(current + atom + _closing(after)) > limit:
            # One word longer than a whole chunk: cut it between characters.
            for unit in _UNIT.findall(atom):
                if _measure(current + unit + _closing(stack)) > limit and filled:
                    flush()
                current, filled = current + unit, True
            return
        current, stack = current + atom, after
        filled = filled or not atom.startswith("<")

    for index, line in enumerate(text.split("\n")):
        after = stack
        for atom in _TOKEN.findall(line):
            after = _after(after, atom)
        joiner = "\n" if index and filled else ""
        whole = current + joiner + line + _closing(after)
        if filled and _measure(whole) > limit:
            flush()
            joiner = ""
        if _measure(current + joiner + line + _closing(after)) <= limit:
            current, stack = current + joiner + line, after
            filled = filled or bool(line)
            continue
        for atom in _atoms(line):
            add(atom)
    if filled:
        chunks.append(current + _closing(stack))
    return chunks


def _subsections(part: Part) -> list[tuple[Block, ...]]:
    """A part's blocks cut before each subheading (the heading stays with the first)."""
    groups: list[list[Block]] = [[]]
    for block in part.blocks:
        if block.kind == "subheading" and groups[-1]:
            groups.append([])
        groups[-1].append(block)
    return [tuple(group) for group in groups]


def _tg_html(blocks: Iterable[Block]) -> str:
    return "\n".join(_tg_block(block) for block in blocks)


def render_telegram_html(
    digest: Digest, language: str, *, limit: int = TELEGRAM_LIMIT
) -> list[str]:
    """The digest as Telegram HTML messages of at most ``limit`` characters each.

    Parts are never split when they fit in a message; a longer part is split between
    its subsections, and a subsection longer than a message between lines.
    """
    messages: list[str] = []
    current = ""

    def push(separator: str, body: str) -> None:
        nonlocal current
        if current and _measure(current + separator + body) <= limit:
            current += separator + body
            return
        if current:
            messages.append(current)
        pieces = [body] if _measure(body) <= limit else split_html(body, limit)
        messages.extend(pieces[:-1])
        current = pieces[-1] if pieces else ""

    for part in _document(digest, language):
        body = _tg_html(part.blocks)
        if _measure(body) <= limit:
            push("\n\n", body)
            continue
        for index, group in enumerate(_subsections(part)):
            push("\n" if index else "\n\n", _tg_html(group))
    if current:
        messages.append(current)
    return messages


# --- standalone HTML page ------------------------------------------------------------

_PAGE_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;
max-width:62rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.4rem;margin:0 0 .4rem}
h2{font-size:1.15rem;border-bottom:1px solid #bbb;padding-bottom:.2rem;margin:1.4rem 0 .4rem}
h3{font-size:1rem;margin:.9rem 0 .2rem}
p{margin:.2rem 0}
ul{margin:.2rem 0;padding-left:1.3rem}
ul.sub{list-style:none;padding-left:1.3rem}
blockquote{margin:.3rem 0;padding:.2rem .7rem;border-left:3px solid #999}
code{font-family:ui-monospace,Menlo,Consolas,monospace;letter-spacing:.05em}
.note{color:#555}
.flag{font-weight:bold;color:#8a3b00}
.partners{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem}
@media (max-width:40rem){.partners{grid-template-columns:1fr}}
@media print{body{margin:0;max-width:none;font-size:10.5pt}section{break-inside:avoid}}
""".strip()

_PAGE_STYLE_TAGS: dict[Style, tuple[str, str]] = {
    "plain": ("", ""),
    "bold": ("<strong>", "</strong>"),
    "italic": ("<em>", "</em>"),
    "code": ("<code>", "</code>"),
}


def _page_spans(spans: Iterable[Span]) -> str:
    out = []
    for span in spans:
        opening, closing = _PAGE_STYLE_TAGS[span.style]
        out.append(f"{opening}{html.escape(span.text)}{closing}")
    return "".join(out)


def _page_part(part: Part) -> str:
    out: list[str] = [f'<section class="{html.escape(part.name)}">']
    open_list: str | None = None

    def close_list() -> None:
        nonlocal open_list
        if open_list is not None:
            out.append("</ul>")
            open_list = None

    for block in part.blocks:
        inner = _page_spans(block.spans)
        if block.kind in ("item", "subitem"):
            wanted = "ul" if block.kind == "item" else 'ul class="sub"'
            if open_list != wanted:
                close_list()
                out.append(f"<{wanted}>")
                open_list = wanted
            out.append(f"<li>{inner}</li>")
            continue
        close_list()
        wrap: Callable[[str], str] = {
            "title": lambda s: f"<h1>{s}</h1>",
            "heading": lambda s: f"<h2>{s}</h2>",
            "subheading": lambda s: f"<h3>{s}</h3>",
            "line": lambda s: f"<p>{s}</p>",
            "note": lambda s: f'<p class="note">{s}</p>',
            "quote": lambda s: f"<blockquote>{s}</blockquote>",
            "flag": lambda s: f'<p class="flag">⚑ {s}</p>',
        }[block.kind]
        out.append(wrap(inner))
    close_list()
    out.append("</section>")
    return "\n".join(out)


def render_html_page(digest: Digest, language: str) -> str:
    """The digest as a standalone, printable HTML page (inline stylesheet, all text escaped)."""
    parts = _document(digest, language)
    header, first, second, *rest = parts
    title = html.escape(_k(language, "title", label=digest.couple_label))
    body = [
        _page_part(header),
        '<div class="partners">',
        _page_part(first),
        _page_part(second),
        "</div>",
        *(_page_part(part) for part in rest),
    ]
    return (
        "<!doctype html>\n"
        f'<html lang="{html.escape(resolve(language))}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{_PAGE_STYLE}\n</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def render_html_sections(digest: Digest, language: str) -> tuple[str, ...]:
    """The printable page's sections (header, each partner, together, safety, agenda) as
    HTML without the page around them, for pages that bring their own stylesheet."""
    return tuple(_page_part(part) for part in _document(digest, language))


# --- JSON ------------------------------------------------------------------------------


def render_json(digest: Digest) -> str:
    """The digest as JSON (stable key order, UTF-8 text kept readable)."""
    return json.dumps(digest.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
