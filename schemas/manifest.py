"""Input manifest: one row per video. Only `uri` is required; unknown columns pass through."""

import pyarrow as pa

REQUIRED = ("uri",)
OPTIONAL = {
    "video_id": pa.string(),
    "prompt": pa.string(),
    "generator": pa.string(),
}
# Columns vidscore computes itself; a manifest carrying them would be silently shadowed.
RESERVED_PREFIXES = ("frames__", "todo__")
