"""Charts for the therapist console: both partners' ratings over time as SVG (pure).

One chart per rating (role). Both partners are drawn on the same axes and the same fixed
0-10 scale, each with a colour from the Okabe-Ito palette (told apart with every common
colour-vision deficiency) *and* a second cue that needs no colour at all: partner A is a
solid line with round markers, partner B a dashed line with square markers. The style
follows the seat (A or B), never the order, so a partner keeps their look from one digest
to the next; the partner shown first (the digest's alternation) is listed and drawn first.

Session dates are dashed vertical rules. The alliance chart also shades the gap between
the two partners' lines and has a second panel with the gap itself and the practice's
split-alliance threshold as a line. Every chart comes with a text table of the same
values for screen readers (and for anyone who prefers numbers).

The SVG uses presentation attributes only (no ``style``), so a strict
Content-Security-Policy allows it inline. Output depends only on the input: coordinates
are rounded to one decimal, so golden files are stable.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.locales import t
from bot.locales.formats import format_day_month, format_number

Slot = Literal["A", "B"]
SCALE_MAX = 10.0

WIDTH = 640
LEFT, RIGHT, TOP = 34, 14, 34
PLOT_HEIGHT = 150
GAP_HEIGHT = 60
PANEL_SPACE = 34
AXIS_SPACE = 22


@dataclass(frozen=True)
class SeatStyle:
    """How one seat's series is drawn: colour, dash pattern, marker shape."""

    colour: str
    dash: str | None
    marker: Literal["circle", "square"]


# Okabe-Ito blue and vermillion: distinct under protan, deutan and tritan vision alike.
STYLES: dict[Slot, SeatStyle] = {
    "A": SeatStyle("#0072B2", None, "circle"),
    "B": SeatStyle("#D55E00", "6 4", "square"),
}
GRID = "#d0d0d0"
AXIS = "#555555"
SESSION = "#6a6a6a"
BAND = "#999999"
OVER = "#CC79A7"  # Okabe-Ito reddish purple: the gap at or above the threshold


@dataclass(frozen=True)
class ChartSeries:
    """One partner's ratings for one role, oldest first (aware datetimes, 0-10)."""

    slot: Slot
    name: str
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True)
class Chart:
    """A rendered chart: the SVG, its text table, both as safe HTML."""

    chart_id: str
    title: str
    svg: str
    table: str

    def html(self) -> str:
        """The chart as a figure: the picture, then the same values as a table."""
        return (
            f'<figure class="chart" id="{_e(self.chart_id)}">'
            f"<figcaption>{_e(self.title)}</figcaption>\n{self.svg}\n{self.table}</figure>"
        )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(value: float) -> str:
    """A coordinate with at most one decimal, never ``-0``."""
    text = f"{round(value, 1):.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def chart_text(language: str, key: str, /, **params: object) -> str:
    """A chart's words (legend, panel, table) from the ``console.chart`` catalog keys."""
    return t(language, f"console.chart.{key}", **params)


def day_label(day: date, language: str) -> str:
    """A date on the time axis and in the table ("5 Oct")."""
    return format_day_month(day, language)


def _clamp(value: float) -> float:
    return min(SCALE_MAX, max(0.0, float(value)))


class Frame:
    """Maps times and scores to coordinates (CSS pixels) in one panel of a chart."""

    def __init__(self, start: datetime, end: datetime, top: float, height: float) -> None:
        self.start = start
        self.span = max((end - start).total_seconds(), 1.0)
        self.top = top
        self.height = height
        self.width = WIDTH - LEFT - RIGHT

    def x(self, when: datetime) -> float:
        """Where a moment falls (clamped to the period)."""
        share = (when - self.start).total_seconds() / self.span
        return LEFT + min(1.0, max(0.0, share)) * self.width

    def y(self, value: float) -> float:
        """Where a score falls on the fixed 0-10 scale."""
        return self.top + self.height * (1 - _clamp(value) / SCALE_MAX)


def _marker(style: SeatStyle, x: float, y: float, slot: Slot) -> str:
    common = f'fill="{style.colour}" stroke="#ffffff" stroke-width="1" class="point seat-{slot}"'
    if style.marker == "circle":
        return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4" {common}/>'
    return f'<rect x="{_n(x - 3.8)}" y="{_n(y - 3.8)}" width="7.6" height="7.6" {common}/>'


def _line(points: Sequence[tuple[float, float]], style: SeatStyle, slot: Slot) -> str:
    if len(points) < 2:
        return ""
    coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
    dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
    return (
        f'<polyline points="{coords}" fill="none" stroke="{style.colour}" '
        f'stroke-width="2.2" stroke-linejoin="round"{dash} class="line seat-{slot}"/>'
    )


def _interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    """The series' value at ``x`` (linear between its points; ``x`` inside its span)."""
    for (x0, y0), (x1, y1) in pairwise(points):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def gap_profile(
    first: Sequence[tuple[float, float]], second: Sequence[tuple[float, float]]
) -> list[tuple[float, float, float]]:
    """(x, higher, lower) where both series are drawn, crossings included; symmetric."""
    if len(first) < 1 or len(second) < 1:
        return []
    lo = max(first[0][0], second[0][0])
    hi = min(first[-1][0], second[-1][0])
    if hi < lo:
        return []
    xs = sorted({lo, hi, *(x for x, _ in (*first, *second) if lo <= x <= hi)})
    out: list[tuple[float, float, float]] = []
    for index, x in enumerate(xs):
        a, b = _interpolate(first, x), _interpolate(second, x)
        if index:
            px = xs[index - 1]
            pa, pb = _interpolate(first, px), _interpolate(second, px)
            if (pa - pb) * (a - b) < 0:  # the lines cross between the two xs
                share = (pa - pb) / ((pa - pb) - (a - b))
                cx = px + (x - px) * share
                cy = pa + (a - pa) * share
                out.append((cx, cy, cy))
        out.append((x, max(a, b), min(a, b)))
    return out


def sorted_points(series: ChartSeries) -> list[tuple[datetime, float]]:
    """A series' ratings oldest first, each held to the 0-10 scale."""
    return sorted(((at, _clamp(v)) for at, v in series.points), key=lambda p: p[0])


def _grid(frame: Frame, steps: Sequence[float], language: str) -> list[str]:
    out = []
    for value in steps:
        y = frame.y(value)
        out.append(
            f'<line x1="{LEFT}" y1="{_n(y)}" x2="{WIDTH - RIGHT}" y2="{_n(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end" font-size="11" '
            f'fill="{AXIS}">{_e(format_number(value, language))}</text>'
        )
    return out


def time_ticks(start: datetime, end: datetime, count: int = 5) -> list[datetime]:
    """Evenly spaced moments for the time axis' labels, both ends included."""
    span = end - start
    return [start + span * (i / (count - 1)) for i in range(count)]


def _legend(series: tuple[ChartSeries, ChartSeries], language: str, band: bool) -> list[str]:
    out = []
    x = LEFT
    for item in series:
        style = STYLES[item.slot]
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        out.append(
            f'<line x1="{x}" y1="14" x2="{x + 26}" y2="14" stroke="{style.colour}" '
            f'stroke-width="2.2"{dash}/>'
        )
        out.append(_marker(style, x + 13, 14, item.slot))
        label = chart_text(language, "legend_partner", name=item.name, slot=item.slot)
        out.append(f'<text x="{x + 32}" y="18" font-size="12" fill="#222222">{_e(label)}</text>')
        x += 40 + 7 * min(len(label), 28)
    out.append(
        f'<line x1="{x}" y1="6" x2="{x}" y2="22" stroke="{SESSION}" stroke-width="1.2" '
        'stroke-dasharray="2 3"/>'
    )
    out.append(
        f'<text x="{x + 6}" y="18" font-size="12" fill="#222222">'
        f"{_e(chart_text(language, 'legend_session'))}</text>"
    )
    if band:
        x += 16 + 7 * len(chart_text(language, "legend_session"))
        out.append(f'<rect x="{x}" y="8" width="18" height="12" fill="{BAND}" fill-opacity="0.3"/>')
        out.append(
            f'<text x="{x + 24}" y="18" font-size="12" fill="#222222">'
            f"{_e(chart_text(language, 'legend_gap'))}</text>"
        )
    return out


@dataclass(frozen=True)
class ChartSpec:
    """What one chart shows: one role's ratings of both partners over a period, values only.

    ``series`` holds the first-shown partner first; ``gap_threshold`` (the alliance
    chart) shades the gap between the partners and adds a panel with the gap over time
    and the split-alliance threshold as a line. The SVG (:func:`chart_svg`) and the PNG
    (``bot.core.chart_png``) are drawn from the same spec, on the same geometry.
    """

    chart_id: str
    title: str
    series: tuple[ChartSeries, ChartSeries]
    start: datetime
    end: datetime
    sessions: tuple[datetime, ...]
    language: str
    tz: tzinfo
    gap_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.series[0].slot == self.series[1].slot:
            raise ValueError("a chart needs one series per seat")

    @property
    def alliance(self) -> bool:
        """Whether this is the alliance chart (gap band and gap panel)."""
        return self.gap_threshold is not None

    @property
    def height(self) -> int:
        """The chart's height in CSS pixels (its width is :data:`WIDTH`)."""
        panel = (PANEL_SPACE + GAP_HEIGHT) if self.alliance else 0
        return TOP + PLOT_HEIGHT + AXIS_SPACE + panel

    @property
    def has_ratings(self) -> bool:
        """Whether either partner has a rating on this chart."""
        return any(item.points for item in self.series)

    def summary(self) -> str:
        """The chart in one sentence (each partner's count and latest rating): its alt text."""
        return _summary(self.series, self.language, self.gap_threshold)

    def to_dict(self) -> dict[str, object]:
        """The spec as JSON-ready values (the time zone by its IANA name)."""
        return {
            "chart_id": self.chart_id,
            "title": self.title,
            "series": [
                {
                    "slot": item.slot,
                    "name": item.name,
                    "points": [[at.isoformat(), value] for at, value in item.points],
                }
                for item in self.series
            ],
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "sessions": [when.isoformat() for when in self.sessions],
            "language": self.language,
            "tz": str(self.tz),
            "gap_threshold": self.gap_threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChartSpec:
        """The spec :meth:`to_dict` wrote."""
        first, second = (
            ChartSeries(
                item["slot"],
                str(item["name"]),
                tuple((datetime.fromisoformat(at), float(value)) for at, value in item["points"]),
            )
            for item in data["series"]
        )
        threshold = data.get("gap_threshold")
        return cls(
            chart_id=str(data["chart_id"]),
            title=str(data["title"]),
            series=(first, second),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            sessions=tuple(datetime.fromisoformat(when) for when in data["sessions"]),
            language=str(data["language"]),
            tz=ZoneInfo(str(data["tz"])),
            gap_threshold=None if threshold is None else float(threshold),
        )


def rating_chart(
    *,
    chart_id: str,
    title: str,
    series: tuple[ChartSeries, ChartSeries],
    start: datetime,
    end: datetime,
    sessions: Sequence[datetime],
    language: str,
    tz: tzinfo,
    gap_threshold: float | None = None,
) -> Chart:
    """One role's ratings of both partners (first-shown partner first) from start to end,
    as SVG with its table (:class:`ChartSpec` says what each argument means)."""
    spec = ChartSpec(
        chart_id, title, series, start, end, tuple(sessions), language, tz, gap_threshold
    )
    return chart_svg(spec)


def chart_svg(spec: ChartSpec) -> Chart:
    """The chart as inline SVG, with the same values as a table."""
    chart_id, title, series = spec.chart_id, spec.title, spec.series
    start, end, sessions = spec.start, spec.end, spec.sessions
    language, tz, gap_threshold = spec.language, spec.tz, spec.gap_threshold
    alliance = spec.alliance
    height = spec.height
    frame = Frame(start, end, TOP, PLOT_HEIGHT)
    points = {s.slot: sorted_points(s) for s in series}
    xy = {slot: [(frame.x(at), v) for at, v in pts] for slot, pts in points.items()}
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" class="chart-svg" '
        f'aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" '
        'font-family="system-ui, sans-serif">',
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>',
        f'<desc id="{_e(chart_id)}-desc">{_e(_summary(series, language, gap_threshold))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    parts += _legend(series, language, alliance)
    parts += _grid(frame, (0, 2, 4, 6, 8, 10), language)
    first, second = (xy[s.slot] for s in series)
    profile = gap_profile(first, second)
    if alliance and len(profile) >= 2:
        upper = " ".join(f"{_n(x)},{_n(frame.y(hi))}" for x, hi, _ in profile)
        lower = " ".join(f"{_n(x)},{_n(frame.y(lo))}" for x, _, lo in reversed(profile))
        parts.append(
            f'<polygon points="{upper} {lower}" fill="{BAND}" fill-opacity="0.3" '
            'stroke="none" class="gap-band"/>'
        )
    bottom = TOP + (height - TOP - AXIS_SPACE)
    for when in sorted(sessions):
        if start <= when <= end:
            x = frame.x(when)
            parts.append(
                f'<line x1="{_n(x)}" y1="{TOP - 4}" x2="{_n(x)}" y2="{_n(bottom)}" '
                f'stroke="{SESSION}" stroke-width="1.2" stroke-dasharray="2 3" class="session"/>'
            )
    for item in series:
        style = STYLES[item.slot]
        coords = [(x, frame.y(v)) for x, v in xy[item.slot]]
        parts.append(f'<g class="series seat-{item.slot}">')
        if line := _line(coords, style, item.slot):
            parts.append(line)
        parts += [_marker(style, x, y, item.slot) for x, y in coords]
        parts.append("</g>")
    if alliance:
        assert gap_threshold is not None
        parts += _gap_panel(frame, profile, gap_threshold, language, start, end)
    axis_y = bottom
    parts.append(
        f'<line x1="{LEFT}" y1="{_n(axis_y)}" x2="{WIDTH - RIGHT}" y2="{_n(axis_y)}" '
        f'stroke="{AXIS}" stroke-width="1"/>'
    )
    for index, tick in enumerate(time_ticks(start, end)):
        x = frame.x(tick)
        anchor = "start" if index == 0 else ("end" if index == 4 else "middle")
        label = day_label(tick.astimezone(tz).date(), language)
        parts.append(
            f'<text x="{_n(x)}" y="{_n(axis_y + 16)}" text-anchor="{anchor}" font-size="11" '
            f'fill="{AXIS}">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return Chart(chart_id, title, "\n".join(parts), chart_table(spec))


def chart_table(spec: ChartSpec) -> str:
    """The chart's values as an HTML table, for screen readers and for reading numbers."""
    points = {s.slot: sorted_points(s) for s in spec.series}
    return _table(
        spec.chart_id,
        spec.title,
        spec.series,
        points,
        spec.sessions,
        spec.start,
        spec.end,
        spec.language,
        spec.tz,
        spec.alliance,
    )


def image_figure(spec: ChartSpec, src: str) -> str:
    """The chart as a figure around a raster picture of it (an e-mail's ``cid:`` image),
    with the chart in words as its alt text, then the same values as a table."""
    alt = f"{spec.title}: {spec.summary()}"
    return (
        f'<figure class="chart" id="{_e(spec.chart_id)}">'
        f"<figcaption>{_e(spec.title)}</figcaption>\n"
        f'<img src="{_e(src)}" alt="{_e(alt)}" width="{WIDTH}" height="{spec.height}" '
        'style="display:block;max-width:100%;height:auto;border:0">\n'
        f"{chart_table(spec)}</figure>"
    )


def _gap_panel(
    frame: Frame,
    profile: list[tuple[float, float, float]],
    threshold: float,
    language: str,
    start: datetime,
    end: datetime,
) -> list[str]:
    """The gap between the partners over time, with the split-alliance threshold line."""
    top = frame.top + frame.height + PANEL_SPACE
    panel = Frame(start, end, top, GAP_HEIGHT)
    out = [
        f'<text x="{LEFT}" y="{_n(top - 8)}" font-size="12" fill="#222222">'
        f"{_e(chart_text(language, 'gap_panel'))}</text>"
    ]
    out += _grid(panel, (0, 5, 10), language)
    if len(profile) >= 2:
        coords = " ".join(f"{_n(x)},{_n(panel.y(hi - lo))}" for x, hi, lo in profile)
        out.append(
            f'<polyline points="{coords}" fill="none" stroke="#222222" stroke-width="1.6" '
            'class="gap-line"/>'
        )
    for x, hi, lo in profile:
        if hi - lo >= threshold:
            out.append(
                f'<circle cx="{_n(x)}" cy="{_n(panel.y(hi - lo))}" r="3.5" fill="{OVER}" '
                'stroke="#222222" stroke-width="0.8" class="over-threshold"/>'
            )
    y = panel.y(threshold)
    out.append(
        f'<line x1="{LEFT}" y1="{_n(y)}" x2="{WIDTH - RIGHT}" y2="{_n(y)}" stroke="{OVER}" '
        'stroke-width="1.6" stroke-dasharray="8 3 2 3" class="threshold"/>'
    )
    label = chart_text(language, "threshold", value=format_number(threshold, language))
    out.append(
        f'<line x1="{WIDTH - RIGHT - 30}" y1="{_n(top - 12)}" x2="{WIDTH - RIGHT}" '
        f'y2="{_n(top - 12)}" stroke="{OVER}" stroke-width="1.6" stroke-dasharray="8 3 2 3"/>'
    )
    out.append(
        f'<text x="{WIDTH - RIGHT - 36}" y="{_n(top - 8)}" text-anchor="end" font-size="11" '
        f'fill="#222222">{_e(label)}</text>'
    )
    return out


def _summary(
    series: tuple[ChartSeries, ChartSeries], language: str, threshold: float | None
) -> str:
    parts = []
    for item in series:
        values = [v for _, v in sorted(item.points, key=lambda p: p[0])]
        if values:
            latest = format_number(_clamp(values[-1]), language)
            parts.append(
                chart_text(language, "summary", name=item.name, count=len(values), latest=latest)
            )
        else:
            parts.append(chart_text(language, "summary_none", name=item.name))
    text = chart_text(language, "summary_separator").join(parts)
    if threshold is not None:
        text += " " + chart_text(language, "threshold", value=format_number(threshold, language))
    return text


def _table(
    chart_id: str,
    title: str,
    series: tuple[ChartSeries, ChartSeries],
    points: dict[Slot, list[tuple[datetime, float]]],
    sessions: Sequence[datetime],
    start: datetime,
    end: datetime,
    language: str,
    tz: tzinfo,
    alliance: bool,
) -> str:
    """The chart's values by local date: one column per partner (first shown first)."""
    by_day: dict[date, dict[str, list[float]]] = {}
    for item in series:
        for at, value in points[item.slot]:
            by_day.setdefault(at.astimezone(tz).date(), {}).setdefault(item.slot, []).append(value)
    session_days = {s.astimezone(tz).date() for s in sessions if start <= s <= end}
    for day in session_days:
        by_day.setdefault(day, {})
    head = [chart_text(language, "table_date")]
    head += [chart_text(language, "legend_partner", name=s.name, slot=s.slot) for s in series]
    if alliance:
        head.append(chart_text(language, "table_gap"))
    head.append(chart_text(language, "legend_session"))
    rows = []
    for day in sorted(by_day):
        cells = by_day[day]
        row = [f'<th scope="row">{_e(day_label(day, language))}</th>']
        means = []
        for item in series:
            values = cells.get(item.slot, [])
            text = " / ".join(format_number(v, language) for v in values) or "—"
            row.append(f"<td>{_e(text)}</td>")
            means.append(sum(values) / len(values) if values else None)
        if alliance:
            a, b = means
            gap = "—" if a is None or b is None else format_number(abs(a - b), language)
            row.append(f"<td>{_e(gap)}</td>")
        mark = chart_text(language, "table_session_mark") if day in session_days else ""
        row.append(f"<td>{_e(mark)}</td>")
        rows.append(f"<tr>{''.join(row)}</tr>")
    if not rows:
        colspan = len(head)
        rows.append(
            f'<tr><td colspan="{colspan}">{_e(chart_text(language, "table_empty"))}</td></tr>'
        )
    header = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    return (
        f'<table class="chart-data" id="{_e(chart_id)}-table">'
        f"<caption>{_e(chart_text(language, 'table_caption', title=title))}</caption>"
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
