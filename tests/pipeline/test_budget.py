"""Failure budget: parsing, and which failures count against which part."""

import pyarrow as pa
import pytest

from vidscore.pipeline.budget import assess, breaches, budgets


def test_budget_values() -> None:
    assert budgets(None, ["technical"]) == {"decode": 0.5, "technical": 0.1}
    assert budgets(0.2, ["technical", "mjvideo"]) == {"decode": 0.2, "technical": 0.2, "mjvideo": 0.2}
    assert budgets({"default": 0.3, "mjvideo": 0}, ["technical", "mjvideo"]) == {
        "decode": 0.3, "technical": 0.3, "mjvideo": 0.0}  # fmt: skip
    for bad, match in [(1.5, "between 0 and 1"), ("lots", "a fraction"), ({"videoscor": 0.1}, "videoscor"),
                       ({"decode": -0.1}, "between 0 and 1"), (True, "a fraction")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            budgets(bad, ["technical"])


def rows(statuses: list[str | None], own: list[str | None]) -> pa.Table:
    return pa.table({"status": pa.array(statuses, pa.string()), "mjvideo_status": pa.array(own, pa.string())})


def test_a_scorer_failing_every_row_breaches_its_budget() -> None:
    table = rows(["score_error"] * 4, ["score_error"] * 4)
    result = assess(table, {"decode": 0.5, "mjvideo": 0.1})
    assert result["mjvideo"] == {"failed": 4, "of": 4, "fraction": 1.0, "budget": 0.1, "breached": True}
    assert not result["decode"]["breached"]
    assert breaches(result) == ["mjvideo: 4 of 4 failed (100%; budget 10%)"]


def test_decode_failures_count_once_and_metadata_rows_not_at_all() -> None:
    table = rows(["ok", "decode_error", "fetch_error", None, "ok"], ["ok", "decode_error", "fetch_error", None, "ok"])
    result = assess(table, {"decode": 0.5, "mjvideo": 0.0})
    assert (result["decode"]["failed"], result["decode"]["of"]) == (2, 4)  # the metadata-only row is not a decode
    assert (result["mjvideo"]["failed"], result["mjvideo"]["of"]) == (0, 2)  # no frames: the decode's failure
    assert not result["decode"]["breached"] and not result["mjvideo"]["breached"]
    assert assess(table, {"decode": 0.49, "mjvideo": 0.0})["decode"]["breached"]
