"""The Ray Data graph: input blocks -> decode actors -> one actor pool per scorer -> conform -> Parquet.

This is the only module that sets Ray resources, pool sizes and batch sizes.
"""

import logging
import math
import os
import warnings
from dataclasses import dataclass

import pyarrow as pa

from operators.conform import conform
from operators.decode import Decoder
from operators.scorers.plan import ScorerPlan
from pipeline.config import ScoreConfig

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


@dataclass(frozen=True)
class Placement:
    """Where one scorer's actors run: GPU share per actor (0 = CPU) and the pool size."""

    num_gpus: float
    actors: int


def place_scorers(plans: list[ScorerPlan], gpus: float, gpu_memory_gb: float, cpu_actors: int) -> dict:
    """GPU share and pool size per scorer.

    Model scorers whose declared memory fits on one GPU together share every GPU (fractional
    `num_gpus` proportional to memory), so each video's frames meet all models on the same node;
    otherwise each gets whole GPUs. Without GPUs every scorer runs on CPU.
    """
    on_gpu = [p for p in plans if p.gpu_memory_gb > 0] if gpus >= 1 else []
    total = sum(p.gpu_memory_gb for p in on_gpu)
    placements = {}
    for plan in plans:
        if plan not in on_gpu:
            placements[plan.name] = Placement(0.0, cpu_actors)
        elif total <= gpu_memory_gb:
            share = math.floor(100 * plan.gpu_memory_gb / total) / 100 if len(on_gpu) > 1 else 1.0
            placements[plan.name] = Placement(share, int(gpus))
        else:
            placements[plan.name] = Placement(1.0, max(1, int(gpus) // len(on_gpu)))
    return placements


def decode_workers(cfg: ScoreConfig, cpus: float, placements: dict) -> int:
    """Decode actors: the configured number, else every CPU not reserved for scorers and writing."""
    if cfg.decode_workers:
        return cfg.decode_workers
    reserved = sum(SCORER_CPUS * p.actors for p in placements.values()) + LIGHT_TASK_CPUS
    return max(1, int(cpus - reserved))


def cpu_runtime_env(cpus: float, place: Placement) -> dict | None:
    """Intra-op threads for a scorer actor that runs on CPU. Ray gives a fractional-CPU actor one thread; a
    CPU model scorer is the slow stage, so it may use the node's cores whenever decoding leaves them idle
    (the OS shares them when both are busy). An OMP_NUM_THREADS the driver was started with wins."""
    if place.num_gpus or "OMP_NUM_THREADS" in os.environ:
        return None
    return {"env_vars": {"OMP_NUM_THREADS": str(max(1, int(cpus) // max(1, place.actors)))}}


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


def build(refs: list, videos: int, plans: list[ScorerPlan], cfg: ScoreConfig, schema: pa.Schema, run_id: str) -> tuple:
    """The lazy score dataset over the staged input tables `refs` (`videos` rows), nothing runs until it is
    written; and the most actors each pool may hold, by class name (for the run summary's busy shares)."""
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
    placements = place_scorers(plans, gpus, cfg.gpu_memory_gb, cfg.scorer_workers)
    workers = decode_workers(cfg, cpus, placements)
    decoder = {
        "specs": list(dict.fromkeys(p.frame_spec for p in plans)),
        "endpoint_url": cfg.endpoint_url,
        "backend": cfg.decode_backend,
        "timeout_s": cfg.decode_timeout_s,
        "max_pixels": cfg.max_pixels,
        "min_frames": cfg.min_frames,
        "readers": readers(plans),
    }
    ds = input_dataset(refs, videos, workers)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
        ds = ds.map_batches(
            Decoder,
            fn_constructor_kwargs=decoder,
            batch_size=cfg.decode_batch_size,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers),
            num_cpus=1,
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
                compute=ray.data.ActorPoolStrategy(size=place.actors),
                num_cpus=SCORER_CPUS,
                num_gpus=place.num_gpus,
                runtime_env=cpu_runtime_env(cpus, place),
                **RESTARTS,
            )
    ds = ds.map_batches(
        conform,
        fn_kwargs={"schema": schema, "run_id": run_id, "scorers": [p.name for p in plans]},
        batch_format="numpy",
        num_cpus=LIGHT_TASK_CPUS,
    )
    pools = {Decoder.__name__: workers, **{p.cls.__name__: placements[p.name].actors for p in plans}}
    log.info("pools: decode up to %d actors; %s", workers, ", ".join(
        f"{p.name} {placements[p.name].actors} x {placements[p.name].num_gpus or 'CPU'}" for p in plans))  # fmt: skip
    return ds, pools
