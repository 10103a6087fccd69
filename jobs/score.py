"""`vidscore score INPUT -o OUTPUT [-s NAME[=CHECKPOINT]]...`: score a video corpus into a Parquet table.

Uses the Ray cluster in RAY_ADDRESS when set (e.g. under `ray job submit`), else starts a local Ray.
Exit codes: 0 done (bad videos are rows with a status), 2 bad configuration or unusable storage.
"""

import argparse
import sys

from operators.read import InputError
from pipeline.config import ConfigError, load_yaml, merge, parse_scorer
from pipeline.output import OutputError


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
        help="scorer to run (repeatable): technical, videoscore[=ID|DIR], mjvideo[=ID|DIR]; default technical",
    )
    p.add_argument("--limit", type=int, help="score only the first N input rows")
    p.add_argument("--batch-size", type=int, help="videos per scorer batch (overrides each scorer's default)")
    p.add_argument("--config", help="YAML job config; command-line flags override it")
    p.add_argument("--decode-workers", type=int, help="most decode actors (default: free CPUs)")
    p.add_argument("--decode-backend", choices=["auto", "decord", "pyav"], help="video decoder (default auto)")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint URL (default: AWS_ENDPOINT_URL or AWS)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
        }
        cfg = merge(file_values, cli)
        from pipeline.run import run

        run(cfg)
    except (ConfigError, InputError, OutputError) as exc:
        print(f"vidscore score: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
