"""The one reader: latest value of every scorer, latest manifest metadata, across runs with different columns."""

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from tests.pipeline.runs import tech, write_run
from vidscore.pipeline.table import TableError, latest, read_latest

R1, R2, R3 = "20260101T000000-aaaaaa", "20260102T000000-bbbbbb", "20260103T000000-cccccc"


def vs(value: float, status: str = "ok") -> dict:
    return {"videoscore_visual_quality": value, "videoscore_checkpoint": "ckpt", "videoscore_status": status}


def mj(value: float) -> dict:
    return {"mjvideo_overall": value, "mjvideo_checkpoint": "ckpt", "mjvideo_status": "ok"}


def by_id(frame: pl.LazyFrame | pl.DataFrame) -> dict[str, dict]:
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    return {r["video_id"]: r for r in df.to_dicts()}


def test_each_scorer_keeps_its_latest_value_whichever_run_wrote_it(tmp_path: Path) -> None:
    write_run(tmp_path, R1, [{"video_id": "a", **tech(1.0), **vs(2.0)}], scorers=("technical", "videoscore"))
    write_run(tmp_path, R2, [{"video_id": "a", **mj(0.5)}], scorers=("mjvideo",))
    rows = by_id(latest(str(tmp_path)))
    a = rows["a"]
    assert (a["technical_sharpness"], a["videoscore_visual_quality"], a["mjvideo_overall"]) == (1.0, 2.0, 0.5)
    assert (a["technical_run_id"], a["mjvideo_run_id"], a["run_id"]) == (R1, R2, R2)
    write_run(tmp_path, R3, [{"video_id": "a", **vs(3.0)}], scorers=("videoscore",))
    a = by_id(latest(str(tmp_path)))["a"]
    assert (a["technical_sharpness"], a["videoscore_visual_quality"], a["mjvideo_overall"]) == (1.0, 3.0, 0.5)


def test_manifest_metadata_is_the_latest_runs_and_decode_columns_the_latest_decodes(tmp_path: Path) -> None:
    write_run(tmp_path, R1, [{"video_id": "a", "generator": "old", "num_frames": 30, **tech(1.0)}])
    write_run(tmp_path, R2, [{"video_id": "a", "generator": "new", "status": None}])  # metadata-only row
    a = by_id(latest(str(tmp_path)))["a"]
    assert (a["generator"], a["num_frames"], a["status"], a["technical_sharpness"]) == ("new", 30, "ok", 1.0)


def test_status_is_the_latest_decode_failure_else_the_first_failing_scorer(tmp_path: Path) -> None:
    write_run(tmp_path, R1, [{"video_id": "a", **tech(1.0), **vs(2.0)}, {"video_id": "b", **tech(1.0), **vs(2.0)}],
              scorers=("technical", "videoscore"))  # fmt: skip
    write_run(
        tmp_path,
        R2,
        [
            {"video_id": "a", "status": "score_error", **vs(None, "score_error"), "videoscore_error": "oom"},
            {
                "video_id": "b",
                "status": "decode_error",
                "error": "broken",
                **tech(None, technical_status="decode_error"),
            },
        ],
        scorers=("technical", "videoscore"),
    )
    rows = by_id(latest(str(tmp_path)))
    assert (rows["a"]["status"], rows["a"]["error"]) == ("score_error", "oom")
    assert rows["a"]["technical_sharpness"] == 1.0  # the other scorer's value stands
    assert (rows["b"]["status"], rows["b"]["error"]) == ("decode_error", "broken")
    # Reading only technical columns: a's status is about what was read.
    only = by_id(latest(str(tmp_path), ["status", "technical_sharpness"]))
    assert only["a"]["status"] == "ok" and set(only["a"]) == {"video_id", "status", "technical_sharpness"}


def test_schema_evolution_pass_through_columns_of_any_type(tmp_path: Path) -> None:
    emb = pa.field("emb", pa.list_(pa.float32(), 2))
    write_run(tmp_path, R1, [{"video_id": "a", **tech(1.0)}])
    write_run(tmp_path, R2, [{"video_id": "b", "emb": [1.0, 2.0], "seed": 7, **tech(2.0)}],
              passthrough=[emb, pa.field("seed", pa.int64())])  # fmt: skip
    rows = by_id(latest(str(tmp_path)))
    assert rows["a"]["emb"] is None and rows["b"]["emb"] == [1.0, 2.0] and rows["b"]["seed"] == 7


def test_one_deterministic_tie_break(tmp_path: Path) -> None:
    # Same run id in two files (a retried task's copy): the later file name wins, however files are listed.
    write_run(tmp_path, R1, [{"video_id": "a", **tech(1.0)}], part=0)
    write_run(tmp_path, R1, [{"video_id": "a", **tech(9.0)}], part=1)
    assert by_id(latest(str(tmp_path)))["a"]["technical_sharpness"] == 9.0
    # Run order is the run id's, not the partition folder's or the listing's.
    other = tmp_path / "o"
    write_run(other, R2, [{"video_id": "a", **tech(2.0)}])
    write_run(other, R1, [{"video_id": "a", **tech(1.0)}])
    assert by_id(latest(str(other)))["a"]["technical_sharpness"] == 2.0


def test_reads_only_the_columns_asked_for(tmp_path: Path) -> None:
    write_run(tmp_path, R1, [{"video_id": "a", **tech(1.0)}])
    out = read_latest(str(tmp_path), ["technical_sharpness"])
    assert out.columns == ["video_id", "technical_sharpness"]
    with pytest.raises(TableError, match="nope"):
        read_latest(str(tmp_path), ["nope"])


def test_run_ids_order_runs_even_within_a_second_and_against_a_clock_behind(tmp_path: Path) -> None:
    from vidscore.pipeline.table import last_run, new_run_id

    first, second = new_run_id(), new_run_id()
    assert len(first.split("-")[0]) == len(second.split("-")[0]) == 21  # YYYYmmddTHHMMSSffffff
    future = "20991231T235959999999-000000"
    assert new_run_id(after=future) > future and new_run_id(after=R3) > R3
    # A run in the same second as an older-format id, with a smaller random suffix, is still the later one.
    same_second = "20260103T000000000001-000000"
    write_run(tmp_path, R3, [{"video_id": "a", **tech(1.0)}])
    write_run(tmp_path, same_second, [{"video_id": "a", **tech(2.0)}])
    assert by_id(latest(str(tmp_path)))["a"]["technical_sharpness"] == 2.0
    assert last_run([f"x/part-{R3}-000000.parquet", f"y/part-{same_second}-000000.parquet"]) == same_second
