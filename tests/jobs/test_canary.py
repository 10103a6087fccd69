"""The canary end to end: real runs of `vidscore score` on a local Ray score the default canary clips with every
requested scorer, keep them out of the table, stay silent on a rerun of the same environment, and catch a
planted dtype change with an alert that names the scorer, the move and the change (exit code 3)."""

import json
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from tests.jobs.canary_scorer import PlantedScorer
from vidscore.jobs import canary as canary_job
from vidscore.jobs.corpus import make_corpus
from vidscore.jobs.score import main
from vidscore.operators.scorers import SCORERS
from vidscore.schemas.scores import CANARY_PREFIX

pytestmark = pytest.mark.slow


def summary(out: Path) -> dict:
    return json.loads(sorted((out / "_vidscore").glob("run-*.json"))[-1].read_text())


def config(tmp_path: Path, name: str, dtype: str, extra: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"scorers: [technical, {{name: planted, dtype: {dtype}}}]\n{extra}")
    return str(path)


def test_canary_is_silent_on_a_rerun_and_catches_a_planted_dtype_change(
    ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(SCORERS, "planted", PlantedScorer)
    out = tmp_path / "scores"
    corpora = [make_corpus(tmp_path / f"c{i}", per_generator=1, include_bad=False) for i in range(3)]
    f32, f16 = config(tmp_path, "f32", "float32"), config(tmp_path, "f16", "float16")

    assert main([str(corpora[0]), "-o", str(out), "--config", f32]) == 0
    first = summary(out)["canary"]
    assert first["reference"] is None and not first["alerts"] and "no baseline yet" in first["notices"][0]
    record = first["record"]
    assert sorted(record["clips"]) == sorted(CANARY_PREFIX + n for n in ("fox", "coast", "still", "chef"))
    assert set(record["status"].values()) == {"ok"}
    assert all(v["technical_sharpness"] > 0 and v["planted_score"] > 100 for v in record["scores"].values())
    planted = record["environment"]["scorers"]["planted"]
    assert planted["dtype"] == "float32" and planted["software"].startswith("vidscore ")
    assert record["environment"]["decoder"].startswith("pyav ")
    # The canary rows are not in the table: only the corpus's videos are.
    ids = pads.dataset(str(out), format="parquet").to_table(columns=["video_id"]).column("video_id").to_pylist()
    assert len(ids) == 3 and not any(i.startswith(CANARY_PREFIX) for i in ids)
    assert len(list((out / "_vidscore/canary/runs").glob("*.parquet"))) >= 1

    assert canary_job.main(["pin", str(out)]) == 0
    assert "pinned run" in capsys.readouterr().out

    # New videos, same environment: compared with the pinned baseline, nothing moved.
    assert main([str(corpora[1]), "-o", str(out), "--config", f32]) == 0
    second = summary(out)["canary"]
    assert second["reference"]["kind"] == "pinned" and not second["alerts"] and not second["notices"]
    assert second["moved"]["planted"]["max_abs"] == 0 and second["moved"]["technical"]["max_abs"] <= 1e-6

    # Planted: the same scorer in float16. The run writes its rows and exits 3 with the alert.
    capsys.readouterr()
    assert main([str(corpora[2]), "-o", str(out), "--config", f16]) == 3
    third = summary(out)
    alert = next(a for a in third["canary"]["alerts"] if "planted" in a)
    assert "planted moved by" in alert and "planted dtype float32 -> float16" in alert
    assert third["canary"]["moved"]["planted"]["max_abs"] > 1e-3 and not third["canary"]["moved"]["technical"]["alert"]
    assert third["exit_code"] == 3 and any("canary: planted" in line for line in third["over_budget"])
    assert third["rows"] == 3 and "canary: planted moved by" in capsys.readouterr().err
    assert len(pads.dataset(str(out), format="parquet").to_table(columns=["video_id"])) == 9


def test_canary_off_a_user_set_and_the_reserved_prefix(ray_cluster: str, tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "scores"
    assert main([str(corpus), "-o", str(out), "-s", "technical", "--canary", "off"]) == 0
    assert "canary" not in summary(out) and not (out / "_vidscore/canary").exists()

    # A user's set: a manifest like any input; its ids land under the canary prefix.
    mine = make_corpus(tmp_path / "mine", per_generator=1, include_bad=False)
    extra = make_corpus(tmp_path / "extra", per_generator=1, include_bad=False)
    assert main([str(extra), "-o", str(out), "-s", "technical", "--canary", str(mine)]) == 0
    record = summary(out)["canary"]["record"]
    assert len(record["clips"]) == 3 and all(k.startswith(CANARY_PREFIX) for k in record["clips"])
    assert record["source"] == str(mine)

    # Bad canary settings and reserved ids fail before any work, with exit code 2.
    missing = tmp_path / "nope.jsonl"
    assert main([str(extra), "-o", str(tmp_path / "o2"), "-s", "technical", "--canary", str(missing)]) == 2
    reserved = tmp_path / "reserved.jsonl"
    reserved.write_text(
        json.dumps({"uri": str(corpus.parent / "videos/frozen-000.mp4"), "video_id": "vidscore-canary/x"})
    )
    assert main([str(reserved), "-o", str(tmp_path / "o3"), "-s", "technical"]) == 2
    assert not list((tmp_path / "o3").glob("run_date=*"))
