"""One score run: validate everything, start (or join) Ray, execute, write, summarize."""

import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from vidscore.operators.read import iter_input
from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.operators.storage import s3_endpoint
from vidscore.operators.urls import redact, redact_text
from vidscore.pipeline import canary, drift
from vidscore.pipeline.budget import EXIT_OVER_BUDGET, assess, breaches, budgets
from vidscore.pipeline.build import LIGHT_TASK_CPUS, build, describe, place
from vidscore.pipeline.cluster import address_of, check_address, connect, describe_cluster
from vidscore.pipeline.config import ConfigError, ScoreConfig
from vidscore.pipeline.lock import TableLock
from vidscore.pipeline.output import check_output, read_files, table_files, write_json
from vidscore.pipeline.resume import load_previous
from vidscore.pipeline.sink import ScoreTableSink
from vidscore.pipeline.stage import stage
from vidscore.pipeline.summary import actor_restarts, pool_busy, render, stage_times, summarize
from vidscore.pipeline.table import new_run_id
from vidscore.schemas.scores import score_schema

STANDARD = ("video_id", "uri", "prompt", "generator")
log = logging.getLogger("vidscore")


def plan_scorers(cfg: ScoreConfig) -> list[ScorerPlan]:
    """Resolve every scorer on the driver; a bad name, checkpoint or option fails here."""
    from vidscore.operators.scorers import SCORERS

    plans = []
    for s in cfg.scorers:
        if s.name not in SCORERS:
            raise ConfigError(f"unknown scorer {s.name!r}; available: {', '.join(sorted(SCORERS))}")
        try:
            plans.append(SCORERS[s.name].plan(s.checkpoint, **s.options))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"scorer {s.name}: {exc}") from exc
    return plans


def environment() -> dict[str, str | None]:
    """Versions that can move a score (each scorer's device and dtype are in its `<name>_device/_dtype` columns)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for package in ("vidscore", "torch", "transformers", "av", "decord", "ray"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


EXIT_FAILED = 1  # the run stopped part-way (e.g. the table could not be written); its committed rows stand


def reason(exc: BaseException) -> str:
    """The innermost cause of an error, in one short line (Ray wraps a worker's error in its traceback)."""
    while True:
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    return redact_text(f"{type(exc).__name__}: {first}")[:300]


class _WithoutTraceback(logging.Formatter):
    """Formats a record as `inner` does, minus its traceback (the log file keeps it)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def quiet_console_tracebacks() -> None:
    """Ray Data prints a failed task's whole traceback (hundreds of lines) to the console before raising; the
    run reports the cause in one line instead. Its session log file keeps the traceback."""
    for name in ("ray.data", "ray"):
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
                continue
            if getattr(handler.stream, "closed", False):  # set up by an earlier caller whose stderr is gone
                handler.stream = sys.stderr  # (setStream would flush the closed one first)
            if not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback(handler.formatter))


def committed_files(output: str, run_id: str, endpoint_url: str | None) -> list[str]:
    """The table files a run committed, by name (when the writer's own list never came back)."""
    try:
        return [f for f in table_files(output, endpoint_url) if f"part-{run_id}-" in f]
    except Exception:  # noqa: BLE001 - storage is what failed: report what can be known
        return []


def _first(errors: list[str], status: str) -> str | None:
    return next((e for e in errors if f": {status}: " in e), None)


def _drift(cfg: ScoreConfig, plans: list[ScorerPlan], run_id: str) -> dict[str, Any]:
    """This run against the pinned or previous runs (pipeline/drift.py); information, never a failure."""
    try:
        baseline = canary.baseline(cfg.output, cfg.endpoint_url)
        pinned = baseline["run_id"] if baseline else None
        rows = drift.scored(cfg.output, plans, cfg.endpoint_url, run_id, pinned, cfg.drift.min_videos)
        return drift.drift(rows, plans, run_id, pinned, cfg.drift)
    except Exception as exc:  # noqa: BLE001 - the scores are written; a drift check that breaks only says so
        log.warning("drift: not checked (%s)", reason(exc))
        return {"error": reason(exc)}


def _canary_check(
    cfg: ScoreConfig, plans: list[ScorerPlan], clips: Any, files: list[str], run_id: str, driver: dict
) -> dict[str, Any]:
    """The canary's comparison; one that cannot be made (damaged baseline, storage error) is an alert, never a
    crash: the run's rows are written and its summary must be too."""
    try:
        rows = read_files(files, canary.columns(plans), cfg.endpoint_url)
        return canary.check(cfg.canary, plans, clips, rows, cfg.output, run_id, cfg.endpoint_url, driver)
    except Exception as exc:  # noqa: BLE001 - reported as an alert
        why = reason(exc)
        log.error("canary: not checked (%s)", why)
        return {"error": why, "notices": [], "alerts": [f"canary: not checked ({why}); fix it or pin again"]}


def _canary_step(step: Any) -> Any:
    """A canary set that cannot be read or written is a configuration problem: exit 2, before any work."""
    try:
        return step()
    except ValueError as exc:  # InputError included: a user's set read like any input
        raise ConfigError(f"canary: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"canary: the clips cannot be read or written ({type(exc).__name__}: {exc})") from exc


def _local_abs(location: str) -> str:
    """Workers may run in another directory (ray job submit): make local paths absolute."""
    return location if "://" in location else os.path.abspath(location)


def run(cfg: ScoreConfig, echo: Any = print) -> dict[str, Any]:
    """Score `cfg.input` into `cfg.output`; returns the run summary (also saved next to the table)."""
    cfg.input, cfg.output = _local_abs(cfg.input), _local_abs(cfg.output)
    # Resolved on the driver: workers of an existing cluster do not see the driver's AWS_ENDPOINT_URL.
    cfg.endpoint_url = s3_endpoint(cfg.endpoint_url)
    plans = plan_scorers(cfg)
    import ray

    if not ray.is_initialized():
        check_address(address_of(cfg.ray_address))
    try:
        budget = budgets(cfg.failure_budget, [p.name for p in plans])
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    check_output(cfg.output, cfg.endpoint_url)
    started = datetime.now(timezone.utc)
    claim = new_run_id()
    for p in plans:
        log.info("plan: %s checkpoint=%s revision=%s frames=%s", p.name, p.checkpoint, p.revision, p.frame_spec.key)
    with TableLock(cfg.output, claim, cfg.lock_ttl_s, cfg.endpoint_url) as lock:
        return _run(cfg, plans, budget, started, lock, echo)


def _run(
    cfg: ScoreConfig, plans: list[ScorerPlan], budget: dict[str, float], started: datetime, lock: TableLock, echo: Any
) -> dict[str, Any]:
    ray_start_s = 0.0

    def put(table: pa.Table) -> Any:
        """Rows to score go to the object store; Ray starts only when there is something to score."""
        nonlocal ray_start_s
        import ray

        if not ray.is_initialized():
            begin = time.perf_counter()
            connect(cfg.ray_address)
            ray_start_s = time.perf_counter() - begin
        return ray.put(table)

    previous = load_previous(cfg.output, plans, cfg.endpoint_url)
    # Later than every run in the table, whatever this host's clock says: "latest" is by run id.
    run_id = lock.run_id = new_run_id(after=previous.last_run)
    for entry in previous.unreadable:  # its rows are unknown: their videos count as not scored (nothing lost)
        echo(f"vidscore: warning: skipped table file {entry}; move it out of the table folder")
    log.info("run %s holds %s", run_id, redact(cfg.output))
    clips = None
    if cfg.canary.clips not in (None, "default"):  # a user's set is read (and refused) before any work
        clips = _canary_step(lambda: canary.user_set(cfg.canary.clips, cfg.endpoint_url))
    staged = stage(
        iter_input(cfg.input, cfg.limit, cfg.endpoint_url, exclude=cfg.output), previous, plans, cfg.endpoint_url, put
    )
    unreadable = previous.unreadable
    del previous
    if staged.todo and cfg.canary.clips == "default":
        clips = _canary_step(lambda: canary.default_set(cfg.output, cfg.endpoint_url))
    if not staged.todo:
        clips = None  # nothing scored, nothing to compare: no Ray start for the canary alone
    if clips is not None:
        staged.refs.append(put(canary.rows_table(clips, staged.schema, plans)))
    passthrough = [f for f in staged.schema or [] if f.name not in STANDARD]
    schema = score_schema([f for p in plans for f in p.fields], passthrough)
    echo(
        f"vidscore: {staged.videos} input videos, {staged.skipped} up to date in {redact(cfg.output)}, "
        f"{staged.todo - staged.metadata_only} to score, {staged.metadata_only} with new manifest values only"
    )
    for name, counts in staged.scorers.items():
        why = ", ".join(f"{k} {v}" for k, v in counts["reasons"].items()) or "nothing stale"
        echo(f"  {name}: scores {counts['scored']} ({why}), skips {counts['skipped']}")
        log.info("skips: %s scores %d (%s), skips %d", name, counts["scored"], why, counts["skipped"])

    failure: str | None = None
    stages: dict[str, float] = {}
    restarts: dict[str, int] = {}
    gpus, files, canary_files, pools, cluster = None, [], [], {}, None
    start = time.perf_counter()
    if staged.todo:
        placements, cap, gpu_wait_s = place(plans, cfg)
        gpus = cap.gpus
        cluster = {
            **describe_cluster(),
            "gpu_wait_s": round(gpu_wait_s, 1),
            "placement": {p.name: describe(p.name, placements[p.name]) for p in plans},
        }
        videos = staged.todo + (len(clips.rows) if clips else 0)
        ds, pools = build(staged.refs, videos, plans, cfg, schema, run_id, placements, cap)
        staged.refs.clear()  # the dataset holds them now
        sink = ScoreTableSink(
            cfg.output, run_id, started.strftime("%Y-%m-%d"), schema, cfg.rows_per_file, cfg.endpoint_url
        )
        quiet_console_tracebacks()
        try:
            ds.write_datasink(sink, ray_remote_args={"num_cpus": LIGHT_TASK_CPUS})
        except Exception as exc:  # noqa: BLE001 - Ray's error is hundreds of lines; the cause is one
            failure = reason(exc)
            log.error("failed: %s", failure)
            files = committed_files(cfg.output, run_id, cfg.endpoint_url)  # what the run did commit stands
        else:
            files, canary_files = sink.files, sink.canary_files
        stages, restarts = stage_times(ds), actor_restarts()
    wall = time.perf_counter() - start

    score_columns = [f.name for p in plans for f in p.fields if pa.types.is_floating(f.type)]
    own = [f"{p.name}_status" for p in plans]
    columns = ["video_id", "generator", "status", "error", "duration_s", *own, *score_columns]
    rows = read_files(files, columns, cfg.endpoint_url)
    rows = rows.filter(pc.is_valid(rows.column("status")))  # metadata-only rows were not scored
    summary = summarize(
        rows,
        score_columns,
        wall,
        gpus=gpus,
        ray=cluster,
        run_id=run_id,
        ray_start_s=round(ray_start_s, 3),
        output=redact(cfg.output),
        skipped=staged.skipped,
        unreadable_table_files=unreadable,
        metadata_only=staged.metadata_only,
        scorers=staged.scorers,
        environment=environment(),
        stages=stages,
        pool_busy=pool_busy(stages, pools, wall),
        actor_restarts=restarts,
    )
    summary["failure_budget"] = assess(rows, budget)
    summary["over_budget"] = breaches(summary["failure_budget"])
    if clips is not None:
        summary["canary"] = (
            {"skipped": "the run failed before its canary rows were written"}
            if failure
            else _canary_check(cfg, plans, clips, canary_files, run_id, summary["environment"])
        )
        summary["over_budget"] += summary["canary"].get("alerts", [])
    if cfg.drift.enabled and files:
        summary["drift"] = _drift(cfg, plans, run_id)
    summary["exit_code"] = EXIT_FAILED if failure else EXIT_OVER_BUDGET if summary["over_budget"] else 0
    summary["failed"] = failure
    for status, count in sorted(summary["status"].items()):
        if status != "ok":
            log.warning("failures: %d videos %s (first: %s)", count, status, _first(summary["errors"], status))
    for name, count in restarts.items():
        log.warning("retries: %s workers restarted %d times", name, count)
    for line in summary["over_budget"]:
        log.error("over the failure budget: %s", line)
    for line in (summary.get("canary") or {}).get("notices", []):
        log.info("%s", line)
    for line in (summary.get("drift") or {}).get("alerts", []):
        log.warning("%s", line)
    log.info("done: %d rows written, exit code %d", summary["rows"], summary["exit_code"])
    try:
        summary["summary_path"] = write_json(
            cfg.output, f"run-{run_id}.json", json.dumps(summary, indent=2), cfg.endpoint_url
        )
    except Exception as exc:  # noqa: BLE001 - storage that broke mid-run: the summary is still printed
        if not failure:
            raise
        summary["summary_path"] = f"not written ({reason(exc)})"
    echo(render(summary))
    echo(f"score table: {redact(cfg.output)}  (run summary: {summary['summary_path']})")
    return summary
