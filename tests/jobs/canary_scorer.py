"""A test scorer whose numeric precision is an option: the same weights-free score computed in float32 or in
float16, so a test can plant the kind of environment change a canary must catch (a dtype change) while the
checkpoint, revision and frame recipe stay the same."""

from typing import Any

import numpy as np
import pyarrow as pa

from vidscore.operators.frames import FrameSpec
from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.operators.scorers.rows import finish, float_columns, scorable, stamp
from vidscore.schemas.scores import provenance_fields

NAME = "planted"
SPEC = FrameSpec.uniform(num_frames=4, index_rule="linspace", resize="fit", size=(64,))
FIELDS = (pa.field(f"{NAME}_score", pa.float32()), *provenance_fields(NAME))


class PlantedScorer:
    name = NAME

    @classmethod
    def plan(cls, checkpoint: str | None = None, **options: Any) -> ScorerPlan:
        dtype = str(options.pop("dtype", "float32"))
        return ScorerPlan(NAME, cls, SPEC, FIELDS, {"dtype": dtype}, batch_size=4, checkpoint="builtin", revision="1")

    def __init__(self, dtype: str = "float32") -> None:
        self.dtype = np.dtype(dtype)

    def __call__(self, batch: dict[str, np.ndarray], drop_frames: bool = False) -> dict[str, np.ndarray]:
        out = float_columns([f"{NAME}_score"], len(batch["video_id"]))
        for i in scorable(batch, SPEC.column, NAME):
            # Ten times the mean pixel (~1000): float16 keeps steps of 0.5-1 there, float32 of ~1e-4.
            value = np.asarray(np.asarray(batch[SPEC.column][i]).mean() * 10, dtype=self.dtype)
            out[f"{NAME}_score"][i] = float(value)
        batch.update(out)
        stamp(batch, NAME, "builtin", "1", SPEC.key, "cpu", self.dtype.name, "none")
        return finish(batch, SPEC.column, drop_frames)
