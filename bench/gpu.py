"""One GPU node: the scorer stage at full size, and scoring from video files, against the reference's way of
working, in one invocation. Random full-size weights (no download), written in the hub layout and loaded by the
scorers' own code.

Sections, per model (VideoScore at 16 and 48 frames, MJ-VIDEO at 8):
  stage      batches of real decoded, model-sized frames at batch sizes 1, 2, 4, ...: videos/s, peak GPU memory,
             model FLOP/s utilisation (forward FLOPs counted by torch's FlopCounterMode at the measured rate,
             over the GPU's dense bf16 peak), and GPU busy (NVML's kernel-active share, sampled)
  reference  the reference's way of working on the same files, one video after another: decode every frame,
             its frame rule, its CPU preprocessing (VideoScore: transformers' Idefics2 processor; MJ-VIDEO: PIL
             bicubic squash + normalise), a batch-1 forward in eager attention (VideoScore's vision tower 2
             frames at a time; MJ-VIDEO also makes the full-vocabulary fp32 logits it computes)
  vidscore   vidscore's decode operator in CPU worker processes feeding the scorer operator on the GPU, as the
             Ray pipeline's decode and scorer pools do (Ray itself is not needed on the GPU machine)
Then both models on the one GPU behind one decode per video, and a last line per model `ratio MODEL: X`
(vidscore videos/s over the reference's). `--tiny` runs tiny models on CPU to check the script itself.
Usage: python bench/gpu.py [--work DIR] [--models videoscore16,videoscore48,mjvideo] [--clips 96]
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidscore.jobs.corpus import PROMPTS, encode_video, render  # noqa: E402
from vidscore.operators.decode import Decoder  # noqa: E402
from vidscore.schemas.scores import OK  # noqa: E402

MODELS = {"videoscore16": 16, "videoscore48": 48, "mjvideo": 8}
# Dense bf16 peak FLOP/s by device name (first match); the MFU denominator. Override with --peak-tflops.
PEAK_TFLOPS = (("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H200", 989), ("GH200", 989), ("A100", 312))


def checkpoints(work: Path, tiny: bool, device: str) -> dict[str, Path]:
    """VideoScore and MJ-VIDEO checkpoints in the hub layout (reused when `work` holds them)."""
    from vidscore.jobs.tiny import mjvideo, videoscore

    size = "tiny" if tiny else "full"
    paths = {"videoscore": work / f"videoscore-{size}", "mjvideo": work / f"mjvideo-{size}"}
    for name, builder in (("videoscore", videoscore), ("mjvideo", mjvideo)):
        if not (paths[name] / "config.json").is_file():
            start = time.perf_counter()
            builder.build(paths[name], seed=0, full=not tiny, device=device)
            print(f"built {paths[name].name} in {time.perf_counter() - start:.0f}s", flush=True)
    return paths


def _clip(args: tuple) -> None:
    path, i, frames, height, width = args
    encode_video(path, render(("crisp-motion", "soft-drift")[i % 2], i, frames, height, width), fps=24)


def corpus(work: Path, clips: int, frames: int, height: int, width: int) -> list[dict]:
    """Real H.264 clips (24 fps), encoded in parallel; reused when present."""
    folder = work / f"clips-{clips}-{frames}-{height}x{width}"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"clip{i:04d}.mp4", i, frames, height, width) for i in range(clips)]
    todo = [j for j in jobs if not j[0].is_file()]
    if todo:
        with multiprocessing.get_context("spawn").Pool(min(len(todo), os.cpu_count() or 1)) as pool:
            pool.map(_clip, todo)
    return [{"uri": str(p), "prompt": PROMPTS[i % len(PROMPTS)], "video_id": f"v{i}"} for p, i, *_ in jobs]


def load(model: str, paths: dict[str, Path], device: str):
    """The scorer for `model` from its checkpoint in `paths` (VideoScore's serves 16 and 48 frames)."""
    from vidscore.operators.scorers.mjvideo import MJVideoScorer
    from vidscore.operators.scorers.videoscore import VideoScoreScorer

    if model == "mjvideo":
        return MJVideoScorer(str(paths["mjvideo"]), device=device)
    return VideoScoreScorer(str(paths["videoscore"]), MODELS[model], device=device)


def forward(model: str, scorer, videos: list[np.ndarray], prompts: list[str]) -> np.ndarray:
    """One batched forward through the scorer's own code."""
    if model == "mjvideo":
        return scorer.score([(v, scorer.encode(p, len(v))) for v, p in zip(videos, prompts)])
    return scorer.score(prompts, videos)


class Busy:
    """Mean NVML GPU utilisation (share of time a kernel ran) over the `with` block; None without NVML."""

    def __init__(self, device: str) -> None:
        self.samples: list[int] = []
        self.handle, self.stop = None, threading.Event()
        if device.startswith("cuda"):
            try:
                import pynvml

                pynvml.nvmlInit()
                self.nvml = pynvml
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            except Exception:  # noqa: BLE001 - busy is reported as unknown
                self.handle = None

    def _sample(self) -> None:
        while not self.stop.wait(0.05):
            self.samples.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)

    def __enter__(self) -> "Busy":
        if self.handle is not None:
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.stop.set()
            self.thread.join()

    @property
    def share(self) -> float | None:
        return sum(self.samples) / (100 * len(self.samples)) if self.samples else None


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_flops(device: str, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((t * 1e12 for key, t in PEAK_TFLOPS if key in name), None)


def flops_per_video(model: str, scorer, video: np.ndarray, prompt: str) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    for module in (scorer.model, scorer.head):  # the counter's module hooks fail on grad-requiring parameters
        module.requires_grad_(False)
    with FlopCounterMode(display=False) as counter:
        forward(model, scorer, [video], [prompt])
    return float(counter.get_total_flops())


def sweep(model: str, scorer, videos, prompts, device: str, seconds: float, peak: float | None, max_batch: int):
    """(batch, videos/s, peak GiB, MFU, busy) for batch sizes 1, 2, 4, ... until out of memory or `max_batch`."""
    flops = flops_per_video(model, scorer, videos[0], prompts[0])
    rows, batch = [], 1
    while batch <= max_batch:
        group = [videos[i % len(videos)] for i in range(batch)]
        text = [prompts[i % len(prompts)] for i in range(batch)]
        try:
            forward(model, scorer, group, text)  # warm-up: kernels picked, memory pooled
            sync(device)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            done, start = 0, time.perf_counter()
            with Busy(device) as busy:
                while time.perf_counter() - start < seconds or done < 2 * batch:
                    forward(model, scorer, group, text)
                    done += batch
                sync(device)
            rate = done / (time.perf_counter() - start)
        except torch.OutOfMemoryError:
            rows.append((batch, None, None, None, None))
            torch.cuda.empty_cache()
            break
        memory = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
        mfu = flops * rate / peak if peak else None
        rows.append((batch, rate, memory, mfu, busy.share))
        print(f"  {model} batch {batch}: {rate:.2f} videos/s", flush=True)
        batch *= 2
    return flops, rows


def reference(model: str, paths: dict[str, Path], clips: list[dict], device: str) -> tuple[float, dict]:
    """(seconds, scores by uri) for the reference's way of working, one video after another; load excluded.
    VideoScore's loop is bench/e2e.py's; MJ-VIDEO's is below (the reference decodes with decord: every frame)."""
    if model != "mjvideo":
        from bench.e2e import reference as videoscore_reference

        seconds, scores, steps = videoscore_reference(paths["videoscore"], clips, MODELS[model], device)
        return seconds - steps["load"], scores
    import av
    from PIL import Image

    from vidscore.operators.frames import sample_indices
    from vidscore.operators.scorers.mjvideo import IMAGENET_MEAN, IMAGENET_STD

    scorer = load(model, paths, device)
    scorer.model.language_model.set_attn_implementation("eager")
    scorer.model.vision_model.set_attn_implementation("eager")
    llm = scorer.config["llm_config"]
    lm_head = torch.randn(llm["vocab_size"], llm["hidden_size"], device=device, dtype=scorer.dtype) * 0.02
    side, mean, std = (
        scorer.spec.resizer.size_args[0],
        np.array(IMAGENET_MEAN, np.float32),
        np.array(IMAGENET_STD, np.float32),
    )
    scores = {}
    sync(device)
    start = time.perf_counter()
    for clip in clips:
        with av.open(clip["uri"]) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
        tiles = [
            Image.fromarray(frames[i]).resize((side, side), Image.BICUBIC)
            for i in sample_indices(scorer.spec, len(frames))
        ]
        pixels = ((np.stack(tiles).astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2)
        ids, last, gate = scorer.encode(clip["prompt"], len(tiles))
        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(device, scorer.dtype)
            hidden = scorer.model(x, torch.tensor([ids], device=device), None, scorer.image_token)
            _ = hidden.float() @ lm_head.float().T  # the reference's unused full-vocabulary fp32 logits
            rewards, aspects, overall = scorer.head(hidden[:, last], hidden[:, gate])
            out = torch.cat([overall[:, None].float(), aspects.float(), rewards.float()], dim=-1)
        scores[clip["uri"]] = out.cpu().numpy()[0]
    return time.perf_counter() - start, scores


_decoder = None


def _decode_init(specs: list) -> None:
    global _decoder
    _decoder = Decoder(specs)  # the pipeline's default: each video in a killable child process


def _ready(_: int) -> None:
    time.sleep(0.05)


def _decode(rows: list[dict]) -> dict:
    batch = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}
    return _decoder(batch)


def vidscore(models: list[str], scorers: list, clips: list[dict], device: str, workers: int, batch: int):
    """(seconds, {model: scores by uri}): decode workers feed the scorers, each video decoded once for all."""
    specs = list(dict.fromkeys(s.spec for s in scorers))
    chunks = [clips[i : i + batch] for i in range(0, len(clips), batch)]
    scores: dict[str, dict[str, np.ndarray]] = {m: {} for m in models}
    context = multiprocessing.get_context("spawn")
    # Not a multiprocessing.Pool: its daemonic workers could not start the decoder's killable child processes.
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_decode_init, initargs=(specs,)) as pool:
        list(pool.map(_ready, range(4 * workers)))  # steady state: workers started, like a running decode pool
        sync(device)
        start = time.perf_counter()
        for decoded in pool.map(_decode, chunks):  # in order; workers run ahead while the GPU scores
            for model, scorer in zip(models, scorers):
                out = scorer(dict(decoded))
                names = [k for k in out if k.startswith(scorer.name + "_") and out[k].dtype.kind == "f"]
                for i, uri in enumerate(out["uri"]):
                    if out["status"][i] != OK:
                        raise RuntimeError(f"{uri}: {out['status'][i]}: {out['error'][i]}")
                    scores[model][uri] = np.array([out[n][i] for n in names], dtype=np.float64)
    return time.perf_counter() - start, scores


def max_diff(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    """Largest score difference over videos both scored (the reference's VideoScore order = ours)."""
    common = [u for u in ref if u in ours]
    return max(float(np.abs(ours[u] - ref[u]).max()) for u in common) if common else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, help="keep checkpoints and clips here between runs")
    p.add_argument("--models", default="videoscore16,videoscore48,mjvideo")
    p.add_argument("--clips", type=int, default=96, help="clips for the vidscore side")
    p.add_argument("--reference-clips", type=int, default=24, help="clips for the (slow) reference side")
    p.add_argument("--clip-size", default="1280x720", help="WIDTHxHEIGHT of the generated clips")
    p.add_argument("--seconds", type=float, default=15.0, help="timed seconds per stage measurement")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--batch", type=int, default=8, help="videos per scorer call on the vidscore side")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="decode processes")
    p.add_argument("--peak-tflops", type=float, help="dense bf16 peak, when the GPU is not in the table")
    p.add_argument("--tiny", action="store_true", help="tiny models (on CPU without a GPU): checks the script")
    args = p.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        sys.exit("no CUDA device: run on a GPU machine, or pass --tiny to check the script on CPU")
    work = args.work or Path(tempfile.mkdtemp(prefix="vidscore-bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.clip_size.split("x"))
    models = [m for m in args.models.split(",") if m]
    import transformers

    gpu = torch.cuda.get_device_name() if device == "cuda" else "no GPU"
    print(f"{gpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{time.strftime('%Y-%m-%d')}", flush=True)  # fmt: skip
    paths = checkpoints(work, args.tiny, device)
    clips = corpus(work, max(args.clips, args.reference_clips), 3 * 24, height, width)  # 3 s at 24 fps
    peak = peak_flops(device, args.peak_tflops)
    results = {}
    for model in models:
        start = time.perf_counter()
        scorer = load(model, paths, device)
        load_s = time.perf_counter() - start
        spec = scorer.spec
        decoder = Decoder([spec], timeout_s=None)
        videos = [decoder.decode(c["uri"], [spec])[1][spec.column] for c in clips[:8]]
        prompts = [c["prompt"] for c in clips[:8]]
        flops, rows = sweep(model, scorer, videos, prompts, device, args.seconds, peak, args.max_batch)
        print(f"\n{model}: {spec.key} frames of {videos[0].shape[1:3]} from {width}x{height} clips, "
              f"{flops / 1e12:.2f} TFLOP per video, load {load_s:.0f}s", flush=True)  # fmt: skip
        print(f"{'batch':>5} {'videos/s':>9} {'peak GiB':>9} {'MFU':>6} {'GPU busy':>9}")
        for b, rate, memory, mfu, busy in rows:
            if rate is None:
                print(f"{b:>5} {'out of memory':>26}")
                continue
            cells = [f"{memory:.1f}" if memory else "-", f"{mfu:.0%}" if mfu else "-", f"{busy:.0%}" if busy else "-"]
            print(f"{b:>5} {rate:>9.2f} {cells[0]:>9} {cells[1]:>6} {cells[2]:>9}")
        batch = min(args.batch, max(b for b, rate, *_ in rows if rate is not None))
        with Busy(device) as busy:
            ours_s, ours = vidscore([model], [scorer], clips[: args.clips], device, args.workers, batch)
        del scorer, decoder
        if device == "cuda":
            torch.cuda.empty_cache()
        ref_s, ref = reference(model, paths, clips[: args.reference_clips], device)
        ours_rate, ref_rate = args.clips / ours_s, args.reference_clips / ref_s
        busy_text = f"{busy.share:.0%}" if busy.share is not None else "-"
        print(f"from files: vidscore {ours_rate:.2f} videos/s ({args.workers} decode processes, batch {batch}, "
              f"GPU busy {busy_text}), reference {ref_rate:.2f} videos/s, "
              f"max score difference {max_diff(ours[model], ref):.2e}", flush=True)  # fmt: skip
        results[model] = ours_rate / ref_rate

    pair = [m for m in ("videoscore16", "mjvideo") if m in models]
    if len(pair) == 2:
        scorers = [load(m, paths, device) for m in pair]
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with Busy(device) as busy:
            both_s, _ = vidscore(pair, scorers, clips[: args.clips], device, args.workers, args.batch)
        memory = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device == "cuda" else ""
        busy_text = f", GPU busy {busy.share:.0%}" if busy.share is not None else ""
        print(f"\nboth models on one GPU, each video decoded once: {args.clips / both_s:.2f} videos/s{memory}"
              f"{busy_text}")  # fmt: skip
    for model, ratio in results.items():
        print(f"ratio {model}: {ratio:.2f}")


if __name__ == "__main__":
    main()
