"""Columns of the `videoscore` scorer: the five raw regression outputs of a VideoScore checkpoint."""

import pyarrow as pa

from vidscore.schemas.scores import provenance_fields

PREFIX = "videoscore"
# The regression head's output order; the checkpoints were trained on human labels 1-4 for each aspect.
ASPECTS = (
    "visual_quality",
    "temporal_consistency",
    "dynamic_degree",
    "text_to_video_alignment",
    "factual_consistency",
)
FIELDS = [pa.field(f"{PREFIX}_{a}", pa.float32()) for a in ASPECTS] + provenance_fields(PREFIX)
# What summaries lead with and drift tests: VideoScore has no overall output, so its five aspects.
HEADLINE = tuple(f"{PREFIX}_{a}" for a in ASPECTS)
