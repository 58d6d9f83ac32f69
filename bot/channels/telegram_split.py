"""Telegram's 4,096-character messages: long HTML packed and split into valid messages.

Pure text work beside the Telegram adapter (:mod:`bot.channels.telegram`), without
python-telegram-bot, so services that queue long texts (the pre-session digest) can cut
them into messages before they reach the outbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

TELEGRAM_LIMIT = 4096
"""Characters in one Telegram message, measured here in UTF-16 code units (never fewer)."""


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


def telegram_messages(parts: Iterable[Sequence[str]], limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Parts of Telegram HTML packed into messages of at most ``limit`` characters each.

    Each part is a sequence of sections, read as the sections joined by newlines; parts
    are joined by blank lines. A part is never split when it fits in a message; a longer
    part is split between its sections, and a section longer than a message between
    lines (:func:`split_html`).
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

    for sections in parts:
        body = "\n".join(sections)
        if _measure(body) <= limit:
            push("\n\n", body)
            continue
        for index, section in enumerate(sections):
            push("\n" if index else "\n\n", section)
    if current:
        messages.append(current)
    return messages
