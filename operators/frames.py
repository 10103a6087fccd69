"""Frame specs: which frames a scorer wants and at what size, as data the decoder applies.

A scorer owns its spec; the decode operator samples every spec requested in one decode per video. A spec is a
sampler (which frame indices, from the video's frame count and fps) and a resizer (what size, with which
filter). Both are frozen dataclasses: hashable, picklable, and named by a `key` that is recorded as provenance
(`<scorer>_frames`) and names the batch column. The built-in rules below cover the seed models; a scorer with its
own recipe defines its sampler and resizer classes in its own file (any class with `key` and `indices`, or `key`,
`size` and `apply`), and nothing here or in the decoder changes.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

INDEX_RULES = ("arange", "linspace", "linspace_open")
RESIZE_RULES = ("none", "idefics2", "squash", "fit")


@dataclass(frozen=True)
class VideoInfo:
    """What a sampler may look at: the decoded frame count and the stream's average fps (None if unknown)."""

    frames: int
    fps: float | None = None


class Sampler(Protocol):
    """Which frames: `indices` into the video's frames (int64, possibly repeating)."""

    @property
    def key(self) -> str: ...

    def indices(self, video: VideoInfo) -> np.ndarray: ...


class Resizer(Protocol):
    """What size: `size` gives the output (height, width) of a frame, `apply` resizes one uint8 HxWx3 frame."""

    @property
    def key(self) -> str: ...

    def size(self, height: int, width: int) -> tuple[int, int]: ...

    def apply(self, frame: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Uniform:
    """N frames by a fixed rule: `arange` (VideoScore example: `arange(0, n, n / N)` if n > N, else every frame),
    `linspace` (`linspace(0, n - 1, N)`, duplicates allowed), or `linspace_open` (MJ-VIDEO:
    `linspace(0, n - 1, N, endpoint=False)`, frame 0 always, the last never)."""

    num_frames: int
    rule: str

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.rule not in INDEX_RULES:
            raise ValueError(f"unknown index_rule {self.rule!r}; use one of {INDEX_RULES}")

    @property
    def key(self) -> str:
        return f"{self.num_frames}_{self.rule}"

    def indices(self, video: VideoInfo) -> np.ndarray:
        total, n = video.frames, self.num_frames
        if total < 1:
            return np.zeros(0, dtype=np.int64)
        if self.rule == "arange":
            if total <= n:
                return np.arange(total, dtype=np.int64)
            return np.arange(0, total, total / n).astype(np.int64)
        if self.rule == "linspace":
            return np.linspace(0, total - 1, n).astype(np.int64)
        return np.linspace(0, total - 1, n, endpoint=False, dtype=int).astype(np.int64)


@dataclass(frozen=True)
class PilResize:
    """A PIL resize: `none`; `idefics2` (size = (shortest_edge, longest_edge), bilinear, aspect kept, the
    Idefics2ImageProcessor rule); `squash` (size = (height, width), bicubic, aspect not kept); `fit`
    (size = (longest,), box filter so the longer side is at most `longest`; never upscales)."""

    rule: str = "none"
    size_args: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.rule not in RESIZE_RULES:
            raise ValueError(f"unknown resize {self.rule!r}; use one of {RESIZE_RULES}")
        want = {"none": 0, "idefics2": 2, "squash": 2, "fit": 1}[self.rule]
        if len(self.size_args) != want:
            raise ValueError(f"resize {self.rule!r} takes {want} size values, got {self.size_args}")

    @property
    def key(self) -> str:
        return "_".join(p for p in (self.rule, "x".join(str(s) for s in self.size_args)) if p)

    def size(self, height: int, width: int) -> tuple[int, int]:
        if self.rule == "none":
            return height, width
        if self.rule == "squash":
            return self.size_args[0], self.size_args[1]
        if self.rule == "fit":
            scale = min(1.0, self.size_args[0] / max(height, width))
            return max(1, round(height * scale)), max(1, round(width * scale))
        # idefics2: the same float expressions as the processor, so edge cases truncate identically.
        shortest, longest = self.size_args
        aspect = width / height
        if width >= height and width > longest:
            height, width = int(longest / aspect), longest
        elif height > width and height > longest:
            height, width = longest, int(longest * aspect)
        return max(height, shortest), max(width, shortest)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        th, tw = self.size(h, w)
        if (th, tw) == (h, w):
            return frame
        from PIL import Image

        resample = {
            "idefics2": Image.Resampling.BILINEAR,
            "squash": Image.Resampling.BICUBIC,
            "fit": Image.Resampling.BOX,
        }
        return np.asarray(Image.fromarray(frame).resize((tw, th), resample=resample[self.rule]))


@dataclass(frozen=True)
class FrameSpec:
    """A scorer's frames: its sampler and its resizer (`FrameSpec.uniform(...)` for the built-in rules)."""

    sampler: Sampler
    resizer: Resizer = PilResize()

    @classmethod
    def uniform(cls, num_frames: int, index_rule: str, resize: str = "none", size: tuple[int, ...] = ()) -> "FrameSpec":
        """N frames by a built-in index rule, resized by a built-in PIL rule (see Uniform and PilResize)."""
        return cls(Uniform(num_frames, index_rule), PilResize(resize, tuple(size)))

    @property
    def key(self) -> str:
        """A short, column-safe name, e.g. `16_arange_idefics2_378x980`."""
        return f"{self.sampler.key}_{self.resizer.key}"

    @property
    def column(self) -> str:
        """The batch column holding this spec's frames: uint8 arrays of shape (T, H, W, 3)."""
        return f"frames__{self.key}"


def sample_indices(spec: FrameSpec, video: VideoInfo | int) -> np.ndarray:
    """Frame indices into a video (a VideoInfo, or a frame count when fps does not matter)."""
    return spec.sampler.indices(video if isinstance(video, VideoInfo) else VideoInfo(int(video)))


def target_size(spec: FrameSpec, height: int, width: int) -> tuple[int, int]:
    """Output (height, width) for a frame of the given size."""
    return spec.resizer.size(height, width)


def resize_frame(spec: FrameSpec, frame: np.ndarray) -> np.ndarray:
    """Resize one uint8 HxWx3 frame by the spec's resizer."""
    return spec.resizer.apply(frame)
