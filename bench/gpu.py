"""One GPU node, every model in one call: the scorer stage at full size, and scoring from video files against
the reference's way of working. Random full-size weights are generated on the GPU (no download), written in each
model's released layout and loaded by the scorers' own code. Made to fit one call of at most 8 minutes.

Per model (VideoScore at 16 and 48 frames, MJ-VIDEO at 8, VideoReward at 2 fps):
  stage      batches of real decoded, model-sized frames at batch sizes 1, 2, 4, ... (until out of memory, no
             gain or its time share is spent): videos/s, peak GPU memory, model FLOP/s utilisation (forward
             FLOPs counted by torch's FlopCounterMode at the measured rate, over the GPU's dense bf16 peak), and
             GPU busy (NVML's kernel-active share, sampled)
  vidscore   vidscore's decode operator in CPU worker processes feeding the scorer operator on the GPU, as the
             Ray pipeline's decode and scorer pools do (Ray itself is not needed on the GPU machine)
  reference  the reference's way of working on the same files, one video after another (bench/references.py)
Then VideoScore-16, MJ-VIDEO and VideoReward together on the one GPU behind one decode per video, one summary
table, and a line per model `ratio MODEL: X` (vidscore videos/s over the reference's).

Time: `--budget-s` (default 420) is shared out as the run goes. Each model gets an equal share of what is left;
its sweep, file run and reference run size themselves to that share (clip counts from the measured rates, the
reference stops at its deadline after 4 videos). A section with no time left is skipped and says so.
`--tiny` runs tiny models on CPU to check the script itself.
Usage: python bench/gpu.py [--work DIR] [--models videoscore16,videoscore48,mjvideo,videoreward] [--budget-s 420]
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import references  # noqa: E402
from bench.references import sync  # noqa: E402
from vidscore.jobs.corpus import PROMPTS, encode_video, render  # noqa: E402
from vidscore.operators.decode import Decoder  # noqa: E402
from vidscore.schemas.scores import OK  # noqa: E402

FAMILY = {
    "videoscore16": "videoscore",
    "videoscore48": "videoscore",
    "mjvideo": "mjvideo",
    "videoreward": "videoreward",
}
VIDEOSCORE_FRAMES = {"videoscore16": 16, "videoscore48": 48}
SHARED = ("videoscore16", "mjvideo", "videoreward")  # one of each family on one GPU
# Dense bf16 peak FLOP/s by device name (first match); the MFU denominator. Override with --peak-tflops.
PEAK_TFLOPS = (("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H200", 989), ("GH200", 989), ("A100", 312))


class Clock:
    """The run's time budget: what is left, and a fair share of it for the next of `parts` sections."""

    def __init__(self, budget_s: float) -> None:
        self.start, self.budget_s = time.perf_counter(), budget_s

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def share(self, parts: int) -> float:
        return max(0.0, self.left()) / max(1, parts)


def checkpoints(work: Path, families: set[str], tiny: bool, device: str) -> dict[str, Path]:
    """Checkpoints in the released layouts (reused when `work` holds them)."""
    from vidscore.jobs.tiny import mjvideo, videoreward, videoscore

    size = "tiny" if tiny else "full"
    paths = {}
    for name, builder in (("videoscore", videoscore), ("mjvideo", mjvideo), ("videoreward", videoreward)):
        if name not in families:
            continue
        folder = work / f"{name}-{size}"
        paths[name] = folder / "videoreward" if name == "videoreward" else folder
        marker = "model_config.json" if name == "videoreward" else "config.json"
        if not (paths[name] / marker).is_file():
            start = time.perf_counter()
            builder.build(folder, seed=0, full=not tiny, device=device)
            print(f"built {folder.name} in {time.perf_counter() - start:.0f}s", flush=True)
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
    family = FAMILY[model]
    if family == "mjvideo":
        from vidscore.operators.scorers.mjvideo import MJVideoScorer

        return MJVideoScorer(str(paths[family]), device=device)
    if family == "videoreward":
        from vidscore.operators.scorers.videoreward import VideoRewardScorer

        return VideoRewardScorer(str(paths[family]), device=device)
    from vidscore.operators.scorers.videoscore import VideoScoreScorer

    return VideoScoreScorer(str(paths[family]), VIDEOSCORE_FRAMES[model], device=device)


def forward(model: str, scorer, videos: list[np.ndarray], prompts: list[str]) -> np.ndarray:
    """One batched forward through the scorer's own code."""
    if FAMILY[model] == "mjvideo":
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


_decoder = None


def _decode_init(specs: list) -> None:
    global _decoder
    _decoder = Decoder(specs)  # the pipeline's default: each video in a killable child process


def _ready(_: int) -> None:
    time.sleep(0.05)


def _decode(rows: list[dict]) -> dict:
    batch = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}
    return _decoder(batch)


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


def sweep(model: str, scorer, videos, prompts, device: str, seconds: float, max_batch: int, until: float) -> list:
    """(batch, videos/s, peak GiB, busy) for batch sizes 1, 2, 4, ... until out of memory, `max_batch`, less
    than 5% gain over the last size, or past `until` (a perf_counter time)."""
    rows, batch = [], 1
    while batch <= max_batch and (not rows or time.perf_counter() < until):
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
            rows.append((batch, None, None, None))
            torch.cuda.empty_cache()
            break
        memory = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
        rows.append((batch, rate, memory, busy.share))
        print(f"  {model} batch {batch}: {rate:.2f} videos/s", flush=True)
        if len(rows) > 1 and rows[-2][1] and rate < 1.05 * rows[-2][1]:
            break  # saturated: a bigger batch only costs time and memory
        batch *= 2
    return rows


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
    """Largest score difference over videos both scored (the reference loops give the table's column order)."""
    common = [u for u in ref if u in ours]
    return max(float(np.abs(ours[u] - ref[u]).max()) for u in common) if common else float("nan")


def clip_count(rate: float, seconds: float, least: int, most: int) -> int:
    """How many clips a run at `rate` videos/s scores in `seconds`, within [least, most]."""
    return max(least, min(most, int(rate * seconds)))


def measure(model: str, paths: dict, clips: list[dict], args, device: str, peak, until: float) -> dict:
    """One model's three sections within its share (until `until`); the summary row."""
    share = until - time.perf_counter()
    start = time.perf_counter()
    scorer = load(model, paths, device)
    row = {"model": model, "load_s": time.perf_counter() - start, "frames": scorer.spec.key}
    decoder = Decoder([scorer.spec], timeout_s=None)
    videos = [decoder.decode(c["uri"], [scorer.spec])[1][scorer.spec.column] for c in clips[:8]]
    prompts = [c["prompt"] for c in clips[:8]]
    row["shape"] = f"{len(videos[0])}x{videos[0].shape[1]}x{videos[0].shape[2]}"
    row["tflop"] = flops_per_video(model, scorer, videos[0], prompts[0]) / 1e12
    sweep_until = time.perf_counter() + 0.4 * share
    per_point = min(args.seconds, 0.4 * share / 6)
    rows = sweep(model, scorer, videos, prompts, device, per_point, args.max_batch, sweep_until)
    print(f"\n{model}: {row['shape']} frames (T x H x W) from {args.clip_size} clips, {row['tflop']:.2f} TFLOP per "
          f"video, load {row['load_s']:.0f}s", flush=True)  # fmt: skip
    print(f"{'batch':>5} {'videos/s':>9} {'peak GiB':>9} {'MFU':>6} {'GPU busy':>9}")
    for b, rate, memory, busy in rows:
        if rate is None:
            print(f"{b:>5} {'out of memory':>26}")
            continue
        mfu = row["tflop"] * 1e12 * rate / peak if peak else None
        cells = [f"{memory:.1f}" if memory else "-", f"{mfu:.0%}" if mfu else "-", f"{busy:.0%}" if busy else "-"]
        print(f"{b:>5} {rate:>9.2f} {cells[0]:>9} {cells[1]:>6} {cells[2]:>9}")
    done = [r for r in rows if r[1] is not None]
    best = max(done, key=lambda r: r[1])
    row.update(batch=best[0], stage=best[1], memory=best[2], busy=best[3])
    row["mfu"] = row["tflop"] * 1e12 * best[1] / peak if peak else None

    left = until - time.perf_counter()
    batch = min(args.batch, best[0])
    n = clip_count(best[1], 0.5 * left, 2 * batch, args.clips)
    with Busy(device) as busy:
        ours_s, ours = vidscore([model], [scorer], clips[:n], device, args.workers, batch)
    row.update(files=n / ours_s, files_busy=busy.share, files_clips=n, files_batch=batch)
    ref_until = max(time.perf_counter() + 1, until)
    ref_s, ref, _ = references.LOOPS[FAMILY[model]](scorer, clips[: args.reference_clips], device, ref_until)
    row.update(reference=len(ref) / ref_s, reference_clips=len(ref), diff=max_diff(ours[model], ref))
    row["ratio"] = row["files"] / row["reference"]
    print(f"from files: vidscore {row['files']:.2f} videos/s ({n} clips, {args.workers} decode processes, batch "
          f"{batch}), reference {row['reference']:.2f} videos/s ({len(ref)} clips), max score difference "
          f"{row['diff']:.2e}", flush=True)  # fmt: skip
    del scorer, decoder
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def shared(models: list[str], rows: dict, paths: dict, clips: list[dict], args, device: str, seconds: float):
    """All families on the one GPU behind one decode per video: (videos/s, clips, peak GiB, busy)."""
    scorers = [load(m, paths, device) for m in models]
    # Each video passes every scorer: the rate is about the harmonic sum of the models' own rates.
    rate = 1 / sum(1 / rows[m]["files"] for m in models if m in rows) if all(m in rows for m in models) else 1.0
    n = clip_count(rate, seconds, 2 * args.batch, args.clips)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with Busy(device) as busy:
        both_s, _ = vidscore(models, scorers, clips[:n], device, args.workers, args.batch)
    memory = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return n / both_s, n, memory, busy.share


def cell(value, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, fmt)


def summary(rows: dict, skipped: list, failed: dict, both: tuple | None, models: list, both_models: list) -> None:
    """One table for the whole run (fits 120 columns)."""
    print(f"\n{'model':<13}{'frames':>12}{'TFLOP':>7}{'stage v/s':>10}{'batch':>6}{'GiB':>6}{'MFU':>5}{'busy':>5}"
          f"{'files v/s':>10}{'busy':>5}{'ref v/s':>8}{'ratio':>7}{'max diff':>9}")  # fmt: skip
    for model in models:
        if model in skipped:
            print(f"{model:<13} skipped: no time left in the budget")
            continue
        if model in failed:
            print(f"{model:<13} failed: {failed[model]}"[:120])
            continue
        r = rows[model]
        print(f"{model:<13}{r['shape']:>12}{r['tflop']:>7.2f}{r['stage']:>10.2f}{r['batch']:>6}"
              f"{cell(r['memory'], '.1f'):>6}{cell(r['mfu'], '.0%'):>5}{cell(r['busy'], '.0%'):>5}"
              f"{r['files']:>10.2f}{cell(r['files_busy'], '.0%'):>5}{r['reference']:>8.2f}{r['ratio']:>6.2f}x"
              f"{r['diff']:>9.1e}")  # fmt: skip
    if both is not None:
        rate, n, memory, busy = both
        print(f"{'all on 1 GPU':<13}{'one decode':>12}{'':>7}{'':>10}{'':>6}{cell(memory, '.1f'):>6}{'':>5}{'':>5}"
              f"{rate:>10.2f}{cell(busy, '.0%'):>5}  {n} clips")  # fmt: skip
        print(f"  all on 1 GPU: {', '.join(both_models)} in one process, each video decoded once for all")
    if "all on 1 GPU" in failed:
        print(f"{'all on 1 GPU':<13} failed: {failed['all on 1 GPU']}"[:120])
    for model in models:
        if model in rows:
            print(f"ratio {model}: {rows[model]['ratio']:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, help="keep checkpoints and clips here between runs")
    p.add_argument("--models", default="videoscore16,videoscore48,mjvideo,videoreward")
    p.add_argument("--budget-s", type=float, default=420.0, help="seconds for the whole run, builds included")
    p.add_argument("--clips", type=int, default=96, help="most clips for a vidscore run")
    p.add_argument("--reference-clips", type=int, default=24, help="most clips for a (slow) reference run")
    p.add_argument("--clip-size", default="1280x720", help="WIDTHxHEIGHT of the generated clips")
    p.add_argument("--seconds", type=float, default=4.0, help="most timed seconds per batch size")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--batch", type=int, default=8, help="videos per scorer call on the vidscore side")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="decode processes")
    p.add_argument("--peak-tflops", type=float, help="dense bf16 peak, when the GPU is not in the table")
    p.add_argument("--tiny", action="store_true", help="tiny models (on CPU without a GPU): checks the script")
    p.add_argument("--strict-budget", action="store_true", help="skip sections past the budget even with --tiny")
    args = p.parse_args()
    clock = Clock(args.budget_s)
    keep_going = args.tiny and not args.strict_budget  # tiny checks run every section whatever the clock says

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        sys.exit("no CUDA device: run on a GPU machine, or pass --tiny to check the script on CPU")
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in FAMILY]
    if unknown:
        sys.exit(f"unknown models {unknown}; choose from {', '.join(FAMILY)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="vidscore-bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.clip_size.split("x"))
    import transformers

    gpu = torch.cuda.get_device_name() if device == "cuda" else "no GPU"
    print(f"{gpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{time.strftime('%Y-%m-%d')}, budget {args.budget_s:.0f}s", flush=True)  # fmt: skip
    both_models = [m for m in SHARED if m in models]
    paths = checkpoints(work, {FAMILY[m] for m in models}, args.tiny, device)
    clips = corpus(work, max(args.clips, args.reference_clips), 3 * 24, height, width)  # 3 s at 24 fps
    print(f"checkpoints and clips ready after {args.budget_s - clock.left():.0f}s", flush=True)
    peak = peak_flops(device, args.peak_tflops)
    rows, skipped, failed = {}, [], {}
    extra = 1 if len(both_models) > 1 else 0  # the shared run takes one share
    for i, model in enumerate(models):
        seconds = clock.share(len(models) - i + extra)
        if seconds < 10 and not keep_going:
            skipped.append(model)
            print(f"\n{model}: skipped, {clock.left():.0f}s left", flush=True)
            continue
        try:  # one model's failure must not cost the other models' numbers on a scarce GPU
            rows[model] = measure(model, paths, clips, args, device, peak, time.perf_counter() + seconds)
        except Exception as e:  # noqa: BLE001 - reported in the summary, with the traceback above it
            traceback.print_exc()
            failed[model] = f"{type(e).__name__}: {e}"
            if device == "cuda":
                torch.cuda.empty_cache()
    both = None
    if len(both_models) > 1 and (clock.left() > 10 or keep_going):
        try:
            both = shared(both_models, rows, paths, clips, args, device, 0.6 * clock.left())
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            failed["all on 1 GPU"] = f"{type(e).__name__}: {e}"
    summary(rows, skipped, failed, both, models, both_models)
    print(f"total {args.budget_s - clock.left():.0f}s of a {args.budget_s:.0f}s budget")


if __name__ == "__main__":
    main()
