"""A practice's configuration (its practice.toml, stored with the practice), parsed once.

The schedule part is checked by ``schedules.check``; instruments and crisis resources by
the core. A practice without a file of its own gets the shipped defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.core.instruments import Instrument, load_instruments
from bot.core.safety import CrisisResource, crisis_resources, parse_crisis_overrides
from bot.core.timezones import locale_for
from schedules.check import PracticeFileError, check_practice_text, default_schedules
from schedules.library import PromptLibrary
from schedules.model import PracticeSchedules

CRISIS_SECTION = "crisis_resources"
DIGEST_SECTION = "digest"


@dataclass(frozen=True)
class DigestSettings:
    """Practice settings for pre-session digests."""

    lead_hours: float = 24.0
    split_alliance_threshold: float = 3.0
    split_alliance_widening: float = 2.0
    quote_budget_chars: int = 600


@dataclass(frozen=True)
class PracticeConfig:
    """Everything a practice configures, checked."""

    schedules: PracticeSchedules
    library: PromptLibrary
    instruments: Mapping[str, Instrument]
    crisis: Mapping[str, list[CrisisResource]]
    digest: DigestSettings

    def checkin_instrument(self) -> Instrument:
        """The instrument scheduled check-ins use."""
        name = self.schedules.checkin.instrument
        return self.instruments.get(name) or self.instruments["dyad_checkin"]

    def crisis_for(self, language: str, zone: str | None) -> list[CrisisResource]:
        """Crisis resources for a partner, from their language and their time zone's country."""
        return crisis_resources(locale_for(language, zone), self.crisis)


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
    if not 0 < settings.lead_hours <= 24 * 7:
        raise ValueError("[digest] lead_hours must be between 0 and 168")
    return settings


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
    )
