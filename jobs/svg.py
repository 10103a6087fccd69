"""Hand-written inline SVG charts for the report: no plotting dependency, and the page stays one file.

Means are drawn as dots with CI whiskers on an axis fitted to the intervals (not from 0), so 3.75 and 3.98 look
different; deltas keep 0 on the axis, where the sign matters. Axes carry 1-2-5 ticks with labels and grid lines.
Dots are `<circle class="dot">`, whiskers `<line class="ci">`, histogram bars `<rect class="bar">`, ticks
`<text class="tick">`, so tests (and people) can find them in the DOM.
"""

import math
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def tick_label(v: float, step: float) -> str:
    """A tick's text with as many decimals as the step needs (no 2.4000000001)."""
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    if abs(v) >= 1e5 or (abs(v) < 1e-3 and v != 0 and decimals > 4):
        return f"{v:.2g}"
    return f"{v:.{decimals}f}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float]]:
    """(axis low, axis high, ticks): 1-2-5 steps covering [lo, hi] with about `count` ticks."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0, [0.0, 0.5, 1.0]
    if hi <= lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start, end = math.floor(lo / step) * step, math.ceil(hi / step) * step
    ticks = [start + i * step for i in range(int(round((end - start) / step)) + 1)]
    return start, end, [round(t, 12) for t in ticks]


def _axis(parts: list[str], lo: float, hi: float, ticks: list[float], x, top: float, bottom: float) -> None:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{bottom}" stroke="#e4e4e4"/>')
        parts.append(
            f'<text class="tick" x="{x(t):.1f}" y="{bottom + 13}" font-size="10" text-anchor="middle" '
            f'fill="#555">{tick_label(t, step)}</text>'
        )


def dot_chart(
    title: str,
    labels: list[str],
    values: list[float | None],
    lows: list[float | None],
    highs: list[float | None],
    zero: bool = False,
    width: int = 440,
    colors: list[str] | None = None,
) -> str:
    """One row per label: a dot at the value with its CI whisker. The axis fits the intervals (with `zero`, it
    also spans 0, drawn darker: for differences). `colors`: one per label (default: the palette in order)."""
    row, left, right, top = 20, 130, 16, 26
    height = top + row * len(labels) + 22
    known = [v for v in values + lows + highs if v is not None and math.isfinite(v)]
    lo, hi = (min(known), max(known)) if known else (0.0, 1.0)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    lo, hi, ticks = nice_ticks(lo, hi)
    span = width - left - right

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * span

    bottom = top + row * len(labels)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart dots" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    _axis(parts, lo, hi, ticks, x, top - 4, bottom)
    if zero:
        parts.append(f'<line class="zero" x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{bottom}" stroke="#666"/>')
    for i, (label, v, l_, h_) in enumerate(zip(labels, values, lows, highs)):
        y = top + i * row + row / 2
        parts.append(f'<text x="{left - 6}" y="{y + 4}" font-size="11" text-anchor="end">{escape(label[:20])}</text>')
        if v is None or not math.isfinite(v):
            parts.append(f'<text x="{left + 4}" y="{y + 4}" font-size="11" fill="#888">no data</text>')
            continue
        if l_ is not None and h_ is not None:
            parts.append(
                f'<line class="ci" x1="{x(l_):.1f}" y1="{y}" x2="{x(h_):.1f}" y2="{y}" stroke="#222" '
                'stroke-width="1.5"/>'
            )
        parts.append(
            f'<circle class="dot" cx="{x(v):.1f}" cy="{y}" r="4.5" fill="{colors[i] if colors else color(i)}">'
            f"<title>{escape(label)}: {v:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(title: str, edges: list[float], counts: dict[str, list[int]], width: int = 440) -> str:
    """Stacked histogram: one colour per group (generator, same colours as the dots), shared bins, ticked axis."""
    height, left, bottom, top = 170, 40, 24, 24
    groups = list(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart hist" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    if not edges:
        parts.append(f'<text x="{left}" y="{height / 2}" font-size="12" fill="#888">no values</text></svg>')
        return "".join(parts)
    bins = len(edges) - 1
    totals = [sum(counts[g][b] for g in groups) for b in range(bins)]
    peak = max(totals + [1])
    plot_w, plot_h = width - left - 12, height - top - bottom
    lo, hi = edges[0], edges[-1]

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w if hi > lo else left

    y_axis = top + plot_h
    _, _, ticks = nice_ticks(lo, hi)
    _axis(parts, lo, hi, [t for t in ticks if lo <= t <= hi], x, top, y_axis)
    bw = plot_w / bins
    for b in range(bins):
        base = 0
        for gi, g in enumerate(groups):
            c = counts[g][b]
            if c == 0:
                continue
            h = c / peak * plot_h
            y = top + plot_h - (base + c) / peak * plot_h
            parts.append(
                f'<rect class="bar" x="{left + b * bw + 0.5:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{color(gi)}"><title>{escape(g)}: {c} in [{edges[b]:.4g}, '
                f"{edges[b + 1]:.4g})</title></rect>"
            )
            base += c
    parts.append(f'<line x1="{left}" y1="{y_axis}" x2="{width - 12}" y2="{y_axis}" stroke="#888"/>')
    parts.append(f'<text class="tick" x="4" y="{top + 10}" font-size="10" fill="#555">{peak}</text>')
    parts.append("</svg>")
    return "".join(parts)
