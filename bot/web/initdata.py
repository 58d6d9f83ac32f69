"""Telegram Mini App ``initData``: checking that it came from Telegram, for this bot, lately.

Telegram's documented scheme ("Validating data received via the Mini App",
https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app):

- ``initData`` is a query string of fields; one of them, ``hash``, is the signature.
- The *data-check-string* is every other received field as ``key=<value>``, sorted
  alphabetically by key and joined with line feeds (``\\n``), values URL-decoded.
- ``secret_key = HMAC_SHA256(key="WebAppData", msg=<bot_token>)``
- the data is from Telegram when ``hex(HMAC_SHA256(key=secret_key, msg=data_check_string))``
  equals ``hash``; ``auth_date`` (Unix time when the Mini App was opened) guards against
  old data being replayed.

Nothing here does I/O: the caller gives the token, the time and the allowed age.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from urllib.parse import parse_qsl

Reason = Literal["missing", "malformed", "forged", "stale"]
_HEX_HASH: Final = re.compile(r"[0-9a-f]{64}")
# A client's clock may run a little ahead of ours; more than this is not "just opened".
CLOCK_SKEW: Final = timedelta(minutes=5)
MAX_INIT_DATA: Final = 8192


class InvalidInitData(Exception):
    """``initData`` that cannot be trusted; ``reason`` says which way (for the page shown)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


@dataclass(frozen=True)
class WebAppUser:
    """The Telegram user who opened the Mini App, as Telegram vouches for them."""

    id: int
    first_name: str
    language_code: str | None


@dataclass(frozen=True)
class InitData:
    """Validated ``initData``: who opened the page, and when."""

    user: WebAppUser
    auth_date: datetime
    raw: str


def secret_key(bot_token: str) -> bytes:
    """``HMAC_SHA256(key="WebAppData", msg=bot_token)``: the key initData is signed with."""
    return hmac.new(b"WebAppData", bot_token.encode("utf-8"), hashlib.sha256).digest()


def data_check_string(fields: Mapping[str, str]) -> str:
    """Every field but ``hash``, as ``key=value``, sorted by key, one per line."""
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def _fields(raw: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInitData("malformed") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:  # a repeated field could mean two things: refuse it
            raise InvalidInitData("malformed")
        fields[key] = value
    return fields


def validate_init_data(raw: str, bot_token: str, *, now: datetime, max_age: timedelta) -> InitData:
    """The user and time in ``raw``, when Telegram signed it for this bot within ``max_age``.

    Raises :class:`InvalidInitData`: ``missing`` (nothing given), ``malformed`` (not a
    query string with a user), ``forged`` (the signature does not match this bot's token),
    ``stale`` (signed too long ago, or in the future).
    """
    if not raw:
        raise InvalidInitData("missing")
    if len(raw) > MAX_INIT_DATA:
        raise InvalidInitData("malformed")
    fields = _fields(raw)
    received = fields.get("hash", "")
    if not _HEX_HASH.fullmatch(received):
        raise InvalidInitData("forged")
    expected = hmac.new(
        secret_key(bot_token), data_check_string(fields).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, received):
        raise InvalidInitData("forged")
    # Only signed data is read from here on.
    try:
        auth_date = datetime.fromtimestamp(int(fields["auth_date"]), UTC)
        user = json.loads(fields["user"])
        user_id = user["id"]
    except (KeyError, ValueError, TypeError, OverflowError, OSError):
        raise InvalidInitData("malformed") from None
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise InvalidInitData("malformed")
    if auth_date > now + CLOCK_SKEW or now - auth_date > max_age:
        raise InvalidInitData("stale")
    language = user.get("language_code")
    first_name = user.get("first_name")
    return InitData(
        user=WebAppUser(
            id=user_id,
            first_name=first_name if isinstance(first_name, str) else "",
            language_code=language if isinstance(language, str) else None,
        ),
        auth_date=auth_date,
        raw=raw,
    )
