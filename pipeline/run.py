"""One score run: validate everything, start (or join) Ray, execute, write, summarize."""

import json
import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from operators.read import read_input
from operators.scorers.plan import ScorerPlan
from pipeline.build import LIGHT_TASK_CPUS, build
from pipeline.config import ConfigError, ScoreConfig
from pipeline.output import check_output, read_run, run_filename_provider, scored_ids, write_json
from pipeline.storage import filesystem, redact
from pipeline.summary import render, stage_times, summarize
from schemas.scores import score_schema

STANDARD = ("video_id", "uri", "prompt", "generator")


def plan_scorers(cfg: ScoreConfig) -> list[ScorerPlan]:
    """Resolve every scorer on the driver; a bad name, checkpoint or option fails here."""
    from operators.scorers import SCORERS

    plans = []
    for s in cfg.scorers:
        if s.name not in SCORERS:
            raise ConfigError(f"unknown scorer {s.name!r}; available: {', '.join(sorted(SCORERS))}")
        try:
            plans.append(SCORERS[s.name].plan(s.checkpoint, **s.options))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"scorer {s.name}: {exc}") from exc
    return plans


def _local_abs(location: str) -> str:
    """Workers may run in another directory (ray job submit): make local paths absolute."""
    return location if "://" in location else os.path.abspath(location)


def run(cfg: ScoreConfig, echo: Any = print) -> dict[str, Any]:
    """Score `cfg.input` into `cfg.output`; returns the run summary (also saved next to the table)."""
    cfg.input, cfg.output = _local_abs(cfg.input), _local_abs(cfg.output)
    plans = plan_scorers(cfg)
    check_output(cfg.output, cfg.endpoint_url)
    table = read_input(cfg.input, limit=cfg.limit, endpoint_url=cfg.endpoint_url)
    done = scored_ids(cfg.output, cfg.endpoint_url)
    already = pc.is_in(table.column("video_id"), pa.array(sorted(done), pa.string()))
    skipped = pc.sum(already).as_py() or 0
    todo = table.filter(pc.invert(already))
    passthrough = [f for f in table.schema if f.name not in STANDARD]
    schema = score_schema([f for p in plans for f in p.fields], passthrough)
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    echo(f"vidscore: {len(table)} input videos, {skipped} already in {redact(cfg.output)}, {len(todo)} to score")

    stages: dict[str, float] = {}
    start = ray_start = time.perf_counter()
    if len(todo):
        import ray

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
        start = time.perf_counter()
        ds = build(todo, plans, cfg, schema)
        fs, path = filesystem(cfg.output, cfg.endpoint_url)
        ds.write_parquet(
            path,
            filesystem=None if "file" in fs.protocol else pa.fs.PyFileSystem(pa.fs.FSSpecHandler(fs)),
            filename_provider=run_filename_provider(run_id),
            min_rows_per_file=cfg.rows_per_file,
            ray_remote_args={"num_cpus": LIGHT_TASK_CPUS},
            schema=schema,
        )
        stages = stage_times(ds)
    wall = time.perf_counter() - start

    score_columns = [f.name for p in plans for f in p.fields if pa.types.is_floating(f.type)]
    rows = read_run(cfg.output, run_id, ["video_id", "generator", "status", "error", *score_columns], cfg.endpoint_url)
    summary = summarize(
        rows,
        score_columns,
        wall,
        run_id=run_id,
        ray_start_s=round(start - ray_start, 3),
        output=redact(cfg.output),
        skipped=skipped,
        scorers=[p.name for p in plans],
        stages=stages,
    )
    summary["summary_path"] = write_json(
        cfg.output, f"run-{run_id}.json", json.dumps(summary, indent=2), cfg.endpoint_url
    )
    echo(render(summary))
    echo(f"score table: {redact(cfg.output)}  (run summary: {summary['summary_path']})")
    return summary
