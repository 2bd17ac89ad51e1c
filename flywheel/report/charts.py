"""Inline SVG charts for the HTML report: no JavaScript, no fonts or images to fetch.

* :func:`score_cost_chart`: every evaluation as a point, headline score (with its confidence
  interval as an error bar) against $ per 1,000 requests (a log axis when costs span more than
  a factor of 20); the target as a dashed line, the production model's cost as a vertical line;
  evaluations without a price in a "no price" lane.
* :func:`latency_chart`: one latency histogram per evaluation on a shared time axis, with the
  p50 and p95 marked.

Pure functions returning SVG text; every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from flywheel.report.summary import money
from flywheel.schemas import EvalAssessment, EvalKind, LatencySummary

__all__ = ["KIND_COLOURS", "latency_chart", "nice_ticks", "score_cost_chart"]

KIND_COLOURS = {
    EvalKind.BASE: "#2563eb",
    EvalKind.ICL: "#d97706",
    EvalKind.CUSTOMIZED: "#059669",
}
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
LOG_SCALE_RATIO = 20.0
"""Costs spanning this factor or more are drawn on a logarithmic axis."""


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high`` (about ``count`` of them)."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < high - 1e-12:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def score_cost_chart(
    evals: Sequence[EvalAssessment],
    *,
    currency: str = "USD",
    target: float | None = None,
    production_cost: float | None = None,
    recommended: str | None = None,
    width: int = 720,
    height: int = 360,
) -> str:
    """Score against cost per 1,000 requests, one point per evaluation (see the module doc)."""
    points = [e for e in evals if e.score is not None]
    metric = evals[0].metric if evals else "score"
    left, right, top, bottom = 56, 150, 20, 44
    priced = [e for e in points if e.cost.cost_per_1k is not None]
    unpriced = [e for e in points if e.cost.cost_per_1k is None]
    lane = 70 if unpriced else 0
    plot_w = width - left - right - lane
    plot_h = height - top - bottom
    costs = [e.cost.cost_per_1k for e in priced if e.cost.cost_per_1k is not None]
    costs += [production_cost] if production_cost else []
    positive = [c for c in costs if c > 0]
    logarithmic = bool(positive) and max(positive) / min(positive) >= LOG_SCALE_RATIO
    if logarithmic:
        lo_exp = math.floor(math.log10(min(positive)))
        hi_exp = math.ceil(math.log10(max(positive)))
        hi_exp = hi_exp if hi_exp > lo_exp else lo_exp + 1
        x_ticks = [10.0**e for e in range(lo_exp, hi_exp + 1)]
    else:
        x_ticks = nice_ticks(max(costs, default=0.0) * 1.05 or 1.0)
    scores = [e.score for e in points if e.score is not None]
    lows = [e.interval.low for e in points if e.interval is not None]
    y_min = min([0.0, *scores, *lows])
    y_max = max([1.0, *scores, *[e.interval.high for e in points if e.interval is not None]])

    def x(cost: float) -> float:
        if logarithmic:
            low, high = math.log10(x_ticks[0]), math.log10(x_ticks[-1])
            position = (math.log10(max(cost, x_ticks[0])) - low) / (high - low)
        else:
            position = cost / x_ticks[-1] if x_ticks[-1] else 0.0
        return left + plot_w * position

    def y(score: float) -> float:
        return top + plot_h * (1 - (score - y_min) / ((y_max - y_min) or 1))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="score against cost">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
    ]
    for tick in x_ticks:
        px = x(tick)
        out.append(
            f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + plot_h}" stroke="#eee"/>'
            f'<text x="{px:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>'
            f"{escape(money(tick, currency))}</text>"
        )
    for i in range(6):
        value = y_min + (y_max - y_min) * i / 5
        py = y(value)
        out.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w}" y2="{py:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" {_FONT}>{value:.2f}</text>'
        )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" {_FONT}>'
        f"{escape(currency)} per 1,000 requests{' (log scale)' if logarithmic else ''}</text>"
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(metric)}</text>'
    )
    if target is not None and y_min <= target <= y_max:
        py = y(target)
        out.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w + lane}" y2="{py:.1f}" '
            'stroke="#dc2626" stroke-dasharray="6 4"/>'
            f'<text x="{left + 4}" y="{py + 14:.1f}" fill="#dc2626" {_FONT}>'
            f"target {target:g}</text>"
        )
    if production_cost is not None:
        px = x(production_cost)
        out.append(
            f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + plot_h}" stroke="#6b7280" '
            'stroke-dasharray="3 3"/>'
            f'<text x="{px - 4:.1f}" y="{top + 12}" text-anchor="end" fill="#6b7280" {_FONT}>'
            "production</text>"
        )
    if unpriced:
        lane_x = left + plot_w
        out.append(
            f'<rect x="{lane_x}" y="{top}" width="{lane}" height="{plot_h}" fill="#f3f4f6" '
            'stroke="#ccc"/>'
            f'<text x="{lane_x + lane / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f"{_FONT}>no price</text>"
        )
    placed: list[tuple[float, float]] = []
    for index, e in enumerate(points):
        assert e.score is not None
        if e.cost.cost_per_1k is not None:
            px = x(e.cost.cost_per_1k)
        else:
            px = left + plot_w + lane * (index % 3 + 1) / 4
        py = y(e.score)
        colour = KIND_COLOURS.get(e.kind, "#111")
        if e.interval is not None:
            y_low, y_high = y(e.interval.low), y(e.interval.high)
            out.append(
                f'<line x1="{px:.1f}" y1="{y_low:.1f}" x2="{px:.1f}" y2="{y_high:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
                f'<line x1="{px - 5:.1f}" y1="{y_low:.1f}" x2="{px + 5:.1f}" y2="{y_low:.1f}" '
                f'stroke="{colour}"/><line x1="{px - 5:.1f}" y1="{y_high:.1f}" '
                f'x2="{px + 5:.1f}" y2="{y_high:.1f}" stroke="{colour}"/>'
            )
        ring = (
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="9" fill="none" stroke="#111" '
            'stroke-width="2"/>'
            if e.label == recommended
            else ""
        )
        title = f"{e.label}: {e.score:.3f}" + (
            f" [{e.interval.low:.3f}, {e.interval.high:.3f}]" if e.interval else ""
        )
        label_y = py - 6
        while any(abs(px - ox) < 90 and abs(label_y - oy) < 12 for ox, oy in placed):
            label_y += 12
        placed.append((px, label_y))
        out.append(
            f'<g><title>{escape(title)}</title><circle cx="{px:.1f}" cy="{py:.1f}" r="5" '
            f'fill="{colour}"/>{ring}<text x="{px + 8:.1f}" y="{label_y:.1f}" {_FONT}>'
            f"{escape(e.label)}</text></g>"
        )
    legend_x = width - right + 16
    for i, kind in enumerate(EvalKind):
        ly = top + 10 + i * 18
        out.append(
            f'<circle cx="{legend_x}" cy="{ly}" r="5" fill="{KIND_COLOURS[kind]}"/>'
            f'<text x="{legend_x + 10}" y="{ly + 4}" {_FONT}>{kind.value}</text>'
        )
    if recommended:
        ly = top + 10 + len(EvalKind) * 18
        out.append(
            f'<circle cx="{legend_x}" cy="{ly}" r="7" fill="none" stroke="#111" '
            f'stroke-width="2"/><text x="{legend_x + 10}" y="{ly + 4}" {_FONT}>'
            "recommended</text>"
        )
    out.append("</svg>")
    return "".join(out)


def latency_chart(
    rows: Sequence[tuple[str, EvalKind, LatencySummary]], *, width: int = 720, row_h: int = 46
) -> str:
    """Histograms of request latency, one row per evaluation, on a shared seconds axis."""
    left, right, top, axis = 150, 20, 10, 28
    height = top + row_h * max(1, len(rows)) + axis
    plot_w = width - left - right
    high = max([s.max_s or 0.0 for _, _, s in rows] + [0.0])
    ticks = nice_ticks(high if high > 0 else 1.0)
    x_max = ticks[-1]

    def x(seconds: float) -> float:
        return left + plot_w * (seconds / x_max if x_max else 0)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="latency distribution">'
    ]
    bottom = top + row_h * max(1, len(rows))
    for tick in ticks:
        px = x(tick)
        out.append(
            f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}" stroke="#eee"/>'
            f'<text x="{px:.1f}" y="{bottom + 14}" text-anchor="middle" {_FONT}>{tick:g}s</text>'
        )
    for row, (label, kind, summary) in enumerate(rows):
        base_y = top + row_h * (row + 1) - 6
        colour = KIND_COLOURS.get(kind, "#111")
        out.append(
            f'<text x="{left - 8}" y="{base_y - 8}" text-anchor="end" {_FONT}>'
            f"{escape(label)}</text>"
        )
        counts = summary.histogram_counts
        edges = summary.histogram_edges_s
        peak = max(counts) if counts else 0
        for i, count in enumerate(counts):
            if not count or i + 1 >= len(edges):
                continue
            x0, x1 = x(edges[i]), x(edges[i + 1])
            bar_h = (row_h - 14) * count / peak
            out.append(
                f'<rect x="{x0:.1f}" y="{base_y - bar_h:.1f}" width="{max(1.0, x1 - x0 - 1):.1f}" '
                f'height="{bar_h:.1f}" fill="{colour}" fill-opacity="0.55">'
                f"<title>{edges[i]:.3g}–{edges[i + 1]:.3g}s: {count}</title></rect>"
            )
        for name, value in (("p50", summary.p50_s), ("p95", summary.p95_s)):
            if value is None:
                continue
            px = x(value)
            out.append(
                f'<line x1="{px:.1f}" y1="{base_y - row_h + 16}" x2="{px:.1f}" y2="{base_y}" '
                'stroke="#111" stroke-width="1.5"/>'
                f'<text x="{px + 3:.1f}" y="{base_y - row_h + 24}" {_FONT}>{name}</text>'
            )
        out.append(
            f'<line x1="{left}" y1="{base_y}" x2="{left + plot_w}" y2="{base_y}" stroke="#999"/>'
        )
    out.append("</svg>")
    return "".join(out)
