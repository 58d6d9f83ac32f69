"""Callback data: small, versioned payloads that fit Telegram's 64 bytes.

Shape: ``1|action|arg|arg``. A payload carries ids only; every action re-checks in the
database that the person pressing owns what the ids name, so a forged or replayed
payload changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.numbers import is_ascii_digits

VERSION = "1"
MAX_BYTES = 64
_ARG = re.compile(r"^[A-Za-z0-9_.:+/-]{0,40}$")
_ACTION = re.compile(r"^[a-z_]{1,16}$")


class ForgedCallback(ValueError):
    """Callback data that Dyad did not produce (wrong version, shape or size)."""


@dataclass(frozen=True, slots=True)
class Callback:
    """A decoded button press: what to do, and with which ids."""

    action: str
    args: tuple[str, ...] = ()

    def arg(self, index: int) -> str:
        """The argument at ``index``, or a :class:`ForgedCallback` if it is missing."""
        try:
            return self.args[index]
        except IndexError:
            raise ForgedCallback("missing argument") from None

    def int_arg(self, index: int) -> int:
        """The argument at ``index`` as a non-negative integer."""
        value = self.arg(index)
        if not is_ascii_digits(value) or len(value) > 18:
            raise ForgedCallback("not an id")
        return int(value)


def encode(action: str, *args: object) -> str:
    """The callback data for a button."""
    parts = [str(arg) for arg in args]
    if not _ACTION.match(action) or not all(_ARG.match(p) for p in parts):
        raise ValueError(f"unencodable callback {action!r} {parts!r}")
    data = "|".join((VERSION, action, *parts))
    if len(data.encode("utf-8")) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    return data


def decode(data: str | None) -> Callback:
    """Parse callback data, refusing anything Dyad could not have produced."""
    if not data or len(data.encode("utf-8")) > MAX_BYTES:
        raise ForgedCallback("empty or oversized")
    version, _, rest = data.partition("|")
    if version != VERSION:
        raise ForgedCallback("unknown version")
    action, *args = rest.split("|")
    if not _ACTION.match(action) or not all(_ARG.match(a) for a in args):
        raise ForgedCallback("malformed")
    return Callback(action, tuple(args))
