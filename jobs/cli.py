"""The `vidscore` console script: `vidscore <job> ...` runs `jobs.<job>.main`."""

import importlib
import sys

JOBS = {
    "score": "vidscore.jobs.score",
    "demo": "vidscore.jobs.demo",
    "filter": "vidscore.jobs.filter",
    "report": "vidscore.jobs.report",
    "evaluate": "vidscore.jobs.evaluate",
    "compact": "vidscore.jobs.compact",
    "canary": "vidscore.jobs.canary",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in JOBS:
        print(f"usage: vidscore {{{','.join(JOBS)}}} ...  (vidscore <job> --help for a job's options)", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(JOBS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
