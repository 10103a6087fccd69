"""Decode throughput per core: the decode operator vs the decode floor and the reference recipe.

Generates 5 s 720p H.264 clips (smooth moving content, x264 defaults, like typical generator exports) and
times, single-threaded and interleaved over several rounds (best round kept):
  floor       PyAV decodes every frame, no colour conversion (the cost of touching every frame)
  reference   the reference recipe: PyAV decodes every frame to RGB, then the 16 sampled ones are picked
  vidscore    operators.decode.Decoder, 16 full-size frames by the VideoScore index rule (backend pyav /
              decord), decoding in its killable child process (the real path: frames come back through the
              sandbox's reused shared block) and, for comparison, in-process
  videoscore  the same with VideoScore's real spec (PIL resize to 378 px in the child), against the reference
              recipe plus the same resize ("reference videoscore"); most of its time is that resize
  vidscore+   one decode serving VideoScore (16, resized), MJ-VIDEO (8, 448 squash) and technical specs
Usage: python bench/decode.py [--clips 6] [--rounds 3]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidscore.jobs.corpus import encode_video  # noqa: E402
from vidscore.operators.decode import Decoder  # noqa: E402
from vidscore.operators.frames import FrameSpec, resize_frame, sample_indices  # noqa: E402
from vidscore.operators.scorers.technical import SPEC as TECHNICAL  # noqa: E402

RAW16 = FrameSpec.uniform(16, "arange")
VIDEOSCORE = FrameSpec.uniform(16, "arange", "idefics2", (378, 980))
MJVIDEO = FrameSpec.uniform(8, "linspace_open", "squash", (448, 448))


def smooth_clip(seed: int, frames: int = 120, height: int = 720, width: int = 1280) -> np.ndarray:
    """Low-frequency colour field panning, with a moving disc: compresses like generated video."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 40 + 2, width // 40 + 4, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((coarse.shape[1] * 40, coarse.shape[0] * 40), Image.BICUBIC))
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for t in range(frames):
        frame = field[:height, (3 * t) % 80 : (3 * t) % 80 + width].copy()
        cy, cx = height // 2 + int(100 * np.sin(t / 10)), (width // 4 + 5 * t) % width
        frame[(y - cy) ** 2 + (x - cx) ** 2 < 60**2] = (240, 40, 40)
        out.append(frame)
    return np.stack(out)


def floor(path: Path) -> None:
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_count = 1
        for _ in c.decode(stream):
            pass


def reference(path: Path, spec: FrameSpec = RAW16) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_count = 1
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    return np.stack([resize_frame(spec, frames[i]) for i in sample_indices(spec, len(frames))])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vidscore-bench-decode-"))
    paths = [encode_video(work / f"clip{i}.mp4", smooth_clip(i), fps=24) for i in range(args.clips)]
    methods = {
        "floor": floor,
        "reference": reference,
        "vidscore pyav": Decoder([RAW16], backend="pyav").decode,
        "vidscore pyav in-process": Decoder([RAW16], backend="pyav", timeout_s=None).decode,
        "vidscore decord": Decoder([RAW16], backend="decord").decode,
        "reference videoscore": lambda path: reference(path, VIDEOSCORE),
        "videoscore": Decoder([VIDEOSCORE]).decode,
        "videoscore in-process": Decoder([VIDEOSCORE], timeout_s=None).decode,
        "vidscore+ all specs": Decoder([VIDEOSCORE, MJVIDEO, TECHNICAL]).decode,
    }
    # Same frames as the reference recipe, or the comparison is meaningless.
    for spec in (RAW16, VIDEOSCORE):
        assert np.array_equal(Decoder([spec]).decode(str(paths[0]), [spec])[1][spec.column], reference(paths[0], spec))
    best = {name: float("inf") for name in methods}
    for _ in range(args.rounds):
        for name, fn in methods.items():
            start = time.perf_counter()
            for path in paths:
                fn(str(path)) if name.startswith("vid") else fn(path)
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {name: len(paths) / t for name, t in best.items()}
    print(f"{len(paths)} clips, 5 s 720p H.264, one thread, best of {args.rounds} interleaved rounds")
    print(f"{'method':<26} {'videos/s/core':>14} {'vs floor':>9} {'vs reference':>13}  (reference of the same spec)")
    for name, r in rate.items():
        ref = rate["reference videoscore" if "videoscore" in name else "reference"]
        print(f"{name:<26} {r:>14.2f} {r / rate['floor']:>8.2f}x {r / ref:>12.2f}x")
    print(f"ratio_vs_floor: {rate['vidscore pyav'] / rate['floor']:.2f}")
    print(f"ratio_vs_reference: {rate['vidscore pyav'] / rate['reference']:.2f}")


if __name__ == "__main__":
    main()
