"""The console's charts (bot.core.charts): golden SVGs in English and Spanish, symmetry.

Golden files live in ``tests/unit/golden/charts/``; run with ``UPDATE_GOLDEN=1`` to
rewrite them after an intended change, then look at them (they open in any browser).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from bot.core.charts import STYLES, ChartSeries, rating_chart
from bot.locales import t

GOLDEN = Path(__file__).parent / "golden" / "charts"
START = datetime(2026, 9, 28, 7, 0, tzinfo=UTC)
END = START + timedelta(days=28)
SESSIONS = (START + timedelta(days=7, hours=10), START + timedelta(days=21, hours=10))
MADRID = ZoneInfo("Europe/Madrid")


def _points(*pairs: tuple[float, float]) -> tuple[tuple[datetime, float], ...]:
    return tuple((START + timedelta(days=day), value) for day, value in pairs)


ALEX = _points((1, 7), (5, 8), (9.5, 7.5), (14, 8), (19, 9), (26, 8.5))
BLANCA = _points((2, 6), (6, 4), (12, 3.5), (16, 5), (23, 4))


def _chart(
    language: str,
    first: ChartSeries,
    second: ChartSeries,
    *,
    alliance: bool = True,
) -> str:
    role = "alliance" if alliance else "wellbeing"
    chart = rating_chart(
        chart_id=f"chart-{role}",
        title=t(language, f"digest.role.{role}"),
        series=(first, second),
        start=START,
        end=END,
        sessions=SESSIONS,
        language=language,
        tz=MADRID,
        gap_threshold=3.0 if alliance else None,
    )
    return chart.html()


CASES = {
    "alliance": lambda lang: _chart(
        lang, ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA)
    ),
    "wellbeing_b_first": lambda lang: _chart(
        lang,
        ChartSeries("B", "Blanca", BLANCA),
        ChartSeries("A", "Alex", ALEX),
        alliance=False,
    ),
    "one_partner_silent": lambda lang: _chart(
        lang, ChartSeries("A", "Alex", ALEX[:1]), ChartSeries("B", "Blanca", ())
    ),
}


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_chart_matches_the_golden_file(name: str, language: str) -> None:
    rendered = CASES[name](language)
    ElementTree.fromstring(rendered)  # well-formed: the SVG and the table parse as XML
    path = GOLDEN / f"{name}.{language}.html"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


def _series_group(svg: str, slot: str) -> str:
    found = re.search(rf'<g class="series seat-{slot}">.*?</g>', svg, re.DOTALL)
    assert found is not None
    return found.group(0)


def _coordinates(fragment: str) -> list[str]:
    return re.findall(r'(?:points|cx|cy|x|y)="([^"]+)"', fragment)


def test_which_partner_is_shown_first_changes_the_order_only() -> None:
    a, b = ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA)
    a_first, b_first = _chart("en", a, b), _chart("en", b, a)
    for slot in "AB":  # each partner drawn exactly alike, whoever comes first
        assert _series_group(a_first, slot) == _series_group(b_first, slot)
    band = re.compile(r'<polygon points="[^"]+"[^>]*class="gap-band"/>')
    assert band.findall(a_first) == band.findall(b_first) != []
    gap = re.compile(r'<polyline points="[^"]+"[^>]*class="gap-line"/>')
    assert gap.findall(a_first) == gap.findall(b_first) != []
    # The table lists the first-shown partner's column first.
    assert a_first.index('scope="col">Alex (A)') < a_first.index('scope="col">Blanca (B)')
    assert b_first.index('scope="col">Blanca (B)') < b_first.index('scope="col">Alex (A)')


def test_swapping_the_partners_ratings_mirrors_the_chart() -> None:
    plain = _chart("en", ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA))
    swapped = _chart("en", ChartSeries("A", "Alex", BLANCA), ChartSeries("B", "Blanca", ALEX))
    # A's ratings drawn where B's were, and the other way round; markers keep their seat.
    assert _coordinates(_series_group(swapped, "A")) != _coordinates(_series_group(plain, "A"))
    plain_b = re.findall(r'points="([^"]+)"', _series_group(plain, "B"))
    swapped_a = re.findall(r'points="([^"]+)"', _series_group(swapped, "A"))
    assert plain_b == swapped_a
    plain_a = re.findall(r'points="([^"]+)"', _series_group(plain, "A"))
    swapped_b = re.findall(r'points="([^"]+)"', _series_group(swapped, "B"))
    assert plain_a == swapped_b
    # The gap band, the gap panel and the threshold do not depend on who is who.
    gap_parts = re.compile(r'<[^>]*class="(?:gap-band|gap-line|over-threshold|threshold)"/>')
    assert gap_parts.findall(plain) == gap_parts.findall(swapped) != []


def test_each_partner_has_a_colour_and_a_cue_that_needs_no_colour() -> None:
    a, b = STYLES["A"], STYLES["B"]
    assert a.colour != b.colour and a.marker != b.marker and a.dash != b.dash
    svg = _chart("en", ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA))
    group_a, group_b = _series_group(svg, "A"), _series_group(svg, "B")
    assert group_a.count("<circle") == len(ALEX) and "<rect" not in group_a
    assert group_b.count("<rect") == len(BLANCA) and "<circle" not in group_b
    assert "stroke-dasharray" in group_b and "stroke-dasharray" not in group_a


def test_session_dates_and_the_threshold_are_drawn_and_tabled() -> None:
    svg = _chart("es", ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA))
    assert svg.count('class="session"') == len(SESSIONS)
    assert svg.count('class="threshold"') == 1
    assert "Umbral de alianza dividida: 3 puntos" in svg
    # The table: one row per local date with a rating or a session, both partners' cells.
    rows = re.findall(r"<tr><th scope=\"row\">", svg)
    assert len(rows) == len(ALEX) + len(BLANCA) + len(SESSIONS)
    assert svg.count(">sesión</td>") == len(SESSIONS)
    assert "7,5" in svg  # Spanish decimal comma


def test_a_chart_needs_one_series_per_seat() -> None:
    with pytest.raises(ValueError):
        _chart("en", ChartSeries("A", "Alex", ALEX), ChartSeries("A", "Blanca", BLANCA))
