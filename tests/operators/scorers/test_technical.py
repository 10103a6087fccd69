"""The technical scorer on hand-built batches: known values, ordering between clips, failed rows."""

import numpy as np
import pytest

from vidscore.jobs.corpus import render
from vidscore.operators.decode import EMPTY
from vidscore.operators.scorers.technical import SPEC, TechnicalScorer, measures


def batch_of(clips: list[np.ndarray]) -> dict[str, np.ndarray]:
    frames = np.empty(len(clips), dtype=object)
    frames[:] = clips
    n = len(clips)
    return {
        "video_id": np.array([str(i) for i in range(n)], dtype=object),
        "status": np.array(["ok"] * n, dtype=object),
        "error": np.full(n, None, dtype=object),
        SPEC.column: frames,
    }


def test_known_values() -> None:
    flat = np.full((4, 10, 10, 3), 128, np.uint8)
    assert measures(flat) == pytest.approx((0.0, 0.0, 128 / 255, 0.0))
    # A checkerboard: Laplacian is +-4*255 in the interior, so its variance is (4*255)^2.
    board = ((np.indices((10, 10)).sum(0) % 2) * 255).astype(np.uint8)
    clip = np.repeat(np.stack([board] * 3, -1)[None], 2, 0)
    sharpness, motion, brightness, contrast = measures(clip)
    assert sharpness == pytest.approx((4 * 255) ** 2, rel=1e-4)
    assert (motion, brightness, contrast) == pytest.approx((0.0, 0.5, 0.5), abs=1e-4)
    # Alternating black and white frames: maximal motion.
    alternating = np.stack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)] * 2)
    assert measures(alternating)[1] == pytest.approx(1.0)


def test_orders_the_pretend_generators() -> None:
    crisp, soft, frozen = (render(k, 3, 16, 96, 128) for k in ("crisp-motion", "soft-drift", "frozen"))
    out = TechnicalScorer()(batch_of([crisp, soft, frozen]))
    assert out["technical_sharpness"][0] > 10 * out["technical_sharpness"][1]
    assert out["technical_motion"][0] > out["technical_motion"][1] > out["technical_motion"][2] == 0
    assert list(out["technical_static"]) == [False, False, True]
    assert out["technical_sharpness"].dtype == np.float32
    assert set(out["technical_frames"]) == {SPEC.key} and set(out["technical_checkpoint"]) == {"builtin"}
    assert SPEC.column in out  # kept for a later scorer by default; the last reader drops it
    dropped = TechnicalScorer()(batch_of([crisp, soft, frozen]), drop_frames=True)
    assert SPEC.column not in dropped
    np.testing.assert_array_equal(dropped["technical_motion"], out["technical_motion"])


def test_failed_rows_get_nulls_and_keep_status() -> None:
    batch = batch_of([EMPTY, render("frozen", 1, 4, 32, 32)])
    batch["status"][0], batch["error"][0] = "decode_error", "bad"
    out = TechnicalScorer()(batch)
    assert np.isnan(out["technical_motion"][0]) and out["technical_static"][0] is None
    assert list(out["status"]) == ["decode_error", "ok"] and out["error"][0] == "bad"


def test_plan_validates_options() -> None:
    plan = TechnicalScorer.plan(static_threshold=0.01, batch_size=3)
    assert plan.init_kwargs == {"static_threshold": 0.01} and plan.batch_size == 3 and plan.gpu_memory_gb == 0
    with pytest.raises(ValueError, match="no checkpoint"):
        TechnicalScorer.plan("some/model")
    with pytest.raises(ValueError, match="unknown technical options"):
        TechnicalScorer.plan(threshold=1)


def test_scores_and_stamps_only_the_rows_this_run_runs_it_on() -> None:
    clip = render("crisp-motion", 1, 4, 16, 16)
    batch = batch_of([clip, clip, EMPTY])
    batch["status"][2], batch["error"][2] = "decode_error", "truncated"
    batch["todo__technical"] = np.array([True, False, True])
    out = TechnicalScorer()(batch)
    assert out["technical_sharpness"][0] > 0 and np.isnan(out["technical_sharpness"][1])
    assert list(out["technical_checkpoint"]) == ["builtin", None, "builtin"]
    assert list(out["technical_device"]) == ["cpu", None, "cpu"]
    # Its own status: ok where it scored, the decode failure where it had no frames, null where it did not run.
    assert list(out["technical_status"]) == ["ok", None, "decode_error"]
    assert list(out["technical_error"]) == [None, None, "truncated"]
