"""The Messenger port: the only way Dyad's services put words in front of a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

Address: TypeAlias = int | str
"""Where a channel sends: a Telegram chat id, an email address, a webhook URL."""


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: its label and its (small, versioned) callback data.

    With ``web_app_url`` it opens that page as a Telegram Mini App instead (``data`` unused).
    """

    text: str
    data: str
    web_app_url: str | None = None


@dataclass(frozen=True, slots=True)
class InlineImage:
    """A picture an email's HTML shows in place: ``<img src="cid:{cid}">``."""

    cid: str
    data: bytes = field(repr=False)
    filename: str
    subtype: str = "png"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready to send: HTML text, optional button rows, optional notification silence.

    Channels other than Telegram read a few more fields: an email has a ``subject`` and an
    ``html`` alternative to its plain ``text``, and ``images`` that the HTML shows by
    ``cid:`` (charts: mail clients show no inline SVG); a webhook's ``text`` is its JSON
    body, signed with ``signing_secret``. ``idempotency_key`` is the same on every retry of
    one delivery (an email's Message-ID, a webhook's event id), so a receiver can drop
    duplicates.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    silent: bool = False
    reply_to: int | None = None
    document: bytes | None = None
    filename: str | None = None
    subject: str | None = None
    html: str | None = None
    images: tuple[InlineImage, ...] = ()
    idempotency_key: str | None = None
    signing_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.text and self.document is None:
            raise ValueError("an outgoing message needs text or a document")
        if self.images and self.html is None:
            raise ValueError("inline images need an HTML part that shows them")


@dataclass(frozen=True, slots=True)
class Sent:
    """What the channel reports back about a sent message (0: the channel has no ids)."""

    message_id: int


class SendError(Exception):
    """A send did not go through."""


@dataclass
class RateLimited(SendError):
    """The channel asked us to wait ``retry_after`` seconds before trying again.

    ``address_only``: only this address asked (one practice's webhook endpoint), so only
    sends to it wait; otherwise every send on the channel waits (Telegram's 429).
    """

    retry_after: float
    address_only: bool = False


@dataclass
class Blocked(SendError):
    """The person blocked the bot or the chat is gone; retrying will not help."""

    reason: str = "blocked"


class Migrated(Blocked):
    """Telegram upgraded the basic group to a supergroup: the old chat id is gone for good."""


@dataclass
class TransientFailure(SendError):
    """A timeout or server error: worth trying again later."""

    reason: str = "transient"


@dataclass
class PermanentFailure(SendError):
    """The channel refused the message itself (bad request): do not retry."""

    reason: str = "bad request"
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """How fast one channel may send: overall, and to any one address.

    ``pace_with`` names another channel whose overall budget this one shares (a channel on
    the same upstream, such as Telegram groups on the Bot API); its own per-address
    interval still applies.
    """

    rate_per_second: float
    per_address_interval: float = 0.0
    pace_with: str | None = None

    def __post_init__(self) -> None:
        if self.rate_per_second <= 0 or self.per_address_interval < 0:
            raise ValueError("a channel needs a positive rate and a non-negative interval")


class Messenger(Protocol):
    """Sends, edits and deletes messages on one channel."""

    async def send(self, address: Address, message: Outgoing) -> Sent: ...

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None: ...

    async def delete(self, address: Address, message_id: int) -> None: ...
