"""The email adapter: multipart messages through an SMTP relay, with aiosmtplib.

STARTTLS is required unless the relay is on loopback (the settings refuse anything else).
SMTP's answers map onto the port's errors: 4xx replies, timeouts and dropped connections
are worth another try; 5xx replies refuse the message for good. A failed login or a relay
that offers no STARTTLS is an operator's mistake that retrying after a fix cures, so it is
retried too (with backoff, until the dispatcher gives up).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import aiosmtplib

from bot.channels.base import (
    Address,
    Outgoing,
    PermanentFailure,
    Sent,
    TransientFailure,
)
from bot.config import EMAIL_ADDRESS, Settings, is_loopback_host
from bot.core.clock import Clock

SendMail = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand mail over."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.starttls and not is_loopback_host(self.host):
            raise ValueError("STARTTLS is required for a non-loopback SMTP host")

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """The relay the settings name, or None when email is not configured."""
        if settings.smtp_host is None or settings.smtp_sender is None:
            return None
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_user,
            password=password.get_secret_value() if password is not None else None,
            starttls=settings.smtp_starttls,
        )

    @property
    def sender_domain(self) -> str:
        """The domain of the From address (for Message-IDs and our EHLO name)."""
        return parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"


def _refusal(code: int, message: str) -> TransientFailure | PermanentFailure:
    reason = f"SMTP {code}: {message.strip()[:120]}"
    return TransientFailure(reason) if 400 <= code < 500 else PermanentFailure(reason)


class EmailMessenger:
    """Sends one email per message: plain text, with the HTML alternative when there is one
    (and the pictures that HTML shows, as related parts)."""

    def __init__(self, config: SmtpConfig, clock: Clock, *, send: SendMail | None = None) -> None:
        self.config = config
        self.clock = clock
        self._send = send or aiosmtplib.send

    def compose(self, address: str, message: Outgoing) -> EmailMessage:
        """The MIME message for one outgoing message (multipart/alternative with HTML)."""
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = address
        mail["Subject"] = message.subject or "Dyad"
        mail["Date"] = format_datetime(self.clock.now())
        if message.idempotency_key is not None:
            # The same on every retry: a mail system that got it twice can tell.
            mail["Message-ID"] = f"<{message.idempotency_key}@{self.config.sender_domain}>"
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text)
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html")
        if message.images:
            # multipart/alternative [text/plain, multipart/related [text/html, image/png...]]:
            # the pictures belong to the HTML part, which shows them by their Content-ID.
            *_, html_part = mail.iter_parts()
            assert isinstance(html_part, EmailMessage)
            for image in message.images:
                html_part.add_related(
                    image.data,
                    maintype="image",
                    subtype=image.subtype,
                    cid=f"<{image.cid}>",
                    filename=image.filename,
                    disposition="inline",
                )
        return mail

    async def send(self, address: Address, message: Outgoing) -> Sent:
        if not isinstance(address, str) or not EMAIL_ADDRESS.match(address):
            raise PermanentFailure("not an email address")
        try:
            mail = self.compose(address, message)
        except ValueError as error:  # a header the email package refuses (a line break)
            raise PermanentFailure("the message cannot be written as an email") from error
        config = self.config
        try:
            await self._send(
                mail,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                start_tls=config.starttls,
                local_hostname=config.sender_domain,  # no reverse DNS lookup of our own name
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            # One recipient per message; a temporary refusal (4xx) is worth another try.
            refused = sorted(error.recipients, key=lambda r: not 400 <= r.code < 500)
            if not refused:
                raise PermanentFailure("SMTP refused the recipient") from error
            raise _refusal(refused[0].code, refused[0].message) from error
        except aiosmtplib.SMTPAuthenticationError as error:
            raise TransientFailure(f"SMTP login refused ({error.code})") from error
        except aiosmtplib.SMTPResponseException as error:
            raise _refusal(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            # Timeouts, refused or dropped connections, no STARTTLS on offer.
            raise TransientFailure(f"SMTP unavailable: {type(error).__name__}") from error
        return Sent(0)

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None:
        raise PermanentFailure("an email cannot be edited")

    async def delete(self, address: Address, message_id: int) -> None:
        raise PermanentFailure("an email cannot be deleted")
