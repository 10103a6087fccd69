"""Columns of the `technical` scorer: cheap, weight-free measures used as curation pre-filters."""

import pyarrow as pa

from vidscore.schemas.scores import provenance_fields

PREFIX = "technical"
MEASURES = ("sharpness", "motion", "brightness", "contrast")
HEADLINE = tuple(f"{PREFIX}_{m}" for m in MEASURES)  # what summaries lead with and drift tests
FIELDS = (
    [pa.field(f"{PREFIX}_{m}", pa.float32()) for m in MEASURES]
    + [pa.field(f"{PREFIX}_static", pa.bool_())]
    + provenance_fields(PREFIX)
)
