"""Per (video, scorer) staleness rules, read from real Parquet tables through the one reader (no Ray)."""

import dataclasses
from pathlib import Path

import pyarrow as pa
import pytest

from tests.pipeline.runs import TECH, tech, write_run
from vidscore.operators.read import normalize
from vidscore.pipeline.resume import decide, load_previous

VS = dataclasses.replace(TECH, name="videoscore", checkpoint="TIGER-Lab/VideoScore", revision=None, reads_prompt=True)


def vs(value: float, **extra) -> dict:
    spec = VS.frame_spec.key
    return {"videoscore_visual_quality": value, "videoscore_checkpoint": VS.checkpoint, "videoscore_frames": spec,
            "videoscore_status": "ok", **extra}  # fmt: skip


def inputs(*rows: dict) -> pa.Table:
    """Manifest rows (video_id, uri, prompt, generator) normalized as the reader does."""
    cols = {k: [r.get(k) for r in rows] for k in ("video_id", "uri", "prompt", "generator")}
    return normalize(pa.table(cols), "/")


def row(vid: str, key: str = "1:a", **extra) -> dict:
    return {"video_id": vid, "uri": f"/{vid}.mp4", "prompt": "a cat", "generator": "g", "content_key": key, **extra}


def decision(tmp_path: Path, table_rows: list[dict], now: list[dict], keys: list, plans=(TECH,)):
    write_run(tmp_path, "20260101T000000-aaaaaa", table_rows, scorers=tuple(p.name for p in plans))
    previous = load_previous(str(tmp_path), list(plans))
    return decide(inputs(*now), keys, previous, list(plans), None)


def test_unchanged_is_skipped_and_new_is_scored(tmp_path: Path) -> None:
    d = decision(tmp_path, [row("a", **tech(1.0))], [row("a"), row("b")], ["1:a", "1:b"])
    assert d.todo["technical"].tolist() == [False, True] and d.reasons["technical"] == {"new": 1}
    assert d.send.tolist() == [False, True] and not d.metadata.any()


@pytest.mark.parametrize(
    ("stored", "key", "reason"),
    [
        ({}, "1:CHANGED", "changed_content"),
        ({"technical_frames": "8_linspace"}, "1:a", "changed_config"),
        ({"technical_revision": "0+static_threshold=0.5"}, "1:a", "changed_config"),
        ({"technical_checkpoint": "other"}, "1:a", "changed_config"),
        ({"technical_status": "score_error"}, "1:a", "retry"),
        ({"technical_status": "fetch_error"}, "1:a", "retry"),
        ({"technical_status": "decode_timeout"}, "1:a", "retry"),
    ],
)
def test_each_staleness_rule_rescores(tmp_path: Path, stored: dict, key: str, reason: str) -> None:
    d = decision(tmp_path, [row("a", **tech(1.0, **stored))], [row("a")], [key])
    assert d.todo["technical"].tolist() == [True] and d.reasons["technical"] == {reason: 1}


def test_a_decode_error_is_final_until_the_content_changes(tmp_path: Path) -> None:
    stored = [row("a", status="decode_error", **tech(None, technical_status="decode_error"))]
    assert not decision(tmp_path / "same", stored, [row("a")], ["1:a"]).send.any()
    assert decision(tmp_path / "new", stored, [row("a")], ["2:b"]).reasons["technical"] == {"changed_content": 1}


def test_unknown_content_keeps_the_value(tmp_path: Path) -> None:
    assert not decision(tmp_path, [row("a", key=None, **tech(1.0))], [row("a")], ["1:x"]).send.any()


def test_unlisted_inputs_are_statted_only_when_otherwise_kept(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"123")
    stored = [row("a", **tech(1.0)) | {"uri": str(video), "content_key": "3:stale"}]
    d = decision(tmp_path / "t", stored, [row("a") | {"uri": str(video)}], None)
    assert d.reasons["technical"] == {"changed_content": 1}  # the file's real key (size:mtime) differs


def test_the_unit_is_video_and_scorer(tmp_path: Path) -> None:
    table = [row("a", **tech(1.0), **vs(2.0)), row("b", **tech(1.0), **vs(2.0, videoscore_status="score_error"))]
    d = decision(tmp_path, table, [row("a"), row("b")], ["1:a", "1:a"], plans=(TECH, VS))
    assert d.todo["technical"].tolist() == [False, False]
    assert d.todo["videoscore"].tolist() == [False, True] and d.reasons["videoscore"] == {"retry": 1}
    # A scorer the table never saw is new everywhere; the others stay skipped.
    write_run(tmp_path / "t2", "20260101T000000-aaaaaa", [row("a", **tech(1.0))])
    d = decide(inputs(row("a")), ["1:a"], load_previous(str(tmp_path / "t2"), [TECH, VS]), [TECH, VS], None)
    assert d.todo["technical"].tolist() == [False] and d.reasons["videoscore"] == {"new": 1}


def test_changed_prompt_rescores_only_scorers_that_read_it(tmp_path: Path) -> None:
    table = [row("a", **tech(1.0), **vs(2.0))]
    d = decision(tmp_path, table, [row("a", prompt="a dog")], ["1:a"], plans=(TECH, VS))
    assert d.todo["technical"].tolist() == [False] and d.reasons["videoscore"] == {"changed_prompt": 1}
    only_tech = decision(tmp_path / "t", [row("a", **tech(1.0))], [row("a", prompt="a dog")], ["1:a"])
    # The prompt is metadata for the technical scorer: recorded without any decode or scoring.
    assert not only_tech.todo["technical"].any() and only_tech.metadata.tolist() == [True]


@pytest.mark.parametrize("change", [{"generator": "g2"}, {"uri": "/moved/a.mp4"}])
def test_metadata_only_changes_need_no_scoring(tmp_path: Path, change: dict) -> None:
    d = decision(tmp_path, [row("a", **tech(1.0)), row("b", **tech(1.0))], [row("a", **change), row("b")], ["1:a"] * 2)
    assert not d.todo["technical"].any() and d.metadata.tolist() == [True, False]


def test_tables_written_before_per_scorer_status_retry_by_row_status(tmp_path: Path) -> None:
    legacy = tech(None)
    del legacy["technical_status"]
    table = [row("a", status="fetch_error", **legacy)]
    write_run(tmp_path, "20260101T000000-aaaaaa", table)
    import pyarrow.parquet as pq

    path = next(tmp_path.rglob("*.parquet"))
    pq.write_table(pq.read_table(path).drop(["technical_status", "technical_error", "technical_run_id"]), path)
    d = decide(inputs(row("a")), ["1:a"], load_previous(str(tmp_path), [TECH]), [TECH], None)
    assert d.reasons["technical"] == {"retry": 1}


def test_unchanged_pass_through_columns_of_any_type_are_not_metadata_changes(tmp_path: Path) -> None:
    extra = {"seed": [7], "cfg": [float("nan")], "emb": [[0.5, 1.5]]}
    types = [pa.field("seed", pa.int64()), pa.field("cfg", pa.float64()), pa.field("emb", pa.list_(pa.float32(), 2))]
    stored = {"seed": 7, "cfg": float("nan"), "emb": [0.5, 1.5]}
    write_run(tmp_path, "20260101T000000-aaaaaa", [row("a", **tech(1.0), **stored)], passthrough=types)
    now = inputs(row("a"))
    for f in types:
        now = now.append_column(f, pa.array(extra[f.name], f.type))
    d = decide(now, ["1:a"], load_previous(str(tmp_path), [TECH]), [TECH], None)
    assert not d.send.any()
    changed = now.set_column(now.schema.get_field_index("seed"), "seed", pa.array([8]))
    d = decide(changed, ["1:a"], load_previous(str(tmp_path), [TECH]), [TECH], None)
    assert d.metadata.tolist() == [True] and not d.todo["technical"].any()
