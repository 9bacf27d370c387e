"""Server-side SVG charts (no JavaScript, no CDN): the page renders the same offline and in a screenshot.

Built in code (coordinates, not markup, are the work here); every text goes through markupsafe's
``escape`` and the chart is returned as ``Markup`` for the templates."""

from __future__ import annotations

import math
from collections.abc import Callable

from markupsafe import Markup, escape

PALETTE = ("#017cee", "#e8710a", "#d93025", "#1e8e3e", "#9334e6", "#5f6368")
WIDTH, PLOT_HEIGHT = 560, 152
LEFT, RIGHT, TOP, AXIS = 56, 12, 28, 24
LEGEND_ROW = 16
MAX_X_LABELS = 5


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _legend_rows(names: list[str]) -> list[list[tuple[str, int]]]:
    """Legend entries (name, x) wrapped into rows that fit the chart's width."""
    rows: list[list[tuple[str, int]]] = [[]]
    x = LEFT
    for name in names:
        width = 22 + 7 * len(name)
        if rows[-1] and x + width > WIDTH - RIGHT:
            rows.append([])
            x = LEFT
        rows[-1].append((name, x))
        x += width
    return rows


def _gapped(values: list[float | None]) -> list[list[tuple[int, float]]]:
    """(index, value) runs of consecutive values: a ``None`` ends a run (a gap in the line)."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((i, v))
    return [run for run in runs if run]


def _series_parts(
    series: dict[str, list[float | None]],
    legend: list[list[tuple[str, int]]],
    x: Callable[[int], float],
    y: Callable[[float], float],
) -> list[str]:
    """Per series: its polylines and points, and its legend entry."""
    parts = []
    positions = {
        name: (x0, TOP + PLOT_HEIGHT + AXIS + LEGEND_ROW * row)
        for row, names in enumerate(legend)
        for name, x0 in names
    }
    for (name, vs), color in zip(series.items(), PALETTE, strict=False):
        for run in _gapped(vs):
            points = [(f"{x(i):.1f}", f"{y(v):.1f}") for i, v in run]
            polyline = " ".join(f"{cx},{cy}" for cx, cy in points)
            parts.append(f'<polyline points="{polyline}" fill="none" stroke="{color}" stroke-width="2"/>')
            parts += [f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>' for cx, cy in points]
        lx, ly = positions[name]
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly + 9}">{escape(name)}</text>'
        )
    return parts


def line_chart(
    title: str,
    labels: list[str],
    series: dict[str, list[float | None]],
    *,
    limit: float | None = None,
    limit_label: str = "limit",
) -> Markup:
    """One SVG: a line per series over ``labels`` (oldest first), an optional dashed horizontal limit.

    A ``None`` value leaves a gap (the run did not report that figure)."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = _nice_max(max([*values, limit or 0, 0]) * (1.1 if limit else 1.0))
    legend = _legend_rows(list(series))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PLOT_HEIGHT
    height = TOP + plot_h + AXIS + LEGEND_ROW * len(legend) + 4
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for k in range(5):  # grid and y axis labels
        v = top * k / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    if not values:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle">'
            "no figures reported yet</text>"
        )
    if limit is not None:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" class="limit"/>'
            f'<text x="{WIDTH - RIGHT}" y="{y(limit) - 4:.1f}" text-anchor="end" class="limit-label">'
            f"{escape(limit_label)} {_fmt(limit)}</text>"
        )
    parts += _series_parts(series, legend, x, y)
    parts.append("</svg>")
    return Markup("".join(parts))  # every text in it went through escape
