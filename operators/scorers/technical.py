"""`technical`: weight-free per-video measures that curation pipelines use as cheap pre-filters.

All measures are computed on luma (BT.601) of 16 evenly spaced frames, downscaled so the longer side is at
most 512 px (never upscaled), so numbers are comparable across resolutions:

- sharpness: mean over frames of the variance of the 4-neighbour Laplacian (grey levels squared).
  Blurry or heavily compressed clips score low; typical sharp footage is in the hundreds.
- motion: mean absolute luma change between consecutive sampled frames, as a fraction of full scale
  (0 = frozen, ~0.1+ = fast motion or cuts).
- brightness: mean luma as a fraction of full scale (0 black, 1 white).
- contrast: RMS contrast, the standard deviation of luma as a fraction of full scale.
- static: motion below `static_threshold` (default 0.002, half a grey level): a still image posing as video.
"""

from typing import Any

import numpy as np

from vidscore.operators.frames import FrameSpec
from vidscore.operators.scorers.plan import ScorerPlan, whole
from vidscore.operators.scorers.rows import finish, float_columns, scorable, stamp
from vidscore.schemas import technical as cols

VERSION = "1"
SPEC = FrameSpec.uniform(num_frames=16, index_rule="linspace", resize="fit", size=(512,))
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def measures(frames: np.ndarray) -> tuple[float, float, float, float]:
    """(sharpness, motion, brightness, contrast) of a (T, H, W, 3) uint8 clip."""
    luma = frames.astype(np.float32) @ _LUMA
    lap = -4 * luma[:, 1:-1, 1:-1] + luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1] + luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:]
    sharpness = float(lap.reshape(len(luma), -1).var(axis=1).mean()) if lap.size else 0.0
    motion = float(np.abs(np.diff(luma, axis=0)).mean() / 255.0) if len(luma) > 1 else 0.0
    return sharpness, motion, float(luma.mean() / 255.0), float(luma.std() / 255.0)


class TechnicalScorer:
    """Computes the technical measures on CPU; no weights, nothing to load.

    Args:
        static_threshold: motion below which a clip is flagged static.
    """

    name = cols.PREFIX

    def __init__(self, static_threshold: float = 0.002) -> None:
        self.static_threshold = static_threshold
        # The threshold changes `technical_static`, so it is part of the provenance a rerun compares.
        self.revision = f"{VERSION}+static_threshold={static_threshold:g}"

    @classmethod
    def plan(cls, checkpoint: str | None = None, **options: Any) -> ScorerPlan:
        if checkpoint:
            raise ValueError("the technical scorer has no checkpoint; use `-s technical`")
        unknown = set(options) - {"static_threshold", "batch_size"}
        if unknown:
            raise ValueError(f"unknown technical options {sorted(unknown)}; use static_threshold, batch_size")
        kwargs = {"static_threshold": float(options.get("static_threshold", 0.002))}
        return ScorerPlan(
            name=cls.name,
            cls=cls,
            frame_spec=SPEC,
            fields=tuple(cols.FIELDS),
            init_kwargs=kwargs,
            batch_size=whole(options, "batch_size", 16),
            checkpoint="builtin",
            revision=cls(**kwargs).revision,
            headline=cols.HEADLINE,
        )

    def __call__(self, batch: dict[str, np.ndarray], drop_frames: bool = False) -> dict[str, np.ndarray]:
        rows = len(batch["video_id"])
        names = [f"{cols.PREFIX}_{m}" for m in cols.MEASURES]
        out = float_columns(names, rows)
        static = np.full(rows, None, dtype=object)
        for i in scorable(batch, SPEC.column, cols.PREFIX):
            values = measures(np.asarray(batch[SPEC.column][i]))
            for name, value in zip(names, values):
                out[name][i] = value
            static[i] = bool(values[1] < self.static_threshold)
        batch.update(out)
        batch[f"{cols.PREFIX}_static"] = static
        stamp(batch, cols.PREFIX, "builtin", self.revision, SPEC.key, "cpu", "float32", "none")
        return finish(batch, SPEC.column, drop_frames)
