"""The Messenger port: the only way Dyad's services put words in front of a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: its label and its (small, versioned) callback data."""

    text: str
    data: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready to send: HTML text, optional button rows, optional notification silence."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    silent: bool = False
    reply_to: int | None = None
    document: bytes | None = None
    filename: str | None = None

    def __post_init__(self) -> None:
        if not self.text and self.document is None:
            raise ValueError("an outgoing message needs text or a document")


@dataclass(frozen=True, slots=True)
class Sent:
    """What the channel reports back about a sent message."""

    message_id: int


class SendError(Exception):
    """A send did not go through."""


@dataclass
class RateLimited(SendError):
    """The channel asked us to wait ``retry_after`` seconds before trying again."""

    retry_after: float


@dataclass
class Blocked(SendError):
    """The person blocked the bot or the chat is gone; retrying will not help."""

    reason: str = "blocked"


@dataclass
class TransientFailure(SendError):
    """A timeout or server error: worth trying again later."""

    reason: str = "transient"


@dataclass
class PermanentFailure(SendError):
    """The channel refused the message itself (bad request): do not retry."""

    reason: str = "bad request"
    details: dict[str, str] = field(default_factory=dict)


class Messenger(Protocol):
    """Sends, edits and deletes messages on one channel."""

    async def send(self, address: int, message: Outgoing) -> Sent: ...

    async def edit(self, address: int, message_id: int, message: Outgoing) -> None: ...

    async def delete(self, address: int, message_id: int) -> None: ...
