"""`vidscore filter SCORES -o OUT [--where SQL]... [--top-percent COL=P]... [--top-k K --by COL [--per G]]`.

Curate a training list from a score table: SQL conditions over score columns (polars SQL), percentile cuts,
top-k per prompt or generator, or a versioned YAML rules file. Only `ok` rows are kept unless --include-failed.
The output (.parquet/.jsonl/.csv) is a manifest `vidscore score` reads again; `<OUT>.rules.json` records the
rules, their version, the input and the rows kept/dropped by each rule.
Exit codes: 0 done, 2 bad rules, columns, input or output.
"""

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

import polars as pl

from vidscore.jobs import rules as R
from vidscore.jobs.table import JobError, check_output_format, manifest_columns, read_scores, score_columns, write_frame
from vidscore.operators.storage import filesystem
from vidscore.operators.urls import redact
from vidscore.schemas.scores import OK


class _Ordered(argparse.Action):
    """Collect --where and --top-percent into one list in command-line order (rules apply in that order)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        items = list(getattr(namespace, self.dest) or [])
        items.append((option_string, values))
        setattr(namespace, self.dest, items)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidscore filter", description=__doc__.splitlines()[0])
    p.add_argument("scores", help="score table (the output folder of `vidscore score`; local or s3://)")
    p.add_argument("-o", "--output", required=True, help="curated manifest: .parquet, .jsonl or .csv")
    p.add_argument(
        "--where", dest="steps", action=_Ordered, metavar="SQL", help="keep rows where SQL holds (repeat: AND)"
    )
    p.add_argument("--top-percent", dest="steps", action=_Ordered, metavar="COL=P", help="keep the top P%% by COL")
    p.add_argument("--top-k", type=int, metavar="K", help="keep the K best rows by --by (per --per group)")
    p.add_argument("--by", metavar="COL", help="score column or SQL expression that --top-k ranks by")
    p.add_argument("--per", metavar="COLUMN", help="group for --top-k: generator or prompt (default: whole table)")
    p.add_argument("--rules", metavar="YAML", help="versioned rules file (applied before command-line rules)")
    p.add_argument("--include-failed", action="store_true", default=None, help="keep rows whose status is not ok")
    p.add_argument("--join", metavar="MANIFEST", help="output the rows of this training manifest for kept videos")
    p.add_argument("--on", choices=["video_id", "uri"], help="join key for --join (default video_id)")
    p.add_argument("--with-scores", action="store_true", help="add score columns to the output (for analysis)")
    p.add_argument("--limit", type=int, help="read only the first N videos of the table (quick trials)")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint URL (default: AWS_ENDPOINT_URL or AWS)")
    return p


def _rules(args: argparse.Namespace) -> tuple[str | None, list[R.Rule], bool]:
    """(rules version, rules in order, include_failed) from the rules file and the flags."""
    version, rules, include_failed = None, [], False
    if args.rules:
        fs, path = filesystem(args.rules, args.endpoint_url)
        try:
            with fs.open(path, "r", encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError as exc:
            raise JobError(f"--rules {redact(args.rules)} does not exist") from exc
        version, rules, options = R.load_rules(text, redact(args.rules))
        include_failed = options.get("include_failed", False)
    for flag, value in args.steps or []:
        rules.append(R.where(value) if flag == "--where" else R.top_percent(value))
    if args.top_k is not None:
        rules.append(R.top_k(args.top_k, args.by, args.per))
    elif args.by or args.per:
        raise JobError("--by and --per go with --top-k K")
    if args.include_failed is not None:
        include_failed = True
    return version, rules, include_failed


def _manifest(location: str, endpoint_url: str | None) -> pl.DataFrame:
    """The training manifest with the uris and video_ids `vidscore score` would give it."""
    from vidscore.operators.read import InputError, read_input

    try:
        return pl.from_arrow(read_input(location, endpoint_url=endpoint_url))
    except InputError as exc:
        raise JobError(f"--join: {exc}") from exc


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Filter, write the manifest and its rules record; returns the record."""
    check_output_format(args.output)
    if args.limit is not None and args.limit < 1:
        raise JobError("--limit must be at least 1")
    if args.on and not args.join:
        raise JobError("--on goes with --join MANIFEST")
    version, rules, include_failed = _rules(args)
    manifest = _manifest(args.join, args.endpoint_url) if args.join else None
    lf = read_scores(args.scores, args.endpoint_url, args.limit)
    schema = lf.collect_schema()
    scores = score_columns(schema)
    stages: list[tuple[str, pl.LazyFrame]] = [("input", lf)]
    if not include_failed:
        lf = lf.filter(pl.col("status") == OK)
        stages.append((f"status = {OK}", lf))
    for rule in rules:
        lf = R.apply(lf, rule, schema, scores)
        stages.append((rule.label(), lf))
    columns = manifest_columns(schema) + (scores if args.with_scores else [])
    # One pass: polars shares the common scan between the per-stage counts and the result.
    *counts, kept = pl.collect_all([s.select(pl.len()) for _, s in stages] + [lf.select(columns)])
    counts = [c.item() for c in counts]
    steps = [
        {"rule": label, "kept": n, "dropped": prev - n}
        for (label, _), n, prev in zip(stages[1:], counts[1:], counts[:-1])
    ]
    out, joined = kept, None
    if manifest is not None:
        key = args.on or "video_id"
        extra = [c for c in kept.columns if c not in manifest.columns] if args.with_scores else []
        out = manifest.join(kept.select([key, *extra]).unique(key), on=key, how="inner")
        missing = int(kept.height - kept[key].is_in(manifest[key].implode()).sum())
        joined = {"manifest": redact(args.join), "on": key, "rows": out.height, "kept_not_in_manifest": missing}
    record = {
        "job": "vidscore filter",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": redact(args.scores),
        "output": redact(args.output),
        "rules_file": redact(args.rules) if args.rules else None,
        "rules_version": version,
        "rules": [r.to_dict() for r in rules],
        "include_failed": include_failed,
        "limit": args.limit,
        "join": joined,
        "counts": {"input": counts[0], "steps": steps, "kept": kept.height, "written": out.height},
    }
    text = json.dumps(record, indent=2)
    write_frame(out, args.output, args.endpoint_url, metadata={"vidscore.filter": text})
    fs, path = filesystem(args.output + ".rules.json", args.endpoint_url)
    with fs.open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return record


def print_counts(record: dict[str, Any]) -> None:
    counts = record["counts"]
    width = max([len(s["rule"]) for s in counts["steps"]] + [10])
    print(f"{'rule':<{width}}  {'kept':>8}  {'dropped':>8}")
    print(f"{'input':<{width}}  {counts['input']:>8}  {'':>8}")
    for step in counts["steps"]:
        print(f"{step['rule']:<{width}}  {step['kept']:>8}  {step['dropped']:>8}")
    if record["join"]:
        print(f"joined onto {record['join']['manifest']}: {record['join']['rows']} manifest rows")
    print(f"wrote {counts['written']} rows to {record['output']} (rules: {record['output']}.rules.json)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        record = run(args)
    except JobError as exc:
        print(f"vidscore filter: error: {exc}", file=sys.stderr)
        return 2
    print_counts(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
