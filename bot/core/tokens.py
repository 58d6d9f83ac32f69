"""Invite tokens: unguessable, deep-link safe, stored only as hashes."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable

TOKEN_BYTES = 24  # 192 bits of randomness
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_token(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A fresh token: 32 characters of ``A-Za-z0-9_-``, fit for ``?start=`` (64 at most)."""
    return base64.urlsafe_b64encode(random_bytes(TOKEN_BYTES)).decode("ascii").rstrip("=")


def hash_token(token: str) -> str:
    """The SHA-256 of a token, hex; the only form the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(text: str) -> bool:
    """Whether ``text`` has a token's shape (anything else is refused before any lookup)."""
    return bool(_TOKEN_SHAPE.match(text))


def deep_link(bot_username: str, token: str) -> str:
    """The link that opens the bot with the token as its start parameter."""
    return f"https://t.me/{bot_username}?start={token}"
