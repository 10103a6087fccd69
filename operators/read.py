"""Input reading: a manifest (Parquet / JSONL / CSV, file or folder) or a folder of videos, as a stream of chunks.

Everything here runs on the driver before any work starts, so a bad input fails fast with a message that
names the fix. The input streams: Parquet by row batches, JSON Lines by line-aligned byte blocks, S3 listings
page by page, so the driver holds one chunk at a time (plus 8 bytes per video for the duplicate-id check).
Each chunk is an Arrow table: `video_id`, `uri`, `prompt`, `generator`, plus any other manifest columns,
which pass through to the score table unchanged.
"""

import hashlib
import io
import posixpath
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vidscore.operators.storage import content_key, filesystem, join, to_url
from vidscore.operators.urls import identity, redact
from vidscore.schemas import manifest, scores

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".gif")
MANIFEST_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
METADATA_NAMES = ("metadata.jsonl", "metadata.csv", "metadata.parquet")
_IDENTIFIER = re.compile(
    r"(?i)^(uri|url|path|prompt|caption|text|generator|file_?name)$|(^|_)(id|ids|uuid|key|hash|name|code|sha\d*|md5)$"
)
PROMPT_ALIASES = ("caption", "text")
CHUNK_ROWS = 16384  # Parquet rows and listed videos per chunk
JSON_BLOCK_BYTES = 8 << 20  # JSON Lines bytes per chunk (~40k typical rows)


class InputError(ValueError):
    """The input location or manifest is unusable; raised before any work starts."""


class Chunk(NamedTuple):
    """A normalized slice of the input; `keys` are content keys from a listing (None: not listed)."""

    table: pa.Table
    keys: list[str | None] | None = None


def video_id_for(uri: str) -> str:
    """A stable id derived from the uri: the same video path always gets the same id."""
    return hashlib.blake2b(uri.encode(), digest_size=8).hexdigest()


def _ext(path: str) -> str:
    return posixpath.splitext(path)[1].lower()


def _json_tables(f: Any, path: str) -> Iterator[pa.Table]:
    """JSON Lines in line-aligned blocks; each block is parsed (and typed) on its own."""
    import pyarrow.json as pjson

    rest = b""
    while True:
        data = f.read(JSON_BLOCK_BYTES)
        block, rest = (rest + data, b"") if not data else (rest + data).rpartition(b"\n")[::2]
        if block.strip():
            try:
                yield pjson.read_json(io.BytesIO(block))
            except pa.ArrowInvalid as exc:
                raise InputError(f"{redact(path)}: not JSON Lines (one JSON object per line): {exc}") from exc
        if not data:
            return


def _read_tables(fs: Any, path: str) -> Iterator[pa.Table]:
    """One manifest file as a stream of tables. CSV is read whole: quoted fields may span lines."""
    fmt = MANIFEST_FORMATS[_ext(path)]
    with fs.open(path, "rb") as f:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(f).iter_batches(batch_size=CHUNK_ROWS):
                yield pa.Table.from_batches([batch])
        elif fmt == "csv":
            import pyarrow.csv as pcsv

            # CSV has no types: identifier-like columns are text, so `007` stays `007` (a guessed int would be 7).
            names = pcsv.open_csv(f).schema.names
            f.seek(0)
            text = {n: pa.string() for n in names if _IDENTIFIER.search(n)}
            yield pcsv.read_csv(f, convert_options=pcsv.ConvertOptions(column_types=text))
        else:
            yield from _json_tables(f, path)


def _read_table(fs: Any, path: str) -> pa.Table:
    return pa.concat_tables(list(_read_tables(fs, path)), promote_options="permissive")


def _s3_listing(fs: Any, path: str) -> Iterator[dict]:
    """Every object under an S3 prefix, page by page, bypassing s3fs's listing cache (which would keep
    a dict per object for the life of the process)."""
    from fsspec.asyn import sync

    bucket, _, prefix = path.partition("/")
    pages = fs._iterdir(bucket, delimiter="", prefix=prefix.rstrip("/") + "/" if prefix else "")

    async def page() -> list[dict]:
        out = []
        async for info in pages:
            out.append(info)
            if len(out) == 1000:
                break
        return out

    # No retry here: an async generator that raised is finished, so a retry would end the listing early and
    # silently drop videos. botocore already retries each LIST request; a failure that remains is an error.
    while items := sync(fs.loop, page):
        yield from items


def _listing(fs: Any, path: str) -> Iterator[tuple[str, dict]]:
    """(path, info) for every file under `path`, streamed (one directory or one S3 page at a time)."""
    if hasattr(fs, "_iterdir") and "s3" in fs.protocol:
        for info in _s3_listing(fs, path):
            if info.get("type") == "file":
                yield info["name"], info
        return
    for _, _, files in fs.walk(path, detail=True):
        for info in files.values():
            yield info["name"], info


class _Scan(NamedTuple):
    """One listing pass: videos as compact columns (uri, content key: ~100 bytes each), plus manifest files."""

    uris: pa.ChunkedArray
    keys: pa.ChunkedArray
    metadata: list[str]
    manifests: list[str]


def _skipped(path: str, root: str, exclude: str | None) -> bool:
    """Entries under `_`/`.`-prefixed folders (metadata, as in Spark/Hive layouts) and under `exclude` (the
    run's own score table, when it lives inside the input folder) are not input."""
    if exclude and (path == exclude or path.startswith(exclude.rstrip("/") + "/")):
        return True
    return any(part.startswith(("_", ".")) for part in path[len(root) :].split("/")[:-1])


def _scan(fs: Any, root: str, exclude: str | None = None) -> _Scan:
    uris: list[pa.Array] = []
    keys: list[pa.Array] = []
    page_uris, page_keys, metadata, manifests = [], [], [], []
    for path, info in _listing(fs, root):
        if _skipped(path, root, exclude):
            continue
        if _ext(path) in VIDEO_EXTENSIONS:
            page_uris.append(to_url(fs, path))
            page_keys.append(content_key(info))
        elif posixpath.basename(path) in METADATA_NAMES:
            metadata.append(path)
        elif _ext(path) in MANIFEST_FORMATS:
            manifests.append(path)
        if len(page_uris) == CHUNK_ROWS:  # Python strings cost ~10x their Arrow form: convert as we go
            uris.append(pa.array(page_uris, pa.string()))
            keys.append(pa.array(page_keys, pa.string()))
            page_uris, page_keys = [], []
    uris.append(pa.array(page_uris, pa.string()))
    keys.append(pa.array(page_keys, pa.string()))
    return _Scan(pa.chunked_array(uris), pa.chunked_array(keys), sorted(metadata), sorted(manifests))


def _folder_chunks(fs: Any, root: str, scan: _Scan, location: str) -> Iterator[tuple[pa.Table, str, list | None]]:
    """One row per video under `root`, joined with any videofolder-style metadata files.

    The whole listing is joined before rows leave, because a metadata file may be listed after the videos
    it describes; it is held as two compact Arrow columns, then handed out in chunks.
    """
    table = pa.table({"uri": scan.uris, "__key": scan.keys})
    metas = []
    for path in scan.metadata:
        meta = _read_table(fs, path)
        if "file_name" not in meta.column_names:
            raise InputError(f"{redact(location)}: {posixpath.basename(path)} needs a `file_name` column")
        base = to_url(fs, posixpath.dirname(path))
        names = [join(base, str(n)) for n in meta.column("file_name").to_pylist()]
        metas.append(meta.append_column("uri", pa.array(names, pa.string())))
    if metas:
        meta = pa.concat_tables(metas, promote_options="permissive")
        # Full outer join: a metadata row whose video is missing still becomes a (failed) output row.
        table = table.join(meta, "uri", join_type="full outer")
    if "generator" not in table.column_names:
        # Videofolder convention: the first sub-folder names the class, here the generator.
        prefix = to_url(fs, root.rstrip("/")) + "/"
        uri = table.column("uri")
        parts = pc.split_pattern(pc.utf8_slice_codeunits(uri, len(prefix)), "/", max_splits=1)
        nested = pc.and_(pc.starts_with(uri, prefix), pc.greater(pc.list_value_length(parts), 1))
        table = table.append_column("generator", pc.if_else(nested, pc.list_element(parts, 0), None))
    table = table.sort_by("uri")
    base = to_url(fs, root)
    for start in range(0, len(table), CHUNK_ROWS):
        part = table.slice(start, CHUNK_ROWS)
        yield part.drop_columns(["__key"]), base, part.column("__key").to_pylist()


def _locate(location: str, endpoint_url: str | None) -> tuple[Any, str, dict]:
    fs, path = filesystem(location, endpoint_url)
    try:
        probe, _ = filesystem(location, endpoint_url, preflight=True)  # fails fast on a silent endpoint
        return fs, path, probe.info(path)
    except FileNotFoundError as exc:
        raise InputError(f"input {redact(location)} does not exist; check the path or URL") from exc
    except PermissionError as exc:
        raise InputError(f"input {redact(location)} is not readable (access denied)") from exc
    except Exception as exc:  # noqa: BLE001 - unreachable storage of any kind
        raise InputError(
            f"input {redact(location)} is unreachable ({type(exc).__name__}); check the "
            "endpoint, network and credentials"
        ) from exc


def _raw_chunks(
    location: str, endpoint_url: str | None, exclude: str | None = None
) -> Iterator[tuple[pa.Table, str, list | None]]:
    """(table as read, base for relative uris, listing keys or None), chunk by chunk."""
    fs, path, info = _locate(location, endpoint_url)
    if info["type"] != "directory":
        if _ext(path) not in MANIFEST_FORMATS:
            raise InputError(
                f"{redact(location)}: a manifest must be .parquet, .jsonl or .csv; "
                "to score videos, point at their folder"
            )
        base = to_url(fs, posixpath.dirname(path))
        for table in _read_tables(fs, path):
            yield table, base, None
        return
    scan = _scan(fs, path, filesystem(exclude, endpoint_url)[1] if exclude else None)
    if len(scan.uris):
        yield from _folder_chunks(fs, path, scan, location)
        return
    if not scan.manifests:
        raise InputError(
            f"{redact(location)} holds no videos ({', '.join(VIDEO_EXTENSIONS)}) and no manifest (.parquet/.jsonl/.csv)"
        )
    for manifest_path in scan.manifests:
        for table in _read_tables(fs, manifest_path):
            yield table, to_url(fs, path), None


class _UniqueIds:
    """Duplicate video_id detection over a stream in 8 bytes per id: a 64-bit hash per id, sorted once at the end.
    A repeated hash is only a suspect; the ids themselves are compared before anything is reported."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    @staticmethod
    def hashes(ids: list[str]) -> np.ndarray:
        return np.frombuffer(b"".join(hashlib.blake2b(i.encode(), digest_size=8).digest() for i in ids), "<u8")

    def add(self, ids: list[str]) -> None:
        self.parts.append(self.hashes(ids))

    def repeated(self) -> np.ndarray:
        """The hashes seen more than once."""
        every = np.concatenate(self.parts or [self.hashes([])])
        self.parts.clear()
        every.sort()
        return np.unique(every[1:][every[1:] == every[:-1]])


def iter_input(
    location: str, limit: int | None = None, endpoint_url: str | None = None, exclude: str | None = None
) -> Iterator[Chunk]:
    """Read and validate the input at `location` (local path, file://, s3://, any fsspec URL) chunk by chunk.
    A folder's entries under `exclude` (the score table being written) are not input.

    A problem anywhere raises InputError before the last chunk is returned, so a caller that consumes every
    chunk before starting work fails before any work.
    """
    seen = _UniqueIds()
    for table, keys in _normalized(location, limit, endpoint_url, exclude):
        seen.add(table.column("video_id").to_pylist())
        yield Chunk(table, keys)
    suspects = seen.repeated()
    if not len(suspects):
        return
    # Rare: read the input again, comparing only the ids whose hash repeats.
    counts: dict[str, int] = {}
    for table, _ in _normalized(location, limit, endpoint_url, exclude):
        ids = table.column("video_id").to_pylist()
        for i in np.asarray(ids, dtype=object)[np.isin(_UniqueIds.hashes(ids), suspects)]:
            counts[i] = counts.get(i, 0) + 1
    dupes = sorted(i for i, n in counts.items() if n > 1)
    if dupes:
        raise InputError(
            f"{len(dupes)} video_id values occur more than once (e.g. {dupes[:5]}); "
            "ids must be unique: fix the manifest or drop its video_id column"
        )


def _normalized(
    location: str, limit: int | None, endpoint_url: str | None, exclude: str | None = None
) -> Iterator[tuple[pa.Table, list | None]]:
    rows = 0
    for raw, base, keys in _raw_chunks(location, endpoint_url, exclude):
        table = normalize(raw, base)
        if limit is not None and rows + len(table) > limit:
            table, keys = table.slice(0, limit - rows), keys and keys[: limit - rows]
        rows += len(table)
        if len(table):
            yield table, keys
        if limit is not None and rows >= limit:
            return


def read_input(location: str, limit: int | None = None, endpoint_url: str | None = None) -> pa.Table:
    """The whole input as one table (for jobs that join on a manifest; `vidscore score` streams instead)."""
    tables = [c.table for c in iter_input(location, limit, endpoint_url)]
    if not tables:
        return normalize(pa.table({"uri": pa.array([], pa.string())}), "")
    return pa.concat_tables(tables, promote_options="permissive")


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column; a float one (pandas writes a missing value as NaN) has its NaNs as nulls, never "nan"."""
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    return column.cast(pa.string())


def normalize(table: pa.Table, base: str) -> pa.Table:
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
    from vidscore.operators.scorers import SCORERS

    scorer_like = [c for c in table.column_names if any(c.startswith(f"{name}_") for name in SCORERS)]
    if scorer_like:
        prefixes = ", ".join(f"{n}_*" for n in SCORERS)
        raise InputError(
            f"manifest columns {scorer_like} are named like a scorer's columns ({prefixes}); readers would take "
            "them for scores: rename them"
        )
    uris = table.column("uri").cast(pa.string()).to_pylist()
    empty = [i for i, u in enumerate(uris) if not u]
    if empty:
        raise InputError(f"{len(empty)} manifest rows have an empty `uri` (first rows: {empty[:5]})")
    uris = [join(base, u) for u in uris]
    given = [None] * len(uris)
    if "video_id" in table.column_names:
        given = table.column("video_id").cast(pa.string()).to_pylist()
    # Ids come from the uri's identity: re-signing a presigned URL keeps the id, `#`/`?` in object keys count.
    ids = [g if g else video_id_for(identity(u)) for g, u in zip(given, uris)]
    if "prompt" not in table.column_names:
        alias = next((a for a in PROMPT_ALIASES if a in table.column_names), None)
        table = table.append_column("prompt", table.column(alias) if alias else pa.nulls(len(table)))
    if "generator" not in table.column_names:
        table = table.append_column("generator", pa.nulls(len(table)))
    std = {
        "video_id": pa.array(ids, pa.string()),
        "uri": pa.array(uris, pa.string()),
        "prompt": _text(table.column("prompt")),
        "generator": _text(table.column("generator")),
    }
    rest = [c for c in table.column_names if c not in std]
    out = pa.table({**std, **{c: table.column(c) for c in rest}})
    return out
