"""Every offered time zone leads to verified crisis lines; each shipped line cites its sources."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.core.safety import (
    MIN_SOURCES,
    crisis_resources,
    default_crisis_resources,
    packaged_countries,
    parse_country_resources,
    render_crisis_message,
)
from bot.core.timezones import COMMON_TIMEZONES, country_of, locale_for, offered_timezones
from bot.locales import SUPPORTED_LANGUAGES

OFFERED = sorted({zone for zones in COMMON_TIMEZONES.values() for zone in zones})


def message_for(language: str, zone: str) -> str:
    """The crisis message a partner with this language and time zone gets (no practice table)."""
    return render_crisis_message(language, crisis_resources(locale_for(language, zone)))


def offered_lines(message: str) -> list[str]:
    """The emergency line and each helpline's "name: number" line, in order, tags removed."""
    emergency = re.findall(r"<b>[^<]*(?:call|llama al|ligue para o) ([^.<]+)\.</b>", message)
    lines = re.findall(r"^<b>([^<]+)</b>: (.+)$", message, flags=re.MULTILINE)
    return emergency + [f"{name}: {number}" for name, number in lines]


@pytest.mark.parametrize("zone", OFFERED)
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_offered_zone_resolves_to_a_country_with_an_emergency_number(
    zone: str, language: str
) -> None:
    country = country_of(zone)
    assert country in packaged_countries(), f"{zone} belongs to {country}, which has no lines"
    resources = crisis_resources(locale_for(language, zone))
    (emergency,) = [resource for resource in resources if resource.emergency]
    assert emergency.number


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_onboarding_buttons_offer_only_covered_zones(language: str) -> None:
    zones = offered_timezones(language, "UTC")
    assert zones[0] == "UTC"  # the practice's default comes first, whatever it is
    assert all(country_of(zone) in packaged_countries() for zone in zones[1:])


def test_spanish_speakers_are_offered_the_latin_american_capitals() -> None:
    zones = offered_timezones("es", "Europe/Madrid")
    for zone in (
        "America/Mexico_City",
        "America/Bogota",
        "America/Argentina/Buenos_Aires",
        "America/Santiago",
        "America/Lima",
        "America/Sao_Paulo",
    ):
        assert zone in zones


def test_a_portuguese_speaker_in_brazil_gets_the_brazilian_lines_in_portuguese() -> None:
    brazil = [z for z in offered_timezones("pt", "UTC") if country_of(z) == "BR"]
    assert len(brazil) >= 5  # Brasília time, the Amazon, the north-east, Acre, the islands
    for zone in brazil:
        message = message_for("pt", zone)
        assert offered_lines(message) == [
            "190",
            "CVV (Centro de Valorização da Vida): 188",
            "Ligue 180 (Central de Atendimento à Mulher): 180",
        ]
        assert "ligue para o 192" in message  # SAMU, named with the emergency line
        assert "Se você está em perigo agora" in message


@pytest.mark.parametrize("country", sorted(packaged_countries()))
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_packaged_line_cites_two_publishers(country: str, language: str) -> None:
    for resource in default_crisis_resources(country, language):
        assert len(resource.sources) >= MIN_SOURCES
        hosts = {
            re.sub(r"^www\.", "", source.split("://")[1].split("/")[0])
            for source in resource.sources
        }
        assert len(hosts) >= MIN_SOURCES, resource


def line(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "number": "024",
        "name": {"en": "Line", "es": "Línea", "pt": "Linha"},
        "description": {"en": "Free.", "es": "Gratuita.", "pt": "Gratuita."},
        "sources": ["Ministry: https://ministry.example/line", "NGO: https://ngo.example/x"],
    }
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


EMERGENCY = line(number="112", emergency=True)


@pytest.mark.parametrize(
    "sources",
    [
        None,
        [],
        ["Ministry: https://ministry.example/line"],
        # two pages of one publisher are one source
        ["Ministry: https://ministry.example/a", "Ministry again: https://www.ministry.example/b"],
        ["Ministry: https://ministry.example/a", "an NGO said so"],
        "Ministry: https://ministry.example/a, NGO: https://ngo.example/x",
    ],
)
def test_a_line_without_two_sources_is_refused(sources: Any) -> None:
    with pytest.raises(ValueError, match=r"XX\[1\]: 'sources'"):
        parse_country_resources("XX", [EMERGENCY, line(sources=sources)], "en")


def test_the_emergency_number_needs_its_sources_too() -> None:
    with pytest.raises(ValueError, match=r"XX\[0\]: 'sources'"):
        parse_country_resources("XX", [line(number="112", emergency=True, sources=[])], "es")


def test_a_country_needs_exactly_one_emergency_line() -> None:
    with pytest.raises(ValueError, match="exactly one emergency line"):
        parse_country_resources("XX", [line()], "en")
    with pytest.raises(ValueError, match="exactly one emergency line"):
        parse_country_resources("XX", [EMERGENCY, EMERGENCY], "en")


def test_a_well_sourced_line_is_accepted() -> None:
    emergency, helpline = parse_country_resources("XX", [EMERGENCY, line()], "es")
    assert (emergency.number, emergency.emergency) == ("112", True)
    assert (helpline.name, helpline.number, helpline.description) == ("Línea", "024", "Gratuita.")
    assert helpline.sources[0] == "Ministry: https://ministry.example/line"


# --- what a partner actually reads -------------------------------------------------------


def test_a_partner_in_mexico_city_gets_mexicos_lines() -> None:
    message = message_for("es", "America/Mexico_City")
    assert "Si ahora estás en peligro, llama al 911." in message
    assert offered_lines(message) == [
        "911",
        "Línea de la Vida: 800 911 2000",
        "Línea de las Mujeres: 079",
    ]
    assert "Llama al 079 y elige la opción 1" in message
    assert len(message) < 4096


def test_a_partner_in_buenos_aires_gets_argentinas_lines() -> None:
    message = message_for("es", "America/Argentina/Buenos_Aires")
    assert "Si ahora estás en peligro, llama al 911." in message
    assert offered_lines(message) == [
        "911",
        "Línea de salud mental (Ministerio de Salud): 0800 999 0091",
        "Línea 144: 144",
    ]


def test_a_partner_in_london_gets_the_domestic_abuse_helpline() -> None:
    message = message_for("en", "Europe/London")
    assert "If you are in danger now, call 999." in message
    assert offered_lines(message) == [
        "999",
        "Samaritans: 116 123",
        "National Domestic Abuse Helpline (Refuge): 0808 2000 247",
    ]
    assert offered_lines(message_for("es", "Europe/London")) == offered_lines(message)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("America/Mexico_City", {"911", "800 911 2000", "079"}),
        ("America/Argentina/Buenos_Aires", {"911", "0800 999 0091", "144"}),
        ("America/Bogota", {"123", "155"}),
        ("America/Santiago", {"133", "*4141", "1455"}),
        ("America/Lima", {"105", "113", "100"}),
        ("America/Sao_Paulo", {"190", "188", "180"}),
        ("Europe/London", {"999", "116 123", "0808 2000 247"}),
        ("Europe/Madrid", {"112", "024", "016"}),
        ("America/New_York", {"911", "988", "1-800-799-7233"}),
        ("America/Los_Angeles", {"911", "988", "1-800-799-7233"}),
    ],
)
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_exact_numbers_per_zone(zone: str, expected: set[str], language: str) -> None:
    assert {r.number for r in crisis_resources(locale_for(language, zone))} == expected
