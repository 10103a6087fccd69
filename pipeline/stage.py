"""Staging: stream the input into Ray's object store chunk by chunk, leaving out what the table already holds.

The driver holds one input chunk at a time (plus what resume needs: the latest row's keys per scored video);
the rows to score wait in the object store, which spills to disk, so the input's size is bounded by the
cluster's storage rather than the driver's memory.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa

from operators.read import Chunk, InputError
from operators.scorers.plan import ScorerPlan
from pipeline.resume import still_valid


@dataclass
class Staged:
    """What a run has to do: the object refs of the rows to score, and the counts for the summary."""

    refs: list[Any] = field(default_factory=list)
    videos: int = 0
    skipped: int = 0
    schema: pa.Schema | None = None  # every chunk's columns, types unified

    @property
    def todo(self) -> int:
        return self.videos - self.skipped


def stage(
    chunks: Iterable[Chunk],
    previous: pl.DataFrame,
    plans: list[ScorerPlan],
    endpoint_url: str | None,
    put: Callable[[pa.Table], Any],
) -> Staged:
    """Consume every chunk (validation errors surface here, before any work), `put` the rows to score."""
    staged = Staged()
    for chunk in chunks:
        keep = still_valid(chunk.table, chunk.keys, previous, plans, endpoint_url)
        staged.videos += len(chunk.table)
        staged.skipped += int(keep.sum())
        try:
            # Null-typed columns (all values missing in one chunk) widen to the other chunks' type; int meets float.
            staged.schema = pa.unify_schemas(
                [staged.schema or chunk.table.schema, chunk.table.schema], promote_options="permissive"
            )
        except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
            raise InputError(
                f"manifest columns change type between parts of the input ({exc}); give each column one type"
            ) from exc
        if not keep.all():
            staged.refs.append(put(chunk.table.filter(pa.array(~keep)) if keep.any() else chunk.table))
    return staged
