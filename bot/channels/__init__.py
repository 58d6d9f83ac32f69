"""The Messenger port and its adapters (Telegram first)."""

from bot.channels.base import (
    Blocked,
    Button,
    Messenger,
    Outgoing,
    PermanentFailure,
    RateLimited,
    SendError,
    TransientFailure,
)

__all__ = [
    "Blocked",
    "Button",
    "Messenger",
    "Outgoing",
    "PermanentFailure",
    "RateLimited",
    "SendError",
    "TransientFailure",
]
