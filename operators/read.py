"""Input reading: a manifest (Parquet / JSONL / CSV, file or folder) or a folder of videos.

Everything here runs on the driver before any work starts, so a bad input fails fast with a message
that names the fix. The result is one Arrow table: `video_id`, `uri`, `prompt`, `generator`, plus any
other manifest columns, which pass through to the score table unchanged.
"""

import hashlib
import posixpath

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.storage import filesystem, join, redact, to_url
from schemas import manifest, scores

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".gif")
MANIFEST_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
METADATA_NAMES = ("metadata.jsonl", "metadata.csv", "metadata.parquet")
PROMPT_ALIASES = ("caption", "text")


class InputError(ValueError):
    """The input location or manifest is unusable; raised before any work starts."""


def video_id_for(uri: str) -> str:
    """A stable id derived from the uri: the same video path always gets the same id."""
    return hashlib.blake2b(uri.encode(), digest_size=8).hexdigest()


def _ext(path: str) -> str:
    return posixpath.splitext(path)[1].lower()


def _read_table(fs, path: str) -> pa.Table:
    fmt = MANIFEST_FORMATS[_ext(path)]
    with fs.open(path, "rb") as f:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(f)
        if fmt == "csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(f)
        import pyarrow.json as pjson

        try:
            return pjson.read_json(f)
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: not JSON Lines (one JSON object per line): {exc}") from exc


def _folder_table(fs, root: str, files: list[str], location: str) -> pa.Table:
    """One row per video under `root`, joined with any videofolder-style metadata files."""
    videos = [p for p in files if _ext(p) in VIDEO_EXTENSIONS]
    rows = {to_url(fs, p): p for p in videos}
    table = pa.table({"uri": list(rows)})
    metas = []
    for path in (p for p in files if posixpath.basename(p) in METADATA_NAMES):
        meta = _read_table(fs, path)
        if "file_name" not in meta.column_names:
            raise InputError(f"{redact(location)}: {posixpath.basename(path)} needs a `file_name` column")
        base = to_url(fs, posixpath.dirname(path))
        uris = [join(base, str(n)) for n in meta.column("file_name").to_pylist()]
        metas.append(meta.append_column("uri", pa.array(uris, pa.string())))
    if metas:
        meta = pa.concat_tables(metas, promote_options="permissive")
        # Full outer join: a metadata row whose video is missing still becomes a (failed) output row.
        table = table.join(meta, "uri", join_type="full outer")
    if "generator" not in table.column_names:
        # Videofolder convention: the first sub-folder names the class, here the generator.
        prefix = to_url(fs, root.rstrip("/")) + "/"
        rel = [u[len(prefix) :] if u.startswith(prefix) else u for u in table.column("uri").to_pylist()]
        gens = [r.split("/", 1)[0] if "/" in r else None for r in rel]
        table = table.append_column("generator", pa.array(gens, pa.string()))
    return table.sort_by("uri")


def read_input(location: str, limit: int | None = None, endpoint_url: str | None = None) -> pa.Table:
    """Read and validate the input at `location` (local path, file://, s3://, any fsspec URL)."""
    fs, path = filesystem(location, endpoint_url)
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise InputError(f"input {redact(location)} does not exist; check the path or URL") from exc
    except PermissionError as exc:
        raise InputError(f"input {redact(location)} is not readable (access denied)") from exc
    except Exception as exc:  # noqa: BLE001 - unreachable storage of any kind
        raise InputError(
            f"input {redact(location)} is unreachable ({type(exc).__name__}); check the "
            "endpoint, network and credentials"
        ) from exc
    if info["type"] != "directory":
        if _ext(path) not in MANIFEST_FORMATS:
            raise InputError(
                f"{redact(location)}: a manifest must be .parquet, .jsonl or .csv; "
                "to score videos, point at their folder"
            )
        table, base = _read_table(fs, path), to_url(fs, posixpath.dirname(path))
    else:
        files = sorted(fs.find(path))
        manifests = [p for p in files if _ext(p) in MANIFEST_FORMATS and posixpath.basename(p) not in METADATA_NAMES]
        if any(_ext(p) in VIDEO_EXTENSIONS for p in files):
            table, base = _folder_table(fs, path, files, location), to_url(fs, path)
        elif manifests:
            tables = [_read_table(fs, p) for p in manifests]
            table, base = pa.concat_tables(tables, promote_options="permissive"), to_url(fs, path)
        else:
            raise InputError(
                f"{redact(location)} holds no videos ({', '.join(VIDEO_EXTENSIONS)}) and no "
                "manifest (.parquet/.jsonl/.csv)"
            )
    return normalize(table, base, limit)


def normalize(table: pa.Table, base: str, limit: int | None = None) -> pa.Table:
    """Validate a manifest table and give it the standard columns, in order, with resolved uris."""
    if "uri" not in table.column_names:
        raise InputError(
            f"the manifest has no `uri` column (columns: {table.column_names}); add one with each video's path or URL"
        )
    computed = {f.name for f in scores.BASE_FIELDS + scores.METADATA_FIELDS}
    reserved = computed - set(manifest.OPTIONAL) - {"uri"}
    clash = [c for c in table.column_names if c in reserved or c.startswith(manifest.RESERVED_PREFIXES)]
    if clash:
        raise InputError(f"manifest columns {clash} are reserved for the score table; rename them")
    uris = table.column("uri").cast(pa.string()).to_pylist()
    empty = [i for i, u in enumerate(uris) if not u]
    if empty:
        raise InputError(f"{len(empty)} manifest rows have an empty `uri` (first rows: {empty[:5]})")
    uris = [join(base, u) for u in uris]
    given = [None] * len(uris)
    if "video_id" in table.column_names:
        given = table.column("video_id").cast(pa.string()).to_pylist()
    # Ids come from the uri without its query string: re-signing a presigned URL keeps the same id.
    ids = [g if g else video_id_for(redact(u)) for g, u in zip(given, uris)]
    counts = pc.value_counts(pa.array(ids))
    dupes = [d["values"] for d in counts.to_pylist() if d["counts"] > 1]
    if dupes:
        raise InputError(
            f"{len(dupes)} video_id values occur more than once (e.g. {dupes[:5]}); "
            "ids must be unique: fix the manifest or drop its video_id column"
        )
    if "prompt" not in table.column_names:
        alias = next((a for a in PROMPT_ALIASES if a in table.column_names), None)
        table = table.append_column("prompt", table.column(alias) if alias else pa.nulls(len(table)))
    if "generator" not in table.column_names:
        table = table.append_column("generator", pa.nulls(len(table)))
    std = {
        "video_id": pa.array(ids, pa.string()),
        "uri": pa.array(uris, pa.string()),
        "prompt": table.column("prompt").cast(pa.string()),
        "generator": table.column("generator").cast(pa.string()),
    }
    rest = [c for c in table.column_names if c not in std]
    out = pa.table({**std, **{c: table.column(c) for c in rest}})
    return out.slice(0, limit) if limit is not None else out
