"""Score-job configuration: dataclasses, YAML loading, and the merge with command-line flags.

Builders turn YAML into flat arguments; classes never read config objects. Every unknown key is an
error that lists the valid ones, raised before any work starts.
"""

import math
from dataclasses import dataclass, field, fields
from typing import Any

import yaml


class ConfigError(ValueError):
    """The configuration is unusable; the message names the fix."""


@dataclass
class ScorerConfig:
    """One `-s NAME[=CHECKPOINT]` or YAML scorer entry; `options` go to the scorer's `plan()`."""

    name: str
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoreConfig:
    """Everything one `vidscore score` run needs.

    Args:
        input: manifest file/folder or video folder (local, file://, s3://, any fsspec URL).
        output: Parquet dataset location for the score table.
        scorers: which scorers run, in order.
        limit: score only the first N input rows (quick trials).
        batch_size: overrides every scorer's own batch size.
        decode_workers: most decode actors; default: the cluster's CPUs (minus GPU-scorer reservations).
        decode_batch_size: videos per decode call.
        decode_backend: `auto`, `decord` or `pyav`.
        decode_timeout_s: wall-clock limit per video decode; past it the decoder is killed (`decode_timeout`).
        max_pixels: frames larger than this are refused (`decode_error`), bounding decode memory.
        min_frames: videos with fewer frames are refused (`decode_error`).
        scorer_workers: actors per CPU-run scorer (GPU scorers get one per GPU share).
        gpu_memory_gb: memory of one GPU, to decide which model scorers can share one.
        endpoint_url: S3-compatible endpoint (MinIO, Ceph, R2); default from AWS_ENDPOINT_URL.
        rows_per_file: target rows per output Parquet file.
        lock_ttl_s: a run's claim on the table expires this long after its last heartbeat (a crashed run's
            claim stops blocking new runs then).
        failure_budget: the share of videos that may fail before the run exits with code 3: one fraction for
            every part, or a mapping of `decode`, scorer names and `default` to fractions (`pipeline.budget`).
    """

    input: str
    output: str
    scorers: list[ScorerConfig] = field(default_factory=lambda: [ScorerConfig("technical")])
    limit: int | None = None
    batch_size: int | None = None
    decode_workers: int | None = None
    decode_batch_size: int = 4
    decode_backend: str = "auto"
    decode_timeout_s: float = 600.0
    max_pixels: int = 7680 * 4320
    min_frames: int = 2
    scorer_workers: int = 1
    gpu_memory_gb: float = 80.0
    endpoint_url: str | None = None
    rows_per_file: int = 5000
    lock_ttl_s: float = 300.0
    failure_budget: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.scorers, list) or not all(isinstance(s, ScorerConfig) for s in self.scorers):
            raise ConfigError("scorers must be a list, e.g. `scorers: [technical, {name: videoscore, batch_size: 4}]`")
        if not self.scorers:
            raise ConfigError("no scorers: add at least one with -s NAME[=CHECKPOINT]")
        names = [s.name for s in self.scorers]
        if len(set(names)) != len(names):
            raise ConfigError(f"a scorer is listed twice: {names}; each scorer writes its own columns once")
        for name in ("input", "output"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a path or URL, got {getattr(self, name)!r}")
        for name in POSITIVE_INTS:
            value = getattr(self, name)
            if value is not None or name in REQUIRED_INTS:
                positive_int(name, value)
        for name in POSITIVE_FLOATS:
            positive_number(name, getattr(self, name))
        if self.endpoint_url is not None and not isinstance(self.endpoint_url, str):
            raise ConfigError(f"endpoint_url must be a URL, got {self.endpoint_url!r}")
        if self.decode_backend not in ("auto", "decord", "pyav"):
            raise ConfigError(f"decode_backend must be auto, decord or pyav, got {self.decode_backend!r}")


POSITIVE_INTS = ("limit", "batch_size", "decode_workers", "decode_batch_size", "max_pixels", "min_frames",
                 "scorer_workers", "rows_per_file")  # fmt: skip
REQUIRED_INTS = ("decode_batch_size", "max_pixels", "min_frames", "scorer_workers", "rows_per_file")
POSITIVE_FLOATS = ("decode_timeout_s", "gpu_memory_gb", "lock_ttl_s")


def positive_int(name: str, value: Any) -> int:
    """`value` if it is a whole number >= 1 (not a bool, a fraction or text), else a ConfigError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def positive_number(name: str, value: Any) -> float:
    """`value` if it is a finite number > 0, else a ConfigError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def parse_scorer(text: str) -> ScorerConfig:
    """`NAME` or `NAME=CHECKPOINT` (a hub id or a local directory)."""
    name, _, checkpoint = text.partition("=")
    if not name:
        raise ConfigError(f"bad scorer {text!r}: use NAME or NAME=CHECKPOINT, e.g. technical")
    return ScorerConfig(name=name.strip(), checkpoint=checkpoint.strip() or None)


def load_yaml(path: str) -> dict[str, Any]:
    """Read a job YAML file into flat ScoreConfig keys; `scorers` entries become ScorerConfig."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    valid = {f.name for f in fields(ScoreConfig)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"unknown keys {unknown} in {path}; valid keys: {sorted(valid)}")
    if "scorers" in data:
        if not isinstance(data["scorers"], list | type(None)):
            raise ConfigError(f"{path}: scorers must be a list, e.g. `scorers: [technical]`, got {data['scorers']!r}")
        data["scorers"] = [_scorer_entry(e, path) for e in data["scorers"] or []]
    return data


def _scorer_entry(entry: Any, path: str) -> ScorerConfig:
    if isinstance(entry, str):
        return parse_scorer(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"{path}: each scorer is NAME, NAME=CHECKPOINT or a mapping with a `name` key")
    entry = dict(entry)
    return ScorerConfig(name=entry.pop("name"), checkpoint=entry.pop("checkpoint", None), options=entry)


def merge(file_values: dict[str, Any], cli_values: dict[str, Any]) -> ScoreConfig:
    """Command-line values (those not None) override the YAML file's."""
    values = {**file_values, **{k: v for k, v in cli_values.items() if v is not None}}
    for key in ("input", "output"):
        if not values.get(key):
            raise ConfigError(f"missing {key}: give it on the command line or as `{key}:` in the config file")
    try:
        return ScoreConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc
