"""`vidscore canary pin TABLE [--run RUN_ID]` and `vidscore canary show TABLE`: the canary baseline of a table.

`pin` makes a run's canary record (the latest run that has one, or RUN_ID) the baseline every later run is
compared with (`TABLE/_vidscore/canary/baseline.json`); a run whose canary clips failed cannot be pinned.
`show` prints the baseline and the latest run's canary outcome. See pipeline/canary.py for what is compared.
Exit codes: 0 done, 2 nothing to pin or show, or bad options.
"""

import argparse
import sys
from datetime import datetime, timezone

from vidscore.operators.urls import redact
from vidscore.pipeline import canary
from vidscore.pipeline.output import run_summaries
from vidscore.pipeline.summary import canary_lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidscore canary", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pin = sub.add_parser("pin", help="make a run's canary scores the table's baseline")
    pin.add_argument("table", help="score table (the output folder of `vidscore score`; local or s3://)")
    pin.add_argument("--run", metavar="RUN_ID", help="the run to pin (default: the latest run with a canary)")
    show = sub.add_parser("show", help="print the baseline and the latest run's canary outcome")
    show.add_argument("table", help="score table (local or s3://)")
    for s in (pin, show):
        s.add_argument("--endpoint-url", help="S3-compatible endpoint URL (default: AWS_ENDPOINT_URL or AWS)")
    return p


def show(table: str, endpoint_url: str | None) -> list[str]:
    lines = []
    baseline = canary.baseline(table, endpoint_url)
    if baseline is None:
        lines.append("baseline: none pinned (runs compare with the previous run's canary)")
    else:
        rec = baseline["record"]
        scorers = ", ".join(f"{k} ({v['checkpoint']})" for k, v in rec["environment"]["scorers"].items())
        lines.append(f"baseline: run {baseline['run_id']}, pinned {baseline['pinned_at']}, {len(rec['clips'])} clips "
                     f"({rec['source']}); {scorers}")  # fmt: skip
    for run_id, summary in run_summaries(table, endpoint_url):
        block = summary.get("canary")
        if block:
            lines.append(f"latest run with a canary: {run_id}")
            lines += canary_lines(block) + [f"  {a}" for a in block.get("alerts", [])]
            break
    else:
        lines.append("no run of this table has a canary record yet")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "pin":
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            pinned = canary.pin(args.table, args.run, args.endpoint_url, now)
            clips = len(pinned["record"]["clips"])
            print(f"pinned run {pinned['run_id']}'s canary ({clips} clips) as the baseline of {redact(args.table)}")
        else:
            print("\n".join(show(args.table, args.endpoint_url)))
    except (ValueError, OSError) as exc:
        print(f"vidscore canary: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
