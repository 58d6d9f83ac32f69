"""The one place that renders a Telegram-facing text: catalog message, HTML-safe params."""

from __future__ import annotations

import html
from dataclasses import dataclass

from bot.locales import t, tn


@dataclass(frozen=True)
class Html:
    """Text a renderer already made safe Telegram HTML (a crisis card): placed in as it is."""

    text: str

    def __format__(self, spec: str) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def _escaped(params: dict[str, object]) -> dict[str, object]:
    return {k: html.escape(v, quote=False) if isinstance(v, str) else v for k, v in params.items()}


def msg(language: str, key: str, /, **params: object) -> str:
    """Catalog message ``key`` with every text parameter HTML-escaped (Telegram HTML)."""
    return t(language, key, **_escaped(params))


def msgn(language: str, key: str, count: int, /, **params: object) -> str:
    """Plural catalog message ``key`` in the form for ``count``, parameters HTML-escaped."""
    return tn(language, key, count, **_escaped(params))


class UserError(Exception):
    """Something the user can act on: a catalog key and its parameters, said kindly."""

    def __init__(self, key: str, /, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def text(self, language: str) -> str:
        """The message in the user's language."""
        return msg(language, self.key, **self.params)
