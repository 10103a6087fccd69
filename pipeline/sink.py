"""Score-table writer: one Parquet file per write task, committed atomically, under a run-date partition.

Atomic commits make crash resume exact: a file is either complete and counted or absent. Object stores
commit a PUT only when it completes; local and POSIX filesystems get a temporary name and a rename.
The table's layout: `OUTPUT/run_date=YYYY-MM-DD/part-<run id>-<task>.parquet`; canary rows (video ids under
`vidscore-canary/`) go to `OUTPUT/_vidscore/canary/runs/part-<run id>-<task>.parquet` instead, outside the table.
"""

import io
import posixpath
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ray.data import Datasink
from ray.data.block import Block, BlockAccessor

from vidscore.operators.storage import filesystem, to_url, with_retries
from vidscore.pipeline.output import META_DIR, commit_file
from vidscore.schemas.scores import CANARY_PREFIX

CANARY_RUNS = f"{META_DIR}/canary/runs"


class ScoreTableSink(Datasink):
    """Writes conformed score rows.

    Args:
        output: table location (local path or URL).
        run_id: this run's id; every file name carries it.
        run_date: the partition (UTC date of the run start).
        schema: the score schema, written even for files whose columns are all null.
        rows_per_file: rows buffered per file (bounded: a crash loses at most this many per writer).
        endpoint_url: S3-compatible endpoint, if any.
    """

    def __init__(
        self,
        output: str,
        run_id: str,
        run_date: str,
        schema: pa.Schema,
        rows_per_file: int,
        endpoint_url: str | None = None,
    ) -> None:
        self.output, self.run_id, self.run_date, self.schema = output, run_id, run_date, schema
        self.rows_per_file, self.endpoint_url = rows_per_file, endpoint_url
        self.files: list[str] = []  # filled on the driver once the write completes
        self.canary_files: list[str] = []  # the canary rows' files (pipeline/canary.py), kept out of the table

    @property
    def min_rows_per_write(self) -> int:
        return self.rows_per_file

    def get_name(self) -> str:
        return "ScoreTable"

    def on_write_complete(self, write_result: Any) -> None:
        paths = sorted(path for paths in write_result.write_returns for path in paths)
        self.files = [p for p in paths if f"/{CANARY_RUNS}/" not in p]
        self.canary_files = [p for p in paths if f"/{CANARY_RUNS}/" in p]

    def write(self, blocks: Iterable[Block], ctx: Any) -> list[str]:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if len(t)]
        if not tables:
            return []
        table = pa.concat_tables(tables).cast(self.schema)
        fs, base = filesystem(self.output, self.endpoint_url)
        # Deterministic per task: a retried task overwrites its own file instead of adding a duplicate.
        name = f"part-{self.run_id}-{ctx.task_idx:06d}.parquet"
        canary = pc.starts_with(table.column("video_id"), CANARY_PREFIX)
        written = []
        if pc.any(canary).as_py():  # canary rows stay out of the table, in its metadata folder
            target = posixpath.join(base, CANARY_RUNS, name)
            with_retries(commit_file, fs, target, _parquet(table.filter(canary)))
            written.append(to_url(fs, target))
            table = table.filter(pc.invert(canary))
        if len(table):
            target = posixpath.join(base, f"run_date={self.run_date}", name)
            with_retries(commit_file, fs, target, _parquet(table))
            written.append(to_url(fs, target))
        return written


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
