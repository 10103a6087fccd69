"""`vidscore report SCORES -o DIR [--compare BASELINE]`: per-scorer leaderboards, run-vs-run change and alerts.

Writes DIR/report.html (self-contained: tables + inline SVG), DIR/leaderboard.md and DIR/summary.json.
The page opens with a summary: the runs and checkpoints compared, what changed significantly, and the latest
run's canary and drift alerts. Then one leaderboard per scorer, its overall score first, with its checkpoint and
frame recipe (MJ-VIDEO's 28 criteria folded under their aspects), then the comparison with BASELINE, paired on
the videos both tables scored. Score columns are the float columns a scorer wrote (provenance excluded); means
use `ok` rows; CIs are seeded percentile bootstraps.
Exit codes: 0 done, 2 bad input or options.
"""

import argparse
import importlib
import json
import sys
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from vidscore.jobs import html, stats
from vidscore.jobs.table import SCORER_PREFIXES, JobError, read_scores, score_columns, write_text
from vidscore.operators.storage import join
from vidscore.operators.urls import redact
from vidscore.pipeline.output import run_summaries
from vidscore.schemas.scores import OK

NO_GENERATOR = "(none)"
PAIRED_SHARE = 0.9  # a comparison is paired when the shared videos are at least this share of each side
PROVENANCE = ("checkpoint", "revision", "frames")
# VideoScore has no overall output; its leaderboard leads with the mean of its five aspects (the paper's rule
# for pairwise preference), computed here and marked as derived.
DERIVED = {"videoscore_mean": ("videoscore", "mean of the five VideoScore outputs (derived, the paper's rule)")}


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


def scorer_of(column: str) -> str:
    return DERIVED[column][0] if column in DERIVED else column.split("_", 1)[0]


def headline(scorer: str, columns: list[str]) -> list[str]:
    """The scorer's lead columns present in `columns`, overall first (`schemas/<scorer>.HEADLINE`)."""
    try:
        order = list(importlib.import_module(f"vidscore.schemas.{scorer}").HEADLINE)
    except (ImportError, AttributeError):
        order = []
    derived = [d for d, (s, _) in DERIVED.items() if s == scorer and d in columns]
    lead = derived + [c for c in order if c in columns]
    return lead or [c for c in columns if scorer_of(c) == scorer][:6]


def groups(scorer: str, columns: list[str]) -> dict[str, list[str]]:
    """MJ-VIDEO: each aspect's criteria columns, folded under the aspect on the page."""
    if scorer != "mjvideo":
        return {}
    from vidscore.schemas import mjvideo

    out = {}
    for aspect, members in zip(mjvideo.ASPECT_COLUMNS, mjvideo.ASPECT_CRITERIA):
        cols = [mjvideo.CRITERION_COLUMNS[i] for i in members if mjvideo.CRITERION_COLUMNS[i] in columns]
        if cols:
            out[aspect] = cols
    return out


def load(
    location: str, columns: list[str] | None, endpoint_url: str | None, limit: int | None
) -> tuple[pl.DataFrame, list[str]]:
    """(frame with video_id, generator, status, run_id, score and provenance columns; the score columns)."""
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
    scorers = sorted({scorer_of(c) for c in found})
    extra = [f"{s}_{k}" for s in scorers for k in PROVENANCE if f"{s}_{k}" in schema]
    keep = [c for c in ("video_id", "run_id") if c in schema]
    df = lf.select(*keep, pl.col("generator").fill_null(NO_GENERATOR), "status", *found, *extra).collect()
    from vidscore.schemas import videoscore

    aspects = [f"{videoscore.PREFIX}_{a}" for a in videoscore.ASPECTS]
    if all(a in found for a in aspects) and not columns:
        df = df.with_columns(pl.mean_horizontal(*aspects).alias("videoscore_mean"))
        found = [*found, "videoscore_mean"]
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
        row = {"generator": g, "videos": n, "ok": ok, "failure_rate": (n - ok) / n, "failures": failures}
        rows.append({**row, "scores": scores})
    key = args.sort_by or (columns[0] if columns else None)
    if key:
        rows.sort(key=lambda r: (r["scores"][key]["mean"] is None, -(r["scores"][key]["mean"] or 0.0)))
    return rows


def provenance(df: pl.DataFrame, scorer: str) -> dict[str, list[str]]:
    """The checkpoints, revisions and frame recipes behind a scorer's values in the table (most rows first)."""
    out = {}
    for key in PROVENANCE:
        column = f"{scorer}_{key}"
        if column in df.columns:
            counts = df[column].drop_nulls().value_counts(sort=True)
            out[key] = [str(v) for v in counts[column].to_list()]
        else:
            out[key] = []
    return out


def scorer_blocks(df: pl.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """One entry per scorer: its columns (lead columns first), criteria groups and provenance."""
    blocks = []
    for scorer in [s for s in (*SCORER_PREFIXES, *sorted({scorer_of(c) for c in columns})) if s]:
        if any(b["name"] == scorer for b in blocks):
            continue
        mine = [c for c in columns if scorer_of(c) == scorer]
        if not mine:
            continue
        lead = headline(scorer, mine)
        folded = groups(scorer, mine)
        inner = {c for cols in folded.values() for c in cols}
        rest = [c for c in mine if c not in lead and c not in inner]
        blocks.append({"name": scorer, "headline": lead, "columns": lead + rest, "groups": folded,
                       "provenance": provenance(df, scorer)})  # fmt: skip
    return blocks


def _paired(df: pl.DataFrame, base: pl.DataFrame, generator: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Values of the videos both tables scored ok for `generator`, in the same order."""
    if "video_id" not in df.columns or "video_id" not in base.columns:
        return np.empty(0), np.empty(0)

    def side(frame: pl.DataFrame) -> pl.DataFrame:
        ok = frame.filter((pl.col("generator") == generator) & (pl.col("status") == OK) & pl.col(column).is_not_null())
        return ok.select("video_id", pl.col(column).cast(pl.Float64))

    both = side(df).join(side(base), on="video_id", suffix="__base")
    a, b = both[column].to_numpy(), both[f"{column}__base"].to_numpy()
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def comparison(
    df: pl.DataFrame,
    base: pl.DataFrame,
    columns: list[str],
    base_columns: list[str],
    order: list[str],
    args: argparse.Namespace,
    blocks: list[dict[str, Any]],
) -> dict[str, Any]:
    """Per generator per column: mean(this) - mean(baseline) with a bootstrap CI of the difference, paired over
    the videos both scored when there are at least 2 of them; warnings where checkpoints or frames differ."""
    shared = [c for c in columns if c in base_columns]
    current, before = set(df["generator"].to_list()), set(base["generator"].to_list())
    gens = []
    for g in (g for g in order if g in before):
        scores = {}
        for c in shared:
            a, b = _values(df, g, c), _values(base, g, c)
            pa_, pb = _paired(df, base, g, c)
            # Paired only when the shared videos are (nearly) all of both sides: the delta is then the change of
            # the same videos' scores. A few shared videos among new ones would speak for themselves alone.
            paired = len(pa_) >= 2 and len(pa_) >= PAIRED_SHARE * max(len(a), len(b))
            if paired:
                delta, lo, hi = stats.paired_diff_ci(pa_, pb, args.resamples, args.seed)
            else:
                delta, lo, hi = stats.diff_ci(a, b, args.resamples, args.seed)
            scores[c] = {
                "delta": delta,
                "ci_low": lo,
                "ci_high": hi,
                "paired": paired,
                "pairs": len(pa_),
                "mean": float(pa_.mean() if paired else a.mean()) if (paired or len(a)) else None,
                "baseline_mean": float(pb.mean() if paired else b.mean()) if (paired or len(b)) else None,
                "n": len(a),
                "baseline_n": len(b),
            }
        gens.append({"generator": g, "scores": scores})
    warnings = []
    for block in blocks:
        mine, theirs = block["provenance"], block["baseline_provenance"]
        for key in ("checkpoint", "frames"):
            if mine.get(key) and theirs.get(key) and set(mine[key]) != set(theirs[key]):
                what = "checkpoints" if key == "checkpoint" else "frame recipes"
                warnings.append(
                    f"{block['name']}: the two tables used different {what} ({', '.join(mine[key])} vs "
                    f"{', '.join(theirs[key])}); differences mix model and data changes"
                )
    return {
        "baseline": redact(args.compare),
        "columns": shared,
        "generators": gens,
        "warnings": warnings,
        "only_in_current": sorted(current - before),
        "only_in_baseline": sorted(before - current),
        "columns_only_in_baseline": [c for c in base_columns if c not in columns],
    }


def significant(cmp: dict[str, Any] | None, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lead-column changes whose CI excludes 0, largest first."""
    if not cmp:
        return []
    lead = {c for b in blocks for c in b["headline"]}
    out = []
    for g in cmp["generators"]:
        for c, s in g["scores"].items():
            if c in lead and s["delta"] is not None and (s["ci_low"] > 0 or s["ci_high"] < 0):
                out.append({"generator": g["generator"], "column": c, **s})
    return sorted(out, key=lambda r: -abs(r["delta"]))


def table_root(location: str) -> str:
    """The table a location belongs to: a `run_date=...` partition's parent, else the location itself."""
    trimmed = location.rstrip("/")
    head, _, last = trimmed.rpartition("/")
    return head if last.startswith("run_date=") and head else location


def latest_run(location: str, endpoint_url: str | None) -> dict[str, Any] | None:
    """The alerts of the table's latest run that checked its canary or drift (a later run that scored nothing
    does not hide them): canary (alerts, notices, reference) and drift (alerts)."""
    try:
        for run_id, data in run_summaries(table_root(location), endpoint_url):
            canary, drift = data.get("canary") or {}, data.get("drift") or {}
            if not (canary or drift):
                continue  # scored nothing, or ran with both off: the run before it still speaks
            return {
                "run_id": run_id,
                "canary_alerts": canary.get("alerts", []),
                "canary_notices": canary.get("notices", []),
                "canary_reference": canary.get("reference"),
                "drift_alerts": drift.get("alerts", []),
                "drift_tested": drift.get("tested"),
            }
    except (OSError, ValueError):
        return None  # storage that cannot list the table's metadata: nothing to show
    return None


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
    real = [c for c in columns if c not in DERIVED]
    gens = leaderboard(df, columns, args)
    blocks = scorer_blocks(df, columns)
    ok = df.filter(pl.col("status") == OK)
    distributions = {}
    for c in columns:
        data = {g["generator"]: _values(ok, g["generator"], c) for g in gens}
        edges, counts = stats.histogram(data, args.bins)
        distributions[c] = {"edges": edges, "counts": counts}
    runs = df["run_id"].drop_nulls().value_counts(sort=True).head(5).rows() if "run_id" in df.columns else []
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
        "score_columns": real,
        "derived": {c: DERIVED[c][1] for c in columns if c in DERIVED},
        "scorers": blocks,
        "runs": [{"run_id": r, "videos": n} for r, n in runs],
        "latest_run": latest_run(args.scores, args.endpoint_url),
        "generators": gens,
        "distributions": distributions,
        "comparison": None,
        "changes": [],
    }
    if base is not None:
        order = [g["generator"] for g in gens]
        for block in blocks:
            block["baseline_provenance"] = provenance(base, block["name"])
        summary["comparison"] = comparison(df, base, columns, base_columns, order, args, blocks)
        summary["changes"] = significant(summary["comparison"], blocks)
    return summary


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def terminal(summary: dict, width: int = 120) -> str:
    """One compact block per scorer, its lead columns only, every line within `width` characters."""
    lines = []
    gens = summary["generators"]
    for block in summary["scorers"]:
        cols = block["headline"]
        room = (width - 16 - 14) // 10
        shown, hidden = cols[:room], len(cols) - room
        names = [c.removeprefix(block["name"] + "_")[:9] for c in shown]
        ckpt = (block["provenance"].get("checkpoint") or ["?"])[0]
        title = f"{block['name']} ({ckpt})"[: width - 1]
        lines.append(title + (f"  +{hidden} more columns in the report" if hidden > 0 else "")[: width - len(title)])
        lines.append(f"{'generator':<16}{'ok':>6}{'fail':>8}" + "".join(f"{n:>10}" for n in names))
        lead = shown[0]
        means_of = [(g, g["scores"][lead]["mean"]) for g in gens]
        for g, _ in sorted(means_of, key=lambda gm: (gm[1] is None, -(gm[1] or 0.0))):
            means = "".join(f"{_fmt(g['scores'][c]['mean']):>10}" for c in shown)
            lines.append(f"{g['generator'][:15]:<16}{g['ok']:>6}{g['failure_rate']:>8.1%}{means}")
        lines.append("")
    run = summary.get("latest_run") or {}
    for alert in [*run.get("canary_alerts", []), *run.get("drift_alerts", [])]:
        lines.append(f"ALERT {alert}"[:width])
    return "\n".join(line[:width] for line in lines).rstrip()


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
