"""Run summary: video-hour throughput per wall-clock hour and per GPU-hour, on a hand-built table."""

import pyarrow as pa

from vidscore.pipeline.summary import pool_busy, render, summarize


def table() -> pa.Table:
    return pa.table(
        {
            "video_id": ["a", "b", "c", "d"],
            "generator": ["g1", "g1", "g2", "g2"],
            "status": ["ok", "ok", "decode_error", "ok"],
            "error": [None, None, "bad", None],
            "duration_s": pa.array([1800.0, 900.0, 3600.0, 900.0], pa.float32()),
            "videoscore_visual_quality": pa.array([1.0, 2.0, None, 3.0], pa.float32()),
        }
    )


def test_video_hours_per_hour_and_per_gpu_hour() -> None:
    # 1 h of ok video (the failed row's hour does not count) in 30 min of wall time on 4 GPUs.
    s = summarize(table(), ["videoscore_visual_quality"], wall_s=1800.0, gpus=4.0)
    assert s["gpus"] == 4.0 and s["video_hours"] == 1.0
    assert s["video_hours_per_hour"] == 2.0 and s["video_hours_per_gpu_hour"] == 0.5
    assert s["status"] == {"ok": 3, "decode_error": 1}
    assert "2.0 video-hours per hour, 0.5 per GPU-hour on 4 GPUs" in render(s)


def test_no_gpus_or_no_ray_gives_null_per_gpu_hour() -> None:
    for gpus in (0.0, None):
        s = summarize(table(), ["videoscore_visual_quality"], wall_s=1800.0, gpus=gpus)
        assert s["video_hours_per_hour"] == 2.0 and s["video_hours_per_gpu_hour"] is None
        assert "(no GPUs)" in render(s)


def test_empty_run_and_missing_durations() -> None:
    empty = summarize(table().slice(0, 0), [], wall_s=0.0, gpus=None)
    assert empty["video_hours"] == 0.0 and empty["video_hours_per_hour"] is None
    nulls = table().set_column(4, "duration_s", pa.array([None] * 4, pa.float32()))
    assert summarize(nulls, [], wall_s=10.0, gpus=1.0)["video_hours_per_gpu_hour"] == 0.0


def test_pool_busy_shares_name_the_bottleneck() -> None:
    stages = {"MapBatches(Decoder)": 36.0, "MapBatches(VideoScoreScorer)": 4.5, "MapBatches(conform)->Write": 1.0}
    busy = pool_busy(stages, {"Decoder": 4, "VideoScoreScorer": 1, "MJVideoScorer": 1}, wall_s=10.0)
    assert busy == {"Decoder": 0.9, "VideoScoreScorer": 0.45}  # no stats for a pool: no share
    assert pool_busy(stages, {"Decoder": 4}, wall_s=0.0) == {}
    s = summarize(table(), [], wall_s=10.0, gpus=1.0, pool_busy=busy)
    assert "pool busy: Decoder 90%, VideoScoreScorer 45%" in render(s)


def test_the_printed_means_fit_120_columns_with_many_generators() -> None:
    n = 13
    rows = pa.table(
        {
            "video_id": [f"v{i}" for i in range(n)],
            "generator": [f"generator-with-a-long-name-{i:02d}" for i in range(n)],
            "status": ["ok"] * n,
            "error": [None] * n,
            "duration_s": pa.array([10.0] * n, pa.float32()),
            "mjvideo_coherence_consistency": pa.array([float(i) for i in range(n)], pa.float32()),
        }
    )
    text = render(summarize(rows, ["mjvideo_coherence_consistency"], wall_s=10.0, gpus=None))
    assert max(len(line) for line in text.splitlines()) <= 120
    # every generator's mean is printed once, in blocks of as many generators as fit
    values = [line for line in text.splitlines() if line.startswith("  coherence_consistency")]
    assert len(values) == 3 and sum(len(v.split()) - 1 for v in values) == n
    assert sum(line.count("1/1") for line in text.splitlines() if line.startswith("ok / videos")) == n
