"""Rendering a :class:`~bot.core.digest.Digest`: plain text, Telegram HTML, a printable page, JSON.

Every renderer walks the one document of :mod:`bot.core.digest.document`, so the four
outputs say the same things in the same order; all user text is escaped. The Telegram
rendering keeps the document's parts and their subsections apart: packing them into
messages of at most 4,096 characters is the Telegram channel's work
(:func:`bot.channels.telegram_split.telegram_messages`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable

from bot.core.digest.document import Block, Part, Span, Style, digest_title, document, part_text
from bot.core.digest.model import Digest
from bot.locales import resolve

TelegramParts = tuple[tuple[str, ...], ...]
"""The digest in Telegram HTML: one entry per part, holding the HTML of its subsections."""

# --- plain text ----------------------------------------------------------------------


def render_text(digest: Digest, language: str) -> str:
    """The digest as plain text."""
    return "\n\n".join(part_text(part) for part in document(digest, language)) + "\n"


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


def render_telegram_parts(digest: Digest, language: str) -> TelegramParts:
    """The digest as Telegram HTML, part by part, each part cut before its subheadings.

    A part reads as its subsections joined by newlines, and parts are meant to be joined
    by blank lines; the Telegram channel packs them into messages, keeping a part whole
    when it fits and otherwise splitting it between subsections first.
    """
    return tuple(
        tuple(_tg_html(group) for group in _subsections(part))
        for part in document(digest, language)
    )


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
    parts = document(digest, language)
    header, first, second, *rest = parts
    title = html.escape(digest_title(digest, language))
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
    return tuple(_page_part(part) for part in document(digest, language))


# --- JSON ------------------------------------------------------------------------------


def render_json(digest: Digest) -> str:
    """The digest as JSON (stable key order, UTF-8 text kept readable)."""
    return json.dumps(digest.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
