"""The console's charts as PNG pictures, for e-mail (pure: a spec in, PNG bytes out).

Mail clients (Gmail, Outlook) show no inline SVG, so the e-mailed digest carries each
chart as a PNG drawn with Pillow from the same :class:`~bot.core.charts.ChartSpec`, on the
same geometry as the SVG: the same axes and fixed 0-10 scale for both partners, each
seat's Okabe-Ito colour *and* its second cue (A solid with round markers, B dashed with
square markers), session dates as dashed rules, and on the alliance chart the shaded gap
and the gap panel with the split-alliance threshold. Drawn at twice the CSS size, so the
picture stays sharp on high-density screens, with the font Dyad ships (:data:`FONT`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from io import BytesIO
from itertools import pairwise
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from bot.core.charts import (
    AXIS,
    AXIS_SPACE,
    BAND,
    GAP_HEIGHT,
    GRID,
    LEFT,
    OVER,
    PANEL_SPACE,
    PLOT_HEIGHT,
    RIGHT,
    SESSION,
    STYLES,
    TOP,
    WIDTH,
    ChartSpec,
    Frame,
    SeatStyle,
    Slot,
    chart_text,
    day_label,
    gap_profile,
    sorted_points,
    time_ticks,
)
from bot.locales.formats import format_number

SCALE = 2
"""Device pixels per CSS pixel."""

INK = "#222222"
WHITE = "#ffffff"
BAND_ALPHA = 77  # 0.3 of 255, as the SVG's fill-opacity
Point = tuple[float, float]
Anchor = str


FONT: Final = Path(__file__).parent / "data" / "fonts" / "DejaVuSans.ttf"
"""DejaVu Sans, shipped with Dyad (its licence beside it): every Latin letter of Dyad's
languages, and the same picture on every machine, with or without system fonts."""


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, size)


def _rgba(colour: str, alpha: int) -> tuple[int, int, int, int]:
    value = colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return red, green, blue, alpha


def dash_pieces(points: Sequence[Point], pattern: Sequence[float]) -> list[list[Point]]:
    """The drawn pieces of a polyline under a dash pattern (on, off, on, off, ...)."""
    if len(points) < 2:
        return []
    pieces: list[list[Point]] = []
    current: list[Point] = [points[0]]
    index, left, on = 0, pattern[0], True
    for (x0, y0), (x1, y1) in pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        position = 0.0
        while length - position > left:
            position += left
            share = position / length
            point = (x0 + (x1 - x0) * share, y0 + (y1 - y0) * share)
            if on:
                current.append(point)
                pieces.append(current)
                current = []
            else:
                current = [point]
            on = not on
            index = (index + 1) % len(pattern)
            left = pattern[index]
        left -= length - position
        if on:
            current.append((x1, y1))
    if on and len(current) >= 2:
        pieces.append(current)
    return pieces


class _Pen:
    """Draws in the SVG's coordinates (CSS pixels), scaled to device pixels."""

    def __init__(self, image: Image.Image, scale: int) -> None:
        self.draw = ImageDraw.Draw(image, "RGBA")
        self.scale = scale

    def _xy(self, points: Sequence[Point]) -> list[Point]:
        return [(x * self.scale, y * self.scale) for x, y in points]

    def _width(self, width: float) -> int:
        return max(1, round(width * self.scale))

    def line(
        self,
        points: Sequence[Point],
        colour: str,
        width: float,
        dash: Sequence[float] | None = None,
    ) -> None:
        pieces = [list(points)] if dash is None else dash_pieces(points, dash)
        for piece in pieces:
            self.draw.line(self._xy(piece), fill=colour, width=self._width(width), joint="curve")

    def polygon(self, points: Sequence[Point], fill: tuple[int, int, int, int]) -> None:
        self.draw.polygon(self._xy(points), fill=fill)

    def rectangle(
        self, x: float, y: float, w: float, h: float, fill: str | tuple[int, int, int, int]
    ) -> None:
        (x0, y0), (x1, y1) = self._xy([(x, y), (x + w, y + h)])
        self.draw.rectangle((x0, y0, x1, y1), fill=fill)

    def marker(self, style: SeatStyle, x: float, y: float) -> None:
        """The seat's marker, filled with its colour and ringed in white, as in the SVG."""
        size = 4.0 if style.marker == "circle" else 3.8
        (x0, y0), (x1, y1) = self._xy([(x - size, y - size), (x + size, y + size)])
        box = (round(x0), round(y0), round(x1), round(y1))
        if style.marker == "circle":
            self.draw.ellipse(box, fill=style.colour, outline=WHITE, width=self._width(1))
        else:
            self.draw.rectangle(box, fill=style.colour, outline=WHITE, width=self._width(1))

    def dot(self, x: float, y: float, radius: float, fill: str, outline: str) -> None:
        (x0, y0), (x1, y1) = self._xy([(x - radius, y - radius), (x + radius, y + radius)])
        self.draw.ellipse((x0, y0, x1, y1), fill=fill, outline=outline, width=self._width(0.8))

    def text(
        self, x: float, y: float, text: str, size: int, colour: str, anchor: Anchor = "ls"
    ) -> None:
        """Text with its baseline at ``y`` (``ls`` start, ``ms`` middle, ``rs`` end)."""
        font = _font(size * self.scale)
        self.draw.text(
            (x * self.scale, y * self.scale), text, fill=colour, font=font, anchor=anchor
        )


def _grid(pen: _Pen, frame: Frame, steps: Sequence[float], language: str) -> None:
    for value in steps:
        y = frame.y(value)
        pen.line([(LEFT, y), (WIDTH - RIGHT, y)], GRID, 1)
        pen.text(LEFT - 6, y + 4, format_number(value, language), 11, AXIS, "rs")


def _legend(pen: _Pen, spec: ChartSpec) -> None:
    language = spec.language
    x: float = LEFT
    for item in spec.series:
        style = STYLES[item.slot]
        pen.line([(x, 14), (x + 26, 14)], style.colour, 2.2, _dash(style))
        pen.marker(style, x + 13, 14)
        label = chart_text(language, "legend_partner", name=item.name, slot=item.slot)
        pen.text(x + 32, 18, label, 12, INK)
        x += 40 + 7 * min(len(label), 28)
    pen.line([(x, 6), (x, 22)], SESSION, 1.2, (2, 3))
    pen.text(x + 6, 18, chart_text(language, "legend_session"), 12, INK)
    if spec.alliance:
        x += 16 + 7 * len(chart_text(language, "legend_session"))
        pen.rectangle(x, 8, 18, 12, _rgba(BAND, BAND_ALPHA))
        pen.text(x + 24, 18, chart_text(language, "legend_gap"), 12, INK)


def _dash(style: SeatStyle) -> tuple[float, ...] | None:
    return tuple(float(part) for part in style.dash.split()) if style.dash else None


def _gap_panel(
    pen: _Pen, spec: ChartSpec, frame: Frame, profile: list[tuple[float, float, float]]
) -> None:
    assert spec.gap_threshold is not None
    threshold, language = spec.gap_threshold, spec.language
    top = frame.top + frame.height + PANEL_SPACE
    panel = Frame(spec.start, spec.end, top, GAP_HEIGHT)
    pen.text(LEFT, top - 8, chart_text(language, "gap_panel"), 12, INK)
    _grid(pen, panel, (0, 5, 10), language)
    if len(profile) >= 2:
        pen.line([(x, panel.y(hi - lo)) for x, hi, lo in profile], INK, 1.6)
    for x, hi, lo in profile:
        if hi - lo >= threshold:
            pen.dot(x, panel.y(hi - lo), 3.5, OVER, INK)
    y = panel.y(threshold)
    pen.line([(LEFT, y), (WIDTH - RIGHT, y)], OVER, 1.6, (8, 3, 2, 3))
    pen.line([(WIDTH - RIGHT - 30, top - 12), (WIDTH - RIGHT, top - 12)], OVER, 1.6, (8, 3, 2, 3))
    label = chart_text(language, "threshold", value=format_number(threshold, language))
    pen.text(WIDTH - RIGHT - 36, top - 8, label, 11, INK, "rs")


def render_png(spec: ChartSpec, *, scale: int = SCALE) -> bytes:
    """The chart as a PNG, ``scale`` device pixels per CSS pixel (WIDTH by spec.height)."""
    image = Image.new("RGB", (WIDTH * scale, spec.height * scale), WHITE)
    pen = _Pen(image, scale)
    frame = Frame(spec.start, spec.end, TOP, PLOT_HEIGHT)
    xy: dict[Slot, list[Point]] = {
        item.slot: [(frame.x(at), value) for at, value in sorted_points(item)]
        for item in spec.series
    }
    _legend(pen, spec)
    _grid(pen, frame, (0, 2, 4, 6, 8, 10), spec.language)
    first, second = (xy[item.slot] for item in spec.series)
    profile = gap_profile(first, second)
    if spec.alliance and len(profile) >= 2:
        upper = [(x, frame.y(hi)) for x, hi, _ in profile]
        lower = [(x, frame.y(lo)) for x, _, lo in reversed(profile)]
        pen.polygon(upper + lower, _rgba(BAND, BAND_ALPHA))
    bottom = spec.height - AXIS_SPACE
    for when in sorted(spec.sessions):
        if spec.start <= when <= spec.end:
            x = frame.x(when)
            pen.line([(x, TOP - 4), (x, bottom)], SESSION, 1.2, (2, 3))
    for item in spec.series:
        style = STYLES[item.slot]
        coords = [(x, frame.y(value)) for x, value in xy[item.slot]]
        if len(coords) >= 2:
            pen.line(coords, style.colour, 2.2, _dash(style))
        for x, y in coords:
            pen.marker(style, x, y)
    if spec.alliance:
        _gap_panel(pen, spec, frame, profile)
    pen.line([(LEFT, bottom), (WIDTH - RIGHT, bottom)], AXIS, 1)
    for index, tick in enumerate(time_ticks(spec.start, spec.end)):
        anchor = "ls" if index == 0 else ("rs" if index == 4 else "ms")
        label = day_label(tick.astimezone(spec.tz).date(), spec.language)
        pen.text(frame.x(tick), bottom + 16, label, 11, AXIS, anchor)
    out = BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
