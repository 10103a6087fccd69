"""`vidscore evaluate SCORES --labels LABELS [--format F] -o OUT.json`: agreement with human labels.

Formats and the metric each paper reports (all values x100; see jobs/metrics.py and jobs/labels.py):
videofeedback (Spearman per aspect + mean, with Pearson and Kendall beside it), evalcrafter (the same on 3
aspects), pairwise (accuracy with the 0.5 tie rule on the mean of the 5 VideoScore outputs; --pairwise-columns
and --tie-margin change the rule), mjbench (MJ-BENCH-VIDEO fine-grained accuracy/F1 per criterion and aspect,
overall and per-aspect preference strict / tie-aware). Without --format the layout is detected.
Labels may also be a Hugging Face `datasets` folder (save_to_disk output, local or s3://, or a local hub-style
dataset folder); --split picks its split (default: test, else the only one).
Exit codes: 0 done, 2 bad labels, columns or options.
"""

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from vidscore.jobs import labels as L
from vidscore.jobs import metrics as M
from vidscore.jobs.table import JobError, read_scores, score_columns, write_text
from vidscore.operators.urls import redact
from vidscore.schemas import mjvideo, videoscore
from vidscore.schemas.scores import OK

EVALCRAFTER = ("visual_quality", "temporal_consistency", "text_to_video_alignment")  # VideoScore outputs 0, 1, 3
# MJ-BENCH-VIDEO's aspect label names (snake_cased) -> mjvideo aspect columns.
MJ_ASPECTS = {"consistency": "coherence_consistency", "bias": "bias_fairness"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidscore evaluate", description=__doc__.splitlines()[0])
    p.add_argument("scores", help="score table (the output folder of `vidscore score`; local or s3://)")
    p.add_argument("--labels", required=True, help="human labels: .json, .jsonl, .csv, .parquet or a `datasets` folder")
    p.add_argument("--split", help="split of a `datasets` label folder (default: test, else the only split)")
    p.add_argument("--format", choices=L.FORMATS, help="label layout (default: detected from the keys)")
    p.add_argument("-o", "--output", help="write the metrics JSON here (default: print only)")
    p.add_argument(
        "--pairwise-columns", nargs="+", metavar="COL", help="pairwise format: the score columns whose mean ranks "
        "the two videos (default: the five videoscore outputs, as the VideoScore paper)",
    )  # fmt: skip
    p.add_argument(
        "--tie-margin", type=float, default=M.TIE_MARGIN,
        help="pairwise format: a human tie is matched when the two means differ by less than this (default 0.5)",
    )  # fmt: skip
    p.add_argument("--limit", type=int, help="evaluate only the first N label rows (quick trials)")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint URL (default: AWS_ENDPOINT_URL or AWS)")
    return p


class Scores:
    """The score table's ok rows, addressable by label references through `labels.Matcher`."""

    def __init__(self, df: pl.DataFrame, columns: list[str]) -> None:
        self.matcher = L.Matcher(df["video_id"].to_list(), df["uri"].to_list())
        self.ok = (df["status"] == OK).to_numpy()
        self.values = {c: df[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in columns}
        self.unscored = 0

    def row(self, ref: str | None) -> int | None:
        i = self.matcher.find(ref)
        if i is not None and not self.ok[i]:
            self.unscored += 1
            return None
        return i

    def report(self, n_labels: int, matched: int) -> dict[str, Any]:
        return {"labels": n_labels, "matched": matched, "unscored": self.unscored, **self.matcher.report()}


def load_scores(location: str, needed: list[str], endpoint_url: str | None) -> Scores:
    lf = read_scores(location, endpoint_url)
    schema = lf.collect_schema()
    missing = [c for c in ["uri", "status", *needed] if c not in schema]
    if missing:
        more = f" (+{len(missing) - 6} more)" if len(missing) > 6 else ""
        raise JobError(
            f"{redact(location)} lacks columns {missing[:6]}{more} for this label format; "
            f"score columns: {score_columns(schema)} (score with the matching scorer first)"
        )
    return Scores(lf.select("video_id", "uri", "status", *needed).collect(), needed)


def aspect_correlations(rows: list[dict], args: argparse.Namespace, fmt: str) -> dict[str, Any]:
    """VideoFeedback / EvalCrafter: Spearman (the papers' metric), Pearson and Kendall x100 between each human
    aspect and the matching VideoScore output, each with its mean over aspects."""
    wanted = EVALCRAFTER if fmt == "evalcrafter" else videoscore.ASPECTS
    aspects = [a for a in wanted if a in rows[0]]
    if not aspects:
        raise JobError(f"--labels: no human score columns; {fmt} needs some of {list(wanted)} (+ `video` or video_id)")
    scores = load_scores(args.scores, [f"{videoscore.PREFIX}_{a}" for a in aspects], args.endpoint_url)
    idx = [scores.row(L.video_ref(r)) for r in rows]
    hits = [(r, i) for r, i in zip(rows, idx) if i is not None]
    metrics: dict[str, Any] = {}
    for kind, fn in M.CORRELATIONS.items():
        per = {}
        for a in aspects:
            human = np.array([np.nan if r.get(a) is None else float(r[a]) for r, _ in hits])
            pred = np.array([scores.values[f"{videoscore.PREFIX}_{a}"][i] for _, i in hits])
            per[a] = fn(pred, human)
        metrics[kind] = per
        metrics[f"{kind}_mean"] = M.mean_of([v["value"] for v in per.values()])
    return {"matching": scores.report(len(rows), len(hits)), "metrics": metrics}


def pairwise(rows: list[dict], args: argparse.Namespace) -> dict[str, Any]:
    """GenAI-Bench / VBench: pairwise accuracy on the mean of the chosen score columns (default: the five
    VideoScore outputs, as the paper), with the tie margin (default 0.5)."""
    cols = args.pairwise_columns or [f"{videoscore.PREFIX}_{a}" for a in videoscore.ASPECTS]
    if args.tie_margin < 0:
        raise JobError(f"--tie-margin must be >= 0, got {args.tie_margin}")
    scores = load_scores(args.scores, cols, args.endpoint_url)
    mean = np.mean([scores.values[c] for c in cols], axis=0)
    s0, s1, prefs, bad = [], [], [], 0
    for r in rows:
        pref = L.preference(r.get("preference"))
        i, j = scores.row(_str(r.get("video_0"))), scores.row(_str(r.get("video_1")))
        if pref is None:
            bad += 1
        elif i is not None and j is not None and np.isfinite(mean[i]) and np.isfinite(mean[j]):
            s0.append(mean[i])
            s1.append(mean[j])
            prefs.append(pref)
    report = scores.report(len(rows), len(prefs))
    report["bad_preference"] = bad
    metrics = {"pairwise_accuracy": M.pairwise_accuracy(s0, s1, prefs, args.tie_margin)}
    return {"matching": report, "rule": {"columns": cols, "tie_margin": args.tie_margin}, "metrics": metrics}


def _str(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def mjbench(rows: list[dict], args: argparse.Namespace) -> dict[str, Any]:
    """MJ-BENCH-VIDEO: fine-grained accuracy/F1 per criterion and aspect, overall preference strict/tie-aware."""
    scores = load_scores(args.scores, list(mjvideo.SCORE_COLUMNS), args.endpoint_url)
    crit: dict[str, tuple[list, list]] = {c: ([], []) for c in mjvideo.CRITERIA}
    asp: dict[str, tuple[list, list]] = {a: ([], []) for a in mjvideo.ASPECTS}
    unknown: set[str] = set()
    wins, loses, matched = [], [], 0
    prefer: dict[str, tuple[list, list]] = {a: ([], []) for a in mjvideo.ASPECTS}  # per-aspect winner, loser
    for r in rows:
        idx = [scores.row(_str(r.get(f"video_{k}_path"))) for k in (0, 1)]
        for k, i in enumerate(idx):
            if i is None:
                continue
            matched += 1
            for name, label in (r.get(f"video_{k}_label") or {}).items():
                key = L.snake(name)
                if key not in crit:
                    unknown.add(name)
                    continue
                crit[key][0].append(scores.values[f"{mjvideo.PREFIX}_c_{key}"][i])
                crit[key][1].append(label)
            for name, label in (r.get(f"video_{k}_overall_score") or {}).items():
                key = MJ_ASPECTS.get(L.snake(name), L.snake(name))
                if key not in asp:
                    unknown.add(name)
                    continue
                asp[key][0].append(scores.values[f"{mjvideo.PREFIX}_{key}"][i])
                asp[key][1].append(label)
        w = L.winner(r.get("overall_preference"))
        if w is not None and None not in idx:
            wins.append(scores.values[mjvideo.OVERALL][idx[w]])
            loses.append(scores.values[mjvideo.OVERALL][idx[1 - w]])
        for name, pref in (r.get("category_preference") or {}).items():
            key = MJ_ASPECTS.get(L.snake(name), L.snake(name))
            if key not in asp:
                unknown.add(name)
                continue
            w = L.winner(pref)
            if w is not None and None not in idx:
                column = scores.values[f"{mjvideo.PREFIX}_{key}"]
                prefer[key][0].append(column[idx[w]])
                prefer[key][1].append(column[idx[1 - w]])
    per_crit = {c: M.binary_agreement(np.array(s), np.array(lab)) for c, (s, lab) in crit.items()}
    per_asp = {a: M.binary_agreement(np.array(s), np.array(lab)) for a, (s, lab) in asp.items()}
    pooled = M.binary_agreement(*(np.concatenate([np.array(x[i], dtype=float) for x in crit.values()]) for i in (0, 1)))
    report = scores.report(2 * len(rows), matched)
    report["unknown_label_keys"] = sorted(unknown)
    metrics = {
        "fine_grained": {
            "criteria_pooled": pooled,
            "criteria_macro": {k: M.mean_of([v[k] for v in per_crit.values()]) for k in ("accuracy", "f1")},
            "aspects_macro": {k: M.mean_of([v[k] for v in per_asp.values()]) for k in ("accuracy", "f1")},
            "per_aspect": per_asp,
            "per_criterion": per_crit,
        },
        "overall_preference": M.preference_accuracy(np.array(wins), np.array(loses)),
        # From `category_preference` where the file has it: the aspect's human winner against its aspect score.
        "aspect_preference": {
            a: M.preference_accuracy(np.array(w, dtype=float), np.array(lo, dtype=float))
            for a, (w, lo) in prefer.items()
        },
    }
    return {"matching": report, "metrics": metrics}


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.limit is not None and args.limit < 1:
        raise JobError("--limit must be at least 1")
    if args.output and not args.output.endswith(".json"):
        raise JobError(f"-o {redact(args.output)}: the metrics are JSON; name the file .json")
    raw = L.read_rows(args.labels, args.endpoint_url, args.limit, args.split)
    fmt = args.format or L.detect_format(raw)
    rows = L.normalize_rows(raw)
    if fmt == "mjbench":
        result = mjbench(rows, args)
    elif fmt == "pairwise":
        result = pairwise(rows, args)
    else:
        result = aspect_correlations(rows, args, fmt)
    return {
        "job": "vidscore evaluate",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scores": redact(args.scores),
        "labels": redact(args.labels),
        "format": fmt,
        "limit": args.limit,
        **result,
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = run(args)
        text = json.dumps(result, indent=2)
        if args.output:
            write_text(text + "\n", args.output, args.endpoint_url)
    except JobError as exc:
        print(f"vidscore evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
