"""Hand-written inline SVG charts for the report: no plotting dependency, and the page stays one file.

Bars are `<rect class="bar">`, CI whiskers `<line class="ci">`, so tests (and people) can find them in the DOM.
"""

from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def bar_chart(
    title: str,
    labels: list[str],
    values: list[float | None],
    lows: list[float | None],
    highs: list[float | None],
    width: int = 520,
) -> str:
    """Horizontal bars (one per label) with CI whiskers; the axis includes 0 so signs read correctly."""
    row, left, right, top = 22, 150, 20, 28
    height = top + row * len(labels) + 24
    known = [v for v in values + lows + highs if v is not None]
    lo, hi = min(known + [0.0]), max(known + [0.0])
    if lo == hi:
        hi = lo + 1.0
    span = width - left - right

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - 20}" stroke="#888"/>',
    ]
    for i, (label, v, l_, h_) in enumerate(zip(labels, values, lows, highs)):
        y = top + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{escape(label)}</text>')
        if v is None:
            parts.append(f'<text x="{left + 4}" y="{y + 14}" font-size="11" fill="#888">no data</text>')
            continue
        x0, x1 = sorted((x(0), x(v)))
        parts.append(
            f'<rect class="bar" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{row - 6}" '
            f'fill="{color(i)}"><title>{escape(label)}: {_fmt(v)}</title></rect>'
        )
        if l_ is not None and h_ is not None:
            yc = y + row / 2
            parts.append(
                f'<line class="ci" x1="{x(l_):.1f}" y1="{yc}" x2="{x(h_):.1f}" y2="{yc}" stroke="#222"/>'
                f'<line x1="{x(l_):.1f}" y1="{yc - 4}" x2="{x(l_):.1f}" y2="{yc + 4}" stroke="#222"/>'
                f'<line x1="{x(h_):.1f}" y1="{yc - 4}" x2="{x(h_):.1f}" y2="{yc + 4}" stroke="#222"/>'
            )
    parts.append(f'<text x="{left}" y="{height - 6}" font-size="10" fill="#555">{_fmt(lo)}</text>')
    parts.append(
        f'<text x="{width - right}" y="{height - 6}" font-size="10" text-anchor="end" fill="#555">{_fmt(hi)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(title: str, edges: list[float], counts: dict[str, list[int]], width: int = 520) -> str:
    """Stacked histogram: one colour per group (generator, same colours as the bars), shared bins."""
    height, left, bottom, top = 180, 40, 22, 24
    groups = list(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart hist" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    if not edges:
        parts.append(f'<text x="{left}" y="{height / 2}" font-size="12" fill="#888">no values</text></svg>')
        return "".join(parts)
    bins = len(edges) - 1
    totals = [sum(counts[g][b] for g in groups) for b in range(bins)]
    peak = max(totals + [1])
    plot_w, plot_h = width - left - 10, height - top - bottom
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
                f'height="{h:.1f}" fill="{color(gi)}"><title>{escape(g)}: {c} in [{_fmt(edges[b])}, '
                f"{_fmt(edges[b + 1])})</title></rect>"
            )
            base += c
    y_axis = top + plot_h
    parts.append(f'<line x1="{left}" y1="{y_axis}" x2="{width - 10}" y2="{y_axis}" stroke="#888"/>')
    parts.append(f'<text x="{left}" y="{y_axis + 14}" font-size="10" fill="#555">{_fmt(edges[0])}</text>')
    end = f'<text x="{width - 10}" y="{y_axis + 14}" font-size="10" text-anchor="end" fill="#555">'
    parts.append(f"{end}{_fmt(edges[-1])}</text>")
    parts.append(f'<text x="4" y="{top + 10}" font-size="10" fill="#555">{peak}</text>')
    parts.append("</svg>")
    return "".join(parts)
