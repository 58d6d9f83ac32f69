"""Telegram's HTML parse mode, re-implemented strictly: text in, plain text and entities out.

The parser follows tdlib's `parse_html` (the code behind the real Bot API), including its
error texts and byte offsets, so a message that the real server would reject is rejected
here with the same description. It is stricter than the real server in one place: a bare
"&" that does not start a supported entity is an error, because Telegram's documentation
requires it to be escaped and a bot that forgets to escape user text would otherwise pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

# Tag name -> MessageEntity type, as in tdlib's parse_html.
_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}

_SPACES = " \t\r\n\f\v"


class EntityParseError(ValueError):
    """Markup that Telegram refuses; the message is the part after "can't parse entities: "."""


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    start: int  # UTF-16 offset in the output
    language: str | None = None


def utf16_length(text: str) -> int:
    """Length of `text` in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _decode_entity(source: str, index: int) -> tuple[str, int] | None:
    """Decode the HTML entity starting at `source[index]` ("&"); None when it is not one."""
    end = source.find(";", index + 1)
    if end == -1 or end - index > 10:
        return None
    body = source[index + 1 : end]
    if body in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[body], end + 1 - index
    if body.startswith("#"):
        digits = body[1:]
        try:
            code = int(digits[1:], 16) if digits[:1] in ("x", "X") else int(digits, 10)
        except ValueError:
            return None
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code), end + 1 - index
    return None


def _decode_attribute(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&":
            decoded = _decode_entity(value, i)
            if decoded is not None:
                out.append(decoded[0])
                i += decoded[1]
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into plain text and MessageEntity dicts (UTF-16 offsets)."""
    out: list[str] = []
    out_len = 0  # UTF-16 length of "".join(out)
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    n = len(source)
    i = 0
    while i < n:
        char = source[i]
        if char == "&":
            decoded = _decode_entity(source, i)
            if decoded is None:
                raise EntityParseError(
                    f"Unsupported HTML entity at byte offset {_byte_offset(source, i)}"
                    ' (a bare "&" must be written as "&amp;")'
                )
            out.append(decoded[0])
            out_len += utf16_length(decoded[0])
            i += decoded[1]
            continue
        if char != "<":
            out.append(char)
            out_len += 2 if ord(char) > 0xFFFF else 1
            i += 1
            continue
        begin = _byte_offset(source, i)
        if i + 1 < n and source[i + 1] == "/":
            i = _close_tag(source, i, begin, stack, entities, out_len)
        else:
            i = _open_tag(source, i, begin, stack, out_len)
    if stack:
        raise EntityParseError(f"Can't find end tag corresponding to start tag {stack[-1].name}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _open_tag(source: str, i: int, begin: int, stack: list[_OpenTag], out_len: int) -> int:
    n = len(source)
    j = i + 1
    while j < n and source[j] not in _SPACES and source[j] != ">":
        j += 1
    if j >= n:
        raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
    name = source[i + 1 : j].lower()
    if name not in _TAG_TYPES:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {begin}')
    attributes: dict[str, str] = {}
    while True:
        while j < n and source[j] in _SPACES:
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
        if source[j] == ">":
            break
        k = j
        while k < n and source[k] not in _SPACES and source[k] not in "=>":
            k += 1
        attribute = source[j:k].lower()
        if not attribute:
            raise EntityParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {begin}'
            )
        j = k
        while j < n and source[j] in _SPACES:
            j += 1
        if j < n and source[j] == "=":
            j += 1
            while j < n and source[j] in _SPACES:
                j += 1
            if j >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            if source[j] in "\"'":
                quote = source[j]
                close = source.find(quote, j + 1)
                if close == -1:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
                value = source[j + 1 : close]
                j = close + 1
            else:
                k = j
                while k < n and source[k] not in _SPACES and source[k] != ">":
                    k += 1
                value = source[j:k]
                j = k
            attributes[attribute] = _decode_attribute(value)
        else:
            attributes[attribute] = ""
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise EntityParseError('Tag "span" must have class "tg-spoiler"')
    if name == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
        raise EntityParseError('Custom emoji entity must contain a tag "emoji-id"')
    stack.append(_OpenTag(name=name, attributes=attributes, start=out_len))
    return j + 1


def _close_tag(
    source: str,
    i: int,
    begin: int,
    stack: list[_OpenTag],
    entities: list[dict[str, Any]],
    out_len: int,
) -> int:
    n = len(source)
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
    j = i + 2
    while j < n and source[j] not in _SPACES and source[j] != ">":
        j += 1
    end_name = source[i + 2 : j].lower()
    while j < n and source[j] in _SPACES:
        j += 1
    if j >= n or source[j] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
    tag = stack.pop()
    if end_name and end_name != tag.name:
        raise EntityParseError(
            f"Unmatched end tag at byte offset {begin}, "
            f'expected "</{tag.name}>", found "</{end_name}>"'
        )
    length = out_len - tag.start
    language = tag.attributes.get("class", "")
    if (
        tag.name == "code"
        and stack
        and stack[-1].name == "pre"
        and language.startswith("language-")
    ):
        # <pre><code class="language-x"> is one pre entity with a language, as in Telegram.
        stack[-1].language = language.removeprefix("language-")
        return j + 1
    if length > 0:
        entity: dict[str, Any] = {
            "type": _TAG_TYPES[tag.name],
            "offset": tag.start,
            "length": length,
        }
        if tag.name == "a":
            entity["url"] = tag.attributes.get("href", "")
        elif tag.name == "pre" and tag.language:
            entity["language"] = tag.language
        elif tag.name == "blockquote" and "expandable" in tag.attributes:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "tg-emoji":
            entity["custom_emoji_id"] = tag.attributes["emoji-id"]
        if entity["type"] != "text_link" or entity["url"]:
            entities.append(entity)
    return j + 1


def trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading and trailing whitespace as Telegram does, keeping entities aligned."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_length(text[: len(text) - len(text.lstrip())])
    end = lead + utf16_length(stripped)
    kept: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"], lead)
        stop = min(entity["offset"] + entity["length"], end)
        if stop > start:
            kept.append({**entity, "offset": start - lead, "length": stop - start})
    return stripped, kept
