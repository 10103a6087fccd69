"""The scorer contract: a plan resolved on the driver, and a callable class that becomes an actor."""

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from vidscore.operators.frames import FrameSpec


@dataclass(frozen=True)
class ScorerPlan:
    """Everything the pipeline needs to know about a scorer before any worker starts.

    Args:
        name: the scorer's name and column prefix (`videoscore`, `technical`, ...).
        cls: the callable class the pipeline runs as an actor pool.
        frame_spec: the frames it wants; the decode operator produces `frame_spec.column`.
        fields: its output columns, declared in `schemas/<name>.py`.
        init_kwargs: flat keyword arguments for `cls(...)`; plain data, shipped to every actor.
        batch_size: videos per `__call__`.
        gpu_memory_gb: GPU memory one actor needs at `batch_size` (weights + activations);
            0 means the scorer never uses a GPU.
        checkpoint: the value the scorer writes to `<name>_checkpoint`.
        revision: the `<name>_revision` it will write, when knowable before loading (a local weights
            hash, a pinned hub commit); None otherwise. Reruns compare both to decide what to rescore.
        reads_prompt: whether its score depends on the text prompt; a changed prompt then rescores it.
        headline: its main score columns, overall first (`schemas/<name>.HEADLINE`): what the run summary and
            the report lead with and what drift tests.
    """

    name: str
    cls: type
    frame_spec: FrameSpec
    fields: tuple[pa.Field, ...]
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    gpu_memory_gb: float = 0.0
    checkpoint: str = "builtin"
    revision: str | None = None
    reads_prompt: bool = False
    headline: tuple[str, ...] = ()

    @property
    def headline_columns(self) -> tuple[str, ...]:
        """The columns summaries lead with and drift tests, overall first (`headline`, else every float field)."""
        return self.headline or tuple(f.name for f in self.fields if pa.types.is_floating(f.type))


class Scorer(Protocol):
    """A scorer: `plan` validates options on the driver; the instance loads once and scores batches.

    `__call__` receives the decode operator's columns (`video_id`, `prompt`, `status`, `error`,
    `frame_spec.column`, ...) and returns the batch with every column in `plan.fields` added. Rows whose
    frames are empty (decode failed) get nulls; a row the scorer fails on gets nulls and a
    `score_error` status via `operators.scorers.rows.record_failure`, never an exception. With `drop_frames`
    (the pipeline sets it on the last scorer that reads a frame column) the batch leaves without its frames
    (`rows.finish`), so they are not copied back into the object store only to be discarded.
    """

    @classmethod
    def plan(cls, checkpoint: str | None = None, **options: Any) -> ScorerPlan: ...

    def __call__(self, batch: dict[str, np.ndarray], drop_frames: bool = False) -> dict[str, np.ndarray]: ...


def whole(options: dict[str, Any], key: str, default: int) -> int:
    """A scorer option that must be a whole number >= 1 (`batch_size: 2.5` or `"ten"` is refused, not truncated)."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a whole number >= 1, got {value!r}")
    return value
