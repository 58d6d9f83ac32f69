"""The charts as PNG pictures for e-mail (bot.core.chart_png): both partners on the same
axes, each seat with its colour and its second cue, decoded and read back pixel by pixel.

Points are checked where the shared geometry (``bot.core.charts.Frame``) puts them, so a
picture that drew one partner's ratings anywhere else, or not at all, fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageDraw, ImageFont

from bot.core.chart_png import FONT, SCALE, dash_pieces, render_png
from bot.core.charts import (
    GAP_HEIGHT,
    OVER,
    PANEL_SPACE,
    PLOT_HEIGHT,
    STYLES,
    TOP,
    WIDTH,
    ChartSeries,
    ChartSpec,
    Frame,
)
from bot.locales import SUPPORTED_LANGUAGES, catalog, t
from bot.locales.formats import format_day_month

START = datetime(2026, 9, 28, 7, 0, tzinfo=UTC)
END = START + timedelta(days=28)
SESSIONS = (START + timedelta(days=7, hours=10), START + timedelta(days=21, hours=10))
MADRID = ZoneInfo("Europe/Madrid")
WHITE = (255, 255, 255)


def _points(*pairs: tuple[float, float]) -> tuple[tuple[datetime, float], ...]:
    return tuple((START + timedelta(days=day), value) for day, value in pairs)


ALEX = _points((1, 7), (5, 8), (9.5, 7.5), (14, 8), (19, 9), (26, 8.5))
BLANCA = _points((2, 6), (6, 4), (12, 3.5), (16, 5), (23, 4))


def _spec(
    first: ChartSeries,
    second: ChartSeries,
    *,
    language: str = "en",
    alliance: bool = False,
) -> ChartSpec:
    role = "alliance" if alliance else "wellbeing"
    return ChartSpec(
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


def _decode(png: bytes) -> Image.Image:
    image = Image.open(BytesIO(png))
    assert image.format == "PNG"
    return image.convert("RGB")


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def _pixel(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    found = image.getpixel((round(x * SCALE), round(y * SCALE)))
    assert isinstance(found, tuple)
    return (found[0], found[1], found[2])


def _at(when: datetime, value: float) -> tuple[float, float]:
    frame = Frame(START, END, TOP, PLOT_HEIGHT)
    return frame.x(when), frame.y(value)


A_COLOUR, B_COLOUR = _rgb(STYLES["A"].colour), _rgb(STYLES["B"].colour)


def test_the_png_decodes_at_twice_the_charts_size() -> None:
    for alliance in (False, True):
        spec = _spec(
            ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA), alliance=alliance
        )
        image = _decode(render_png(spec))
        assert image.size == (WIDTH * SCALE, spec.height * SCALE)
    assert spec.height == TOP + PLOT_HEIGHT + 22 + PANEL_SPACE + GAP_HEIGHT


@pytest.mark.parametrize("a_first", [True, False])
def test_each_partners_ratings_are_drawn_where_they_are_in_their_seats_colour(
    a_first: bool,
) -> None:
    a, b = ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA)
    image = _decode(render_png(_spec(a, b) if a_first else _spec(b, a)))
    # Every rating of each partner: their marker's centre is their seat's colour,
    # whoever is shown first (the style follows the seat, never the order).
    for when, value in ALEX:
        assert _pixel(image, *_at(when, value)) == A_COLOUR, (when, value)
    for when, value in BLANCA:
        assert _pixel(image, *_at(when, value)) == B_COLOUR, (when, value)
    # Where neither partner has a rating, the plot is not painted in either colour.
    assert _pixel(image, *_at(START + timedelta(days=3), 1)) not in (A_COLOUR, B_COLOUR)


def test_partner_b_is_dashed_and_partner_a_solid_a_cue_that_needs_no_colour() -> None:
    image = _decode(
        render_png(_spec(ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA)))
    )

    def along(points: tuple[tuple[datetime, float], ...], colour: tuple[int, int, int]) -> int:
        """How many of 40 samples on the first segment's middle stretch are in ``colour``."""
        (x0, y0), (x1, y1) = (_at(*points[0]), _at(*points[1]))
        samples = [0.2 + 0.6 * i / 39 for i in range(40)]
        return sum(_pixel(image, x0 + (x1 - x0) * s, y0 + (y1 - y0) * s) == colour for s in samples)

    assert along(ALEX, A_COLOUR) == 40, "A's line is solid"
    dashed = along(BLANCA, B_COLOUR)
    assert 10 <= dashed <= 34, f"B's line has gaps: {dashed} of 40 samples drawn"


def test_the_alliance_picture_shades_the_gap_and_draws_the_threshold() -> None:
    spec = _spec(ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA), alliance=True)
    image = _decode(render_png(spec))
    # Between the two lines, away from both: the grey band over white.
    when = START + timedelta(days=14)
    between = _pixel(image, _at(when, 6.3)[0], _at(when, 6.3)[1])
    assert between != WHITE and between[0] == between[1] == between[2], between
    # The threshold line of the gap panel, in its own colour, at 3 points of gap.
    panel = Frame(START, END, TOP + PLOT_HEIGHT + PANEL_SPACE, GAP_HEIGHT)
    row = round(panel.y(3.0) * SCALE)
    painted = [image.getpixel((x, row)) for x in range(80 * SCALE, (WIDTH - 40) * SCALE)]
    assert painted.count(_rgb(OVER)) > 100
    # The plain chart has neither.
    plain = _decode(
        render_png(_spec(ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA)))
    )
    assert _pixel(plain, _at(when, 6.3)[0], _at(when, 6.3)[1]) == WHITE


def test_silent_partners_and_other_languages_still_make_a_picture() -> None:
    for language in ("en", "es-ES", "es-419", "pt-BR"):
        for first, second in (
            (ChartSeries("A", "Álex", ALEX[:1]), ChartSeries("B", "Blanca", ())),
            (ChartSeries("A", "Alex", ()), ChartSeries("B", "Blanca", ())),
        ):
            spec = _spec(first, second, language=language, alliance=True)
            image = _decode(render_png(spec))
            assert image.size == (WIDTH * SCALE, spec.height * SCALE)
    lone = _decode(
        render_png(_spec(ChartSeries("A", "Álex", ALEX[:1]), ChartSeries("B", "Blanca", ())))
    )
    assert _pixel(lone, *_at(*ALEX[0])) == A_COLOUR


def test_the_same_spec_gives_the_same_bytes() -> None:
    spec = _spec(ChartSeries("A", "Alex", ALEX), ChartSeries("B", "Blanca", BLANCA), alliance=True)
    assert render_png(spec) == render_png(spec)


def test_a_spec_survives_its_trip_through_json() -> None:
    spec = _spec(ChartSeries("B", "Blanca", BLANCA), ChartSeries("A", "Alex", ALEX), alliance=True)
    again = ChartSpec.from_dict(spec.to_dict())
    assert again == spec
    assert render_png(again) == render_png(spec)


def test_dashes_cut_a_polyline_into_equal_pieces_even_round_a_corner() -> None:
    path = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]
    pieces = dash_pieces(path, (3.0, 2.0))
    assert pieces == [
        [(0.0, 0.0), (3.0, 0.0)],
        [(5.0, 0.0), (8.0, 0.0)],
        [(10.0, 0.0), (10.0, 3.0)],
        [(10.0, 5.0), (10.0, 8.0)],
    ]
    assert dash_pieces(path, (3.0, 1.0))[2] == [(8.0, 0.0), (10.0, 0.0), (10.0, 1.0)]
    assert dash_pieces([(0.0, 0.0)], (3.0, 2.0)) == []


def test_the_shipped_font_has_every_letter_the_charts_write_in_every_language() -> None:
    font = ImageFont.truetype(FONT, 24)

    def drawn(text: str) -> bytes:
        image = Image.new("L", (40, 40), 0)
        ImageDraw.Draw(image).text((4, 4), text, fill=255, font=font)
        return image.tobytes()

    missing = drawn("\ue000")  # a private-use code point: no font draws it
    for language in SUPPORTED_LANGUAGES:
        words = [v for k, v in catalog(language).items() if k.startswith("console.chart.")]
        words += [t(language, f"digest.role.{role}") for role in ("wellbeing", "hope", "alliance")]
        words += [
            format_day_month(START.date() + timedelta(days=31 * m), language) for m in range(12)
        ]
        words.append("ÁÉÍÓÚÑÇÃÕÂÊÔáéíóúñçãõâêôüÜ¿¡")
        letters = {c for word in words for c in word if not c.isspace()}
        assert not [c for c in sorted(letters) if drawn(c) == missing], language
