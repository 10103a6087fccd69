"""What a run has to do, per (video, scorer), read from the table through its one reader (`pipeline.table`).

A requested scorer runs on a video when its latest value there is missing or stale:
- `new`: the scorer never ran on the video;
- `changed_content`: the video's content key (size + ETag / mtime) differs from the one it scored;
- `changed_config`: its checkpoint, revision (when known before loading) or frame spec differ;
- `changed_prompt`: the prompt differs from the one it scored, for scorers whose score reads the prompt;
- `retry`: its last attempt failed in a retryable way (`fetch_error`, `decode_timeout`, `score_error`).
A video none of whose scorers is stale but whose manifest values (uri, prompt, generator, pass-through columns)
changed gets a metadata-only row: nothing is fetched, decoded or scored. The table is its own checkpoint: only
committed files count (the sink commits atomically), so a crashed run leaves nothing half-counted.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.operators.scorers.rows import todo_column
from vidscore.operators.storage import content_key, filesystem, with_retries
from vidscore.operators.urls import redact
from vidscore.pipeline.table import (
    DECODE_COLUMNS,
    SYSTEM_COLUMNS,
    column_types,
    file_schemas,
    group_of,
    last_run,
    read_latest,
    scorer_names,
)
from vidscore.schemas.scores import RETRYABLE

STAT_THREADS = 32
REASONS = ("new", "changed_content", "changed_config", "changed_prompt", "retry")
_KEY, _PROMPT, _MANIFEST = "__key", "__prompt", "__manifest"


@dataclass
class Previous:
    """The table's latest state, as far as the staleness rules need it (one row per video)."""

    rows: pl.DataFrame
    manifest: dict[str, pl.DataType] = field(default_factory=dict)  # manifest columns and their table types
    last_run: str | None = None  # the latest run id the table's files name
    unreadable: list[str] = field(default_factory=list)  # table files left out: not readable Parquet


def manifest_hash(columns: dict[str, pl.DataType]) -> pl.Expr:
    """One number per row for the manifest values, each cast to the table's type so both sides agree."""
    return pl.struct([pl.col(c).cast(t, strict=False) for c, t in sorted(columns.items())]).hash(seed=0)


def _columns(plans: list[ScorerPlan]) -> dict[str, pl.DataType]:
    """What `Previous.rows` holds per scorer."""
    out: dict[str, pl.DataType] = {}
    for p in plans:
        out.update({f"{p.name}_{k}": pl.String for k in ("status", "checkpoint", "revision", "frames")})
        out.update({f"{p.name}{_KEY}": pl.String, f"{p.name}{_PROMPT}": pl.UInt64})
    return out


def load_previous(output: str, plans: list[ScorerPlan], endpoint_url: str | None = None) -> Previous:
    """Per video: each requested scorer's last attempt (status, provenance, the content key and prompt it saw)
    and a hash of the latest manifest values."""
    unreadable: list[str] = []
    schemas = file_schemas(output, endpoint_url, unreadable)
    wanted = {"video_id": pl.String, **_columns(plans), _MANIFEST: pl.UInt64}
    if not schemas:
        return Previous(pl.DataFrame(schema=wanted), unreadable=unreadable)
    scorers = scorer_names()
    types = column_types(schemas)
    manifest = {
        c: t for c, t in types.items() if c not in (*SYSTEM_COLUMNS, *DECODE_COLUMNS) and not group_of(c, scorers)
    }
    columns = list(manifest) + [c for c in _columns(plans) if c in types and not c.endswith("_status")]
    carry = {
        p.name: {
            # Tables written before per-scorer statuses: the row's status was the scorer's.
            f"{p.name}_status": pl.coalesce(pl.col(f"{p.name}_status"), pl.col("status")),
            f"{p.name}{_KEY}": pl.col("content_key"),
            f"{p.name}{_PROMPT}": pl.col("prompt").hash(seed=0),
        }
        for p in plans
    }
    rows = read_latest(output, columns, endpoint_url, carry=carry, schemas=schemas)
    rows = rows.with_columns(manifest_hash(manifest).alias(_MANIFEST))
    # Columns no file has yet (a scorer never run on this table) are null: every video is `new` for it.
    rows = rows.with_columns(pl.lit(None, t).alias(c) for c, t in wanted.items() if c not in rows.columns)
    rows = rows.select(pl.col(c).cast(t) for c, t in wanted.items())
    return Previous(rows, manifest, last_run(schemas), unreadable)


def current_keys(uris: list[str], endpoint_url: str | None = None) -> list[str | None]:
    """Content keys of the inputs now (None when the object cannot be stat'ed)."""

    def stat(uri: str) -> str | None:
        try:
            fs, path = filesystem(uri, endpoint_url)
            return content_key(with_retries(fs.info, path))
        except Exception:  # noqa: BLE001 - unknown content: keep the existing values
            return None

    with ThreadPoolExecutor(STAT_THREADS) as pool:
        return list(pool.map(stat, uris))


@dataclass
class Decision:
    """For one input chunk: which scorers run on which rows, and why."""

    todo: dict[str, np.ndarray]  # scorer -> per-row bool
    metadata: np.ndarray  # per row: a metadata-only row is written
    reasons: dict[str, dict[str, int]]  # scorer -> reason -> rows

    @property
    def send(self) -> np.ndarray:
        """Rows that enter the pipeline (something to score or a metadata change to record)."""
        return np.logical_or.reduce([*self.todo.values(), self.metadata])


def decide(
    todo: pa.Table,
    listed: list[str | None] | None,
    previous: Previous,
    plans: list[ScorerPlan],
    endpoint_url: str | None,
) -> Decision:
    """The staleness rules (module docstring) for one input chunk. `listed` holds the content keys a listing
    returned (no request per video); without it, rows that some scorer would otherwise keep are stat'ed."""
    n = len(todo)
    now = pl.from_arrow(todo)
    now = now.with_columns(
        pl.col("uri").map_elements(redact, return_dtype=pl.String),  # stored redacted
        pl.col(pl.Float32, pl.Float64).fill_nan(None),  # stored as null
    )
    manifest = {**{c: now.schema[c] for c in now.columns if c != "video_id"}, **previous.manifest}
    now = now.with_columns(pl.lit(None).alias(c) for c in manifest if c not in now.columns)
    now = now.select(
        "video_id",
        pl.col("prompt").cast(pl.String).hash(seed=0).alias(_PROMPT),
        manifest_hash(manifest).alias("__manifest_now"),
    )
    joined = now.with_row_index("__row").join(previous.rows, on="video_id", how="left").sort("__row")

    def rule(expr: pl.Expr) -> np.ndarray:
        return joined.select(expr.fill_null(False)).to_series().to_numpy()

    rules = {}
    for p in plans:
        col = lambda k, name=p.name: pl.col(f"{name}_{k}")  # noqa: E731
        rules[p.name] = {
            "new": rule(col("checkpoint").is_null()),
            "changed_config": rule(
                col("checkpoint").ne_missing(p.checkpoint)
                | col("frames").ne_missing(p.frame_spec.key)
                | (pl.lit(p.revision is not None) & col("revision").ne_missing(p.revision))
            ),
            "changed_prompt": rule(pl.lit(p.reads_prompt) & pl.col(f"{p.name}{_PROMPT}").ne_missing(pl.col(_PROMPT))),
            "retry": rule(col("status").is_in(list(RETRYABLE))),
        }
    # Content keys: only rows some scorer would keep need one (a listing gives it free; else one stat each).
    kept = np.logical_or.reduce([~np.logical_or.reduce(list(r.values())) for r in rules.values()])
    keys: list[str | None] = list(listed) if listed is not None else [None] * n
    if listed is None and kept.any():
        index = np.flatnonzero(kept)
        for i, key in zip(index, current_keys(todo.column("uri").take(pa.array(index)).to_pylist(), endpoint_url)):
            keys[i] = key
    decision = Decision({}, np.zeros(n, dtype=bool), {})
    for p in plans:
        seen = joined.get_column(f"{p.name}{_KEY}").to_list()
        # Unknown content (no key now or then) keeps the value: only a seen change rescores it.
        rules[p.name]["changed_content"] = np.array(
            [a is not None and b is not None and a != b for a, b in zip(keys, seen)], dtype=bool
        )
        run, counts = np.zeros(n, dtype=bool), {}
        for reason in REASONS:  # each row counts under its first reason
            hit = rules[p.name][reason] & ~run
            if hit.any():
                counts[reason] = int(hit.sum())
            run |= hit
        decision.todo[p.name], decision.reasons[p.name] = run, counts
    known = rule(pl.col(_MANIFEST).is_not_null())
    changed = rule(pl.col(_MANIFEST) != pl.col("__manifest_now"))
    decision.metadata = known & changed & ~np.logical_or.reduce(list(decision.todo.values()))
    return decision


def with_todo(table: pa.Table, decision: Decision, rows: np.ndarray) -> pa.Table:
    """The chunk's rows selected by `rows`, with one `todo__<scorer>` column each."""
    out = table.filter(pa.array(rows))
    for name, flags in decision.todo.items():
        out = out.append_column(todo_column(name), pa.array(flags[rows], pa.bool_()))
    return out
