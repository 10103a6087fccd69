"""Staging: stream the input into Ray's object store chunk by chunk, leaving out what the table already holds.

The driver holds one input chunk at a time (plus what resume needs: per scored video, each requested scorer's
last attempt and a manifest hash);
the rows to score wait in the object store, which spills to disk, so the input's size is bounded by the
cluster's storage rather than the driver's memory.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from vidscore.operators.read import Chunk, InputError
from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.pipeline.resume import Previous, decide, with_todo
from vidscore.schemas.scores import CANARY_PREFIX


@dataclass
class Staged:
    """What a run has to do: the object refs of the rows to score, and the counts for the summary."""

    refs: list[Any] = field(default_factory=list)
    videos: int = 0
    skipped: int = 0
    schema: pa.Schema | None = None  # every chunk's columns, types unified
    metadata_only: int = 0  # rows sent only to record changed manifest values
    scorers: dict[str, dict] = field(default_factory=dict)  # name -> {"scored", "skipped", "reasons"}

    @property
    def todo(self) -> int:
        return self.videos - self.skipped


def stage(
    chunks: Iterable[Chunk],
    previous: Previous,
    plans: list[ScorerPlan],
    endpoint_url: str | None,
    put: Callable[[pa.Table], Any],
) -> Staged:
    """Consume every chunk (validation errors surface here, before any work), `put` the rows to score."""
    staged = Staged(scorers={p.name: {"scored": 0, "skipped": 0, "reasons": {}} for p in plans})
    for chunk in chunks:
        reserved = pc.starts_with(chunk.table.column("video_id"), CANARY_PREFIX)
        if pc.any(reserved).as_py():
            first = chunk.table.column("video_id").filter(reserved)[0].as_py()
            raise InputError(f"video_id {first!r} uses the canary's reserved prefix {CANARY_PREFIX!r}; rename it")
        decision = decide(chunk.table, chunk.keys, previous, plans, endpoint_url)
        send = decision.send
        staged.videos += len(chunk.table)
        staged.skipped += int((~send).sum())
        staged.metadata_only += int(decision.metadata.sum())
        for name, flags in decision.todo.items():
            counts = staged.scorers[name]
            counts["scored"] += int(flags.sum())
            counts["skipped"] += int((~flags).sum())
            for reason, rows in decision.reasons[name].items():
                counts["reasons"][reason] = counts["reasons"].get(reason, 0) + rows
        try:
            # Null-typed columns (all values missing in one chunk) widen to the other chunks' type; int meets float.
            staged.schema = pa.unify_schemas(
                [staged.schema or chunk.table.schema, chunk.table.schema], promote_options="permissive"
            )
        except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
            raise InputError(
                f"manifest columns change type between parts of the input ({exc}); give each column one type"
            ) from exc
        if send.any():
            staged.refs.append(put(with_todo(chunk.table, decision, send)))
    return staged
