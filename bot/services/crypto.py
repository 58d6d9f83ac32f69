"""Encryption at rest for partner free text (Fernet, with key rotation).

Keys come from ``DYAD_ENCRYPTION_KEYS`` (comma-separated, newest first). With none
configured on the embedded SQLite default, Dyad creates a key file with owner-only
permissions beside the database and says so once; on PostgreSQL it refuses to start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import make_url

from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)


class Cipher:
    """Encrypts with the newest key; decrypts with any configured key."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self.keys = [key.strip() for key in keys]
        try:
            self._fernets = [Fernet(key.strip().encode("ascii")) for key in keys]
        except (ValueError, TypeError):
            raise ConfigError(
                "DYAD_ENCRYPTION_KEYS: each key must be 32 url-safe base64-encoded bytes "
                "(make one with `dyad keys new`)"
            ) from None
        self._multi = MultiFernet(self._fernets)

    def encrypt(self, text: str) -> bytes:
        """Ciphertext for a piece of partner text."""
        return self._multi.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        """The text back; a token no configured key opens is an error."""
        try:
            return self._multi.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise ValueError("ciphertext does not open with any configured key") from None

    def rotate(self, token: bytes) -> bytes:
        """The same text, encrypted with the newest key."""
        return self._multi.rotate(token)


def new_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode("ascii")


def key_file_for(database_url: str) -> Path | None:
    """Where the embedded default keeps its key: beside the SQLite file."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).with_suffix(".key")


def load_cipher(settings: Settings) -> Cipher:
    """The cipher for this deployment, creating the SQLite key file on first use."""
    if settings.encryption_keys is not None:
        keys = [k for k in settings.encryption_keys.get_secret_value().split(",") if k.strip()]
        if keys:
            return Cipher(keys)
    path = key_file_for(settings.database_url)
    if path is None:
        raise ConfigError(
            "DYAD_ENCRYPTION_KEYS: required with PostgreSQL so that notes are encrypted at rest "
            "(make one with `dyad keys new`)"
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key() + "\n")
        log.warning("created an encryption key file at %s; back it up with the database", path)
    return Cipher([line for line in path.read_text().splitlines() if line.strip()])
