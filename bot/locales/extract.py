"""A ``pybabel extract`` method that reads the English catalog as the template's source.

Dyad's msgids are keys (``common.too_long``); the English catalog holds the source texts.
``pybabel extract -F babel.cfg`` runs this over ``bot/locales/en/LC_MESSAGES/dyad.po``
besides the Python files, so the template lists every key, each with its English text
as an extracted comment: translators see the English in Poedit, Weblate or Crowdin.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from babel.messages.pofile import read_po

# Plural entries are given under this keyword, so they keep their plural form.
PLURAL_KEYWORD = "ngettext"


def extract_catalog(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any] | Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str | None, str | tuple[str, ...], list[str]]]:
    """Yield ``(line, keyword, msgid(s), English lines)`` for every key of a catalog."""
    for message in read_po(fileobj):
        if not message.id:
            continue
        line = message.lineno or 0
        if isinstance(message.id, tuple | list):
            forms = [str(s) for s in message.string or () if s]
            english = "\n".join(f"[{i}] {s}" for i, s in enumerate(forms))
            yield line, PLURAL_KEYWORD, tuple(message.id), english.splitlines()
        else:
            yield line, None, str(message.id), str(message.string).splitlines()
