"""The Ray Data graph: input blocks -> decode actors -> one actor pool per scorer -> conform -> Parquet.

This is the only module that sets Ray resources, pool sizes and batch sizes.
"""

import logging
import math
import os
import warnings

import pyarrow as pa

from vidscore.operators.conform import conform
from vidscore.operators.decode import Decoder
from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.pipeline.config import ScoreConfig
from vidscore.pipeline.placement import Capacity, Placement, capacity, decode_workers, place_scorers, wait_for_gpu

log = logging.getLogger("vidscore")
# Scorer and bookkeeping actors declare a small CPU share so decode workers can have the rest of a node;
# a scorer actor that took a whole CPU on a 2-CPU machine would starve the decode stage.
SCORER_CPUS = 0.25
LIGHT_TASK_CPUS = 0.25
MAX_BLOCK_ROWS = 64
# A worker that keeps dying (OOM-killed, bad driver, lost node) is restarted a bounded number of times, then the
# run fails instead of cycling forever; each restart is counted in the run summary.
ACTOR_RESTARTS = 4
# Ray 2.60 has no named map_batches parameter for actor restarts; the loose remote kwargs still work but warn
# that they go away in Ray 2.64 (ray is pinned; revisit when upgrading). build() keeps that warning out of logs.
RESTARTS = {"max_restarts": ACTOR_RESTARTS, "max_task_retries": ACTOR_RESTARTS}


def decode_reserve(placements: dict[str, Placement]) -> float:
    """CPUs the scorer pools (at their largest) and the writers hold, which decode actors leave free."""
    return sum(SCORER_CPUS * p.max_actors for p in placements.values()) + LIGHT_TASK_CPUS


def cpu_runtime_env(cpus: float, place: Placement) -> dict | None:
    """Intra-op threads for a scorer actor that runs on CPU. Ray gives a fractional-CPU actor one thread; a
    CPU model scorer is the slow stage, so it may use the node's cores whenever decoding leaves them idle
    (the OS shares them when both are busy). An OMP_NUM_THREADS the driver was started with wins."""
    if place.num_gpus or "OMP_NUM_THREADS" in os.environ:
        return None
    return {"env_vars": {"OMP_NUM_THREADS": str(max(1, int(cpus) // max(1, place.max_actors)))}}


def selector(labels: dict[str, str] | None) -> dict:
    """Ray's node label selector for a pool whose configuration names the nodes it must run on."""
    return {"label_selector": dict(labels)} if labels else {}


def describe(name: str, place: Placement) -> str:
    """`videoscore 1-8 actors x 0.5 GPU (auto: the cluster has 8 GPUs)`, for the log and the summary."""
    where = f"{place.num_gpus:g} GPU" if place.num_gpus else "CPU"
    return f"{name} {place.min_actors}-{place.max_actors} actors x {where} ({place.why})"


def drops_frames(plans: list[ScorerPlan]) -> dict[str, bool]:
    """Per scorer: whether it is the last to read its frame column, and so drops it from the batch."""
    last = {p.frame_spec.column: p.name for p in plans}
    return {p.name: last[p.frame_spec.column] == p.name for p in plans}


def readers(plans: list[ScorerPlan]) -> dict[str, list[str]]:
    """Per frame column, the scorers that read it (the decoder produces a row's column only for those that run)."""
    out: dict[str, list[str]] = {}
    for p in plans:
        out.setdefault(p.frame_spec.column, []).append(p.name)
    return out


def input_dataset(refs: list, videos: int, workers: int):
    """The staged input tables as a dataset of small blocks, so every decode worker gets several to stream
    through. Staged chunks hold thousands of rows; a streaming repartition cuts them, materialized before the
    actor pools start: its task needs a whole CPU, which the pools would otherwise hold forever."""
    import ray

    rows = max(1, min(MAX_BLOCK_ROWS, math.ceil(videos / (4 * workers))))
    return ray.data.from_arrow_refs(refs).repartition(target_num_rows_per_block=rows).materialize()


def placements_for(plans: list[ScorerPlan], cfg: ScoreConfig, cap: Capacity) -> dict[str, Placement]:
    """Each scorer's placement under the run's configuration (scorer entries' device and max_actors first)."""
    devices = {s.name: s.device or cfg.device for s in cfg.scorers}
    most = {s.name: s.max_actors for s in cfg.scorers}
    return place_scorers(plans, devices, most, cap, cfg.gpu_memory_gb, cfg.scorer_workers)


def score_operators(
    ds, plans: list[ScorerPlan], cfg: ScoreConfig, placements: dict[str, Placement], workers: int, cpus: float
):
    """`ds` (rows with video_id, uri, prompt) through the decode pool and one actor pool per scorer (lazy)."""
    import ray

    labels = {s.name: s.labels for s in cfg.scorers}
    decoder = {
        "specs": list(dict.fromkeys(p.frame_spec for p in plans)),
        "endpoint_url": cfg.endpoint_url,
        "backend": cfg.decode_backend,
        "timeout_s": cfg.decode_timeout_s,
        "max_pixels": cfg.max_pixels,
        "min_frames": cfg.min_frames,
        "readers": readers(plans),
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
        ds = ds.map_batches(
            Decoder,
            fn_constructor_kwargs=decoder,
            batch_size=cfg.decode_batch_size,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers),
            num_cpus=1,
            **selector(cfg.decode_labels),
            **RESTARTS,
        )
        drops = drops_frames(plans)
        for plan in plans:
            place = placements[plan.name]
            ds = ds.map_batches(
                plan.cls,
                fn_constructor_kwargs=plan.init_kwargs,
                fn_kwargs={"drop_frames": drops[plan.name]},
                batch_size=int(cfg.batch_size or plan.batch_size),
                compute=ray.data.ActorPoolStrategy(min_size=place.min_actors, max_size=place.max_actors),
                num_cpus=SCORER_CPUS,
                num_gpus=place.num_gpus,
                runtime_env=cpu_runtime_env(cpus, place),
                **selector(labels.get(plan.name)),
                **RESTARTS,
            )
    placed = "; ".join(describe(p.name, placements[p.name]) for p in plans)
    log.info("pools: decode up to %d actors; %s", workers, placed)
    return ds


def conformed(ds, schema: pa.Schema, run_id: str, plans: list[ScorerPlan]):
    """The scored rows with exactly the table schema's columns and types, stamped with the run."""
    return ds.map_batches(
        conform,
        fn_kwargs={"schema": schema, "run_id": run_id, "scorers": [p.name for p in plans]},
        batch_format="numpy",
        num_cpus=LIGHT_TASK_CPUS,
    )


def place(plans: list[ScorerPlan], cfg: ScoreConfig) -> tuple[dict[str, Placement], Capacity, float]:
    """Each scorer's placement, after waiting for a GPU when GPU pools need one (before any work starts); the
    cluster's capacity after that wait, and the seconds waited."""
    cap = capacity()
    placements = placements_for(plans, cfg, cap)
    waited = wait_for_gpu(placements, cfg.gpu_wait_s, SCORER_CPUS)
    return placements, (capacity() if waited else cap), waited


def build(
    refs: list,
    videos: int,
    plans: list[ScorerPlan],
    cfg: ScoreConfig,
    schema: pa.Schema,
    run_id: str,
    placements: dict[str, Placement],
    cap: Capacity,
) -> tuple:
    """The lazy score dataset over the staged input tables `refs` (`videos` rows), nothing runs until it is
    written; and the most actors each pool may hold, by class name (for the run summary's busy shares)."""
    workers = decode_workers(cfg.decode_workers, cap, decode_reserve(placements))
    cpus = max(cap.cpus, 1.0)
    ds = input_dataset(refs, videos, max(1, min(workers, int(cpus))))
    ds = conformed(score_operators(ds, plans, cfg, placements, workers, cpus), schema, run_id, plans)
    pools = {Decoder.__name__: workers, **{p.cls.__name__: placements[p.name].max_actors for p in plans}}
    return ds, pools
