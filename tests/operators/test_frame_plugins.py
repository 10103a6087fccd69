"""A scorer's own frame recipe, defined outside operators/frames.py, runs through the real decoder: its sampler
sees the video's frame count and fps, its resizer sets the size, on every decode backend."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import gradient_frames
from vidscore.jobs.corpus import encode_video
from vidscore.operators.decode import Decoder, preloads
from vidscore.operators.frames import FrameSpec, VideoInfo
from vidscore.operators.video_file import decode_file


@dataclass(frozen=True)
class PerSecond:
    """`rate` frames per second of video, from the fps the decoder reports (what an fps-based recipe needs)."""

    rate: float

    @property
    def key(self) -> str:
        return f"{self.rate:g}persec"

    def indices(self, video: VideoInfo) -> np.ndarray:
        assert video.fps, "the decoder must give samplers the video's fps"
        step = video.fps / self.rate
        return np.arange(0, video.frames, step).astype(np.int64)


@dataclass(frozen=True)
class HalfSize:
    key: str = "half"

    def size(self, height: int, width: int) -> tuple[int, int]:
        return height // 2, width // 2

    def apply(self, frame: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frame[::2, ::2])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    frames = gradient_frames(48, 64, 96)  # 4 s at 12 fps
    path = tmp_path_factory.mktemp("plugin") / "clip.mp4"
    encode_video(path, frames, fps=12, options={"crf": "0"})
    return path, frames


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_a_scorer_defined_sampler_and_resizer_run_in_the_decoder(clip, backend: str) -> None:
    path, source = clip
    spec = FrameSpec(PerSecond(2.0), HalfSize())
    baseline = FrameSpec.uniform(48, "arange")
    meta, out = decode_file(str(path), [spec, baseline], backend, 1, 7680 * 4320, 2)
    frames = out[spec.column]
    assert spec.column == "frames__2persec_half" and meta["fps"] == pytest.approx(12.0)
    assert frames.shape == (8, 32, 48, 3)  # 4 s x 2 per second, half size
    every = out[baseline.column]  # all 48 frames, decoded by the same call
    assert np.array_equal(frames, every[0::6, ::2, ::2])


def imported(module: str) -> bool:
    return module in sys.modules


def test_the_decode_child_imports_a_recipes_modules_before_its_clock_starts() -> None:
    from vidscore.operators.scorers.qwen2vl_frames import FpsFrames, SmartResize

    qwen = FrameSpec(FpsFrames(), SmartResize())
    builtin = FrameSpec.uniform(8, "linspace")
    names = preloads([builtin, qwen])
    assert names[0] == "vidscore.operators.decode" and "vidscore.operators.scorers.qwen2vl_frames" in names
    assert "torch" in names and "torch" not in preloads([builtin])
    decoder = Decoder([qwen], timeout_s=60)
    try:  # torch is there before the first video: its import does not count against that video's timeout
        assert decoder.sandbox.run(imported, "torch") is True
    finally:
        decoder.sandbox.close()
    plain = Decoder([builtin], timeout_s=60)
    try:
        assert plain.sandbox.run(imported, "torch") is False
    finally:
        plain.sandbox.close()
