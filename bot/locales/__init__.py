"""Message catalogs: every user-facing text goes through :func:`t`.

Catalogs are TOML files under ``bot/locales/<language>/<area>.toml``; a key is
``<area>.<name>`` (nested tables join with dots). Placeholders use ``{name}``
(``str.format`` syntax); every language must define the same keys with the same
placeholders (a test checks this).
"""

from __future__ import annotations

import string
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "es", "pt")
DEFAULT_LANGUAGE = "en"
_ROOT = Path(__file__).parent


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}"
        if isinstance(value, dict):
            _flatten(full, value, out)
        elif isinstance(value, str):
            out[full] = value
        else:
            raise TypeError(f"catalog entry {full} must be text, not {type(value).__name__}")


@cache
def catalog(language: str) -> dict[str, str]:
    """All messages of one language, keyed ``area.name``."""
    if language not in SUPPORTED_LANGUAGES:
        raise KeyError(f"unsupported language {language!r}")
    out: dict[str, str] = {}
    for path in sorted((_ROOT / language).glob("*.toml")):
        with path.open("rb") as fh:
            _flatten(path.stem, tomllib.load(fh), out)
    return out


def placeholders(text: str) -> frozenset[str]:
    """The ``{name}`` placeholders a message uses."""
    return frozenset(
        field.split(".")[0].split("[")[0]
        for _, field, _, _ in string.Formatter().parse(text)
        if field is not None and field != ""
    )


def pick_language(code: str | None) -> str:
    """The supported language closest to a Telegram ``language_code`` (``es-MX`` -> ``es``)."""
    if code:
        base = code.replace("_", "-").split("-")[0].lower()
        if base in SUPPORTED_LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def t(language: str, key: str, /, **params: object) -> str:
    """The message ``key`` in ``language``, with its placeholders filled in."""
    text = catalog(pick_language(language))[key]
    return text.format(**params) if params or "{" in text else text
