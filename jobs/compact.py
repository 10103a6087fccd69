"""`vidscore compact TABLE [--keep-history]`: rewrite a score table's history into one snapshot of latest values.

Years of nightly runs make a table of thousands of files that every read merges. The snapshot holds, per video,
exactly what readers see (each scorer's latest values with the run that computed them, the latest manifest and
decode columns), so reading it gives the same view at a fraction of the cost. It is written next to the history
first and the history removed (or moved under `_vidscore/history/<id>/` with --keep-history) only after: at every
moment the table reads the same. The table is locked while this runs, like a score run.
Exit codes: 0 done, 2 unusable table or locked.
"""

import argparse
import io
import posixpath
import sys
from datetime import datetime, timezone

import polars as pl
import pyarrow.parquet as pq

from vidscore.operators.storage import filesystem, is_local, s3_endpoint, with_retries
from vidscore.operators.urls import redact
from vidscore.pipeline.lock import TableLock, TableLocked
from vidscore.pipeline.output import META_DIR, OutputError, check_output, commit_file
from vidscore.pipeline.table import (
    TableError,
    column_types,
    file_schemas,
    last_run,
    new_run_id,
    read_latest,
    scorer_names,
)

ROWS_PER_FILE = 1_000_000


def compact(location: str, keep_history: bool = False, endpoint_url: str | None = None, lock_ttl_s: float = 300.0,
            rows_per_file: int = ROWS_PER_FILE) -> dict:  # fmt: skip
    """Snapshot `location`; returns what was done (files before, rows and files written, where history went)."""
    endpoint_url = s3_endpoint(endpoint_url)
    check_output(location, endpoint_url)
    started = datetime.now(timezone.utc)
    with TableLock(location, new_run_id(), lock_ttl_s, endpoint_url) as lock:
        unreadable: list[str] = []
        schemas = file_schemas(location, endpoint_url, unreadable)
        if unreadable:  # compaction deletes the history: never with files it could not read among it
            raise TableError(f"the table holds unreadable files ({'; '.join(unreadable)}); move them out first")
        if not schemas:
            raise TableError(f"no score table at {redact(location)} (no .parquet files)")
        compact_id = lock.run_id = new_run_id(after=last_run(schemas))
        names = list(column_types(schemas))
        scorers = [s for s in scorer_names() if f"{s}_checkpoint" in names]
        # Each scorer's values keep the run that computed them (rows written before that column: the row's run).
        carry = {s: {f"{s}_run_id": pl.coalesce(pl.col(f"{s}_run_id"), pl.col("run_id"))} for s in scorers}
        columns = [c for c in names if c not in {f"{s}_run_id" for s in scorers}]
        view = read_latest(location, columns, endpoint_url, carry=carry, schemas=schemas, fold=False)
        view = view.select([c for c in names if c in view.columns]).sort("video_id")
        fs, base = filesystem(location, endpoint_url)
        written = []
        for k, start in enumerate(range(0, max(1, view.height), rows_per_file)):
            buffer = io.BytesIO()
            pq.write_table(view.slice(start, rows_per_file).to_arrow(), buffer, compression="zstd")
            target = posixpath.join(base, f"run_date={started:%Y-%m-%d}", f"part-{compact_id}-{k:06d}.parquet")
            with_retries(commit_file, fs, target, buffer.getvalue())
            written.append(target)
        history = posixpath.join(base, META_DIR, "history", compact_id)
        for url in schemas:
            _, path = filesystem(url, endpoint_url)
            if keep_history:
                target = posixpath.join(history, posixpath.relpath(path, base))
                if is_local(fs):
                    fs.makedirs(posixpath.dirname(target), exist_ok=True)
                with_retries(fs.mv, path, target)
            else:
                with_retries(fs.rm, path)
    return {
        "files_before": len(schemas),
        "videos": view.height,
        "files_written": len(written),
        "history": redact(history) if keep_history else None,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidscore compact", description=__doc__.splitlines()[0])
    p.add_argument("table", help="score table (the output folder of `vidscore score`; local or s3://)")
    p.add_argument("--keep-history", action="store_true", help="move the old files under _vidscore/history/<id>/")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint URL (default: AWS_ENDPOINT_URL or AWS)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        done = compact(args.table, args.keep_history, args.endpoint_url)
    except (TableError, TableLocked, OutputError) as exc:
        print(f"vidscore compact: error: {exc}", file=sys.stderr)
        return 2
    where = f"; history in {done['history']}" if done["history"] else ""
    print(f"compacted {done['files_before']} files into {done['files_written']} ({done['videos']} videos){where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
