"""End to end on one machine: the real `vidscore score` job vs a reference-style sequential loop, per model.

Generates a corpus of short H.264 clips (jobs/corpus.py) and a tiny random-weight checkpoint in the model's
released layout (jobs/tiny/), then times, interleaved over several rounds (best round kept):
  vidscore   `python -m vidscore.jobs.score MANIFEST -o OUT -s MODEL=CKPT` as a subprocess: Python and Ray
             start-up, actor start-up, decode, scoring and the Parquet write are all in its wall time
  reference  the reference's way of working, in this process, one video after another (bench/references.py):
             PyAV decodes every frame, the model's frame rule and its reference preprocessing on the CPU, a
             batch-1 forward (model load included in its time). VideoScore: `arange` 16 frames, transformers'
             Idefics2 processor, eager attention, vision tower 2 frames at a time. VideoReward: 2 fps, the whole
             clip resized at once (bicubic, antialias), the Qwen2-VL processor's NumPy steps.
Then checks that both give the same scores for every video (max abs difference over every float column).
Usage: python bench/e2e.py [--model videoscore|videoreward] [--clips 300] [--rounds 2] [--work DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import references  # noqa: E402
from vidscore.jobs.corpus import make_corpus  # noqa: E402

FRAMES = 16
TOLERANCE = 1e-3


def prepare(work: Path, model: str, clips: int) -> tuple[Path, Path]:
    """Tiny checkpoint and corpus, reused when `work` already holds them."""
    from vidscore.jobs.tiny import videoreward, videoscore

    manifest = work / f"corpus-{clips}" / "manifest.jsonl"
    if model == "videoreward":
        ckpt = work / "videoreward" / "videoreward"
        if not (ckpt / "model_config.json").is_file():
            videoreward.build(ckpt.parent, seed=0)
    else:
        ckpt = work / "ckpt"
        if not (ckpt / "config.json").is_file():
            videoscore.build(ckpt, seed=0)
    if not manifest.is_file():
        per = -(-clips // 3)
        make_corpus(manifest.parent, per_generator=per, num_frames=24, include_bad=False)  # 2 s at 12 fps
        rows = manifest.read_text().splitlines()[:clips]
        manifest.write_text("".join(r + "\n" for r in rows))
    return ckpt, manifest


def reference(model: str, ckpt: Path, clips: list[dict]) -> tuple[float, dict[str, np.ndarray], dict[str, float]]:
    """(seconds, scores by uri, seconds per step) for the reference-style loop of `model` over `clips` (dicts
    with an absolute `uri` and a `prompt`), model load included in the seconds."""
    start = time.perf_counter()
    scorer = load(model, ckpt)
    load_s = time.perf_counter() - start
    seconds, scores, steps = references.LOOPS[model](scorer, clips, "cpu")
    return load_s + seconds, scores, {"load": load_s, **steps}


def load(model: str, ckpt: Path):
    """The scorer that holds the weights (its strict loading code); the reference loop runs its own forward."""
    if model == "videoreward":
        from vidscore.operators.scorers.videoreward import VideoRewardScorer

        return VideoRewardScorer(str(ckpt), device="cpu")
    from vidscore.operators.scorers.videoscore import VideoScoreScorer

    return VideoScoreScorer(str(ckpt), FRAMES, device="cpu")


def vidscore(model: str, ckpt: Path, manifest: Path, out: Path) -> tuple[float, dict]:
    """(wall seconds of the whole job process, its run summary)."""
    env = dict(os.environ)  # a fresh local Ray per job, with token authentication (generated locally)
    cmd = [sys.executable, "-m", "vidscore.jobs.score", str(manifest), "-o", str(out), "-s", f"{model}={ckpt}"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    (summary,) = (out / "_vidscore").glob("run-*.json")
    return wall, json.loads(summary.read_text())


def compare(model: str, out: Path, ref: dict[str, np.ndarray]) -> tuple[int, float]:
    """(videos compared, max abs score difference) between the pipeline's table and the reference loop."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    data = pads.dataset(str(out), format="parquet")
    names = [f.name for f in data.schema if f.name.startswith(model + "_") and pa.types.is_floating(f.type)]
    table = data.to_table(columns=["uri", "status", *names]).to_pylist()
    diffs = []
    for row in table:
        assert row["status"] == "ok", row
        diffs.append(np.abs(np.array([row[n] for n in names], dtype=np.float64) - ref[row["uri"]]).max())
    return len(diffs), float(max(diffs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(references.LOOPS.keys() - {"mjvideo"}), default="videoscore")
    p.add_argument("--clips", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--work", type=Path, help="keep the corpus and checkpoint here between runs")
    args = p.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="vidscore-bench-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    ckpt, manifest = prepare(work, args.model, args.clips)
    best_ref, best_job = (float("inf"), None, None), (float("inf"), None, None)
    clips = [json.loads(line) for line in manifest.read_text().splitlines()]
    clips = [dict(c, uri=os.path.abspath(manifest.parent / c["uri"])) for c in clips]
    for round_ in range(args.rounds):
        ref_s, ref_scores, steps = reference(args.model, ckpt, clips)
        out = Path(tempfile.mkdtemp(prefix=f"out{round_}-", dir=work))
        job_s, summary = vidscore(args.model, ckpt, manifest, out)
        print(f"round {round_ + 1}: reference {ref_s:.1f}s, vidscore {job_s:.1f}s", flush=True)
        best_ref = min(best_ref, (ref_s, ref_scores, steps), key=lambda r: r[0])
        best_job = min(best_job, (job_s, out, summary), key=lambda r: r[0])
    (ref_s, ref_scores, steps), (job_s, out, summary) = best_ref, best_job
    n = len(ref_scores)
    compared, diff = compare(args.model, out, ref_scores)

    print(f"{n} clips, 2 s 256x192 H.264 (24 frames), tiny {args.model}, {os.cpu_count()} CPUs, best of {args.rounds}")
    print(f"{'method':<44} {'seconds':>8} {'videos/s':>9}")
    print(f"{'reference loop (batch 1, sequential)':<44} {ref_s:>8.1f} {n / ref_s:>9.2f}")
    print(f"{'vidscore score (whole process, Ray start-up)':<44} {job_s:>8.1f} {n / job_s:>9.2f}")
    print("reference per video: " + ", ".join(f"{k} {v / n:.3f}s" for k, v in steps.items() if k != "load"))
    print(f"reference model load: {steps['load']:.1f}s")
    print(
        f"vidscore: ray_start_s {summary.get('ray_start_s')}, pipeline wall_s {summary['wall_s']}, other (Python, "
        f"planning, reading) {job_s - summary['wall_s'] - summary.get('ray_start_s', 0):.1f}s"
    )
    stages = summary.get("stages", {})
    print("vidscore stages, worker seconds per video: " + ", ".join(f"{k} {v / n:.3f}" for k, v in stages.items()))
    verdict = "ok" if diff <= TOLERANCE else "FAIL"
    print(f"scores: {compared} videos compared, max abs difference {diff:.2e} ({verdict}, tolerance {TOLERANCE:g})")
    print(f"ratio: {ref_s / job_s:.2f}")


if __name__ == "__main__":
    main()
