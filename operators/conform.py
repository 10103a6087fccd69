"""Conform: the last transform before writing. Drops frames and casts a batch to the score schema."""

import numpy as np
import pyarrow as pa


def _column(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    if pa.types.is_integer(type_) and values.dtype.kind == "f":
        # Metadata travels as float with NaN for "unknown"; NaN becomes null, whole numbers stay exact.
        return pa.array(values, from_pandas=True).cast(type_)
    if values.dtype.kind in "fiub":
        return pa.array(values, from_pandas=True).cast(type_)
    return pa.array(list(values), type=type_, from_pandas=True)


def conform(batch: dict[str, np.ndarray], schema: pa.Schema) -> pa.Table:
    """The batch as an Arrow table with exactly `schema`'s columns; columns it lacks become nulls."""
    rows = len(batch["video_id"])
    arrays = [_column(np.asarray(batch[f.name]), f.type) if f.name in batch else pa.nulls(rows, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
