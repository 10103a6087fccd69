"""The canary's rules, on hand-made records: when it alerts, what the alert names, when it stays silent, and
what it refuses to compare; its config; its rows' isolation in batches; the writer keeping them out of the table."""

import copy
import json
from types import SimpleNamespace

import numpy as np
import pyarrow.dataset as pads
import pytest

from vidscore.operators.conform import conform
from vidscore.operators.scorers.runtime import length_buckets
from vidscore.pipeline.canary import compare
from vidscore.pipeline.config import ConfigError, ScoreConfig, ScorerConfig, merge, parse_canary
from vidscore.pipeline.sink import ScoreTableSink
from vidscore.schemas.scores import CANARY_PREFIX, score_schema
from vidscore.schemas.technical import FIELDS

PLANS = [SimpleNamespace(name="videoscore"), SimpleNamespace(name="technical")]
CLIPS = {f"{CANARY_PREFIX}a": "aa", f"{CANARY_PREFIX}b": "bb"}


def env(**videoscore: str) -> dict:
    base = {"checkpoint": "TIGER-Lab/VideoScore", "revision": "r1", "frames": "16_arange", "device": "cuda:0",
            "dtype": "bfloat16", "attention": "flash_attention_2", "software": "torch 2.5.1"}  # fmt: skip
    ok = {vid: "ok" for vid in CLIPS}
    return {
        "driver": {"torch": "2.5.1", "av": "13.0.0"},
        "decoder": "pyav 13.0.0 (FFmpeg 7.0)",
        "scorers": {
            "videoscore": {**base, **videoscore, "status": dict(ok)},
            "technical": {**base, "checkpoint": "builtin", "status": dict(ok)},
        },
    }


def record(shift: float = 0.0, tech_shift: float = 0.0, **videoscore: str) -> dict:
    scores = {
        vid: {"videoscore_visual_quality": 2.5 + i + shift, "technical_sharpness": 100.0 + i + tech_shift}
        for i, vid in enumerate(CLIPS)
    }
    return {"source": "default", "clips": dict(CLIPS), "scores": scores, "status": dict.fromkeys(CLIPS, "ok"),
            "errors": {}, "environment": env(**videoscore)}  # fmt: skip


CONFIG = parse_canary("default")


def test_a_rerun_in_the_same_environment_is_silent() -> None:
    result = compare(record(), record(), CONFIG, PLANS)
    assert not result["alerts"] and not result["notices"] and not result["changed"]
    assert result["moved"]["videoscore"]["max_abs"] == 0 and not result["moved"]["videoscore"]["alert"]


def test_a_move_past_tolerance_alerts_with_the_scorer_the_size_and_the_change() -> None:
    result = compare(record(0.02, dtype="float32"), record(), CONFIG, PLANS)
    (alert,) = result["alerts"]
    assert alert.startswith("canary: videoscore moved by 0.02 (videoscore_visual_quality on vidscore-canary/")
    assert "tolerance 0.001" in alert and "videoscore dtype bfloat16 -> float32" in alert
    assert result["moved"]["videoscore"]["alert"] and not result["moved"]["technical"]["alert"]


def test_a_move_within_tolerance_or_with_a_looser_one_is_silent() -> None:
    assert not compare(record(0.0009), record(), CONFIG, PLANS)["alerts"]
    loose = parse_canary({"tolerance": {"videoscore": 0.05}})
    assert not compare(record(0.02), record(), loose, PLANS)["alerts"]
    # technical has its own, tighter default: a decoder change that moves it alerts and is named
    moved = record(tech_shift=0.01)
    moved["environment"]["decoder"] = "pyav 17.0.0 (FFmpeg 7.1)"
    (alert,) = compare(moved, record(), CONFIG, PLANS)["alerts"]
    assert (
        alert.startswith("canary: technical moved by 0.01") and "decoder pyav 13.0.0 (FFmpeg 7.0) -> pyav 17" in alert
    )


def test_an_unexplained_move_still_alerts() -> None:
    (alert,) = compare(record(0.3), record(), CONFIG, PLANS)["alerts"]
    assert "moved by 0.3" in alert and "nothing recorded changed" in alert


def test_a_changed_checkpoint_or_frame_recipe_is_not_compared_but_said() -> None:
    result = compare(record(1.0, checkpoint="TIGER-Lab/VideoScore-v1.1"), record(), CONFIG, PLANS)
    assert not result["alerts"] and "videoscore" not in result["moved"]
    assert (
        "videoscore not compared, checkpoint TIGER-Lab/VideoScore -> TIGER-Lab/VideoScore-v1.1; pin again"
        in (result["notices"][0])
    )
    assert "not compared, frames" in compare(record(1.0, frames="48_arange"), record(), CONFIG, PLANS)["notices"][0]


def test_other_clips_are_not_compared() -> None:
    other = record(5.0)
    other["clips"][f"{CANARY_PREFIX}a"] = "changed bytes"
    result = compare(other, record(), CONFIG, PLANS)
    assert not result["alerts"] and not result["moved"] and "clips differ" in result["notices"][0]


def test_a_failed_canary_clip_alerts_even_without_a_reference() -> None:
    failed = record()
    failed["environment"]["scorers"]["videoscore"]["status"][f"{CANARY_PREFIX}b"] = "score_error"
    failed["errors"][f"{CANARY_PREFIX}b"] = "videoscore: CUDA error"
    for before in (None, copy.deepcopy(record())):
        alerts = compare(failed, before, CONFIG, PLANS)["alerts"]
        assert alerts[0] == f"canary: videoscore failed on 1 clip(s), first {CANARY_PREFIX}b: videoscore: CUDA error"


def test_canary_config() -> None:
    assert parse_canary("off").clips is None and parse_canary(False).clips is None
    assert parse_canary(None).clips == "default" and parse_canary("s3://b/canary/").clips == "s3://b/canary/"
    c = parse_canary({"clips": "default", "tolerance": {"videoscore": 0.01, "default": 0.002}})
    assert (c.tolerance_for("videoscore"), c.tolerance_for("mjvideo"), c.tolerance_for("technical")) == (
        0.01,
        0.002,
        0.002,
    )
    d = parse_canary("default")
    assert (d.tolerance_for("technical"), d.tolerance_for("videoreward")) == (1e-4, 1e-3)
    assert parse_canary({"tolerance": 0.5}).tolerance_for("technical") == 0.5
    for bad, message in [
        ({"clip": "x"}, "unknown keys"),
        ({"tolerance": {"videoscore": -1}}, "must be a number >= 0"),
        ({"tolerance": {"videoscore": True}}, "must be a number >= 0"),
        (3, "canary must be default, off"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_canary(bad)
    with pytest.raises(ConfigError, match=r"canary tolerance names \['videoscor'\]"):
        ScoreConfig("in", "out", [ScorerConfig("videoscore")], canary={"tolerance": {"videoscor": 0.1}})
    # A scorer the run does not request may keep its tolerance (a shared file, -s picking some scorers).
    shared = {"canary": {"clips": "default", "tolerance": {"technical": 1e-4, "mjvideo": 0.01}}}
    picked = merge(shared, {"input": "in", "output": "out", "scorers": [ScorerConfig("videoscore")]})
    assert picked.canary.tolerance_for("mjvideo") == 0.01
    # --canary names the clips; the file's tolerances stay.
    flagged = merge(shared, {"input": "in", "output": "out", "canary": "s3://b/mine/"})
    assert flagged.canary.clips == "s3://b/mine/" and flagged.canary.tolerance_for("technical") == 1e-4


def test_canary_rows_are_batched_alone() -> None:
    groups = length_buckets([5, 1, 3, 2, 4], 2, alone=[False, True, False, False, True])
    assert [1] in groups and [4] in groups
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    assert all(len(g) <= 2 and not ({1, 4} & set(g)) for g in groups if g not in ([1], [4]))
    assert length_buckets([3, 1, 2], 2) == [[1, 2], [0]]  # without canary rows: as before


def test_the_writer_keeps_canary_rows_out_of_the_table(tmp_path) -> None:
    schema = score_schema(list(FIELDS), [])
    ids = ["v1", f"{CANARY_PREFIX}fox", "v2"]
    batch = {"video_id": np.array(ids, dtype=object), "uri": np.array(["/v.mp4"] * 3, dtype=object)}
    full = conform(batch, schema, "20261201T000000000000-abcdef", ["technical"])
    sink = ScoreTableSink(str(tmp_path), "20261201T000000000000-abcdef", "2026-12-01", schema, 100)
    paths = sink.write([full], SimpleNamespace(task_idx=3))
    sink.on_write_complete(SimpleNamespace(write_returns=[paths]))
    assert len(sink.files) == 1 and len(sink.canary_files) == 1 and "/_vidscore/canary/runs/" in sink.canary_files[0]
    in_table = pads.dataset(str(tmp_path), format="parquet").to_table().column("video_id").to_pylist()
    assert sorted(in_table) == ["v1", "v2"]
    kept = pads.dataset(sink.canary_files[0], format="parquet").to_table().column("video_id").to_pylist()
    assert kept == [f"{CANARY_PREFIX}fox"]


def test_a_score_that_turns_nan_alerts() -> None:
    broken = record()
    broken["scores"][f"{CANARY_PREFIX}a"]["videoscore_visual_quality"] = None  # NaN is recorded as missing
    (alert,) = compare(broken, record(), CONFIG, PLANS)["alerts"]
    assert alert.startswith("canary: videoscore a value became NaN or missing (videoscore_visual_quality on")


def test_a_revision_change_is_asked_for_only_when_the_run_pinned_it() -> None:
    moved = record(0.5, revision="r2")
    unpinned = compare(moved, record(), CONFIG, PLANS)  # a hub checkpoint that moved upstream: compared
    (alert,) = unpinned["alerts"]
    assert "videoscore moved by 0.5" in alert and "videoscore revision r1 -> r2" in alert
    pinned = [SimpleNamespace(name="videoscore", revision="r2"), SimpleNamespace(name="technical", revision="1")]
    result = compare(moved, record(), CONFIG, pinned)
    assert not result["alerts"] and "videoscore not compared, revision r1 -> r2; pin again" in result["notices"][0]


def test_a_damaged_baseline_or_summary_never_crashes_the_run(tmp_path) -> None:
    from vidscore.operators.scorers.technical import TechnicalScorer
    from vidscore.pipeline.canary import CanarySet, reference
    from vidscore.pipeline.run import _canary_check

    meta = tmp_path / "_vidscore"
    (meta / "canary").mkdir(parents=True)
    (meta / "run-20261101T000000000000-aaaaaa.json").write_text('{"canary": {"record": {"clips": {}}')  # cut off
    assert reference(str(tmp_path), "20261102T000000000000-bbbbbb", None) == (None, None)  # skipped, not fatal
    (meta / "canary" / "baseline.json").write_text("{}")
    cfg = ScoreConfig("in", str(tmp_path), [ScorerConfig("technical")])
    clips = CanarySet("default", [{"video_id": f"{CANARY_PREFIX}fox", "uri": "u", "prompt": "p"}], {"x": "y"})
    block = _canary_check(cfg, [TechnicalScorer.plan()], clips, [], "20261102T000000000000-bbbbbb", {})
    assert block["alerts"][0].startswith("canary: not checked (ValueError: the pinned canary baseline of")
    assert block["alerts"][0].endswith("fix it or pin again")


def test_pin_and_show(tmp_path, capsys) -> None:
    from vidscore.jobs import canary as job

    meta = tmp_path / "_vidscore"
    meta.mkdir()
    good, bad = record(), record()
    bad["status"][f"{CANARY_PREFIX}b"] = "decode_error"

    def summary(run: str, rec: dict | None) -> None:
        block = {"record": rec, "reference": None, "alerts": [], "notices": [], "moved": {}} if rec else None
        (meta / f"run-{run}.json").write_text(json.dumps({"canary": block} if block else {"rows": 0}))

    summary("20261101T000000000000-aaaaaa", good)
    summary("20261102T000000000000-bbbbbb", bad)
    summary("20261103T000000000000-cccccc", None)  # scored nothing: no canary
    assert job.main(["show", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "baseline: none pinned" in shown and "latest run with a canary: 20261102T000000000000-bbbbbb" in shown
    # the latest run with a canary failed a clip: refused, nothing pinned
    assert job.main(["pin", str(tmp_path)]) == 2
    assert "failed clips" in capsys.readouterr().err and not (meta / "canary" / "baseline.json").exists()
    assert job.main(["pin", str(tmp_path), "--run", "20261103T000000000000-cccccc"]) == 2
    assert "has no canary record" in capsys.readouterr().err
    assert job.main(["pin", str(tmp_path), "--run", "20261101T000000000000-aaaaaa"]) == 0
    pinned = json.loads((meta / "canary" / "baseline.json").read_text())
    assert pinned["run_id"] == "20261101T000000000000-aaaaaa" and pinned["record"] == good
    assert job.main(["show", str(tmp_path)]) == 0
    assert "baseline: run 20261101T000000000000-aaaaaa" in capsys.readouterr().out
