"""`vidscore report SCORES -o DIR [--compare BASELINE]`: leaderboard, distributions and run-to-run change.

Writes DIR/report.html (self-contained: tables + inline SVG), DIR/leaderboard.md and DIR/summary.json.
Score columns are the float columns a scorer wrote (technical_*, videoscore_*, mjvideo_*; provenance excluded),
so the report works for any mix of scorers. Means use `ok` rows; CIs are seeded percentile bootstraps.
Exit codes: 0 done, 2 bad input or options.
"""

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from vidscore.jobs import html, stats
from vidscore.jobs.table import JobError, read_scores, score_columns, write_text
from vidscore.operators.storage import join
from vidscore.operators.urls import redact
from vidscore.schemas.scores import OK

NO_GENERATOR = "(none)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidscore report", description=__doc__.splitlines()[0])
    p.add_argument("scores", help="score table (the output folder of `vidscore score`; local or s3://)")
    p.add_argument("-o", "--output", required=True, help="report folder (local or s3://)")
    p.add_argument("--compare", metavar="BASELINE", help="an earlier score table: adds per-generator deltas with CIs")
    p.add_argument("--columns", nargs="+", metavar="COL", help="report only these score columns (default: all)")
    p.add_argument("--sort-by", metavar="COL", help="rank generators by this column's mean (default: first column)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--bins", type=int, default=20, help="histogram bins (default 20)")
    p.add_argument("--limit", type=int, help="read only the first N videos of each table (quick trials)")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint URL (default: AWS_ENDPOINT_URL or AWS)")
    return p


def load(
    location: str, columns: list[str] | None, endpoint_url: str | None, limit: int | None
) -> tuple[pl.DataFrame, list[str]]:
    """(frame with generator, status and score columns; the score columns), checked against --columns."""
    lf = read_scores(location, endpoint_url, limit)
    schema = lf.collect_schema()
    for needed in ("status", "generator"):
        if needed not in schema:
            raise JobError(f"{redact(location)} has no `{needed}` column; is it a vidscore score table?")
    found = score_columns(schema)
    if columns:
        missing = [c for c in columns if c not in found]
        if missing:
            raise JobError(f"--columns: {missing} not in {redact(location)}; score columns: {found}")
        found = columns
    df = lf.select(pl.col("generator").fill_null(NO_GENERATOR), "status", *found).collect()
    return df, found


def _values(df: pl.DataFrame, generator: str, column: str) -> np.ndarray:
    ok = df.filter((pl.col("generator") == generator) & (pl.col("status") == OK))
    return ok[column].drop_nulls().to_numpy()


def leaderboard(df: pl.DataFrame, columns: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for g in sorted(df["generator"].unique().to_list()):
        sub = df.filter(pl.col("generator") == g)
        n, ok = sub.height, int((sub["status"] == OK).sum())
        failures = dict(sub.filter(pl.col("status") != OK)["status"].value_counts().iter_rows())
        scores = {}
        for c in columns:
            mean, lo, hi, count = stats.mean_ci(_values(df, g, c), args.resamples, args.seed)
            scores[c] = {"mean": mean, "ci_low": lo, "ci_high": hi, "n": count}
        rows.append(
            {
                "generator": g,
                "videos": n,
                "ok": ok,
                "failure_rate": (n - ok) / n,
                "failures": failures,
                "scores": scores,
            }
        )
    key = args.sort_by or (columns[0] if columns else None)
    if key:
        rows.sort(key=lambda r: (r["scores"][key]["mean"] is None, -(r["scores"][key]["mean"] or 0.0)))
    return rows


def comparison(
    df: pl.DataFrame,
    base: pl.DataFrame,
    columns: list[str],
    base_columns: list[str],
    order: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Per generator per column: mean(this) - mean(baseline) with a bootstrap CI of the difference."""
    shared = [c for c in columns if c in base_columns]
    current, before = set(df["generator"].to_list()), set(base["generator"].to_list())
    gens = []
    for g in (g for g in order if g in before):
        scores = {}
        for c in shared:
            a, b = _values(df, g, c), _values(base, g, c)
            delta, lo, hi = stats.diff_ci(a, b, args.resamples, args.seed)
            scores[c] = {
                "delta": delta,
                "ci_low": lo,
                "ci_high": hi,
                "mean": float(a.mean()) if len(a) else None,
                "baseline_mean": float(b.mean()) if len(b) else None,
                "n": len(a),
                "baseline_n": len(b),
            }
        gens.append({"generator": g, "scores": scores})
    return {
        "baseline": redact(args.compare),
        "columns": shared,
        "generators": gens,
        "only_in_current": sorted(current - before),
        "only_in_baseline": sorted(before - current),
        "columns_only_in_baseline": [c for c in base_columns if c not in columns],
    }


def build(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the three outputs show, as one JSON-ready dict."""
    if args.resamples < 10 or args.bins < 1:
        raise JobError("--resamples must be at least 10 and --bins at least 1")
    if args.limit is not None and args.limit < 1:
        raise JobError("--limit must be at least 1")
    df, columns = load(args.scores, args.columns, args.endpoint_url, args.limit)
    if args.sort_by and args.sort_by not in columns:
        raise JobError(f"--sort-by {args.sort_by!r} is not a reported score column; score columns: {columns}")
    base = None
    if args.compare:
        base, base_columns = load(args.compare, None, args.endpoint_url, args.limit)
    gens = leaderboard(df, columns, args)
    ok = df.filter(pl.col("status") == OK)
    distributions = {}
    for c in columns:
        groups = {
            g["generator"]: ok.filter(pl.col("generator") == g["generator"])[c].drop_nulls().to_numpy() for g in gens
        }
        edges, counts = stats.histogram(groups, args.bins)
        distributions[c] = {"edges": edges, "counts": counts}
    summary = {
        "job": "vidscore report",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": redact(args.scores),
        "limit": args.limit,
        "videos": df.height,
        "ok": ok.height,
        "level": 0.95,
        "resamples": args.resamples,
        "seed": args.seed,
        "score_columns": columns,
        "generators": gens,
        "distributions": distributions,
        "comparison": None,
    }
    if base is not None:
        order = [g["generator"] for g in gens]
        summary["comparison"] = comparison(df, base, columns, base_columns, order, args)
    return summary


def terminal(summary: dict) -> str:
    """A compact leaderboard for the terminal: counts and headline means (criteria stay in the files)."""
    columns = [c for c in summary["score_columns"] if "_c_" not in c]
    lines = [f"{'generator':<16}{'videos':>7}{'ok':>5}{'fail':>7}  " + "  ".join(columns)]
    for g in summary["generators"]:
        means = "  ".join(f"{_fmt(g['scores'].get(c, {}).get('mean')):>{len(c)}}" for c in columns)
        lines.append(f"{g['generator'][:15]:<16}{g['videos']:>7}{g['ok']:>5}{g['failure_rate']:>7.1%}  {means}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        summary = build(args)
        paths = [
            write_text(html.page(summary), join(args.output, "report.html"), args.endpoint_url),
            write_text(html.markdown(summary), join(args.output, "leaderboard.md"), args.endpoint_url),
            write_text(json.dumps(summary, indent=2) + "\n", join(args.output, "summary.json"), args.endpoint_url),
        ]
    except JobError as exc:
        print(f"vidscore report: error: {exc}", file=sys.stderr)
        return 2
    print(terminal(summary))
    print("wrote " + ", ".join(redact(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
