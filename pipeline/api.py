"""`vidscore.score`: the scorers inside one's own Ray Data pipeline (the score job without its table)."""

from typing import Any

import pyarrow as pa

from vidscore.pipeline.build import conformed, decode_reserve, place, score_operators
from vidscore.pipeline.config import ConfigError, ScoreConfig, ScorerConfig, parse_scorer
from vidscore.pipeline.placement import decode_workers
from vidscore.pipeline.run import STANDARD, plan_scorers
from vidscore.pipeline.table import new_run_id
from vidscore.schemas.scores import score_schema


def scorers() -> list[str]:
    """Names of the available scorers (what `score(..., ["name"])` and `-s name` accept)."""
    from vidscore.operators.scorers import SCORERS

    return sorted(SCORERS)


def score(dataset: Any, scorers: list[str | ScorerConfig] | tuple = ("technical",), **config: Any) -> Any:
    """Score the videos of a Ray Dataset; returns a lazy Dataset with the score table's columns per row.

    `dataset` needs `video_id` and `uri` (local path, s3://, https://), and `prompt` for prompt-reading scorers;
    its other columns pass through. `scorers` are names or `NAME=CHECKPOINT` (or ScorerConfig with options).
    `config` takes the score job's keys (`device`, `batch_size`, `decode_workers`, `endpoint_url`, ...; see
    vidscore.pipeline.config.ScoreConfig). Nothing runs until the dataset is consumed. A bad video becomes a row
    with a `status` and an `error`, as in the table. Ray must be initialised (ray.init) by the caller.
    """
    import ray

    if not ray.is_initialized():
        raise ConfigError("vidscore.score runs inside your Ray program: call ray.init(...) first")
    entries = [parse_scorer(s) if isinstance(s, str) else s for s in scorers]
    cfg = ScoreConfig(input="<dataset>", output="<dataset>", scorers=entries, **config)
    plans = plan_scorers(cfg)
    names = set(dataset.columns())
    missing = {"video_id", "uri"} - names
    if missing:
        raise ConfigError(f"the dataset needs columns {sorted(missing)} (it has {sorted(names)})")
    if "prompt" not in names:
        dataset = dataset.add_column("prompt", lambda t: pa.nulls(len(t), pa.string()), batch_format="pyarrow")
    passthrough = [f for f in dataset.schema().base_schema if f.name not in STANDARD]
    schema = score_schema([f for p in plans for f in p.fields], passthrough)
    placements, cap, _ = place(plans, cfg)
    workers = decode_workers(cfg.decode_workers, cap, decode_reserve(placements))
    scored = score_operators(dataset, plans, cfg, placements, workers, max(cap.cpus, 1.0))
    return conformed(scored, schema, new_run_id(), plans)
