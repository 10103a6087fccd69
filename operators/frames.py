"""Frame specs: which frames a scorer wants and at what size, with the exact index and resize rules.

A scorer owns its spec; the decode operator samples every spec requested in one decode per video.
Rules are named (not callables) so a spec is plain data: hashable, printable, recorded as provenance.
"""

from dataclasses import dataclass

import numpy as np

INDEX_RULES = ("arange", "linspace", "linspace_open")
RESIZE_RULES = ("none", "idefics2", "squash", "fit")


@dataclass(frozen=True)
class FrameSpec:
    """How many frames, which indices, and what size.

    Args:
        num_frames: frames to sample (N).
        index_rule: `arange` (VideoScore example: `arange(0, n, n / N)` if n > N, else every frame),
            `linspace` (`linspace(0, n - 1, N)`, duplicates allowed), or `linspace_open`
            (MJ-VIDEO: `linspace(0, n - 1, N, endpoint=False)`, frame 0 always, the last never).
        resize: `none`; `idefics2` (size = (shortest_edge, longest_edge), PIL bilinear, aspect kept);
            `squash` (size = (height, width), PIL bicubic, aspect not kept); `fit` (size = (longest,),
            area-downscale so the longer side is at most `longest`; never upscales).
        size: the resize rule's parameters, as above.
    """

    num_frames: int
    index_rule: str
    resize: str = "none"
    size: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.index_rule not in INDEX_RULES:
            raise ValueError(f"unknown index_rule {self.index_rule!r}; use one of {INDEX_RULES}")
        if self.resize not in RESIZE_RULES:
            raise ValueError(f"unknown resize {self.resize!r}; use one of {RESIZE_RULES}")
        want = {"none": 0, "idefics2": 2, "squash": 2, "fit": 1}[self.resize]
        if len(self.size) != want:
            raise ValueError(f"resize {self.resize!r} takes {want} size values, got {self.size}")

    @property
    def key(self) -> str:
        """A short, column-safe name, e.g. `16_arange_idefics2_378x980`."""
        size = "x".join(str(s) for s in self.size)
        return "_".join(p for p in (str(self.num_frames), self.index_rule, self.resize, size) if p)

    @property
    def column(self) -> str:
        """The batch column holding this spec's frames: uint8 arrays of shape (T, H, W, 3)."""
        return f"frames__{self.key}"


def sample_indices(spec: FrameSpec, total: int) -> np.ndarray:
    """Frame indices into a video of `total` frames, by the spec's rule (int64, possibly repeating)."""
    if total < 1:
        return np.zeros(0, dtype=np.int64)
    n = spec.num_frames
    if spec.index_rule == "arange":
        if total <= n:
            return np.arange(total, dtype=np.int64)
        return np.arange(0, total, total / n).astype(np.int64)
    if spec.index_rule == "linspace":
        return np.linspace(0, total - 1, n).astype(np.int64)
    return np.linspace(0, total - 1, n, endpoint=False, dtype=int).astype(np.int64)


def target_size(spec: FrameSpec, height: int, width: int) -> tuple[int, int]:
    """Output (height, width) for a frame of the given size."""
    if spec.resize == "none":
        return height, width
    if spec.resize == "squash":
        return spec.size[0], spec.size[1]
    if spec.resize == "fit":
        longest = spec.size[0]
        scale = min(1.0, longest / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))
    # idefics2: the Idefics2ImageProcessor rule; integer truncation as in the processor.
    # Same float expressions as the processor so edge cases truncate identically.
    shortest, longest = spec.size
    aspect = width / height
    if width >= height and width > longest:
        height, width = int(longest / aspect), longest
    elif height > width and height > longest:
        height, width = longest, int(longest * aspect)
    return max(height, shortest), max(width, shortest)


def resize_frame(spec: FrameSpec, frame: np.ndarray) -> np.ndarray:
    """Resize one uint8 HxWx3 frame by the spec's rule with the reference's PIL filter."""
    h, w = frame.shape[:2]
    th, tw = target_size(spec, h, w)
    if (th, tw) == (h, w):
        return frame
    from PIL import Image

    resample = {
        "idefics2": Image.Resampling.BILINEAR,
        "squash": Image.Resampling.BICUBIC,
        "fit": Image.Resampling.BOX,
    }[spec.resize]
    return np.asarray(Image.fromarray(frame).resize((tw, th), resample=resample))
