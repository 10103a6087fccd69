"""`vidscore score INPUT -o OUTPUT [-s NAME[=CHECKPOINT]]...`: score a video corpus into a Parquet table.

Joins the Ray cluster named by --ray-address or RAY_ADDRESS (which `ray job submit` sets); with neither, starts a
fresh local Ray of its own (never one that happens to run on the machine).
Exit codes: 0 done (bad videos are rows with a status), 2 bad configuration or unusable storage (before any
work), 3 done but more videos failed than the failure budget allows (the summary says which part), 1 the run
failed part-way (e.g. the table could not be written): a short reason and the summary, rows committed stand.
"""

import argparse
import logging
import sys

from vidscore.operators.read import InputError
from vidscore.pipeline.config import ConfigError, load_yaml, merge, parse_scorer
from vidscore.pipeline.output import OutputError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidscore score", description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", help="manifest (.parquet/.jsonl/.csv, file or folder) or folder of videos")
    p.add_argument("-o", "--output", help="score table location (directory or s3:// prefix)")
    p.add_argument(
        "-s",
        "--scorer",
        action="append",
        dest="scorers",
        metavar="NAME[=CHECKPOINT]",
        help="scorer to run (repeatable): technical, videoscore[=ID|DIR], mjvideo[=ID|DIR], videoreward[=ID|DIR]; "
        "default technical",
    )
    p.add_argument("--limit", type=int, help="score only the first N input rows")
    p.add_argument("--batch-size", type=int, help="videos per scorer batch (overrides each scorer's default)")
    p.add_argument("--config", help="YAML job config; command-line flags override it")
    p.add_argument("--decode-workers", type=int, help="most decode actors (default: free CPUs)")
    p.add_argument("--decode-backend", choices=["auto", "decord", "pyav"], help="video decoder (default auto)")
    p.add_argument(
        "--device",
        choices=["auto", "gpu", "cpu"],
        help="where model scorers run, for every scorer "
        "(default auto: GPU when the cluster has one or its autoscaler can add one)",
    )
    p.add_argument("--gpu-wait-s", type=float, help="how long to wait for a GPU node before exit 2 (default 600)")
    p.add_argument("--ray-address", help="Ray cluster to join, HOST:PORT (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint URL (default: AWS_ENDPOINT_URL or AWS)")
    p.add_argument(
        "--failure-budget", type=float, metavar="FRACTION", help="share of videos that may fail, for decode and each "
        "scorer, before the run exits with code 3 (default: decode 0.5, each scorer 0.1)",
    )  # fmt: skip
    p.add_argument(
        "--canary", metavar="CLIPS", help="canary set scored on every run: default (vidscore's clips), off, or a "
        "manifest or folder of clips (see README: canary)",
    )  # fmt: skip
    return p


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (a handler keeping the stream it started with breaks when a caller,
    such as a test harness, swaps stderr between runs in one process)."""

    @property
    def stream(self):  # noqa: ANN201 - logging's attribute
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def setup_logging() -> None:
    """One line per notable event on stderr (plan, skips, pools, retries, failures): what a Ray job's log keeps."""
    log = logging.getLogger("vidscore")
    if not log.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s vidscore %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging()
    try:
        file_values = load_yaml(args.config) if args.config else {}
        cli = {
            "input": args.input,
            "output": args.output,
            "scorers": [parse_scorer(s) for s in args.scorers] if args.scorers else None,
            "limit": args.limit,
            "batch_size": args.batch_size,
            "decode_workers": args.decode_workers,
            "decode_backend": args.decode_backend,
            "endpoint_url": args.endpoint_url,
            "device": args.device,
            "gpu_wait_s": args.gpu_wait_s,
            "ray_address": args.ray_address,
            "failure_budget": args.failure_budget,
            "canary": args.canary,
        }
        cfg = merge(file_values, cli)
        from vidscore.pipeline.run import run

        summary = run(cfg)
    except (ConfigError, InputError, OutputError) as exc:
        print(f"vidscore score: error: {exc}", file=sys.stderr)
        return 2
    if summary["failed"]:
        print(f"vidscore score: error: the run failed part-way: {summary['failed']}", file=sys.stderr)
    for line in summary["over_budget"]:
        print(f"vidscore score: over the failure budget: {line}", file=sys.stderr)
    return summary["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
