"""`make demo`: generate a sample corpus, score it on a local Ray, curate it, and write a report.

The corpus is real encoded H.264 clips from three pretend generators (plus one corrupt file). Reward-model
scorers run on TINY RANDOM-WEIGHT checkpoints built here: their numbers show the plumbing, not quality.
"""

import argparse
import shutil
import sys
from pathlib import Path

from vidscore.jobs.corpus import make_corpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vidscore demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_out", help="working folder (recreated on every run)")
    p.add_argument("--per-generator", type=int, default=5, help="clips per pretend generator")
    args = p.parse_args(argv)

    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    print(f"[demo] writing a sample corpus to {out / 'corpus'}")
    manifest = make_corpus(out / "corpus", per_generator=args.per_generator)
    from vidscore.jobs.tiny import mjvideo, videoreward, videoscore

    print("[demo] building TINY RANDOM-WEIGHT VideoScore, MJ-VIDEO and VideoReward checkpoints (real architectures and")
    print("[demo] hub layouts, random weights): their scores exercise the pipeline and mean nothing.")
    scorers = [
        "technical",
        f"videoscore={videoscore.build(out / 'tiny-videoscore')}",
        f"mjvideo={mjvideo.build(out / 'tiny-mjvideo')}",
        f"videoreward={videoreward.build(out / 'tiny-videoreward')}",
    ]

    from vidscore.jobs.score import main as score

    print(f"[demo] scoring with: {', '.join(scorers)}")
    code = score([str(manifest), "-o", str(out / "scores"), *[a for s in scorers for a in ("-s", s)]])
    if code != 0:
        return code
    print(
        "\n[demo] videoscore_*, mjvideo_* and videoreward_* above come from TINY RANDOM-WEIGHT checkpoints: "
        "plumbing only."
    )
    from vidscore.jobs.filter import main as filter_job
    from vidscore.jobs.report import main as report_job

    scores, curated = out / "scores", out / "curated.jsonl"
    print("\n[demo] curating: moving, sharp clips (technical pre-filters), then the top half by sharpness")
    code = filter_job(
        [
            str(scores),
            "-o",
            str(curated),
            "--where",
            "technical_static = false",
            "--where",
            "technical_sharpness > 1000",
            "--top-percent",
            "technical_sharpness=50",
        ]
    )
    if code == 0:
        code = report_job([str(scores), "-o", str(out / "report")])
    if code == 0:
        print(f"\n[demo] score table (Parquet):  {scores}")
        print(f"[demo] curated manifest:       {curated}  (vidscore score reads it again)")
        print(f"[demo] HTML report:            {out / 'report' / 'report.html'}")
        print(f"[demo] read the table: python -c \"from vidscore import latest; print(latest('{scores}').collect())\"")
    return code


if __name__ == "__main__":
    sys.exit(main())
