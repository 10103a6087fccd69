"""The score table as a system of record, end to end on Ray: changing scorer sets, prompts, concurrent runs."""

import json
from pathlib import Path

import polars as pl
import pytest

from vidscore.jobs import filter as filter_job
from vidscore.jobs.score import main
from vidscore.jobs.tiny import mjvideo, videoscore
from vidscore.pipeline.lock import TableLock
from vidscore.pipeline.table import latest

pytestmark = pytest.mark.slow


def summary(out: Path) -> dict:
    return json.loads(sorted((out / "_vidscore").glob("run-*.json"))[-1].read_text())


def kept(path: Path) -> int:
    return pl.read_parquet(path).height


def test_scorer_sets_prompts_and_metadata_over_runs(corpus: Path, ray_cluster: str, tmp_path: Path) -> None:
    vs, mj = videoscore.build(tmp_path / "vs"), mjvideo.build(tmp_path / "mj")
    out, manifest = tmp_path / "scores", tmp_path / "m.jsonl"
    rows = [{**r, "uri": str(corpus.parent / r["uri"])} for r in map(json.loads, corpus.read_text().splitlines())]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = [str(manifest), "-o", str(out)]
    every = ["-s", "technical", "-s", f"videoscore={vs}", "-s", f"mjvideo={mj}"]
    assert main([*base, "-s", "technical", "-s", f"videoscore={vs}"]) == 0
    first = latest(str(out)).collect().sort("uri")
    where = ["--where", "videoscore_visual_quality IS NOT NULL"]
    assert filter_job.main([str(out), "-o", str(tmp_path / "f1.parquet"), *where]) == 0
    assert kept(tmp_path / "f1.parquet") == 9

    # A run with another scorer set adds its columns; every earlier value stays visible.
    assert main([*base, "-s", f"mjvideo={mj}"]) == 0
    assert summary(out)["scorers"]["mjvideo"]["reasons"] == {"new": 10}
    assert filter_job.main([str(out), "-o", str(tmp_path / "f2.parquet"), *where]) == 0
    assert kept(tmp_path / "f2.parquet") == 9
    both = latest(str(out)).collect().sort("uri")
    assert both["videoscore_visual_quality"].to_list() == first["videoscore_visual_quality"].to_list()
    assert both["mjvideo_overall"].is_not_null().sum() == 9

    # Listing every scorer again recomputes and decodes nothing.
    assert main([*base, *every]) == 0
    s = summary(out)
    assert s["rows"] == 0 and all(c["scored"] == 0 for c in s["scorers"].values())

    # A changed prompt rescores only the scorers that read it; a changed generator is metadata only.
    rows[0]["prompt"], rows[1]["generator"] = "a completely different prompt", "renamed"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([*base, *every]) == 0
    s = summary(out)
    assert s["scorers"]["videoscore"]["reasons"] == s["scorers"]["mjvideo"]["reasons"] == {"changed_prompt": 1}
    assert s["scorers"]["technical"]["scored"] == 0 and s["metadata_only"] == 1
    now = latest(str(out)).collect().sort("uri")
    assert now.height == 10
    by_uri = {r["uri"]: r for r in now.to_dicts()}
    old = {r["uri"]: r for r in both.to_dicts()}
    renamed = by_uri[rows[1]["uri"]]
    assert renamed["generator"] == "renamed" and renamed["mjvideo_overall"] == old[rows[1]["uri"]]["mjvideo_overall"]
    prompted = by_uri[rows[0]["uri"]]
    assert prompted["prompt"] == "a completely different prompt"
    assert prompted["technical_run_id"] == old[rows[0]["uri"]]["technical_run_id"]  # not recomputed
    assert prompted["videoscore_run_id"] == s["run_id"] != old[rows[0]["uri"]]["videoscore_run_id"]
    assert prompted["videoscore_device"] == "cpu" and prompted["videoscore_dtype"] == "float32"
    assert prompted["videoscore_attention"] == "sdpa" and prompted["videoscore_software"].startswith("vidscore ")


def test_a_second_run_on_a_held_table_refuses_before_work(corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scores"
    with TableLock(str(out), "20260101T000000-abcdef"):
        assert main([str(corpus), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "run 20260101T000000-abcdef on host" in err and "started" in err
    assert not list(out.rglob("*.parquet"))
