"""Score tables for the analysis jobs: read the latest row per video, find score columns, write outputs.

Shared by `filter`, `report` and `evaluate` so that all three agree on what "the table" is: every
Parquet file of the table (metadata under `_vidscore/` skipped), and when reruns scored a video more than once,
the row with the latest `scored_at` wins (ties: the later run's file, `part-<run id>-...`).
"""

import posixpath

import polars as pl

from operators.scorers import SCORERS
from pipeline.output import table_files
from pipeline.storage import filesystem, redact, storage_options, to_url
from schemas.scores import BASE_FIELDS, METADATA_FIELDS

SCORER_PREFIXES = tuple(SCORERS)  # a scorer's name is its column prefix
PROVENANCE_SUFFIXES = ("_checkpoint", "_revision", "_frames")
BASE_COLUMNS = tuple(f.name for f in BASE_FIELDS + METADATA_FIELDS)
OUTPUT_FORMATS = (".parquet", ".jsonl", ".csv")
_FILE = "__vidscore_file"


class JobError(ValueError):
    """Bad input or configuration for an analysis job; raised before work, printed as `error: ...`, exit 2."""


def polars_options(url: str, endpoint_url: str | None = None) -> dict[str, str]:
    """polars' (object_store) options for `url`: the same endpoint rule as `pipeline.storage`."""
    endpoint = storage_options(url, endpoint_url).get("client_kwargs", {}).get("endpoint_url")
    if not endpoint:
        return {}
    options = {"aws_endpoint_url": endpoint}
    if endpoint.startswith("http://"):
        options["aws_allow_http"] = "true"
    return options


def read_scores(location: str, endpoint_url: str | None = None, limit: int | None = None) -> pl.LazyFrame:
    """The score table at `location` as a lazy frame, one row per video_id (the newest run's row)."""
    try:
        fs, _ = filesystem(location, endpoint_url)
        files = table_files(location, endpoint_url)
    except Exception as exc:  # noqa: BLE001 - unreachable storage of any kind
        raise JobError(
            f"score table {redact(location)} is unreachable ({type(exc).__name__}); check the path, endpoint and "
            "credentials"
        ) from exc
    if not files:
        raise JobError(
            f"no score table at {redact(location)} (no .parquet files); give the output folder of `vidscore score`"
        )
    options = polars_options(location, endpoint_url)
    frames = [
        pl.scan_parquet(to_url(fs, p), storage_options=options or None).with_columns(
            pl.lit(posixpath.basename(p)).alias(_FILE)
        )
        for p in files
    ]
    # Runs may have scored with different scorers, so their files can have different columns.
    lf = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if "video_id" not in lf.collect_schema().names():
        raise JobError(f"{redact(location)} is not a vidscore score table: it has no `video_id` column")
    order = [c for c in ("scored_at", _FILE) if c in lf.collect_schema().names()]
    lf = lf.sort(order).unique("video_id", keep="last", maintain_order=True).drop(_FILE)
    if limit is not None:
        lf = lf.head(limit)
    return lf


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
