"""Settings from ``DYAD_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

import ipaddress
import re
from email.utils import parseaddr
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

TELEGRAM_API_URL = "https://api.telegram.org/bot"
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{8,}$")
EMAIL_ADDRESS = re.compile(
    r"^[^@\s<>(),;:\"\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
)
"""A plain mailbox address (no display name, no comments): what Dyad sends to and from."""


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address stays on this machine (localhost, 127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Everything Dyad reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="DYAD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///dyad.db"
    telegram_api_url: str = TELEGRAM_API_URL
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    health_port: int | None = Field(default=None, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    encryption_keys: SecretStr | None = None
    invite_ttl_days: int = Field(default=7, ge=1, le=90)
    send_rate_per_second: float = Field(default=30.0, gt=0, le=30)
    worker_share: float = Field(default=1.0, gt=0, le=1)
    # One send budget shared by every worker of the bot (Telegram's window, in Redis):
    # without it each process keeps its own, and several workers need ``worker_share``.
    redis_url: str | None = None
    redis_prefix: str = Field(default="dyad", min_length=1, max_length=100)
    concurrent_updates: int = Field(default=32, ge=1, le=1024)
    intake_lease_seconds: float = Field(default=10.0, gt=0, le=300)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str | None = None
    smtp_starttls: bool = True
    # The private check-in as a Telegram Mini App (bot/web): the public https URL of its
    # pages, where this process serves them, and how long a page opened from Telegram is
    # trusted (initData's auth_date).
    webapp_url: str | None = None
    webapp_port: int | None = Field(default=None, ge=0, le=65535)
    webapp_listen: str = "0.0.0.0"
    webapp_auth_max_age_seconds: int = Field(default=3600, ge=60, le=86400)
    # The therapist console (bot/web/console), served with the pages: how long a login
    # link works, how long a signed-in browser may stay idle before it is signed out, and
    # (tests and the demo only) a session cookie without Secure over loopback http.
    console_link_minutes: int = Field(default=10, ge=1, le=60)
    console_idle_minutes: int = Field(default=30, ge=5, le=720)
    console_insecure_loopback_cookie: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; use for example sqlite+aiosqlite:///dyad.db "
                "or postgresql+asyncpg://user@host/dbname"
            ) from None
        driver = _DRIVERS.get(url.drivername)
        if driver is None:
            raise ValueError(
                f"unsupported database {url.drivername!r}; Dyad runs on SQLite "
                "(sqlite+aiosqlite://) or PostgreSQL (postgresql+asyncpg://)"
            )
        return url.set(drivername=driver).render_as_string(hide_password=False)

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError("must be an http(s) URL such as https://api.telegram.org/bot")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        # Telegram posts only to https; plain http is accepted for a loopback Bot API server.
        loopback = re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/\S*)?$", value or "")
        if value and not loopback and not re.match(r"^https://[^/\s]+(/\S*)?$", value):
            raise ValueError("must be an https:// URL that Telegram can reach")
        return value or None

    @field_validator("webapp_url")
    @classmethod
    def _webapp_url(cls, value: str | None) -> str | None:
        # Telegram opens Mini Apps only over https; http is for loopback (tests, the demo).
        if not value:
            return None
        parts = urlsplit(value)
        loopback = parts.scheme == "http" and is_loopback_host(parts.hostname or "")
        if not (loopback or (parts.scheme == "https" and parts.hostname)) or parts.query:
            raise ValueError("must be an https:// URL (without a query) that Telegram can open")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_TOKEN.match(value.get_secret_value()):
            raise ValueError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _BOT_TOKEN.match(value.get_secret_value()):
            raise ValueError("does not look like a bot token from BotFather (digits:letters)")
        return value

    @field_validator("smtp_host", "smtp_user", "smtp_sender", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("smtp_sender")
    @classmethod
    def _smtp_sender(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_ADDRESS.match(parseaddr(value)[1]):
            raise ValueError("must be an email address such as dyad@practice.example")
        return value

    @model_validator(mode="after")
    def _smtp_is_complete_and_encrypted(self) -> Settings:
        if self.smtp_host is None:
            return self
        if self.smtp_sender is None:
            raise ValueError(
                "DYAD_SMTP_SENDER: required when DYAD_SMTP_HOST is set (the From address "
                "of digest emails)"
            )
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("DYAD_SMTP_USER and DYAD_SMTP_PASSWORD: set both or neither")
        if not self.smtp_starttls and not is_loopback_host(self.smtp_host):
            raise ValueError(
                f"DYAD_SMTP_STARTTLS: STARTTLS is required for the SMTP host "
                f"{self.smtp_host!r}; only a loopback host (a local relay) may go without it, "
                "so that digests never cross the network in clear"
            )
        return self

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                "DYAD_WEBHOOK_SECRET: required when DYAD_WEBHOOK_URL is set, so that only "
                "Telegram can post updates"
            )
        return self

    @model_validator(mode="after")
    def _insecure_cookie_only_on_loopback(self) -> Settings:
        if not self.console_insecure_loopback_cookie:
            return self
        parts = urlsplit(self.webapp_url or "")
        if parts.scheme != "http" or not is_loopback_host(parts.hostname or ""):
            raise ValueError(
                "DYAD_CONSOLE_INSECURE_LOOPBACK_COOKIE: only for pages served over loopback "
                "http (tests, the demo); behind HTTPS the console cookie is always Secure"
            )
        return self

    @property
    def smtp_enabled(self) -> bool:
        """Whether digests may also go by email (an SMTP relay is configured)."""
        return self.smtp_host is not None

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what is wrong."""


def describe_validation_error(error: ValidationError) -> str:
    """One clear line naming the first bad setting and what is wrong with it."""
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if loc:
        return f"DYAD_{loc[0].upper()}: {message}"
    return message


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into a :class:`ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
