"""The score table on storage: location checks before work, what is already scored, run-labelled files."""

import json
import logging
import posixpath
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vidscore.operators.storage import filesystem, is_local, to_url
from vidscore.operators.urls import redact

log = logging.getLogger("vidscore")
META_DIR = "_vidscore"  # pyarrow, polars and Ray skip `_`-prefixed entries when reading the table


class OutputError(ValueError):
    """The output location is unusable; raised before any work starts."""


def check_output(output: str, endpoint_url: str | None = None) -> None:
    """Fail fast unless `output` is (or can become) a writable directory."""
    try:
        fs, path = filesystem(output, endpoint_url, preflight=True)  # fails fast on a silent endpoint
        if fs.exists(path) and fs.isfile(path):
            raise OutputError(f"output {redact(output)} is a file; give a directory or prefix for the table")
        probe = posixpath.join(path, META_DIR, f".probe-{uuid.uuid4().hex}")
        if is_local(fs):  # object stores have no folders, and s3fs's makedirs would create a missing bucket
            fs.makedirs(posixpath.dirname(probe), exist_ok=True)
        with fs.open(probe, "wb") as f:
            f.write(b"ok")
        fs.rm(probe)
    except OutputError:
        raise
    except PermissionError as exc:
        raise OutputError(f"output {redact(output)} is not writable (access denied); check credentials") from exc
    except FileNotFoundError as exc:
        raise OutputError(
            f"output {redact(output)} does not exist: no such bucket; create the bucket or fix the URL"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - unreachable storage of any kind
        raise OutputError(
            f"output {redact(output)} is not writable ({type(exc).__name__}); check the path, endpoint and credentials"
        ) from exc


def table_files(output: str, endpoint_url: str | None = None) -> list[str]:
    """Parquet files of the score table (none if it does not exist yet)."""
    fs, path = filesystem(output, endpoint_url)
    if not fs.exists(path):
        return []
    files = [p for p in fs.find(path) if p.endswith(".parquet")]
    return sorted(p for p in files if not any(part.startswith(("_", ".")) for part in p[len(path) :].split("/")))


def read_files(files: list[str], columns: list[str], endpoint_url: str | None = None) -> pa.Table:
    """Rows of the given table files (e.g. the ones a run committed), projected to `columns`."""
    tables = []
    for path in files:
        fs, inner = filesystem(path, endpoint_url)
        with fs.open(inner, "rb") as f:
            tables.append(pq.read_table(f, columns=columns))
    return pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})


def write_json(output: str, name: str, text: str, endpoint_url: str | None = None) -> str:
    """Write a small JSON document under the table's metadata folder, all at once (a reader never sees half a
    summary); returns its location."""
    fs, path = filesystem(output, endpoint_url)
    target = posixpath.join(path, META_DIR, name)
    commit_file(fs, target, text.encode())
    return to_url(fs, target)


def read_json(fs: Any, path: str) -> dict | None:
    """The JSON object at `path`; None when absent; ValueError when it is not a readable JSON object."""
    try:
        with fs.open(path, "r") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{redact(to_url(fs, path))} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{redact(to_url(fs, path))} is not a JSON object")
    return data


def run_summaries(output: str, endpoint_url: str | None = None) -> Iterator[tuple[str, dict]]:
    """(run id, summary) of the runs `write_json` recorded as `run-<id>.json`, newest first, read one at a time
    (callers usually stop at the first that has what they need). A damaged summary (a crash mid-write by an
    older version) is skipped with a warning."""
    fs, path = filesystem(output, endpoint_url)
    folder = posixpath.join(path, META_DIR)
    if not fs.exists(folder):
        return
    names = [posixpath.basename(p) for p in fs.ls(folder, detail=False)]
    runs = sorted(n[len("run-") : -len(".json")] for n in names if n.startswith("run-") and n.endswith(".json"))
    for run_id in reversed(runs):
        try:
            yield run_id, read_json(fs, posixpath.join(folder, f"run-{run_id}.json")) or {}
        except ValueError as exc:
            log.warning("skipping a run summary: %s", exc)


def commit_file(fs: Any, target: str, data: bytes) -> None:
    """Make `target` hold `data` all at once: readers see the whole file or none of it."""
    if is_local(fs):  # only local folders need creating (s3fs's makedirs may even create a bucket)
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        staging = posixpath.join(posixpath.dirname(target), f".staging-{uuid.uuid4().hex}")
        fs.pipe_file(staging, data)
        fs.mv(staging, target)
    else:
        fs.pipe_file(target, data)
