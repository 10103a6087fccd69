"""Failure budget: the share of videos that may fail, for decoding and per scorer, before a run is a failure.

A nightly job whose decoder or model fails on most videos still writes its rows (each with a status), but it
must not look green: past its budget the run ends with EXIT_OVER_BUDGET after writing the summary.
"""

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from vidscore.schemas.scores import DECODE_ERROR, DECODE_TIMEOUT, FETCH_ERROR, SCORE_ERROR

EXIT_OVER_BUDGET = 3
DEFAULT_BUDGET = {"decode": 0.5, "scorer": 0.1}  # fractions of the videos this run decoded / scored
DECODE_FAILURES = (FETCH_ERROR, DECODE_ERROR, DECODE_TIMEOUT)


def budgets(value: Any, scorers: list[str]) -> dict[str, float]:
    """The budget per part (`decode` and each scorer) from the config value: None (defaults), one fraction for
    every part, or a mapping of parts (`decode`, scorer names, `default`) to fractions. ValueError names the fix."""
    if value is None:
        value = {}
    if isinstance(value, bool) or not isinstance(value, int | float | dict):
        raise ValueError(f"failure_budget must be a fraction (0-1) or a mapping of parts to fractions, got {value!r}")
    if not isinstance(value, dict):
        value = {"default": value}
    unknown = sorted(set(value) - {"default", "decode", *scorers})
    if unknown:
        raise ValueError(f"failure_budget names {unknown}; use default, decode or a requested scorer: {scorers}")
    out = {}
    for part in ("decode", *scorers):
        fallback = value.get("default", DEFAULT_BUDGET["decode" if part == "decode" else "scorer"])
        fraction = value.get(part, fallback)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
            raise ValueError(f"failure_budget for {part} must be a fraction between 0 and 1, got {fraction!r}")
        out[part] = float(fraction)
    return out


def _share(failed: int, of: int, budget: float) -> dict[str, Any]:
    fraction = failed / of if of else 0.0
    return {"failed": failed, "of": of, "fraction": round(fraction, 4), "budget": budget, "breached": fraction > budget}


def assess(rows: pa.Table, budget: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per part: failures among the videos this run decoded (rows with a status) or scored with that scorer
    (its own status set, frames decoded), against the budget."""
    status = rows.column("status").cast(pa.string())  # null-typed when this run wrote no rows
    decoded = pc.is_valid(status)
    decode_failed = pc.is_in(status, pa.array(DECODE_FAILURES))
    out = {
        "decode": _share(int(pc.sum(decode_failed).as_py() or 0), int(pc.sum(decoded).as_py() or 0), budget["decode"])
    }
    for part, share in budget.items():
        if part == "decode":
            continue
        own = (
            rows.column(f"{part}_status") if f"{part}_status" in rows.column_names else pa.nulls(len(rows), pa.string())
        )
        attempted = pc.and_(pc.is_valid(own), pc.invert(pc.fill_null(decode_failed, False)))
        failed = pc.and_(attempted, pc.equal(own, SCORE_ERROR))
        out[part] = _share(
            int(pc.sum(pc.fill_null(failed, False)).as_py() or 0), int(pc.sum(attempted).as_py() or 0), share
        )
    return out


def breaches(assessment: dict[str, dict[str, Any]]) -> list[str]:
    """One line per part over budget, for the terminal and the log."""
    return [
        f"{part}: {a['failed']} of {a['of']} failed ({a['fraction']:.0%}; budget {a['budget']:.0%})"
        for part, a in assessment.items()
        if a["breached"]
    ]
