"""Row bookkeeping shared by scorers: which rows have frames, recording per-row failures."""

from functools import cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from vidscore.schemas.scores import CANARY_PREFIX, OK, SCORE_ERROR

SOFTWARE = ("vidscore", "torch", "transformers")  # what computes a score, beside the weights and the frames


@cache
def software() -> str:
    """`vidscore 0.1.0, torch 2.5.1, transformers 5.2.0`: the versions in this scoring process."""
    parts = []
    for package in SOFTWARE:
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} -")
    return ", ".join(parts)


def todo_column(scorer: str) -> str:
    """The batch column that says, per row, whether this run scores the video with `scorer` (staged by the
    pipeline from what is stale in the table; absent means every row)."""
    return f"todo__{scorer}"


def wanted(batch: dict[str, np.ndarray], scorer: str) -> np.ndarray:
    """Per row: whether `scorer` runs on it in this run."""
    flags = batch.get(todo_column(scorer))
    rows = len(batch["video_id"])
    return np.ones(rows, dtype=bool) if flags is None else np.asarray(flags, dtype=bool)


def canary(batch: dict[str, np.ndarray], rows: list[int]) -> list[bool]:
    """Per listed row: whether it is a canary row (scored alone, see `runtime.length_buckets`)."""
    return [str(batch["video_id"][i]).startswith(CANARY_PREFIX) for i in rows]


def scorable(batch: dict[str, np.ndarray], column: str, scorer: str) -> list[int]:
    """Rows `scorer` runs on that have frames in `column` (rows whose decode failed have none)."""
    todo = wanted(batch, scorer)
    return [i for i, frames in enumerate(batch[column]) if todo[i] and frames is not None and len(frames) > 0]


def _own(batch: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The object column `name`, created all-None when missing."""
    if name not in batch:
        batch[name] = np.full(len(batch["video_id"]), None, dtype=object)
    batch[name] = np.asarray(batch[name]).astype(object)
    return batch[name]


def record_failure(batch: dict[str, np.ndarray], row: int, scorer: str, message: str) -> None:
    """Mark one row as failed by `scorer` (its own status and error, and the row's), keeping other results."""
    status = batch["status"].astype(object)
    error = batch["error"].astype(object)
    if status[row] == OK:
        status[row] = SCORE_ERROR
    note = f"{scorer}: {message}"
    earlier = error[row] if isinstance(error[row], str) and error[row] else None  # Ray hands a missing one as NaN
    error[row] = f"{earlier}; {note}" if earlier else note
    batch["status"], batch["error"] = status, error
    _own(batch, f"{scorer}_status")[row] = SCORE_ERROR
    _own(batch, f"{scorer}_error")[row] = message


def stamp(
    batch: dict[str, np.ndarray],
    scorer: str,
    checkpoint: str,
    revision: str | None,
    frames: str,
    device: str,
    dtype: str,
    attention: str | None = None,
) -> None:
    """Provenance and the scorer's own status on the rows it ran on; the rest stay null, so the table keeps
    their earlier values. A row without frames carries the decode failure that left the scorer nothing."""
    todo = wanted(batch, scorer)
    status, error = _own(batch, f"{scorer}_status"), _own(batch, f"{scorer}_error")
    for name, value in (("checkpoint", checkpoint), ("revision", revision), ("frames", frames),
                        ("device", device), ("dtype", dtype), ("attention", attention),
                        ("software", software())):  # fmt: skip
        batch[f"{scorer}_{name}"] = np.where(todo, np.array([value] * len(todo), dtype=object), None)
    for i in np.flatnonzero(todo):
        if status[i] is None:
            failed = batch["status"][i] not in (OK, SCORE_ERROR)
            status[i] = batch["status"][i] if failed else OK
            error[i] = batch["error"][i] if failed else None
    status[~todo], error[~todo] = None, None


def text(value: object) -> str | None:
    """A prompt or other text cell as a string; missing (None, or the NaN Ray and pandas use for it) is None,
    never the string "nan"."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def float_columns(names: list[str], rows: int) -> dict[str, np.ndarray]:
    """NaN-filled float32 output columns; scorers fill the rows they score."""
    return {name: np.full(rows, np.nan, dtype=np.float32) for name in names}


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
