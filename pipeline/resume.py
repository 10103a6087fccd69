"""What a run can skip: videos whose latest row in the table is still valid.

The score table is its own checkpoint: only committed files count (the sink commits atomically), so a
crashed run leaves nothing half-counted. A video is rescored when it is new, when its latest row failed in
a retryable way, when its content changed (size + ETag / mtime), or when any requested scorer's
configuration (checkpoint, revision, frame spec) differs from the one that produced the row.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from operators.scorers.plan import ScorerPlan
from pipeline.output import table_files
from pipeline.storage import content_key, filesystem, with_retries
from schemas.scores import RETRYABLE

STAT_THREADS = 32


def latest_rows(output: str, plans: list[ScorerPlan], endpoint_url: str | None = None) -> pl.DataFrame:
    """The latest row per video_id, with only the columns the skip decision needs."""
    wanted = ["video_id", "status", "content_key", "scored_at"]
    wanted += [f"{p.name}_{k}" for p in plans for k in ("checkpoint", "revision", "frames")]
    fs, _ = filesystem(output, endpoint_url)
    frames = []
    for path in table_files(output, endpoint_url):
        with fs.open(path, "rb") as f:
            parquet = pq.ParquetFile(f)
            present = [c for c in wanted if c in parquet.schema_arrow.names]
            table = parquet.read(columns=present)
        for column in wanted:
            if column not in table.column_names:  # written by a run with other scorers
                table = table.append_column(column, pa.nulls(len(table), pa.string()))
        frames.append(pl.from_arrow(table.select(wanted).cast(pa.schema([(c, pa.string()) for c in wanted]))))
    if not frames:
        return pl.DataFrame(schema={c: pl.String for c in wanted})
    return pl.concat(frames).sort("scored_at").unique("video_id", keep="last")


def current_keys(uris: list[str], endpoint_url: str | None = None) -> list[str | None]:
    """Content keys of the inputs now (None when the object cannot be stat'ed)."""

    def stat(uri: str) -> str | None:
        try:
            fs, path = filesystem(uri, endpoint_url)
            return content_key(with_retries(fs.info, path))
        except Exception:  # noqa: BLE001 - unknown content: keep the existing row
            return None

    with ThreadPoolExecutor(STAT_THREADS) as pool:
        return list(pool.map(stat, uris))


def still_valid(
    todo: pa.Table,
    listed: list[str | None] | None,
    previous: pl.DataFrame,
    plans: list[ScorerPlan],
    endpoint_url: str | None,
) -> np.ndarray:
    """Per input row: True when its latest row can be kept as is.

    `listed` holds the content keys a listing already returned (no request per video); without it,
    the candidates are stat'ed.
    """
    keep = np.zeros(len(todo), dtype=bool)
    if previous.is_empty() or not len(todo):
        return keep
    rows = pl.from_arrow(todo.select(["video_id"])).with_row_index("row")
    same = ~pl.col("status").is_in(list(RETRYABLE))
    for p in plans:
        same &= pl.col(f"{p.name}_checkpoint").eq_missing(p.checkpoint)
        same &= pl.col(f"{p.name}_frames").eq_missing(p.frame_spec.key)
        if p.revision is not None:
            same &= pl.col(f"{p.name}_revision").eq_missing(p.revision)
    candidates = rows.join(previous, on="video_id", how="inner").filter(same)
    index = candidates.get_column("row").to_numpy()
    if listed is not None:
        keys = [listed[i] for i in index]
    else:
        uris = todo.column("uri").take(pa.array(index, pa.int64())).to_pylist() if len(index) else []
        keys = current_keys(uris, endpoint_url)
    for i, key, old in zip(index, keys, candidates.get_column("content_key").to_list()):
        # Unknown content (no key now or then) keeps the row: only a seen change rescores it.
        keep[i] = key is None or old is None or key == old
    return keep
