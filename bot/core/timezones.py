"""Time zone names: validation and the short lists offered as buttons."""

from __future__ import annotations

import zoneinfo
from functools import cache

# Every zone offered here must belong to a country with packaged crisis resources
# (bot/core/data/crisis_resources.toml); a test checks it.
COMMON_TIMEZONES: dict[str, tuple[str, ...]] = {
    "en": (
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
        "Europe/London",
        "Europe/Madrid",
    ),
    "es": (
        "Europe/Madrid",
        "America/Mexico_City",
        "America/Bogota",
        "America/Argentina/Buenos_Aires",
        "America/Santiago",
        "America/Lima",
        "America/Sao_Paulo",
        "America/New_York",
        "America/Los_Angeles",
    ),
    "pt": (
        "America/Sao_Paulo",
        "America/Manaus",
        "America/Fortaleza",
        "America/Cuiaba",
        "America/Rio_Branco",
        "America/Noronha",
        "America/New_York",
        "Europe/London",
        "Europe/Madrid",
    ),
}


@cache
def _by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


def canonical_timezone(text: str) -> str | None:
    """The IANA name a person typed (any case, spaces for underscores), or None."""
    cleaned = text.strip().replace(" ", "_")
    if not cleaned or len(cleaned) > 64:
        return None
    return _by_folded_name().get(cleaned.casefold())


# Buttons offered at most (two a row); anyone else types their zone's name.
MAX_OFFERED: int = 10


def offered_timezones(language: str, practice_default: str) -> list[str]:
    """The practice's default first, then the common ones for the language."""
    bare = language.replace("_", "-").split("-")[0].lower()  # es-419 offers the es zones
    names = [practice_default, *COMMON_TIMEZONES.get(bare, COMMON_TIMEZONES["en"])]
    return list(dict.fromkeys(names))[:MAX_OFFERED]


@cache
def _zone_countries() -> dict[str, str]:
    from importlib.resources import files

    table = files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for line in table.splitlines():
        if line and not line.startswith("#"):
            country, _, zone, *_ = line.split("\t")
            out[zone] = country
    return out


def country_of(zone: str | None) -> str | None:
    """The ISO country code a time zone belongs to (``Europe/Madrid`` -> ``ES``), if any."""
    return _zone_countries().get(zone or "")


def locale_for(language: str, zone: str | None) -> str:
    """``es-ES`` from a language and a time zone; the bare language when the zone says nothing.

    The country comes from the zone only: a partner reading es-ES (Spain's Spanish) in
    Bogotá gets Colombia's lines, never Spain's.
    """
    bare = language.replace("_", "-").split("-")[0].lower()
    country = country_of(zone)
    return f"{bare}-{country}" if country else bare
