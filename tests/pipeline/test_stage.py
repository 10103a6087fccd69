"""Staging: chunks stream to the object store minus what the table already holds; types unify across chunks."""

from pathlib import Path

import pyarrow as pa
import pytest

from tests.pipeline.runs import tech, write_run
from vidscore.operators.read import Chunk, InputError, normalize
from vidscore.operators.scorers.technical import TechnicalScorer
from vidscore.pipeline.resume import Previous, load_previous
from vidscore.pipeline.stage import stage


def chunk(uris: list[str], keys: list[str | None] | None = None, **extra: list) -> Chunk:
    return Chunk(normalize(pa.table({"uri": uris, **extra}), "/data"), keys)


def previous(tmp_path: Path, rows: list[dict]) -> Previous:
    """A real table holding `rows` (technical results by the default plan), read back as resume reads it."""
    if rows:
        write_run(
            tmp_path, "20260101T000000-aaaaaa", [{"prompt": None, "generator": None, **tech(1.0), **r} for r in rows]
        )
    return load_previous(str(tmp_path), [TechnicalScorer.plan()])


def test_only_stale_rows_are_put_with_what_to_run_on_them(tmp_path: Path) -> None:
    first = chunk(["a.mp4", "b.mp4", "c.mp4"], keys=["1:x", "1:y", "1:z"])
    second = chunk(["d.mp4"], keys=["1:w"])
    ids = [*first.table.column("video_id").to_pylist(), *second.table.column("video_id").to_pylist()]
    prev = previous(
        tmp_path,
        [
            {"video_id": ids[0], "uri": "/data/a.mp4", "content_key": "1:x"},  # unchanged: skipped
            {"video_id": ids[1], "uri": "/data/b.mp4", "content_key": "1:OLD"},  # content changed: rescored
            {"video_id": ids[2], "uri": "/data/c.mp4", "content_key": "1:z", "technical_status": "fetch_error"},
        ],
    )
    put: list[pa.Table] = []
    staged = stage([first, second], prev, [TechnicalScorer.plan()], None, put=lambda t: put.append(t) or len(put))
    assert (staged.videos, staged.skipped, staged.todo, staged.refs) == (4, 1, 3, [1, 2])
    assert [t.column("uri").to_pylist() for t in put] == [["/data/b.mp4", "/data/c.mp4"], ["/data/d.mp4"]]
    assert put[0].column("todo__technical").to_pylist() == [True, True]
    reasons = {"changed_content": 1, "retry": 1, "new": 1}
    assert staged.scorers["technical"] == {"scored": 3, "skipped": 1, "reasons": reasons}


def test_column_types_unify_across_chunks_or_fail_before_work(tmp_path: Path) -> None:
    put: list[pa.Table] = []
    chunks = [chunk(["a.mp4"], note=pa.nulls(1)), chunk(["b.mp4"], note=["hi"]), chunk(["c.mp4"], note=[None])]
    staged = stage(chunks, previous(tmp_path, []), [TechnicalScorer.plan()], None, put=put.append)
    assert staged.schema.field("note").type == pa.string() and len(put) == 3
    with pytest.raises(InputError, match="change type between parts of the input"):
        stage([chunk(["a.mp4"], n=[1]), chunk(["b.mp4"], n=["x"])], previous(tmp_path, []), [], None, put=put.append)
