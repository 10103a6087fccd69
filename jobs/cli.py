"""The `vidscore` console script: `vidscore <job> ...` runs `jobs.<job>.main`."""

import importlib
import sys

JOBS = {
    "score": "jobs.score",
    "demo": "jobs.demo",
    "filter": "jobs.filter",
    "report": "jobs.report",
    "evaluate": "jobs.evaluate",
    "compact": "jobs.compact",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in JOBS:
        print(f"usage: vidscore {{{','.join(JOBS)}}} ...  (vidscore <job> --help for a job's options)", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(JOBS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
