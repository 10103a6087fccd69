"""Conform: the last transform before writing. Drops frames and casts a batch to the score schema."""

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from vidscore.operators.urls import redact


def _column(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    if values.ndim > 1:  # Ray hands fixed-size lists (embeddings) over as an (n, k, ...) tensor
        return pa.array(list(values), type=type_, from_pandas=True)
    if pa.types.is_integer(type_) and values.dtype.kind == "f":
        # Metadata travels as float with NaN for "unknown"; NaN becomes null, whole numbers stay exact.
        return pa.array(values, from_pandas=True).cast(type_)
    if values.dtype.kind in "fiubM":
        return pa.array(values, from_pandas=True).cast(type_)
    return pa.array(list(values), type=type_, from_pandas=True)


def conform(batch: dict[str, np.ndarray], schema: pa.Schema, run_id: str, scorers: list[str]) -> pa.Table:
    """The batch as an Arrow table with exactly `schema`'s columns; columns it lacks become nulls.

    Stamps the run on every row and on each scorer's values it computed (`<scorer>_run_id`, where the scorer
    ran), and stores uris without credentials or presigned query strings.
    """
    rows = len(batch["video_id"])
    for name in scorers:
        ran = batch.get(f"{name}_checkpoint")
        if ran is not None:
            batch[f"{name}_run_id"] = np.array([run_id if isinstance(v, str) else None for v in ran], dtype=object)
    batch = {
        **batch,
        "uri": np.array([redact(str(u)) for u in batch["uri"]], dtype=object),
        "run_id": np.array([run_id] * rows, dtype=object),
        "scored_at": np.array([datetime.now(timezone.utc).replace(tzinfo=None)] * rows, dtype="datetime64[us]"),
    }
    arrays = [_column(np.asarray(batch[f.name]), f.type) if f.name in batch else pa.nulls(rows, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
