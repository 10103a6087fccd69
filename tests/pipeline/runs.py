"""Score tables written the way `vidscore score` writes them (conform + one Parquet file per run), no Ray."""

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vidscore.operators.conform import conform
from vidscore.operators.scorers.technical import TechnicalScorer
from vidscore.schemas import mjvideo, technical, videoscore
from vidscore.schemas.scores import score_schema

FIELDS = {"technical": technical.FIELDS, "videoscore": videoscore.FIELDS, "mjvideo": mjvideo.FIELDS}
TECH = TechnicalScorer.plan()


def tech(value: float, **extra: Any) -> dict[str, Any]:
    """One technical result as the scorer stamps it (provenance of the default plan)."""
    return {
        "technical_sharpness": value,
        "technical_checkpoint": TECH.checkpoint,
        "technical_revision": TECH.revision,
        "technical_frames": TECH.frame_spec.key,
        "technical_status": "ok",
        **extra,
    }


def write_run(
    root: Path,
    run_id: str,
    rows: list[dict[str, Any]],
    scorers: tuple[str, ...] = ("technical",),
    passthrough: list[pa.Field] | None = None,
    part: int = 0,
) -> Path:
    """Rows of one run (missing columns null, `status` ok unless given) as `part-<run id>-<part>.parquet`."""
    schema = score_schema([f for s in scorers for f in FIELDS[s]], passthrough or [])
    defaults = {"status": "ok", "uri": "/v.mp4", "prompt": "a cat", "generator": "g"}
    rows = [{**defaults, **r} for r in rows]
    batch = {f.name: np.array([r.get(f.name) for r in rows], dtype=object) for f in schema if f.name in rows[0]}
    for name in {k for r in rows for k in r}:
        batch[name] = np.array([r.get(name) for r in rows], dtype=object)
    for f in schema:
        if pa.types.is_floating(f.type) and f.name in batch:
            batch[f.name] = np.array([np.nan if v is None else v for v in batch[f.name]], dtype=np.float32)
    table = conform(batch, schema, run_id, list(scorers))
    folder = root / f"run_date={run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{run_id}-{part:06d}.parquet"
    pq.write_table(table, path)
    return path
