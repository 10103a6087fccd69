"""Staging: chunks stream to the object store minus what the table already holds; types unify across chunks."""

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from operators.read import Chunk, InputError, normalize
from operators.scorers.technical import TechnicalScorer
from pipeline.stage import stage


def chunk(uris: list[str], keys: list[str | None] | None = None, **extra: list) -> Chunk:
    return Chunk(normalize(pa.table({"uri": uris, **extra}), "/data"), keys)


def previous(rows: list[dict]) -> pl.DataFrame:
    plan = TechnicalScorer.plan()
    base = {"status": "ok", "scored_at": "2026-11-21", "technical_checkpoint": plan.checkpoint}
    base |= {"technical_revision": plan.revision, "technical_frames": plan.frame_spec.key}
    columns = [*base, "video_id", "content_key"]
    return pl.DataFrame([{**base, **r} for r in rows], schema={c: pl.String for c in columns})


def test_only_new_changed_or_retryable_rows_are_put(tmp_path: Path) -> None:
    first = chunk(["a.mp4", "b.mp4", "c.mp4"], keys=["1:x", "1:y", "1:z"])
    second = chunk(["d.mp4"], keys=["1:w"])
    ids = [*first.table.column("video_id").to_pylist(), *second.table.column("video_id").to_pylist()]
    prev = previous(
        [
            {"video_id": ids[0], "content_key": "1:x"},  # unchanged: skipped
            {"video_id": ids[1], "content_key": "1:OLD"},  # content changed: rescored
            {"video_id": ids[2], "content_key": "1:z", "status": "fetch_error"},  # retryable: rescored
            {"video_id": ids[3], "content_key": "1:w", "technical_frames": "other"},  # config changed
        ]
    )
    put: list[pa.Table] = []
    staged = stage([first, second], prev, [TechnicalScorer.plan()], None, put=lambda t: put.append(t) or len(put))
    assert (staged.videos, staged.skipped, staged.todo, staged.refs) == (4, 1, 3, [1, 2])
    assert [t.column("uri").to_pylist() for t in put] == [["/data/b.mp4", "/data/c.mp4"], ["/data/d.mp4"]]


def test_unlisted_rows_are_statted_for_their_content_key(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"123")
    rows = chunk([str(video)])
    prev = previous([{"video_id": rows.table.column("video_id")[0].as_py(), "content_key": "3:stale"}])
    staged = stage([rows], prev, [TechnicalScorer.plan()], None, put=lambda t: t)
    assert staged.skipped == 0  # the file's real key (size:mtime) differs from the stored one


def test_column_types_unify_across_chunks_or_fail_before_work() -> None:
    put: list[pa.Table] = []
    chunks = [chunk(["a.mp4"], note=pa.nulls(1)), chunk(["b.mp4"], note=["hi"]), chunk(["c.mp4"], note=[None])]
    staged = stage(chunks, previous([]), [TechnicalScorer.plan()], None, put=put.append)
    assert staged.schema.field("note").type == pa.string() and len(put) == 3
    with pytest.raises(InputError, match="change type between parts of the input"):
        stage([chunk(["a.mp4"], n=[1]), chunk(["b.mp4"], n=["x"])], previous([]), [], None, put=put.append)
