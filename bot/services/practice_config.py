"""A practice's configuration (its practice.toml, stored with the practice), parsed once.

The schedule part is checked by ``schedules.check``; instruments and crisis resources by
the core. A practice without a file of its own gets the shipped defaults.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from bot.config import is_loopback_host
from bot.core.instruments import Instrument, load_instruments
from bot.core.safety import CrisisResource, crisis_resources, parse_crisis_overrides
from bot.core.timezones import locale_for
from bot.metrics import CRISIS_LINES_FALLBACKS
from schedules.check import PracticeFileError, check_practice_text, default_schedules
from schedules.library import PromptLibrary
from schedules.model import PracticeSchedules

log = logging.getLogger(__name__)

CRISIS_SECTION = "crisis_resources"
DIGEST_SECTION = "digest"
WEBHOOKS_SECTION = "webhooks"
WEBHOOK_EVENTS: tuple[str, ...] = (
    "digest.ready",
    "alert.raised",
    "partner.unreachable",
    "couple.closed",
)
"""The events a practice's systems may subscribe to."""
MIN_WEBHOOK_SECRET = 32
MAX_WEBHOOKS = 10


@dataclass(frozen=True)
class DigestSettings:
    """Practice settings for pre-session digests."""

    lead_hours: float = 24.0
    split_alliance_threshold: float = 3.0
    split_alliance_widening: float = 2.0
    quote_budget_chars: int = 600
    off_track_drop: float = 2.0
    """The console flags a partner off track when their mean wellbeing or alliance fell
    by at least this many points (0-10) since the previous period."""
    email_charts: bool = True
    """The e-mailed digest carries the couple page's charts as pictures (ratings only)."""


@dataclass(frozen=True)
class WebhookEndpoint:
    """One of the practice's systems: where events go, the secret that signs them, which."""

    url: str
    secret: str = field(repr=False)
    events: frozenset[str]

    @property
    def key(self) -> str:
        """A short stable name for the endpoint (from its URL), used in the outbox."""
        return endpoint_key(self.url)


def endpoint_key(url: str) -> str:
    """Twelve hex digits naming a webhook URL (stable while the URL stays)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PracticeConfig:
    """Everything a practice configures, checked."""

    schedules: PracticeSchedules
    library: PromptLibrary
    instruments: Mapping[str, Instrument]
    crisis: Mapping[str, list[CrisisResource]]
    digest: DigestSettings
    webhooks: tuple[WebhookEndpoint, ...] = ()

    def checkin_instrument(self) -> Instrument:
        """The instrument scheduled check-ins use."""
        name = self.schedules.checkin.instrument
        return self.instruments.get(name) or self.instruments["dyad_checkin"]

    def crisis_for(self, language: str, zone: str | None) -> list[CrisisResource]:
        """Crisis resources for a partner, from their language and their time zone's country."""
        return crisis_resources(locale_for(language, zone), self.crisis)

    def webhooks_for(self, event: str) -> tuple[WebhookEndpoint, ...]:
        """The endpoints subscribed to one event type."""
        return tuple(hook for hook in self.webhooks if event in hook.events)

    def webhook(self, key: str) -> WebhookEndpoint | None:
        """The endpoint with this key, if the practice still has it."""
        return next((hook for hook in self.webhooks if hook.key == key), None)


def _digest_settings(raw: Any) -> DigestSettings:
    if raw is None:
        return DigestSettings()
    if not isinstance(raw, dict):
        raise ValueError("[digest] must be a table")
    allowed = set(DigestSettings.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"[digest] has unknown keys: {', '.join(sorted(unknown))}")
    settings = DigestSettings(**raw)
    if not isinstance(settings.email_charts, bool):
        raise ValueError("[digest] email_charts must be true or false")
    if not 0 < settings.lead_hours <= 24 * 7:
        raise ValueError("[digest] lead_hours must be between 0 and 168")
    return settings


def _webhook_url(where: str, url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{where}: url is required, such as https://ehr.example/dyad")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{where}: url must be an https:// URL, not {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"{where}: url must use https:// (plain http only to a loopback address such as "
            "127.0.0.1), so that events never cross the network in clear"
        )
    if parts.username or parts.password:
        raise ValueError(f"{where}: url must not hold credentials; the secret signs requests")
    return url.strip()


def _webhooks(raw: Any) -> tuple[WebhookEndpoint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ValueError("[[webhooks]] must be an array of tables: [[webhooks]] url = ...")
    if len(raw) > MAX_WEBHOOKS:
        raise ValueError(f"[[webhooks]]: at most {MAX_WEBHOOKS} endpoints")
    endpoints: list[WebhookEndpoint] = []
    for number, item in enumerate(raw, start=1):
        where = f"[[webhooks]] #{number}"
        unknown = set(item) - {"url", "secret", "events"}
        if unknown:
            raise ValueError(
                f"{where} has unknown keys: {', '.join(sorted(unknown))} "
                "(allowed: url, secret, events)"
            )
        url = _webhook_url(where, item.get("url"))
        secret = item.get("secret")
        if not isinstance(secret, str) or len(secret) < MIN_WEBHOOK_SECRET:
            raise ValueError(
                f"{where}: secret must be at least {MIN_WEBHOOK_SECRET} characters "
                "(for example the output of `openssl rand -hex 32`)"
            )
        events = item.get("events")
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(e, str) for e in events)
        ):
            raise ValueError(
                f"{where}: events must list at least one of: {', '.join(WEBHOOK_EVENTS)}"
            )
        bad = sorted(set(events) - set(WEBHOOK_EVENTS))
        if bad:
            raise ValueError(
                f"{where}: unknown events {', '.join(bad)} (known: {', '.join(WEBHOOK_EVENTS)})"
            )
        if any(endpoint.url == url for endpoint in endpoints):
            raise ValueError(f"{where}: the url {url!r} is listed twice")
        endpoints.append(WebhookEndpoint(url, secret, frozenset(events)))
    return tuple(endpoints)


@lru_cache(maxsize=64)
def parse_practice_config(text: str | None) -> PracticeConfig:
    """Parse and check a practice.toml (None: the shipped defaults)."""
    if text is None:
        schedules = default_schedules()
        return PracticeConfig(
            schedules, schedules.library(), load_instruments(None), {}, DigestSettings()
        )
    result = check_practice_text(text)
    if result.config is None or result.library is None:
        raise PracticeFileError(result)
    raw = tomllib.loads(text)
    return PracticeConfig(
        schedules=result.config,
        library=result.library,
        instruments=load_instruments(raw.get("instruments")),
        crisis=parse_crisis_overrides(raw.get(CRISIS_SECTION) or {}, section=CRISIS_SECTION),
        digest=_digest_settings(raw.get(DIGEST_SECTION)),
        webhooks=_webhooks(raw.get(WEBHOOKS_SECTION)),
    )


def crisis_lines_for(
    config_text: str | None, language: str, timezone: str | None
) -> list[CrisisResource]:
    """The crisis lines to show a partner, from their practice's file.

    A file that cannot be used never withholds them: the shipped lines for the partner's
    language and time zone are shown instead, and the fallback is logged and counted
    (``dyad_crisis_lines_fallbacks_total``) so the practice's admin can fix the file.
    """
    try:
        config = parse_practice_config(config_text)
    except Exception:
        CRISIS_LINES_FALLBACKS.inc()
        log.exception("a practice's configuration cannot be used: showing the shipped lines")
        config = parse_practice_config(None)
    return list(config.crisis_for(language, timezone))
