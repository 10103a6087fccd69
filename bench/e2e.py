"""End to end on one machine: the real `vidscore score` job vs a reference-style sequential VideoScore loop.

Generates a corpus of short H.264 clips (jobs/corpus.py) and a tiny random-weight VideoScore checkpoint in the
hub layout (jobs/tiny/videoscore.py), then times, interleaved over several rounds (best round kept):
  vidscore   `python -m vidscore.jobs.score MANIFEST -o OUT -s videoscore=CKPT` as a subprocess: Python and Ray
             start-up, actor start-up, decode, scoring and the Parquet write are all in its wall time
  reference  the reference's way of working, in this process, one video after another: PyAV decodes every
             frame to RGB, the `arange` rule picks 16, transformers' Idefics2 processor (PIL) prepares them with
             the byte-exact prompt, batch-1 forward with eager attention and the vision tower 2 frames at a
             time, score = Linear head at the last token (model load included in its time)
Then checks that both give the same five scores for every video (max abs difference).
Usage: python bench/e2e.py [--clips 300] [--rounds 2] [--work DIR]
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
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidscore.jobs.corpus import make_corpus  # noqa: E402
from vidscore.operators.frames import FrameSpec, sample_indices  # noqa: E402
from vidscore.schemas.videoscore import ASPECTS  # noqa: E402

FRAMES = 16
TOLERANCE = 1e-3


def prepare(work: Path, clips: int) -> tuple[Path, Path]:
    """Tiny checkpoint and corpus, reused when `work` already holds them."""
    from vidscore.jobs.tiny.videoscore import build

    ckpt, manifest = work / "ckpt", work / f"corpus-{clips}" / "manifest.jsonl"
    if not (ckpt / "config.json").is_file():
        build(ckpt, seed=0)
    if not manifest.is_file():
        per = -(-clips // 3)
        make_corpus(manifest.parent, per_generator=per, num_frames=24, include_bad=False)  # 2 s at 12 fps
        rows = manifest.read_text().splitlines()[:clips]
        manifest.write_text("".join(r + "\n" for r in rows))
    return ckpt, manifest


class TwoFramesAtATime(torch.nn.Module):
    """Wraps the SigLIP tower so it sees at most two frames per call, as the reference's model does."""

    def __init__(self, tower: torch.nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, pixel_values: torch.Tensor, patch_attention_mask: torch.Tensor, **kwargs: object) -> object:
        from transformers.modeling_outputs import BaseModelOutput

        parts = [
            self.tower(
                pixel_values=pixel_values[i : i + 2], patch_attention_mask=patch_attention_mask[i : i + 2], **kwargs
            ).last_hidden_state
            for i in range(0, len(pixel_values), 2)
        ]
        return BaseModelOutput(last_hidden_state=torch.cat(parts))


def reference(
    ckpt: Path, clips: list[dict], frames: int = FRAMES, device: str = "cpu"
) -> tuple[float, dict[str, np.ndarray], dict[str, float]]:
    """(seconds, scores by uri, seconds per step) for the sequential reference-style loop over `clips` (dicts
    with an absolute `uri` and a `prompt`); on CUDA the weights are bf16, as the reference loads them."""
    import av
    from PIL import Image
    from transformers import AutoProcessor

    from vidscore.operators.scorers.videoscore import VideoScoreScorer, build_prompt

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    start = time.perf_counter()
    # Same weights, loaded by the scorer's strict safetensors code; the forward below is the reference's.
    model = VideoScoreScorer(str(ckpt), frames, device=device)
    model.model.set_attn_implementation("eager")
    model.model.vision_model = TwoFramesAtATime(model.model.vision_model)
    processor = AutoProcessor.from_pretrained(str(ckpt))
    rule = FrameSpec.uniform(frames, "arange")
    sync()
    steps = {"load": time.perf_counter() - start, "decode": 0.0, "processor": 0.0, "forward": 0.0}
    scores = {}
    for clip in clips:
        t0 = time.perf_counter()
        with av.open(clip["uri"]) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
        images = [Image.fromarray(decoded[i]) for i in sample_indices(rule, len(decoded))]
        t1 = time.perf_counter()
        inputs = processor(text=build_prompt(clip["prompt"], len(images)), images=images, return_tensors="pt")
        inputs = {k: v.to(device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(model.model.dtype)
        t2 = time.perf_counter()
        with torch.no_grad():
            hidden = model.model(**inputs, use_cache=False).last_hidden_state
            scores[clip["uri"]] = model.head(hidden[:, -1]).float().cpu().numpy()[0]
        t3 = time.perf_counter()
        steps["decode"] += t1 - t0
        steps["processor"] += t2 - t1
        steps["forward"] += t3 - t2
    return time.perf_counter() - start, scores, steps


def vidscore(ckpt: Path, manifest: Path, out: Path) -> tuple[float, dict]:
    """(wall seconds of the whole job process, its run summary)."""
    env = dict(os.environ)  # a fresh local Ray per job, with token authentication (generated locally)
    cmd = [sys.executable, "-m", "vidscore.jobs.score", str(manifest), "-o", str(out), "-s", f"videoscore={ckpt}"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    (summary,) = (out / "_vidscore").glob("run-*.json")
    return wall, json.loads(summary.read_text())


def compare(out: Path, ref: dict[str, np.ndarray]) -> tuple[int, float]:
    """(videos compared, max abs score difference) between the pipeline's table and the reference loop."""
    import pyarrow.dataset as pads

    names = [f"videoscore_{a}" for a in ASPECTS]
    table = pads.dataset(str(out), format="parquet").to_table(columns=["uri", "status", *names]).to_pylist()
    diffs = []
    for row in table:
        assert row["status"] == "ok", row
        diffs.append(np.abs(np.array([row[n] for n in names], dtype=np.float64) - ref[row["uri"]]).max())
    return len(diffs), float(max(diffs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--work", type=Path, help="keep the corpus and checkpoint here between runs")
    args = p.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="vidscore-bench-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    ckpt, manifest = prepare(work, args.clips)
    best_ref, best_job = (float("inf"), None, None), (float("inf"), None, None)
    clips = [json.loads(line) for line in manifest.read_text().splitlines()]
    clips = [dict(c, uri=os.path.abspath(manifest.parent / c["uri"])) for c in clips]
    for round_ in range(args.rounds):
        ref_s, ref_scores, steps = reference(ckpt, clips)
        out = Path(tempfile.mkdtemp(prefix=f"out{round_}-", dir=work))
        job_s, summary = vidscore(ckpt, manifest, out)
        print(f"round {round_ + 1}: reference {ref_s:.1f}s, vidscore {job_s:.1f}s", flush=True)
        best_ref = min(best_ref, (ref_s, ref_scores, steps), key=lambda r: r[0])
        best_job = min(best_job, (job_s, out, summary), key=lambda r: r[0])
    (ref_s, ref_scores, steps), (job_s, out, summary) = best_ref, best_job
    n = len(ref_scores)
    compared, diff = compare(out, ref_scores)

    print(f"{n} clips, 2 s 256x192 H.264 (24 frames), tiny VideoScore, {os.cpu_count()} CPUs, best of {args.rounds}")
    print(f"{'method':<44} {'seconds':>8} {'videos/s':>9}")
    print(f"{'reference loop (batch 1, eager, sequential)':<44} {ref_s:>8.1f} {n / ref_s:>9.2f}")
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
