"""Dyad's PTB context: what every handler reads from the Application, typed.

The composition root (``bot.app.build_application``) builds the Application with
``ContextTypes(context=DyadContext, bot_data=BotData)`` and fills :class:`BotData` once;
handlers read ``context.deps`` and ``context.messenger`` instead of string keys and casts.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.channels.base import Messenger
from bot.services.deps import Deps


class BotData:
    """The Application's ``bot_data``: the process's dependencies and its Messenger adapter.

    PTB makes it without arguments when it builds the Application; the composition root
    sets both fields before any update is handled.
    """

    def __init__(self) -> None:
        self.deps: Deps | None = None
        self.messenger: Messenger | None = None


class DyadContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The ``context`` of every Dyad handler."""

    @property
    def deps(self) -> Deps:
        """The process's dependencies (settings, database, clock, cipher)."""
        deps = self.bot_data.deps
        assert deps is not None, "build_application sets the dependencies"
        return deps

    @property
    def messenger(self) -> Messenger:
        """The Messenger adapter for this Application's bot (replies, edits, deletions)."""
        messenger = self.bot_data.messenger
        assert messenger is not None, "build_application sets the messenger"
        return messenger

    def wake_dispatcher(self) -> None:
        """Send what a handler just queued now rather than at the dispatcher's next round."""
        self.deps.wake_dispatcher()


CONTEXT_TYPES = ContextTypes(context=DyadContext, bot_data=BotData)
"""What ``Application.builder().context_types(...)`` is given."""

DyadApplication = Application[Any, DyadContext, dict[Any, Any], dict[Any, Any], BotData, Any]
"""The Application built with :data:`CONTEXT_TYPES` (its bot and job queue as PTB infers)."""
