"""Drift between runs: per scorer, generator and headline column, whether this run's scores differ from a
reference run's beyond chance, so a generator that got worse is visible the morning after.

The test, stated: a two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp, two-sided) of this run's ok
values against the reference run's, with Holm's step-down correction over every test of the run at a
family-wise false-alarm rate `alpha` (default 0.01). A difference is flagged only when it is also large enough
to matter: |Cohen's d| >= `min_effect` (default 0.2, the difference of means over the pooled standard deviation).
Each side needs `min_videos` ok values (default 20); smaller groups are reported as not tested. Fresh videos
from an unchanged generator are a resample of the same distribution and are not flagged; a generator whose
scores shifted is.

The reference, per scorer and generator: the pinned baseline run (`vidscore canary pin`) when it scored that
generator with that scorer, else the latest earlier run that did. Values come from the table's files (a run's
own rows, not the latest view), so a compacted table compares with what its snapshot kept. Only this run's and
the reference runs' files are read (`scored`).
"""

from typing import Any

import numpy as np
import polars as pl

from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.pipeline.config import DriftConfig
from vidscore.pipeline.output import table_files
from vidscore.pipeline.table import column_types, file_schemas, files_by_run, read_projected
from vidscore.schemas.scores import OK

TEST = "two-sample Kolmogorov-Smirnov, Holm-corrected"
MAX_LOOKBACK = 30  # earlier runs searched for a reference, at most (a small generator never reaches min_videos)
NO_GENERATOR = "(none)"


def _columns(plans: list[ScorerPlan]) -> set[str]:
    need = {"generator"}
    for plan in plans:
        need |= {f"{plan.name}_run_id", f"{plan.name}_status", *plan.headline_columns}
    return need


def _pairs(frame: pl.DataFrame, plans: list[ScorerPlan], before: str, least: int = 1) -> set[tuple[str, str]]:
    """(scorer, generator) pairs for which one run before `before` wrote at least `least` ok rows in `frame`."""
    out = set()
    for plan in plans:
        run, status = pl.col(f"{plan.name}_run_id"), pl.col(f"{plan.name}_status")
        ok = frame.filter(run.is_not_null() & (run < before) & (status == OK))
        counts = ok.group_by(f"{plan.name}_run_id", "generator").len()
        gens = counts.filter(pl.col("len") >= least)["generator"].unique().to_list()
        out |= {(plan.name, str(g) if g is not None else NO_GENERATOR) for g in gens}
    return out


def scored(
    output: str, plans: list[ScorerPlan], endpoint_url: str | None, run_id: str, pinned: str | None,
    min_videos: int = 20,
) -> pl.DataFrame:  # fmt: skip
    """This run's rows and its reference runs' rows, with the headline columns and each scorer's run and status.

    Reads this run's files, then the pinned run's, then earlier runs newest first, and stops once every
    (scorer, generator) this run scored has a run with `min_videos` ok rows, or after MAX_LOOKBACK earlier
    runs: a nightly table reads about two runs, not its history (a compacted snapshot is read when the
    search reaches it)."""
    runs = files_by_run(table_files(output, endpoint_url))  # names only: footers are read per run below
    mine = runs.pop(run_id, [])
    if not mine:
        return pl.DataFrame()
    need = _columns(plans)

    def read(files: list[str]) -> pl.DataFrame | None:
        schemas = file_schemas(output, endpoint_url, files=files)  # unreadable files are left out, logged
        if not schemas:
            return None
        order = {path: i for i, path in enumerate(schemas)}
        return read_projected(list(schemas), schemas, need, column_types(schemas), order, endpoint_url)

    first = read(mine)
    if first is None:
        return pl.DataFrame()
    frames = [first]
    wanted = _pairs(first, plans, "~")  # every pair this run scored ok ("~" sorts after every run id)
    earlier = sorted((k for k in runs if not k.startswith("~") and k < run_id), reverse=True)
    if pinned in earlier:
        earlier.remove(pinned)
        earlier.insert(0, pinned)
    for key in [*earlier[:MAX_LOOKBACK], *(k for k in runs if k.startswith("~"))]:
        if not wanted:
            break
        frame = read(runs[key])
        if frame is not None:
            frames.append(frame)
            wanted -= _pairs(frame, plans, run_id, min_videos)
    return pl.concat(frames, how="diagonal_relaxed")


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """Difference of means over the pooled standard deviation (0 when both sides are constant and equal)."""
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    delta = float(a.mean() - b.mean())
    if pooled == 0:
        return 0.0 if delta == 0 else float(np.sign(delta) * np.inf)
    return delta / float(pooled)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input order."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _reference(
    history: pl.DataFrame, plan: ScorerPlan, generator: str, run_id: str, pinned: str | None, least: int
) -> str | None:
    """The pinned run when it has `least` ok rows of the generator, else the latest earlier run that has, else
    the latest earlier run that scored it at all (then reported as too few)."""
    column = f"{plan.name}_run_id"
    scored_it = history.filter(
        (pl.col("generator") == generator) & pl.col(column).is_not_null() & (pl.col(column) < run_id)
    )
    if scored_it.is_empty():
        return None
    ok = scored_it.filter(pl.col(f"{plan.name}_status") == OK).group_by(column).len()
    enough = set(ok.filter(pl.col("len") >= least)[column].to_list())
    if pinned is not None and pinned in enough:
        return pinned
    return max(enough) if enough else scored_it[column].max()


def _ok_values(rows: pl.DataFrame, plan: ScorerPlan, generator: str, run: str, column: str) -> np.ndarray:
    picked = rows.filter(
        (pl.col("generator") == generator) & (pl.col(f"{plan.name}_run_id") == run)
        & (pl.col(f"{plan.name}_status") == OK)
    )[column]  # fmt: skip
    values = picked.cast(pl.Float64).drop_nulls().to_numpy()
    return values[np.isfinite(values)]


def drift(
    rows: pl.DataFrame, plans: list[ScorerPlan], run_id: str, pinned: str | None, config: DriftConfig
) -> dict[str, Any]:
    """The run summary's `drift` block: every (scorer, generator, column) result against its reference run,
    flagged ones first as alerts. `rows`: the table's files (`scored`), this run's rows included."""
    from scipy.stats import ks_2samp

    results: list[dict[str, Any]] = []
    if rows.is_empty() or "generator" not in rows.columns:
        return _block(results, config, pinned)
    rows = rows.with_columns(pl.col("generator").cast(pl.String).fill_null(NO_GENERATOR))
    for plan in plans:
        mine = rows.filter(pl.col(f"{plan.name}_run_id") == run_id)
        for generator in sorted(mine["generator"].unique().to_list()):
            ref = _reference(rows, plan, generator, run_id, pinned, config.min_videos)
            for column in plan.headline_columns:
                a = _ok_values(rows, plan, generator, run_id, column)
                entry = {"scorer": plan.name, "generator": generator, "column": column, "reference_run": ref,
                         "n": len(a), "mean": float(a.mean()) if len(a) else None}  # fmt: skip
                if ref is None:
                    results.append({**entry, "tested": False, "why": "no earlier run scored this generator"})
                    continue
                b = _ok_values(rows, plan, generator, ref, column)
                entry.update(reference_n=len(b), reference_mean=float(b.mean()) if len(b) else None)
                if min(len(a), len(b)) < config.min_videos:
                    results.append({**entry, "tested": False, "why": f"fewer than {config.min_videos} ok videos"})
                    continue
                test = ks_2samp(a, b)
                entry.update(delta=float(a.mean() - b.mean()), effect=cohens_d(a, b), ks=float(test.statistic))
                results.append({**entry, "tested": True, "p": float(test.pvalue)})
    tested = [r for r in results if r["tested"]]
    for r, adjusted in zip(tested, holm([r["p"] for r in tested])):
        r["p_holm"] = adjusted
        r["flagged"] = adjusted < config.alpha and abs(r["effect"]) >= config.min_effect
    return _block(results, config, pinned)


def _block(results: list[dict], config: DriftConfig, pinned: str | None) -> dict[str, Any]:
    flagged = [r for r in results if r.get("flagged")]
    alerts = [
        f"drift: {r['generator']} {r['column']} {'rose' if r['delta'] > 0 else 'fell'} by {abs(r['delta']):.3g} "
        f"(mean {r['reference_mean']:.4g} -> {r['mean']:.4g}, d={r['effect']:.2f}, KS p={r['p_holm']:.2g} Holm) "
        f"vs run {r['reference_run']}"
        for r in flagged
    ]
    return {
        "test": TEST,
        "alpha": config.alpha,
        "min_effect": config.min_effect,
        "min_videos": config.min_videos,
        "pinned_run": pinned,
        "tested": sum(1 for r in results if r["tested"]),
        "flagged": len(flagged),
        "alerts": alerts,
        "results": results,
    }
