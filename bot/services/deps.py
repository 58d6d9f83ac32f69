"""What every use case may need, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    extras: dict[str, object] = field(default_factory=dict)
