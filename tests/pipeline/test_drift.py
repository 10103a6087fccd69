"""The drift test on known distributions: a shifted generator is flagged and named, resampled ones are not, the
reference is the pinned run when it scored the generator, small groups are not tested, Holm's correction holds."""

from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from vidscore.pipeline.config import ConfigError, parse_drift
from vidscore.pipeline.drift import cohens_d, drift, holm

PLAN = SimpleNamespace(name="vs", headline_columns=("vs_overall",))
R1, R2, R3 = "20261101T000000000000-aaaaaa", "20261102T000000000000-bbbbbb", "20261103T000000000000-cccccc"


def rows(run: str, generator: str, values: np.ndarray, status: str = "ok") -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame(
        {"generator": [generator] * n, "vs_run_id": [run] * n, "vs_status": [status] * n, "vs_overall": values}
    )


def test_a_shifted_generator_is_flagged_and_resampled_ones_are_not() -> None:
    rng = np.random.default_rng(0)
    frames = []
    for g in range(60):  # 60 unchanged generators: fresh videos from the same distribution each night
        frames += [rows(R1, f"same-{g:02d}", rng.normal(3, 0.5, 60)), rows(R2, f"same-{g:02d}", rng.normal(3, 0.5, 60))]
    frames += [rows(R1, "worse", rng.normal(3, 0.5, 60)), rows(R2, "worse", rng.normal(2.6, 0.5, 60))]
    block = drift(pl.concat(frames), [PLAN], R2, None, parse_drift(None))
    assert block["tested"] == 61 and block["flagged"] == 1
    (alert,) = block["alerts"]
    assert alert.startswith("drift: worse vs_overall fell by 0.") and f"vs run {R1}" in alert
    worse = next(r for r in block["results"] if r["generator"] == "worse")
    assert worse["flagged"] and worse["effect"] < -0.2 and worse["p_holm"] < 0.01 and worse["reference_run"] == R1
    # Uncorrected, some of the 60 resampled generators would pass p < 0.05: the correction is what keeps them quiet.
    assert sum(r["p"] < 0.05 for r in block["results"] if r["generator"] != "worse") >= 1


def test_a_significant_but_tiny_shift_is_not_flagged() -> None:
    rng = np.random.default_rng(1)
    big = pl.concat([rows(R1, "g", rng.normal(3, 0.5, 20000)), rows(R2, "g", rng.normal(3.04, 0.5, 20000))])
    (result,) = drift(big, [PLAN], R2, None, parse_drift(None))["results"]
    assert result["p_holm"] < 0.01 and abs(result["effect"]) < 0.2 and not result["flagged"]


def test_the_reference_is_the_pinned_run_when_it_scored_the_generator() -> None:
    rng = np.random.default_rng(2)
    base = [rows(R1, "g", rng.normal(2, 0.5, 40)), rows(R2, "g", rng.normal(3, 0.5, 40))]
    now = rows(R3, "g", rng.normal(3, 0.5, 40))
    pinned = drift(pl.concat([*base, now]), [PLAN], R3, R1, parse_drift(None))
    assert pinned["results"][0]["reference_run"] == R1 and pinned["flagged"] == 1 and pinned["pinned_run"] == R1
    latest = drift(pl.concat([*base, now]), [PLAN], R3, None, parse_drift(None))
    assert latest["results"][0]["reference_run"] == R2 and latest["flagged"] == 0
    # a pinned run that never scored the generator: the latest earlier run that did
    other = drift(pl.concat([*base, now, rows(R1, "h", rng.normal(0, 1, 40))]), [PLAN], R3, "nope", parse_drift(None))
    assert other["results"][0]["reference_run"] == R2


def test_small_groups_failed_rows_and_first_runs_are_not_tested() -> None:
    rng = np.random.default_rng(3)
    frame = pl.concat([
        rows(R1, "small", rng.normal(3, 0.5, 10)), rows(R2, "small", rng.normal(1, 0.5, 10)),
        rows(R1, "failed", rng.normal(3, 0.5, 30)), rows(R2, "failed", rng.normal(1, 0.5, 30), status="score_error"),
        rows(R2, "new", rng.normal(1, 0.5, 30)),
    ])  # fmt: skip
    results = {r["generator"]: r for r in drift(frame, [PLAN], R2, None, parse_drift(None))["results"]}
    assert not results["small"]["tested"] and "fewer than 20" in results["small"]["why"]
    assert not results["failed"]["tested"] and results["failed"]["n"] == 0
    assert not results["new"]["tested"] and "no earlier run" in results["new"]["why"]
    loose = drift(frame, [PLAN], R2, None, parse_drift({"min_videos": 5}))
    assert [r["generator"] for r in loose["results"] if r.get("flagged")] == ["small"]


def test_holm_and_effect_size() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1, never below an earlier rank
    assert cohens_d(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 0.0
    assert cohens_d(np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(1.0)


def test_drift_config() -> None:
    assert not parse_drift("off").enabled and parse_drift(None).alpha == 0.01
    assert parse_drift({"alpha": 0.05, "min_effect": 0.5, "min_videos": 30}).min_videos == 30
    bad_values = [({"alpha": 1.5}, "alpha must be"), ({"min_videos": 0}, "min_videos"), ({"x": 1}, "unknown"),
                  ({"min_videos": 1}, "at least 2")]  # fmt: skip
    for bad, message in bad_values:
        with pytest.raises(ConfigError, match=message):
            parse_drift(bad)


def write_run(root, run: str, generators: list[str], n: int = 5) -> None:
    """One run's file in the table layout, with its rows' scorer run ids."""
    import pyarrow.parquet as pq

    frame = pl.concat([rows(run, g, np.full(n, 1.0)) for g in generators]).with_columns(
        pl.Series("video_id", [f"{run}-{i}" for i in range(n * len(generators))])
    )
    folder = root / "run_date=2026-11-01"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(frame.to_arrow(), folder / f"part-{run}-000000.parquet")


def test_only_this_run_and_its_reference_runs_are_read(tmp_path) -> None:
    from vidscore.pipeline.drift import scored

    def read(run: str, pinned: str | None = None, least: int = 5) -> set[str]:
        return set(scored(str(tmp_path), [PLAN], None, run, pinned, least)["vs_run_id"].to_list())

    write_run(tmp_path, R1, ["g", "h"])
    write_run(tmp_path, R2, ["g"])
    write_run(tmp_path, R3, ["g"])
    assert read(R3) == {R3, R2}  # g's reference is the previous run: the oldest run's file is not read
    assert read(R3, pinned=R1) == {R3, R1}
    assert read(R3, least=6) == {R3, R2, R1}  # no earlier run has 6 ok videos of g: the search goes on
    # A generator the last runs did not score: the search goes back, newest first, to the run that did.
    r4 = "20261104T000000000000-dddddd"
    write_run(tmp_path, r4, ["g", "h"])
    wider = scored(str(tmp_path), [PLAN], None, r4, None, 5)
    assert set(wider["vs_run_id"].to_list()) == {r4, R3, R2, R1}
    result = drift(wider, [PLAN], r4, None, parse_drift({"min_videos": 2}))
    assert {r["generator"]: r["reference_run"] for r in result["results"]} == {"g": R3, "h": R1}
    assert scored(str(tmp_path), [PLAN], None, "20261105T000000000000-eeeeee", None).is_empty()  # wrote nothing


def test_the_reference_must_have_enough_videos() -> None:
    rng = np.random.default_rng(5)
    frame = pl.concat([
        rows(R1, "g", rng.normal(3, 0.5, 40)),
        rows(R2, "g", rng.normal(3, 0.5, 3)),  # the pinned run scored only 3 videos of g
        rows(R3, "g", rng.normal(3, 0.5, 40)),
    ])  # fmt: skip
    (result,) = drift(frame, [PLAN], R3, R2, parse_drift(None))["results"]
    assert result["reference_run"] == R1 and result["tested"]  # not "too few" forever because of the pin
    (latest,) = drift(frame.filter(pl.col("vs_run_id") != R1), [PLAN], R3, R2, parse_drift(None))["results"]
    assert latest["reference_run"] == R2 and not latest["tested"] and "fewer than 20" in latest["why"]
