"""The webhook adapter: signed JSON events POSTed to a practice's own systems.

Each request carries the event's JSON body and three headers: ``Dyad-Event-Id`` (the same
on every retry, so the receiver can drop duplicates), ``Dyad-Timestamp`` (Unix seconds at
sending) and ``Dyad-Signature: v1=<hex>``, an HMAC-SHA256 with the endpoint's secret over
``"{timestamp}.{body}"``. A receiver checks it with :func:`verify_signature`, which also
refuses a stale timestamp, so a captured request cannot be replayed later.

A 2xx answer is delivered; 429 waits (``Retry-After``) and tries again; any other 4xx (and
a redirect, which is not followed) fails the row; 5xx, timeouts and network errors are
retried with backoff by the dispatcher.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import httpx

from bot.channels.base import (
    Address,
    Outgoing,
    PermanentFailure,
    RateLimited,
    Sent,
    TransientFailure,
)
from bot.core.clock import Clock
from bot.core.numbers import is_ascii_digits

EVENT_ID_HEADER = "Dyad-Event-Id"
TIMESTAMP_HEADER = "Dyad-Timestamp"
SIGNATURE_HEADER = "Dyad-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300
_DEFAULT_RETRY_AFTER = 30.0
_MAX_RETRY_AFTER = 600.0


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(secret: str, timestamp: str, body: str | bytes) -> str:
    """The ``Dyad-Signature`` header value for a body sent at ``timestamp``."""
    mac = hmac.new(
        secret.encode("utf-8"), timestamp.encode("ascii") + b"." + _as_bytes(body), hashlib.sha256
    )
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: str | bytes,
    header: str,
    now: datetime | float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether a received webhook is genuine and fresh (for receivers, and tests).

    ``timestamp`` and ``header`` are the ``Dyad-Timestamp`` and ``Dyad-Signature`` headers,
    ``body`` the raw request body, ``now`` the receiver's time (a datetime or Unix seconds).
    A timestamp more than ``tolerance`` seconds away from ``now`` fails (replay). The header
    may hold several comma-separated ``v1=`` signatures (during a secret rotation).
    """
    if not is_ascii_digits(timestamp):
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    candidates = [part.strip() for part in header.split(",")]
    # compare_digest over every candidate, so timing says nothing about which one matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        seconds = _DEFAULT_RETRY_AFTER
    return min(max(seconds, 1.0), _MAX_RETRY_AFTER)


class WebhookMessenger:
    """POSTs signed events with httpx; turns HTTP outcomes into the port's errors."""

    def __init__(
        self, clock: Clock, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0
    ) -> None:
        self.clock = clock
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False
        )

    async def send(self, address: Address, message: Outgoing) -> Sent:
        if not isinstance(address, str) or not address.startswith(("https://", "http://")):
            raise PermanentFailure("a webhook address must be a URL")
        if message.signing_secret is None or message.idempotency_key is None:
            raise PermanentFailure("a webhook event needs its id and its endpoint's secret")
        body = message.text.encode("utf-8")
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Dyad-Webhooks/1",
            EVENT_ID_HEADER: message.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(message.signing_secret, timestamp, body),
        }
        try:
            response = await self.client.post(address, content=body, headers=headers)
        except httpx.TimeoutException as error:
            raise TransientFailure("webhook timed out") from error
        except httpx.InvalidURL as error:
            raise PermanentFailure("webhook URL is not valid") from error
        except httpx.HTTPError as error:
            raise TransientFailure(f"webhook unreachable: {type(error).__name__}") from error
        status = response.status_code
        if 200 <= status < 300:
            return Sent(0)
        if status == 429:
            raise RateLimited(_retry_after(response), address_only=True)
        if status >= 500:
            raise TransientFailure(f"webhook answered HTTP {status}")
        # The receiver's answer body is not kept: it may echo what we sent.
        raise PermanentFailure(f"webhook answered HTTP {status}")

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None:
        raise PermanentFailure("a webhook event cannot be edited")

    async def delete(self, address: Address, message_id: int) -> None:
        raise PermanentFailure("a webhook event cannot be deleted")

    async def aclose(self) -> None:
        """Close the HTTP client (when this messenger made it)."""
        if self._own_client:
            await self.client.aclose()
