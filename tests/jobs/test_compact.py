"""Compaction: one snapshot that reads exactly like the history it replaces, and later runs still win."""

from pathlib import Path

import polars as pl
import pyarrow as pa
from polars.testing import assert_frame_equal

from tests.pipeline.runs import tech, write_run
from vidscore.jobs.compact import compact, main
from vidscore.pipeline.lock import TableLock
from vidscore.pipeline.output import table_files
from vidscore.pipeline.table import latest

R1, R2, R3, R4 = (f"2026010{d}T000000-{c * 6}" for d, c in zip(range(1, 5), "abcd"))


def history(root: Path) -> None:
    vs = {"videoscore_visual_quality": 2.0, "videoscore_checkpoint": "ckpt", "videoscore_status": "ok"}
    write_run(root, R1, [{"video_id": "a", **tech(1.0), **vs}, {"video_id": "b", **tech(5.0), **vs}],
              scorers=("technical", "videoscore"))  # fmt: skip
    write_run(root, R2, [{"video_id": "a", "generator": "g2", "status": None}])  # metadata-only
    broken = {"video_id": "b", "status": "decode_error", **tech(None, technical_status="decode_error")}
    write_run(root, R3, [broken, {"video_id": "c", "seed": 3, **tech(7.0)}], passthrough=[pa.field("seed", pa.int64())])


def view(root: Path) -> pl.DataFrame:
    return latest(str(root)).collect().sort("video_id")


def test_the_snapshot_reads_like_the_history(tmp_path: Path) -> None:
    history(tmp_path)
    before = view(tmp_path)
    assert main([str(tmp_path), "--keep-history"]) == 0
    files = table_files(str(tmp_path))
    assert len(files) == 1 and R4 not in files[0]
    assert_frame_equal(view(tmp_path), before, check_column_order=False)
    assert len(list((tmp_path / "_vidscore" / "history").rglob("*.parquet"))) == 3
    # A later run wins for what it scored; the snapshot still gives everything else.
    write_run(tmp_path, "20990101T000000-ffffff", [{"video_id": "a", **tech(9.0)}])
    a = view(tmp_path).row(0, named=True)
    assert (a["technical_sharpness"], a["videoscore_visual_quality"], a["generator"]) == (9.0, 2.0, "g")  # its manifest
    assert a["videoscore_run_id"] == R1  # provenance survives compaction


def test_compaction_without_history_deletes_it_and_is_idempotent(tmp_path: Path) -> None:
    history(tmp_path)
    before = view(tmp_path)
    compact(str(tmp_path))
    compact(str(tmp_path), rows_per_file=2)
    assert len(table_files(str(tmp_path))) == 2 and not (tmp_path / "_vidscore" / "history").exists()
    assert_frame_equal(view(tmp_path), before, check_column_order=False)


def test_compaction_refuses_while_a_run_holds_the_table(tmp_path: Path, capsys) -> None:
    history(tmp_path)
    with TableLock(str(tmp_path), "20260105T000000-eeeeee"):
        assert main([str(tmp_path)]) == 2
    assert "20260105T000000-eeeeee" in capsys.readouterr().err
    assert len(table_files(str(tmp_path))) == 3
