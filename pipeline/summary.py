"""Run summary: rows by status, throughput, time per stage, per-generator means; printed and saved."""

import math
import textwrap
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from vidscore.schemas.scores import OK


def stage_times(ds: Any) -> dict[str, float]:
    """Worker seconds per Ray Data operator of an executed dataset (empty if Ray does not report them)."""
    times: dict[str, float] = {}
    try:
        pending = [ds.get_stats_summary()]  # a DeveloperAPI in Ray 2.60; covers the write's execution
        while pending:
            node = pending.pop()
            pending.extend(node.parents)
            for op in node.operators_stats:
                if op.wall_time is not None:
                    times[op.operator_name] = round(float(op.wall_time.sum), 3)
    except Exception:  # noqa: BLE001 - stats are a nicety, never a failure
        return {}
    return times


def pool_busy(stages: dict[str, float], pools: dict[str, int], wall_s: float) -> dict[str, float]:
    """Share of each actor pool's capacity spent on batches: its worker seconds / (actors x pipeline wall).

    A GPU scorer pool near 1.0 kept its GPUs fed; a decode pool near 1.0 next to a scorer pool well below it
    says decoding is the bottleneck (more CPUs or decode workers). Autoscaling pools count their largest size.
    """
    busy = {}
    for name, actors in pools.items():
        seconds = stages.get(f"MapBatches({name})")
        if seconds is not None and actors > 0 and wall_s > 0:
            busy[name] = round(seconds / (actors * wall_s), 3)
    return busy


def actor_restarts() -> dict[str, int]:
    """Restarts per worker class in this job, from the GCS actor table (no dashboard needed; a private Ray API,
    fine with ray pinned; empty if it moves)."""
    try:
        import ray
        from ray._private.state import actors

        counts: dict[str, int] = {}
        job = ray.JobID.from_hex(ray.get_runtime_context().get_job_id())
        for info in actors(job_id=job).values():
            if info.get("NumRestarts"):
                name = info.get("ActorClassName", "?")
                counts[name] = counts.get(name, 0) + int(info["NumRestarts"])
        return counts
    except Exception:  # noqa: BLE001 - a nicety, never a failure
        return {}


def video_hours(rows: pa.Table, wall_s: float, gpus: float | None) -> dict[str, Any]:
    """Hours of ok video scored per wall-clock hour, and per GPU-hour (GPUs x wall; null without GPUs)."""
    ok_seconds = 0.0
    if len(rows) and "duration_s" in rows.column_names:
        ok = rows.filter(pc.equal(rows.column("status"), OK)).column("duration_s")
        ok_seconds = float(pc.sum(ok).as_py() or 0.0)
    per_hour = ok_seconds / wall_s if wall_s > 0 else None
    return {
        "gpus": gpus,
        "video_hours": round(ok_seconds / 3600, 6),
        "video_hours_per_hour": None if per_hour is None else float(f"{per_hour:.4g}"),
        "video_hours_per_gpu_hour": float(f"{per_hour / gpus:.4g}") if per_hour is not None and gpus else None,
    }


def summarize(
    rows: pa.Table, score_columns: list[str], wall_s: float, gpus: float | None = None, **extra: Any
) -> dict[str, Any]:
    """Counts by status, first errors, throughput and per-generator means over ok rows.

    Video-hour rates count ok rows' `duration_s` over `wall_s` (the pipeline's execution, Ray start-up
    excluded); `gpus` is the cluster's GPU count (None when Ray was not started).
    """
    n = len(rows)
    statuses = {d["values"]: d["counts"] for d in pc.value_counts(rows.column("status")).to_pylist()} if n else {}
    failed = rows.filter(pc.not_equal(rows.column("status"), OK)) if n else rows
    generators: dict[str, dict[str, Any]] = {}
    for gen in sorted({g for g in rows.column("generator").to_pylist()} if n else set(), key=str):
        mask = pc.equal(rows.column("generator"), gen) if gen is not None else pc.is_null(rows.column("generator"))
        sub = rows.filter(mask)
        ok = sub.filter(pc.equal(sub.column("status"), OK))
        means = {c: pc.mean(ok.column(c)).as_py() for c in score_columns}
        generators[str(gen)] = {"videos": len(sub), "ok": len(ok), "means": means}
    return {
        "rows": n,
        "status": statuses,
        "errors": [f"{r['video_id']}: {r['status']}: {r['error']}" for r in failed.slice(0, 5).to_pylist()],
        "wall_s": round(wall_s, 3),
        "videos_per_s": round(n / wall_s, 3) if wall_s > 0 else None,
        **video_hours(rows, wall_s, gpus),
        "generators": generators,
        **extra,
    }


def canary_lines(block: dict[str, Any] | None) -> list[str]:
    """The canary's outcome in a few lines (alerts are also printed as over-budget lines)."""
    if not block:
        return []
    if block.get("skipped"):
        return [f"canary: not checked, {block['skipped']}"]
    if block.get("error"):
        return [f"canary: not checked ({block['error']})"]
    ref = block.get("reference")
    against = f"{ref['kind']} {ref['run_id']}" if ref else "nothing (first record)"
    moved = ", ".join(f"{k} {v['max_abs']:.2g}" for k, v in block.get("moved", {}).items())
    clips = len(block["record"]["clips"])
    verdict = f"{len(block['alerts'])} alert(s)" if block.get("alerts") else "within tolerance"
    lines = [f"canary: {clips} clips vs {against}: {verdict}" + (f" (largest moves: {moved})" if moved else "")]
    return lines + [f"  {n}" for n in block.get("notices", [])]


def drift_lines(block: dict[str, Any] | None) -> list[str]:
    """The drift test's outcome: how many tests, how many flagged, and each flag."""
    if not block:
        return []
    if block.get("error"):
        return [f"drift: not checked ({block['error']})"]
    untested = sum(1 for r in block["results"] if not r["tested"])
    head = f"drift: {block['tested']} tested ({block['test']}, alpha {block['alpha']:g}), {block['flagged']} flagged"
    return [head + (f", {untested} not tested (no earlier run or too few videos)" if untested else "")] + [
        f"  {a}" for a in block["alerts"]
    ]


def render(summary: dict[str, Any]) -> str:
    """A readable text version for the terminal."""
    lines = [
        f"scored {summary['rows']} videos in {summary['wall_s']:.1f}s ({summary['videos_per_s']} videos/s; "
        f"Ray start-up {summary.get('ray_start_s', 0):.1f}s not included)",
        "status: " + ", ".join(f"{k}={v}" for k, v in sorted(summary["status"].items())),
    ]
    lines += [f"  {e}" for e in summary["errors"]]
    if summary.get("video_hours_per_hour") is not None:
        per_gpu = summary.get("video_hours_per_gpu_hour")
        gpu_text = f", {per_gpu} per GPU-hour on {summary['gpus']:g} GPUs" if per_gpu is not None else " (no GPUs)"
        lines.append(
            f"video scored: {summary['video_hours']:.4g} h, {summary['video_hours_per_hour']} video-hours "
            f"per hour{gpu_text}"
        )
    if summary.get("failed"):
        lines.append(f"RUN FAILED part-way: {summary['failed']} (rows committed before it stand; run again)")
    for line in summary.get("over_budget", []):
        lines.append(f"OVER FAILURE BUDGET: {line}")
    lines += canary_lines(summary.get("canary")) + drift_lines(summary.get("drift"))
    if summary.get("pool_busy"):
        lines.append("pool busy: " + ", ".join(f"{k} {v:.0%}" for k, v in summary["pool_busy"].items()))
    if summary.get("actor_restarts"):
        lines.append("worker restarts: " + ", ".join(f"{k} {v}" for k, v in summary["actor_restarts"].items()))
    if summary.get("stages"):
        stages = ", ".join(f"{k.replace('MapBatches', '')} {v:.1f}s" for k, v in summary["stages"].items())
        lines += textwrap.wrap(f"time per stage (summed over workers): {stages}", 120, subsequent_indent="  ")
    return "\n".join(lines + means_table(summary["generators"]))


def means_table(gens: dict[str, dict[str, Any]], width: int = 30, cell: int = 16, line: int = 120) -> list[str]:
    """One block per scorer, metrics as rows and generators as columns, as many generators side by side as fit
    in `line` characters (more generators: more blocks), so no line is wider than a terminal."""
    columns = [c for c in next(iter(gens.values()), {"means": {}})["means"] if "_c_" not in c]
    scorers = list(dict.fromkeys(c.split("_", 1)[0] for c in columns))
    names, per = list(gens), max(1, (line - width) // cell)
    lines = []
    for start in range(0, len(names), per):
        shown = names[start : start + per]
        for scorer in scorers:
            lines.append(f"{scorer + ' (mean of ok rows)':<{width}}" + "".join(f"{n[:14]:>{cell}}" for n in shown))
            for column in (c for c in columns if c.split("_", 1)[0] == scorer):
                cells = [gens[n]["means"][column] for n in shown]
                text = "".join(f"{'-':>{cell}}" if v is None or math.isnan(v) else f"{v:>{cell}.4g}" for v in cells)
                lines.append(f"  {column.split('_', 1)[1][: width - 3]:<{width - 2}}{text}")
        counts = "".join(f"{gens[n]['ok']}/{gens[n]['videos']}".rjust(cell) for n in shown)
        lines.append(f"{'ok / videos':<{width}}" + counts)
    return lines
