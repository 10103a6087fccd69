"""End to end with the reward models: tiny real-architecture checkpoints through the real CLI on Ray."""

import json
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from vidscore.jobs.score import main
from vidscore.jobs.tiny import mjvideo, videoreward, videoscore
from vidscore.operators.decode import Decoder
from vidscore.operators.scorers import SCORERS
from vidscore.schemas import mjvideo as mj_cols
from vidscore.schemas import videoreward as vr_cols
from vidscore.schemas import videoscore as vs_cols

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        "videoscore": videoscore.build(root / "videoscore"),
        "mjvideo": mjvideo.build(root / "mjvideo"),
        "videoreward": videoreward.build(root / "videoreward"),
    }


def test_three_reward_models_in_one_run(corpus: Path, ray_cluster: str, checkpoints: dict, tmp_path: Path) -> None:
    """Three frame specs (arange/Idefics2, linspace_open/squash, fps/smart_resize) from one decode per video."""
    out = tmp_path / "scores"
    args = [str(corpus), "-o", str(out), "-s", f"videoscore={checkpoints['videoscore']}"]
    args += ["-s", f"videoreward={checkpoints['videoreward']}"]
    assert main([*args, "-s", f"mjvideo={checkpoints['mjvideo']}", "--batch-size", "3"]) == 0
    rows = pads.dataset(str(out), format="parquet").to_table().to_pylist()
    assert len(rows) == 10
    score_columns = [f.name for f in vs_cols.FIELDS + mj_cols.FIELDS + vr_cols.FIELDS if f.type == "float"]
    assert len(score_columns) == 5 + 34 + 8
    for row in rows:
        values = [row[c] for c in score_columns]
        if row["status"] == "ok":
            assert all(v is not None and np.isfinite(v) for v in values), row["uri"]
        else:
            assert row["status"] == "decode_error" and all(v is None for v in values)
    ok = next(r for r in rows if r["status"] == "ok")
    assert ok["videoscore_checkpoint"] == str(checkpoints["videoscore"])
    assert (
        ok["videoscore_revision"].startswith("sha256:") and ok["mjvideo_frames"] == "8_linspace_open_squash_56x56"
    )  # the tiny config uses 56 px tiles
    assert ok["videoscore_frames"] == "16_arange_idefics2_378x980"
    assert ok["videoreward_frames"] == "fps2_4to768_smart28_100352to200704"

    # The pipeline's numbers equal the operators run directly on the same file: nothing is lost in transit.
    plans = [SCORERS[n].plan(str(c)) for n, c in checkpoints.items()]
    batch = Decoder([p.frame_spec for p in plans])({"uri": np.array([ok["uri"]], dtype=object)})
    batch.update(video_id=np.array([ok["video_id"]], dtype=object), prompt=np.array([ok["prompt"]], dtype=object))
    for plan in plans:
        batch = plan.cls(**plan.init_kwargs)(batch)
    for column in score_columns:
        assert batch[column][0] == pytest.approx(ok[column], abs=1e-5), column
    summary = json.loads(next((out / "_vidscore").glob("run-*.json")).read_text())
    assert list(summary["scorers"]) == ["videoscore", "videoreward", "mjvideo"] and summary["status"] == {
        "ok": 9,
        "decode_error": 1,
    }


def test_bad_checkpoint_fails_before_work(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(corpus), "-o", str(tmp_path / "o"), "-s", f"videoscore={tmp_path / 'nope'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.parquet"))
