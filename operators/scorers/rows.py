"""Row bookkeeping shared by scorers: which rows have frames, recording per-row failures."""

import numpy as np

from schemas.scores import OK, SCORE_ERROR


def scorable(batch: dict[str, np.ndarray], column: str) -> list[int]:
    """Indices of rows that have frames in `column` (rows whose decode failed have none)."""
    return [i for i, frames in enumerate(batch[column]) if frames is not None and len(frames) > 0]


def record_failure(batch: dict[str, np.ndarray], row: int, scorer: str, message: str) -> None:
    """Mark one row as failed by `scorer`, keeping any earlier error and other scorers' results."""
    status = batch["status"].astype(object)
    error = batch["error"].astype(object)
    if status[row] == OK:
        status[row] = SCORE_ERROR
    note = f"{scorer}: {message}"
    error[row] = note if not error[row] else f"{error[row]}; {note}"
    batch["status"], batch["error"] = status, error


def float_columns(names: list[str], rows: int) -> dict[str, np.ndarray]:
    """NaN-filled float32 output columns; scorers fill the rows they score."""
    return {name: np.full(rows, np.nan, dtype=np.float32) for name in names}


def constant_column(value: str | None, rows: int) -> np.ndarray:
    """A string column with one value (used for provenance)."""
    return np.array([value] * rows, dtype=object)


def arrow_safe(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return all-NaN float columns as all-None objects before a batch leaves an operator.

    Ray Data hands an all-null column to the next stage as float NaN; passed on as float, it cannot merge
    with a block where the same column holds strings. An all-None column is null-typed, which merges with
    any type (the final conform casts it to the schema).
    """
    for name, values in batch.items():
        if isinstance(values, np.ndarray) and values.dtype.kind == "f" and values.ndim == 1 and np.isnan(values).all():
            batch[name] = np.full(len(values), None, dtype=object)
    return batch


def finish(batch: dict[str, np.ndarray], frames: str, drop_frames: bool) -> dict[str, np.ndarray]:
    """The batch as it leaves a scorer: without its `frames` column when no later stage reads it (Ray would
    copy every frame back into the object store, ~1 ms per MB, only for the writer to drop it), and
    `arrow_safe`."""
    if drop_frames:
        batch.pop(frames, None)
    return arrow_safe(batch)
