"""Qwen2-VL's video frame recipe (`qwen_vl_utils.vision_process`, as VideoAlign's VideoReward uses it), as a
sampler and a resizer the decoder applies (`operators/frames.py`).

- Frames by duration x fps: `n = frames / video_fps * fps`, clamped to [min_frames, even(min(max_frames,
  frames))], rounded to an even count with Python's round (half to even: 2.5 s at 2 fps gives 4 frames, not 6);
  indices `torch.linspace(0, frames - 1, n).round()` in float32 (torch's own linspace and half-to-even rounding).
- Size by `smart_resize`: each side a multiple of 28, the area brought within [min_pixels, max_pixels] keeping
  the aspect ratio; the frames are resized with a bicubic, antialiased torch resize, clamped and rounded back to
  uint8 (what torchvision's `resize` does to a uint8 tensor).
"""

import math
from dataclasses import dataclass

import numpy as np

from vidscore.operators.frames import VideoInfo

IMPORTS = ("torch",)  # imported by the decode child up front (operators/decode.py preloads)
FACTOR = 28
FRAME_FACTOR = 2
MAX_RATIO = 200


@dataclass(frozen=True)
class FpsFrames:
    """`fps` frames per second of video, at least `min_frames`, at most `max_frames`, an even count."""

    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 768

    @property
    def key(self) -> str:
        return f"fps{self.fps:g}_{self.min_frames}to{self.max_frames}"

    def count(self, video: VideoInfo) -> int:
        """How many frames the recipe takes from `video` (ValueError when it cannot: no fps, < 2 frames)."""
        if not video.fps or video.fps <= 0:
            raise ValueError("the video's frame rate is unknown; fps-based sampling needs it")
        total = video.frames
        low = math.ceil(self.min_frames / FRAME_FACTOR) * FRAME_FACTOR
        high = math.floor(min(self.max_frames, total) / FRAME_FACTOR) * FRAME_FACTOR
        n = min(max(total / video.fps * self.fps, low), high)
        n = round(n / FRAME_FACTOR) * FRAME_FACTOR
        if not FRAME_FACTOR <= n <= total:
            raise ValueError(f"fps sampling needs {FRAME_FACTOR} to {total} frames, got {n}")
        return n

    def indices(self, video: VideoInfo) -> np.ndarray:
        import torch

        n = self.count(video)
        return torch.linspace(0, video.frames - 1, n).round().long().numpy()


def smart_resize(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = FACTOR) -> tuple[int, int]:
    """Qwen2-VL's output size: sides multiples of `factor`, area within [min_pixels, max_pixels], aspect kept."""
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} is over {MAX_RATIO}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


@dataclass(frozen=True)
class SmartResize:
    """`smart_resize` to multiples of 28 within the pixel budget, bicubic with antialias, back to uint8."""

    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 448 * 448

    @property
    def key(self) -> str:
        return f"smart28_{self.min_pixels}to{self.max_pixels}"

    def size(self, height: int, width: int) -> tuple[int, int]:
        return smart_resize(height, width, self.min_pixels, self.max_pixels)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F  # noqa: N812

        h, w = self.size(*frame.shape[:2])
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
        y = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        return y.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()
