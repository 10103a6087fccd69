"""Refusals before any work: exit 2, a message that names the fix, nothing written, Ray never started."""

import json
from pathlib import Path

import pytest

from vidscore.jobs.score import main


def refused(argv: list[str], capsys: pytest.CaptureFixture, out: Path) -> str:
    assert main(argv) == 2
    assert not list(out.rglob("*.parquet"))
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("yaml", "named"),
    [
        ("decode_batch_size: 0", "decode_batch_size"),
        ("scorer_workers: 0", "scorer_workers"),
        ("rows_per_file: -5", "rows_per_file"),
        ("decode_timeout_s: -1", "decode_timeout_s"),
        ("max_pixels: 0", "max_pixels"),
        ("batch_size: 2.5", "batch_size"),
        ("limit: ten", "limit"),
        ("limit: true", "limit"),
        ("min_frames: 0", "min_frames"),
        ("gpu_memory_gb: .nan", "gpu_memory_gb"),
        ("lock_ttl_s: 0", "lock_ttl_s"),
        ("decode_workers: 1.5", "decode_workers"),
        ("scorers: technical", "scorers must be a list"),
        ("scorers: [{name: technical, batch_size: 2.5}]", "batch_size must be a whole number"),
        ("scorers: [{name: technical, batch_size: '4'}]", "batch_size must be a whole number"),
        ("endpoint_url: 5", "endpoint_url"),
    ],
)
def test_bad_config_values(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture, yaml: str, named: str) -> None:
    (tmp_path / "job.yaml").write_text(yaml + "\n")
    out = tmp_path / "out"
    err = refused([str(corpus), "-o", str(out), "--config", str(tmp_path / "job.yaml")], capsys, out)
    assert named in err and "error:" in err and "Traceback" not in err


@pytest.mark.parametrize("column", ["mjvideo_overall", "videoscore_visual_quality", "technical_foo", "todo__x"])
def test_manifest_columns_named_like_scores(tmp_path: Path, clip: Path, capsys, column: str) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"uri": str(clip), column: 0.5}) + "\n")
    err = refused([str(manifest), "-o", str(tmp_path / "out")], capsys, tmp_path / "out")
    assert column in err and "rename" in err


def test_unresolvable_hub_checkpoint(corpus: Path, tmp_path: Path, capsys) -> None:
    err = refused([str(corpus), "-o", str(tmp_path / "o"), "-s", "videoscore=no-such-org/no-such-model"],
                  capsys, tmp_path / "o")  # fmt: skip
    assert "no-such-org/no-such-model" in err and "local directory in the hub layout" in err


@pytest.mark.slow
def test_output_inside_the_input_folder(tmp_path: Path, clip: Path, ray_cluster: str, capsys) -> None:
    import shutil

    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "m.jsonl").write_text(json.dumps({"uri": str(clip), "video_id": "a"}) + "\n")
    shutil.copy(clip, folder / "b.mp4")
    for _ in range(2):  # the second run lists the table (under the input folder) and must not read it as input
        assert main([str(folder), "-o", str(folder / "scores")]) == 0
    out = capsys.readouterr().out
    assert "1 input videos, 1 up to date" in out
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "m.jsonl").write_text(json.dumps({"uri": str(clip), "video_id": "a"}) + "\n")
    for _ in range(2):  # a folder of manifests, the table inside it: its Parquet and JSON are not manifests
        assert main([str(manifests), "-o", str(manifests / "scores")]) == 0
    assert "1 input videos, 1 up to date" in capsys.readouterr().out


@pytest.mark.slow
def test_pass_through_embeddings_survive_the_pipeline(tmp_path: Path, clip: Path, ray_cluster: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vidscore.pipeline.table import latest

    emb = pa.array([[0.5, 1.5, 2.5], [3.0, 4.0, 5.0]], pa.list_(pa.float32(), 3))
    manifest = tmp_path / "m.parquet"
    pq.write_table(pa.table({"uri": [str(clip)] * 2, "video_id": ["a", "b"], "emb": emb}), manifest)
    assert main([str(manifest), "-o", str(tmp_path / "scores")]) == 0
    rows = latest(str(tmp_path / "scores"), ["emb", "status"]).collect().sort("video_id").to_dicts()
    assert [r["emb"] for r in rows] == [[0.5, 1.5, 2.5], [3.0, 4.0, 5.0]] and {r["status"] for r in rows} == {"ok"}
    schema = pq.read_schema(next((tmp_path / "scores").rglob("part-*.parquet")))
    assert schema.field("emb").type == pa.list_(pa.float32(), 3)
