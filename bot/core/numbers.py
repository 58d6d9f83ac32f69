"""Numbers typed by people or carried in data: plain ASCII digits only.

``str.isdigit`` is true for "²", "٣" or "①", which ``int`` then refuses or reads as
another number; every numeric argument Dyad accepts goes through here instead.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")


def is_ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more of the digits 0–9 and nothing else."""
    return _DIGITS.fullmatch(text) is not None


def ascii_int(text: str, *, max_digits: int = 18) -> int | None:
    """The number ``text`` spells in ASCII digits, or None for anything else."""
    if len(text) > max_digits or not is_ascii_digits(text):
        return None
    return int(text)
