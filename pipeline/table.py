"""The score table's one reader: per video, the latest value of every scorer and the latest manifest metadata.

A table is a history: every run appends one row per video it touched, holding only what that run did. Three
kinds of column group are resolved separately, each to its own latest row:
- manifest (`uri`, `prompt`, `generator`, pass-through columns): the latest row of any kind;
- decode (`status`, `error`, `content_key` and the other video metadata): the latest row that decoded the
  video (`status` not null; a metadata-only row has none);
- each scorer `<name>_*`: the latest row in which that scorer ran on the video (`<name>_checkpoint` set).
"Latest" is one order everywhere: run id (`YYYYmmddTHHMMSSffffff-<random>`; runs on one table never overlap and
each takes an id later than the table's latest), then
file name, then position in the file. Files are merged one run at a time into a running state, so memory
follows videos x columns read, not the table's history.
"""

import logging
import re
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from vidscore.operators.storage import filesystem, is_transient, polars_options, to_url
from vidscore.operators.urls import redact, redact_text
from vidscore.pipeline.output import table_files
from vidscore.schemas.scores import METADATA_FIELDS, OK, SCORE_ERROR

DECODE_COLUMNS = ("status", "error", *(f.name for f in METADATA_FIELDS))
SYSTEM_COLUMNS = ("video_id", "run_id", "scored_at")
_RUN = "__run"  # the run id as a number (see `_run_number`)
_POS = "__pos"  # file ordinal << 32 | row in file: the tie-break after the run
_ORDER = [_RUN, _POS]
FOOTER_THREADS = 16
# Run ids: `YYYYmmddTHHMMSSffffff-<hex>` (UTC, microseconds); tables written before microseconds have
# `YYYYmmddTHHMMSS-<hex>`. Both sort in time order as strings and as `_run_number`s.
_RUN_ID = r"\d{8}T\d{6}(?:\d{6})?-[0-9a-f]+"
_RUN_IN_NAME = re.compile(rf"part-({_RUN_ID})-")


def new_run_id(after: str | None = None) -> str:
    """A run id for now, later than `after` (the table's latest run) even when this host's clock is behind."""
    now = datetime.now(timezone.utc)
    if after:
        stamp = re.match(r"(\d{8}T\d{6})(\d{6})?", after)
        if stamp:
            last = datetime.strptime(stamp.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
            last += timedelta(microseconds=int(stamp.group(2) or 0) + 1)
            now = max(now, last)
    return now.strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]


def last_run(files: Iterable[str]) -> str | None:
    """The latest run id named by the table's file names."""
    runs = [m.group(1) for f in files if (m := _RUN_IN_NAME.search(f.rsplit("/", 1)[-1]))]
    return max(runs, key=lambda r: (r[:15], r[15:21] if r[15].isdigit() else "", r), default=None)


log = logging.getLogger("vidscore")


class TableError(ValueError):
    """The table cannot be read as a score table; the message names the location and the fix."""


def scorer_names() -> tuple[str, ...]:
    from vidscore.operators.scorers import SCORERS

    return tuple(SCORERS)


def group_of(column: str, scorers: Iterable[str]) -> str | None:
    """The scorer whose group `column` belongs to (its name is the column prefix), else None."""
    return next((s for s in scorers if column.startswith(f"{s}_")), None)


def file_schemas(
    location: str, endpoint_url: str | None = None, unreadable: list[str] | None = None, files: list[str] | None = None
) -> dict[str, pl.Schema]:
    """Each committed Parquet file of the table (or only `files`, from `table_files`) with its schema (footers
    only), in name order.

    A file that is not readable Parquet (bad magic bytes, a foreign or truncated file) is left out, logged with
    what to do, and added to `unreadable` ("path: reason"): the rest of the table stays usable."""
    try:
        fs, _ = filesystem(location, endpoint_url)
        files = table_files(location, endpoint_url) if files is None else files
    except Exception as exc:  # noqa: BLE001 - unreachable storage of any kind
        raise TableError(
            f"score table {redact(location)} is unreachable ({type(exc).__name__}); check the path, endpoint and "
            "credentials"
        ) from exc

    def footer(path: str) -> pl.Schema | str:
        try:
            with fs.open(path, "rb") as f:
                return pl.Schema(pl.from_arrow(pq.read_schema(f).empty_table()).schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
            if is_transient(exc):
                raise
            return f"{type(exc).__name__}: {redact_text(str(exc))[:200]}"

    with ThreadPoolExecutor(FOOTER_THREADS) as pool:  # one small ranged read per file; object stores are slow
        read = dict(zip((to_url(fs, p) for p in files), pool.map(footer, files)))
    for path, value in read.items():
        if isinstance(value, str):
            log.warning(
                "skipping %s: not a readable Parquet file (%s); move it out of the table folder", redact(path), value
            )
            if unreadable is not None:
                unreadable.append(f"{redact(path)}: {value}")
    return {path: schema for path, schema in read.items() if not isinstance(schema, str)}


def column_types(schemas: dict[str, pl.Schema]) -> dict[str, pl.DataType]:
    """Every column of the table's files, in first-seen order, with the type its first file gives it."""
    types: dict[str, pl.DataType] = {}
    for schema in schemas.values():
        for name, dtype in schema.items():
            types.setdefault(name, dtype)
    return types


def files_by_run(files: list[str]) -> dict[str, list[str]]:
    """Files grouped by the run that wrote them (from the name); a foreign name is its own group, `~<path>`."""
    runs: dict[str, list[str]] = {}
    for path in files:
        match = _RUN_IN_NAME.search(path.rsplit("/", 1)[-1])
        runs.setdefault(match.group(1) if match else f"~{path}", []).append(path)
    return runs


def _run_batches(files: list[str]) -> list[list[str]]:
    """Files grouped by the run that wrote them, in run order; foreign names go last, alone."""
    runs = files_by_run(files)
    return [runs[k] for k in sorted(runs)]


def _run_number(run: pl.Expr) -> pl.Expr:
    """A run id as one sortable integer, (epoch microseconds << 8) | its first two hex digits: sorting numbers
    is several times faster than sorting strings. Ids in another format sort first (null)."""
    parts = run.str.extract_groups(r"^(\d{8}T\d{6})(\d{6})?-([0-9a-f]{2})")
    seconds = parts.struct[0].str.strptime(pl.Datetime("us"), "%Y%m%dT%H%M%S", strict=False).dt.epoch("us")
    micro = parts.struct[1].cast(pl.Int64, strict=False).fill_null(0)
    suffix = parts.struct[2].str.to_integer(base=16, strict=False)
    return ((seconds + micro).cast(pl.UInt64) * 256 + suffix.cast(pl.UInt64)).alias(_RUN)


def _latest(state: pl.DataFrame | None, rows: pl.DataFrame) -> pl.DataFrame:
    """Merge `rows` into the running state: per video, the row with the largest (run, position).

    Only the new rows are sorted; they meet the state through hash joins, so a merge costs O(state + rows)."""
    one_run = rows.get_column(_RUN).n_unique() == 1
    # Rows come in position order (files in order, rows in file order): with one run that is the merge order.
    rows = (rows if one_run else rows.sort(_ORDER, nulls_last=False)).unique("video_id", keep="last")
    if state is None:
        return rows
    newest, oldest = state.get_column(_RUN).max(), rows.get_column(_RUN).min()
    if one_run and oldest is not None and (newest is None or oldest > newest):  # a later run: all of it wins
        return pl.concat([state.join(rows.select("video_id"), on="video_id", how="anti"), rows], how="diagonal_relaxed")
    old = state.select("video_id", *(pl.col(c).alias(f"{c}_old") for c in _ORDER))
    later = (pl.col(_RUN) > pl.col(f"{_RUN}_old")) | (
        pl.col(_RUN).eq_missing(pl.col(f"{_RUN}_old")) & (pl.col(_POS) > pl.col(f"{_POS}_old"))
    )
    first = pl.col(f"{_POS}_old").is_null()
    wins = rows.join(old, on="video_id", how="left").filter(first | later.fill_null(pl.col(_RUN).is_not_null()))
    wins = wins.drop(f"{_RUN}_old", f"{_POS}_old")
    return pl.concat([state.join(wins.select("video_id"), on="video_id", how="anti"), wins], how="diagonal_relaxed")


class _Group:
    """One column group's running latest state: `exprs` name -> expression over a written row."""

    def __init__(self, exprs: dict[str, pl.Expr], marker: pl.Expr | None, run: pl.Expr) -> None:
        self.exprs, self.marker, self.run = exprs, marker, run
        self.state: pl.DataFrame | None = None

    def needs(self) -> set[str]:
        exprs = [*self.exprs.values(), self.run, *([self.marker] if self.marker is not None else [])]
        return {c for e in exprs for c in e.meta.root_names()}

    def add(self, frame: pl.DataFrame) -> None:
        rows = frame if self.marker is None else frame.filter(self.marker)
        if not rows.is_empty():
            values = (e.alias(n) for n, e in self.exprs.items())
            picked = rows.select("video_id", *values, _run_number(self.run), _POS)
            self.state = _latest(self.state, picked)

    def result(self, types: dict[str, pl.DataType]) -> pl.DataFrame:
        if self.state is None:
            return pl.DataFrame(schema={"video_id": pl.String, **{n: types.get(n, pl.String) for n in self.exprs}})
        return self.state.drop(_ORDER)


def read_latest(
    location: str,
    columns: list[str] | None = None,
    endpoint_url: str | None = None,
    carry: dict[str, dict[str, pl.Expr]] | None = None,
    schemas: dict[str, pl.Schema] | None = None,
    fold: bool = True,
) -> pl.DataFrame:
    """The latest view (see the module docstring) of `columns` (None: all), one row per video.

    With `fold`, `status`/`error` are the view's (see `latest`); without, the latest decode's as written.

    `carry` adds, per scorer, expressions evaluated on the row that scorer's value came from (resume reads
    the content key and prompt a score was computed from this way).
    """
    schemas = file_schemas(location, endpoint_url) if schemas is None else schemas
    scorers = scorer_names()
    types = column_types(schemas)
    wanted = list(types) if columns is None else list(dict.fromkeys(columns))
    unknown = [c for c in wanted if c not in types and c not in SYSTEM_COLUMNS]
    if unknown and schemas:
        raise TableError(f"columns {unknown} are in no file of {redact(location)}; available: {sorted(types)}")
    wanted = [c for c in wanted if c != "video_id"]
    carry = carry or {}
    by_group: dict[str, list[str]] = {}
    for name in wanted:
        key = group_of(name, scorers) or ("decode" if name in DECODE_COLUMNS else "manifest")
        by_group.setdefault(key, []).append(name)
    needs_status = fold and "status" in wanted
    groups = {"manifest": _Group({c: pl.col(c) for c in by_group.get("manifest", [])}, None, pl.col("run_id"))}
    decode = list(dict.fromkeys([*by_group.get("decode", []), *(["error"] if needs_status else [])]))
    if decode:
        groups["decode"] = _Group({c: pl.col(c) for c in decode}, pl.col("status").is_not_null(), pl.col("run_id"))
    folded = []
    if needs_status:  # the scorers whose columns are read; with none, every scorer in the table
        folded = [s for s in scorers if s in by_group] or [s for s in scorers if f"{s}_checkpoint" in types]
    for scorer in [s for s in scorers if s in by_group or s in carry or s in folded]:
        exprs = {c: pl.col(c) for c in by_group.get(scorer, [])}
        if scorer in folded:  # tables written before per-scorer statuses: the row's status was the scorer's
            own = pl.col(f"{scorer}_status")
            exprs[f"{scorer}_status"] = pl.coalesce(own, pl.col("status"))
            exprs[f"{scorer}_error"] = pl.when(own.is_null()).then(pl.col("error")).otherwise(pl.col(f"{scorer}_error"))
        exprs.update(carry.get(scorer, {}))
        marker = pl.col(f"{scorer}_checkpoint").is_not_null()
        groups[scorer] = _Group(exprs, marker, pl.coalesce(pl.col(f"{scorer}_run_id"), pl.col("run_id")))
    need = {"video_id", "run_id"}.union(*(g.needs() for g in groups.values()))
    order = {path: i for i, path in enumerate(sorted(schemas))}  # the tie-break after the run id
    for batch in _run_batches(list(schemas)):
        frame = read_projected(batch, schemas, need, types, order, endpoint_url)
        for group in groups.values():
            group.add(frame)
    out = groups["manifest"].result(types)
    for name, group in groups.items():
        if name != "manifest":
            out = out.join(group.result(types), on="video_id", how="left")
    if needs_status:
        out = _fold_status(out, folded)
    return out.select("video_id", *wanted, *(n for s in carry.values() for n in s))


def latest(location: str, columns: list[str] | None = None, endpoint_url: str | None = None) -> pl.LazyFrame:
    """Public API: the score table at `location` (local path or `s3://`), one row per video, as a LazyFrame.

    Each scorer's columns come from the latest run that scored the video with it, the manifest columns from
    the latest run that touched it, the decode columns from the latest decode. `columns` limits what is read
    (memory follows videos x columns). `status` is the latest decode's status when that failed, else the
    status of the first failing scorer among the columns returned, else `ok`.
    """
    return read_latest(location, columns, endpoint_url).lazy()


def read_projected(
    batch: list[str],
    schemas: dict[str, pl.Schema],
    need: set[str],
    types: dict,
    order: dict[str, int],
    endpoint_url: str | None,
) -> pl.DataFrame:
    """One run's files, projected to the columns any group needs (absent ones null), with the order columns."""
    frames = []
    for path in batch:
        present = [c for c in schemas[path] if c in need]
        lf = pl.scan_parquet(path, storage_options=polars_options(path, endpoint_url) or None).select(present)
        missing = [pl.lit(None, dtype=types.get(c, pl.String)).alias(c) for c in sorted(need - set(present))]
        try:
            frames.append(
                lf.with_columns(*missing)
                .with_row_index(_POS)
                .with_columns(pl.col(_POS).cast(pl.UInt64) + (order[path] << 32))
                .collect()
            )
        except (pl.exceptions.ComputeError, OSError) as exc:  # a footer that reads, pages that do not
            raise TableError(
                f"score table file {redact(path)} could not be read ({type(exc).__name__}: "
                f"{redact_text(str(exc))[:200]}); move it out of the table folder"
            ) from exc
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def _fold_status(out: pl.DataFrame, scorers: list[str]) -> pl.DataFrame:
    """`status`/`error` of the view: a failed latest decode wins, then the first failing scorer."""
    status, error = pl.lit(OK), pl.lit(None, pl.String)
    for scorer in reversed(scorers):
        failed = pl.col(f"{scorer}_status").is_not_null() & (pl.col(f"{scorer}_status") != OK)
        status = pl.when(failed).then(pl.col(f"{scorer}_status")).otherwise(status)
        error = pl.when(failed).then(pl.col(f"{scorer}_error")).otherwise(error)
    # A row's own status also records score errors (`score_error`); only other failures are the decode's.
    decode_failed = pl.col("status").is_not_null() & ~pl.col("status").is_in([OK, SCORE_ERROR])
    out = out.with_columns(
        pl.when(decode_failed).then(pl.col("status")).otherwise(status).alias("status"),
        pl.when(decode_failed).then(pl.col("error")).otherwise(error).alias("error"),
    )
    return out
