"""Render a report summary (the dict `jobs.report` builds) as one self-contained HTML page and as Markdown.

No scripts, no external assets: tables plus inline SVG, so the page opens anywhere and can be mailed around.
"""

from html import escape
from typing import Any

from vidscore.jobs.svg import bar_chart, color, histogram_chart

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0 24px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
.scroll { overflow-x: auto; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.up { color: #1a7f37; } .down { color: #c62828; } .muted { color: #888; }
"""


def fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def with_ci(s: dict[str, Any] | None, key: str = "mean") -> str:
    if not s or s.get(key) is None:
        return "n/a"
    return f"{fmt(s[key])} [{fmt(s['ci_low'])}, {fmt(s['ci_high'])}]"


def _leaderboard_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    cols = summary["score_columns"]
    head = ["generator", "videos", "ok", "failure rate", *cols]
    rows = [
        [g["generator"], str(g["videos"]), str(g["ok"]), f"{g['failure_rate']:.1%}"]
        + [with_ci(g["scores"].get(c)) for c in cols]
        for g in summary["generators"]
    ]
    return head, rows


def _comparison_rows(cmp: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    cols = cmp["columns"]
    head = ["generator", *cols]
    rows = [[g["generator"]] + [with_ci(g["scores"].get(c), "delta") for c in cols] for g in cmp["generators"]]
    return head, rows


def markdown(summary: dict[str, Any]) -> str:
    """leaderboard.md: the leaderboard (and the comparison when there is one) as GitHub Markdown tables."""

    def table(head: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])

    level = f"{summary['level']:.0%}"
    out = [
        f"# Leaderboard: {summary['input']}",
        "",
        f"Mean per score column over `ok` videos, with {level} bootstrap CIs ({summary['resamples']} resamples, "
        f"seed {summary['seed']}).",
        "",
        table(*_leaderboard_rows(summary)),
    ]
    cmp = summary.get("comparison")
    if cmp:
        out += ["", f"## Change vs {cmp['baseline']}", "", f"Delta of means (this - baseline), {level} CI.", ""]
        out.append(table(*_comparison_rows(cmp)))
    return "\n".join(out) + "\n"


def _html_table(table_id: str, head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def page(summary: dict[str, Any]) -> str:
    """report.html: leaderboard table, mean-with-CI bars and histograms per score column, optional comparison."""
    gens = summary["generators"]
    names = [g["generator"] for g in gens]
    legend = "".join(f'<span><i style="background:{color(i)}"></i>{escape(n)}</span>' for i, n in enumerate(names))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>vidscore report</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>vidscore report</h1><p>Score table <code>{escape(summary['input'])}</code>, "
        f"{summary['videos']} videos, {summary['ok']} ok; created {escape(summary['created_at'])}.</p>",
        f'<div class="legend">{legend}</div>',
        "<h2>Leaderboard</h2>",
        f"<p>Mean over ok videos with {summary['level']:.0%} bootstrap CI "
        f"({summary['resamples']} resamples, seed {summary['seed']}).</p>",
        _html_table("leaderboard", *_leaderboard_rows(summary)),
    ]
    if not summary["score_columns"]:
        parts.append('<p class="muted">This table has no score columns.</p>')
    parts.append('<h2>Means per generator</h2><div class="grid" id="means">')
    for c in summary["score_columns"]:
        s = [g["scores"].get(c) or {} for g in gens]
        parts.append(
            bar_chart(c, names, [x.get("mean") for x in s], [x.get("ci_low") for x in s], [x.get("ci_high") for x in s])
        )
    parts.append('</div><h2>Score distributions</h2><div class="grid" id="distributions">')
    for c in summary["score_columns"]:
        dist = summary["distributions"][c]
        parts.append(histogram_chart(c, dist["edges"], dist["counts"]))
    parts.append("</div>")
    cmp = summary.get("comparison")
    if cmp:
        parts.append(f"<h2>Change vs <code>{escape(cmp['baseline'])}</code></h2>")
        parts.append("<p>Delta of means (this run minus baseline) with bootstrap CI of the difference.</p>")
        parts.append(_html_table("comparison", *_comparison_rows(cmp)))
        for side, key in (("only in this run", "only_in_current"), ("only in baseline", "only_in_baseline")):
            if cmp[key]:
                parts.append(f'<p class="muted">Generators {side}: {escape(", ".join(cmp[key]))}</p>')
        parts.append('<div class="grid" id="deltas">')
        cgens = [g["generator"] for g in cmp["generators"]]
        for c in cmp["columns"]:
            s = [g["scores"].get(c) or {} for g in cmp["generators"]]
            d, lo, hi = ([x.get(k) for x in s] for k in ("delta", "ci_low", "ci_high"))
            parts.append(bar_chart(f"Δ {c}", cgens, d, lo, hi))
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
