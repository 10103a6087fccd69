"""Render a report summary (the dict `jobs.report` builds) as one self-contained HTML page and as Markdown.

No scripts, no external assets: tables plus inline SVG, so the page opens anywhere and can be mailed around.
Order: a summary (runs and checkpoints compared, what changed, alerts), one section per scorer (leaderboard with
its lead columns, the rest and MJ-VIDEO's criteria folded, charts), the comparison, failures. Nothing is wider
than 1400 px: long names wrap, and each table holds one scorer's lead columns.
"""

from html import escape
from typing import Any

from vidscore.jobs.svg import color, dot_chart, histogram_chart

STYLE = """
body { font-family: system-ui, sans-serif; margin: 20px auto; max-width: 1360px; padding: 0 16px; color: #222; }
h2 { margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0 16px; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { white-space: normal; background: #f6f6f6; } td { white-space: nowrap; }
th:first-child, td:first-child, td.wrap { text-align: left; }
td.wrap, code { white-space: normal; overflow-wrap: anywhere; }
details { margin: 4px 0 8px; } summary { cursor: pointer; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 5px; }
.alert { color: #b71c1c; font-weight: 600; } .warn { color: #8a5300; } .muted { color: #777; }
.up { color: #1a7f37; } .down { color: #c62828; }
"""


def fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def with_ci(s: dict[str, Any] | None, key: str = "mean") -> str:
    if not s or s.get(key) is None:
        return "n/a"
    return f"{fmt(s[key])} [{fmt(s['ci_low'])}, {fmt(s['ci_high'])}]"


def short(column: str, scorer: str) -> str:
    return column.removeprefix(scorer + "_")


def _colors(summary: dict[str, Any], names: list[str]) -> list[str]:
    """Each generator's colour from the legend (the leaderboard's order), whatever order a chart lists them in."""
    order = {g["generator"]: i for i, g in enumerate(summary["generators"])}
    return [color(order.get(n, 0)) for n in names]


def _ranked(summary: dict[str, Any], column: str) -> list[dict[str, Any]]:
    """Generators by `column`'s mean, best first (no data last)."""
    gens = summary["generators"]
    return sorted(gens, key=lambda g: (g["scores"][column]["mean"] is None, -(g["scores"][column]["mean"] or 0.0)))


def _board(summary: dict[str, Any], block: dict[str, Any], columns: list[str]) -> tuple[list[str], list[list[str]]]:
    head = ["generator", "videos", "ok", "failure rate", *(short(c, block["name"]) for c in columns)]
    rows = [
        [g["generator"], str(g["videos"]), str(g["ok"]), f"{g['failure_rate']:.1%}"]
        + [with_ci(g["scores"].get(c)) for c in columns]
        for g in _ranked(summary, block["headline"][0])
    ]
    return head, rows


def _deltas(cmp: dict[str, Any], block: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    cols = [c for c in block["headline"] if c in cmp["columns"]]
    head = ["generator", *(short(c, block["name"]) for c in cols)]
    rows = []
    for g in cmp["generators"]:
        cells = []
        for c in cols:
            s = g["scores"].get(c)
            mark = f" (paired, {s['pairs']})" if s and s.get("paired") else " (unpaired)" if s else ""
            cells.append(with_ci(s, "delta") + mark)
        rows.append([g["generator"], *cells])
    return head, rows


def markdown(summary: dict[str, Any]) -> str:
    """leaderboard.md: one table per scorer (lead columns), alerts, and the comparison when there is one."""

    def table(head: list[str], rows: list[list[str]]) -> str:
        cell = lambda text: text.replace("|", "\\|")  # noqa: E731 - a `|` in a name would split the row
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows])

    level = f"{summary['level']:.0%}"
    out = [
        f"# Leaderboard: {summary['input']}",
        "",
        f"Mean per score column over `ok` videos, with {level} bootstrap CIs ({summary['resamples']} resamples, "
        f"seed {summary['seed']}).",
    ]
    out += [f"\n**Alert**: {a}" for a in _alerts(summary)]
    for block in summary["scorers"]:
        ckpt = ", ".join(block["provenance"].get("checkpoint") or ["?"])
        out += ["", f"## {block['name']} ({ckpt})", "", table(*_board(summary, block, block["headline"]))]
    cmp = summary.get("comparison")
    if cmp:
        out += ["", f"## Change vs {cmp['baseline']}", "", f"Delta of means (this - baseline), {level} CI."]
        out += [f"\n**Warning**: {w}" for w in cmp["warnings"]]
        for block in summary["scorers"]:
            out += ["", f"### {block['name']}", "", table(*_deltas(cmp, block))]
    return "\n".join(out) + "\n"


def _table(table_id: str, head: list[str], rows: list[list[str]], cls: str = "", wrap: bool = False) -> str:
    """An HTML table; with `wrap`, cells after the first wrap long text (paths, checkpoint ids) instead of
    widening the page."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    td = '<td class="wrap">' if wrap else "<td>"
    body = "".join(
        f"<tr><td>{escape(r[0])}</td>" + "".join(f"{td}{escape(c)}</td>" for c in r[1:]) + "</tr>" for r in rows
    )
    return f'<table id="{table_id}" class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _alerts(summary: dict[str, Any]) -> list[str]:
    run = summary.get("latest_run") or {}
    return [*run.get("canary_alerts", []), *run.get("drift_alerts", [])]


def _summary_section(summary: dict[str, Any]) -> list[str]:
    cmp = summary.get("comparison")
    runs = ", ".join(f"{r['run_id']} ({r['videos']} videos)" for r in summary.get("runs", [])) or "unknown"
    parts = ['<section id="summary"><h2>Summary</h2>', f"<p>Latest values from runs: <code>{escape(runs)}</code>"]
    if cmp:
        parts.append(f"; compared with <code>{escape(cmp['baseline'])}</code>")
    parts.append(".</p>")
    head = ["scorer", "checkpoint", "frames"] + (["baseline checkpoint", "baseline frames"] if cmp else [])
    rows = []
    for block in summary["scorers"]:
        p = block["provenance"]
        row = [block["name"], "; ".join(p.get("checkpoint") or ["?"]), "; ".join(p.get("frames") or ["?"])]
        if cmp:
            base = block.get("baseline_provenance") or {}
            row += ["; ".join(base.get("checkpoint") or ["-"]), "; ".join(base.get("frames") or ["-"])]
        rows.append(row)
    parts.append(_table("checkpoints", head, rows, wrap=True))
    parts.append('<h3>What changed</h3><ul id="changes">')
    if not cmp:
        parts.append('<li class="muted">No baseline: run with <code>--compare BASELINE</code> to see changes.</li>')
    elif not summary["changes"]:
        parts.append("<li>No lead score moved beyond its 95% CI.</li>")
    shown = summary["changes"][:10]
    for c in shown:
        way = "up" if c["delta"] > 0 else "down"
        kind = f"paired over {c['pairs']} videos" if c["paired"] else "unpaired"
        parts.append(
            f'<li class="{way}">{escape(c["generator"])}: {escape(c["column"])} {"+" if c["delta"] > 0 else ""}'
            f"{c['delta']:.3g} [{c['ci_low']:.3g}, {c['ci_high']:.3g}] ({kind})</li>"
        )
    if len(summary["changes"]) > len(shown):
        parts.append(f'<li class="muted">and {len(summary["changes"]) - len(shown)} more (all in summary.json and the '
                     "comparison below)</li>")  # fmt: skip
    parts.append("</ul>")
    for w in (cmp or {}).get("warnings", []):
        parts.append(f'<p class="warn">Warning: {escape(w)}</p>')
    run = summary.get("latest_run")
    parts.append('<h3>Canary and drift</h3><ul id="alerts">')
    if run is None:
        parts.append('<li class="muted">No run summary in this table (a partition or a copied table).</li>')
    else:
        for a in _alerts(summary):
            parts.append(f'<li class="alert">{escape(a)}</li>')
        if not _alerts(summary):
            tested = run.get("drift_tested")
            parts.append(f"<li>No canary or drift alert in the latest run ({escape(run['run_id'])}"
                         f"{f', {tested} drift tests' if tested else ''}).</li>")  # fmt: skip
        for n in run.get("canary_notices", []):
            parts.append(f'<li class="muted">{escape(n)}</li>')
    parts.append("</ul></section>")
    return parts


def _scorer_section(summary: dict[str, Any], block: dict[str, Any]) -> list[str]:
    name, lead = block["name"], block["headline"]
    gens = _ranked(summary, lead[0])
    p = block["provenance"]
    parts = [
        f'<section class="scorer" id="scorer-{escape(name)}"><h2>{escape(name)}</h2>',
        f"<p>Checkpoint <code>{escape('; '.join(p.get('checkpoint') or ['?']))}</code>, frames "
        f"<code>{escape('; '.join(p.get('frames') or ['?']))}</code>. Ranked by {escape(lead[0])}.</p>",
    ]
    for column, text in summary.get("derived", {}).items():
        if column in lead:
            parts.append(f'<p class="muted">{escape(short(column, name))}: {escape(text)}.</p>')
    parts.append(_table(f"leaderboard-{name}", *_board(summary, block, lead), "leaderboard"))
    rest = [c for c in block["columns"] if c not in lead]
    if rest:
        parts.append(f"<details><summary>{len(rest)} more columns</summary>")
        parts.append(_table(f"more-{name}", *_board(summary, block, rest)))
        parts.append("</details>")
    for aspect, criteria in block["groups"].items():
        parts.append(f'<details class="criteria"><summary>{escape(short(aspect, name))}: '
                     f"{len(criteria)} criteria</summary>")  # fmt: skip
        parts.append(_table(f"criteria-{aspect}", *_board(summary, block, criteria)))
        parts.append("</details>")
    parts.append('<div class="grid">')
    labels = [g["generator"] for g in gens]
    for c in lead:
        s = [g["scores"].get(c) or {} for g in gens]
        values = ([x.get(k) for x in s] for k in ("mean", "ci_low", "ci_high"))
        parts.append(dot_chart(short(c, name), labels, *values, colors=_colors(summary, labels)))
    dist = summary["distributions"].get(lead[0])
    if dist:
        parts.append(histogram_chart(f"{short(lead[0], name)}: distribution", dist["edges"], dist["counts"]))
    parts.append("</div></section>")
    return parts


def _comparison_section(summary: dict[str, Any]) -> list[str]:
    cmp = summary["comparison"]
    parts = [
        f'<section id="comparison-section"><h2>Change vs <code>{escape(cmp["baseline"])}</code></h2>',
        "<p>Difference of means (this minus baseline) with a 95% bootstrap CI; paired over the videos both tables "
        "scored (per-video differences), else the two samples resampled apart.</p>",
    ]
    parts += [f'<p class="warn">Warning: {escape(w)}</p>' for w in cmp["warnings"]]
    for side, key in (("only in this table", "only_in_current"), ("only in the baseline", "only_in_baseline")):
        if cmp[key]:
            parts.append(f'<p class="muted">Generators {side}: {escape(", ".join(cmp[key]))}</p>')
    first = True
    for block in summary["scorers"]:
        cols = [c for c in block["headline"] if c in cmp["columns"]]
        if not cols:
            continue
        parts.append(f"<h3>{escape(block['name'])}</h3>")
        parts.append(_table("comparison" if first else f"comparison-{block['name']}", *_deltas(cmp, block)))
        first = False
        s = [g["scores"].get(cols[0]) or {} for g in cmp["generators"]]
        labels = [g["generator"] for g in cmp["generators"]]
        values = ([x.get(k) for x in s] for k in ("delta", "ci_low", "ci_high"))
        title = f"Δ {short(cols[0], block['name'])}"
        parts.append(dot_chart(title, labels, *values, zero=True, colors=_colors(summary, labels)))
    parts.append("</section>")
    return parts


def page(summary: dict[str, Any]) -> str:
    """report.html: summary, one section per scorer, the comparison, failures."""
    names = [g["generator"] for g in summary["generators"]]
    legend = "".join(f'<span><i style="background:{color(i)}"></i>{escape(n)}</span>' for i, n in enumerate(names))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
        f"<title>vidscore report</title><style>{STYLE}</style></head><body>",
        f"<h1>vidscore report</h1><p>Score table <code>{escape(summary['input'])}</code>, {summary['videos']} "
        f"videos, {summary['ok']} ok; created {escape(summary['created_at'])}. Means over ok videos with "
        f"{summary['level']:.0%} bootstrap CIs ({summary['resamples']} resamples, seed {summary['seed']}).</p>",
        *_summary_section(summary),
    ]
    if not summary["scorers"]:
        parts.append('<p class="muted">This table has no score columns.</p>')
    else:
        parts.append(f'<div class="legend">{legend}</div>')
    for block in summary["scorers"]:
        parts += _scorer_section(summary, block)
    if summary.get("comparison"):
        parts += _comparison_section(summary)
    rows = [
        [g["generator"], str(g["videos"]), str(g["ok"]), f"{g['failure_rate']:.1%}",
         ", ".join(f"{k} {v}" for k, v in sorted(g["failures"].items())) or "-"]
        for g in summary["generators"]
    ]  # fmt: skip
    parts.append('<section id="failures"><h2>Videos and failures</h2>')
    parts.append(_table("failures-table", ["generator", "videos", "ok", "failure rate", "failures"], rows))
    parts.append("</section></body></html>")
    return "\n".join(parts)
