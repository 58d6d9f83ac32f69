"""What every use case may need, built once by the composition root."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.config import Settings
from bot.core.clock import Clock
from bot.services.crypto import Cipher
from db.engine import Database


@dataclass
class Deps:
    """The process's shared dependencies: settings, database, clock, cipher."""

    settings: Settings
    db: Database
    clock: Clock
    cipher: Cipher
    bot_username: str = "dyad_bot"
    dispatch_wake: asyncio.Event | None = None
    """Set by this process's dispatcher, if it runs one: what wakes it (see wake_dispatcher)."""

    def wake_dispatcher(self) -> None:
        """Send what was just queued now rather than at the dispatcher's next round."""
        if self.dispatch_wake is not None:
            self.dispatch_wake.set()
