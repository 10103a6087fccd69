"""Score tables for the analysis jobs: read the latest row per video, find score columns, write outputs.

Shared by `filter`, `report` and `evaluate`; all three read the table through `pipeline.table`, the one reader
(latest value of every scorer, latest manifest metadata).
"""

import posixpath
import sys

import polars as pl

from vidscore.operators.scorers import SCORERS
from vidscore.operators.storage import filesystem, to_url
from vidscore.operators.urls import redact
from vidscore.pipeline.table import TableError, file_schemas, read_latest
from vidscore.schemas.scores import BASE_FIELDS, METADATA_FIELDS

SCORER_PREFIXES = tuple(SCORERS)  # a scorer's name is its column prefix
PROVENANCE_SUFFIXES = (
    "_checkpoint",
    "_revision",
    "_frames",
    "_run_id",
    "_status",
    "_error",
    "_device",
    "_dtype",
    "_attention",
    "_software",
)
BASE_COLUMNS = tuple(f.name for f in BASE_FIELDS + METADATA_FIELDS)
OUTPUT_FORMATS = (".parquet", ".jsonl", ".csv")


class JobError(ValueError):
    """Bad input or configuration for an analysis job; raised before work, printed as `error: ...`, exit 2."""


def read_scores(
    location: str, endpoint_url: str | None = None, limit: int | None = None, columns: list[str] | None = None
) -> pl.LazyFrame:
    """The latest view of the score table at `location` (`pipeline.table`), one row per video_id."""
    unreadable: list[str] = []
    try:
        schemas = file_schemas(location, endpoint_url, unreadable)
        if not schemas:
            raise JobError(
                f"no score table at {redact(location)} (no .parquet files); give the output folder of `vidscore score`"
            )
        if not any("video_id" in s for s in schemas.values()):
            raise JobError(f"{redact(location)} is not a vidscore score table: it has no `video_id` column")
        df = read_latest(location, columns, endpoint_url, schemas=schemas)
    except TableError as exc:
        raise JobError(str(exc)) from exc
    for entry in unreadable:
        print(f"warning: skipped table file {entry}; move it out of the table folder", file=sys.stderr)
    return (df if limit is None else df.head(limit)).lazy()


def score_columns(schema: pl.Schema) -> list[str]:
    """Float columns a scorer wrote (known prefix, not provenance), in table order."""
    return [
        name
        for name, dtype in schema.items()
        if dtype.is_float()
        and name.startswith(tuple(f"{p}_" for p in SCORER_PREFIXES))
        and not name.endswith(PROVENANCE_SUFFIXES)
    ]


def manifest_columns(schema: pl.Schema) -> list[str]:
    """What `vidscore score` accepts back as a manifest: video_id, uri, prompt, generator and pass-through columns."""
    scorer = tuple(f"{p}_" for p in SCORER_PREFIXES)
    keep = ["video_id", "uri", "prompt", "generator"]
    return [n for n in schema.names() if n in keep or (n not in BASE_COLUMNS and not n.startswith(scorer))]


def check_output_format(location: str) -> str:
    """The output file's extension; raises before work when vidscore cannot write it."""
    ext = posixpath.splitext(location.split("?")[0])[1].lower()
    if ext not in OUTPUT_FORMATS:
        raise JobError(f"output {redact(location)}: name it .parquet, .jsonl or .csv (that picks the format)")
    return ext


def write_frame(
    df: pl.DataFrame, location: str, endpoint_url: str | None = None, metadata: dict[str, str] | None = None
) -> str:
    """Write `df` to a local path or URL in the format its extension names (Parquet also keeps `metadata`)."""
    ext = check_output_format(location)
    fs, path = filesystem(location, endpoint_url)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as f:
        if ext == ".parquet":
            df.write_parquet(f, metadata=metadata)
        elif ext == ".jsonl":
            df.write_ndjson(f)
        else:
            df.write_csv(f)
    return to_url(fs, path)


def write_text(text: str, location: str, endpoint_url: str | None = None) -> str:
    """Write a small text document (JSON, Markdown, HTML) to a local path or URL."""
    fs, path = filesystem(location, endpoint_url)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return to_url(fs, path)
