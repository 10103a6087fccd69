"""Score table: base columns every row has, plus each scorer's own prefixed columns."""

import pyarrow as pa

SCHEMA_VERSION = "3"

# Status values: `ok`, or the class of the first thing that went wrong with the video.
OK = "ok"
FETCH_ERROR = "fetch_error"
DECODE_ERROR = "decode_error"
DECODE_TIMEOUT = "decode_timeout"
SCORE_ERROR = "score_error"
STATUSES = (OK, FETCH_ERROR, DECODE_ERROR, DECODE_TIMEOUT, SCORE_ERROR)
# Failures that may pass on a later run (storage hiccups, a stalled worker); a rerun retries these rows.
# A `decode_error` is a property of the file and is retried only when the file's content changes.
RETRYABLE = (FETCH_ERROR, DECODE_TIMEOUT, SCORE_ERROR)

# Canary rows (pipeline/canary.py) carry video ids in this reserved namespace; input manifests may not use it.
CANARY_PREFIX = "vidscore-canary/"

BASE_FIELDS = [
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("prompt", pa.string()),
    pa.field("generator", pa.string()),
    # Null on a metadata-only row (the manifest changed, nothing needed decoding or scoring).
    pa.field("status", pa.string()),
    pa.field("error", pa.string()),
    # Which run wrote the row and when: the latest row per video_id is its current score.
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("scored_at", pa.timestamp("us", tz="UTC"), nullable=False),
]

# Probed once per video by the decode operator; null when the video could not be opened.
METADATA_FIELDS = [
    # `size:etag` (object stores) or `size:mtime_ns` (files): a changed value means changed content.
    pa.field("content_key", pa.string()),
    pa.field("size_bytes", pa.int64()),
    pa.field("num_frames", pa.int64()),
    pa.field("fps", pa.float32()),
    pa.field("duration_s", pa.float32()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    # Display rotation applied (degrees counter-clockwise, from the display matrix): frames are scored upright.
    pa.field("rotation", pa.int32()),
    pa.field("codec", pa.string()),
    # Backend and its version: `pyav 18.1.0 (FFmpeg 8.1.2)`, `pyav-sequential ...` or `decord 0.6.0`.
    pa.field("decoder", pa.string()),
    pa.field("decode_s", pa.float32()),
]


def provenance_fields(prefix: str) -> list[pa.Field]:
    """What produced a scorer's numbers, and how its attempt went. All null on rows of runs that did not run
    the scorer on the video: `<prefix>_checkpoint` set marks an attempt, and readers keep earlier values.

    checkpoint, its revision or weights hash, and the frame spec decide reruns; device, dtype, attention kernel
    and software (`vidscore 0.1.0, torch 2.5.1, transformers 5.2.0` in the scoring process) explain differences
    (GPU bf16 and CPU fp32 differ by ~1e-2); status/error are this scorer's own outcome (`ok`, `score_error`, or
    the decode failure that left it no frames); run_id is the run that computed it.
    """
    return [
        pa.field(f"{prefix}_checkpoint", pa.string()),
        pa.field(f"{prefix}_revision", pa.string()),
        pa.field(f"{prefix}_frames", pa.string()),
        pa.field(f"{prefix}_device", pa.string()),
        pa.field(f"{prefix}_dtype", pa.string()),
        pa.field(f"{prefix}_attention", pa.string()),
        pa.field(f"{prefix}_software", pa.string()),
        pa.field(f"{prefix}_status", pa.string()),
        pa.field(f"{prefix}_error", pa.string()),
        pa.field(f"{prefix}_run_id", pa.string()),
    ]


def score_schema(scorer_fields: list[pa.Field], passthrough: list[pa.Field]) -> pa.Schema:
    """The full output schema: base, metadata, manifest pass-through, then scorer columns."""
    fields = BASE_FIELDS + METADATA_FIELDS + passthrough + scorer_fields
    names = [f.name for f in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"score table columns defined twice: {dupes}; rename them in the manifest")
    return pa.schema(fields, metadata={"vidscore.schema_version": SCHEMA_VERSION})
