"""Score-job configuration: dataclasses, YAML loading, and the merge with command-line flags.

Builders turn YAML into flat arguments; classes never read config objects. Every unknown key is an
error that lists the valid ones, raised before any work starts.
"""

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml


class ConfigError(ValueError):
    """The configuration is unusable; the message names the fix."""


# Absolute canary tolerance per scorer on every score column (pipeline/canary.py). Canary rows are scored
# alone, so a rerun in the same environment repeats them exactly (fp32 CPU thread counts move them ~1e-6); a
# dtype change (~1e-2), another resize filter or colour matrix (1e-2 to 1) moves them past these.
DEFAULT_TOLERANCE = {"technical": 1e-4, "default": 1e-3}


@dataclass(frozen=True)
class CanaryConfig:
    """`canary:` in the run config: which clips (`default`, a manifest or folder location, or None for off) and
    the tolerance per scorer (`default` covers the rest)."""

    clips: str | None = "default"
    tolerance: tuple[tuple[str, float], ...] = ()

    def tolerance_for(self, scorer: str) -> float:
        """The scorer's own number, else the config's `default`, else vidscore's default for that scorer."""
        given = dict(self.tolerance)
        builtin = DEFAULT_TOLERANCE.get(scorer, DEFAULT_TOLERANCE["default"])
        return float(given.get(scorer, given.get("default", builtin)))


def parse_canary(value: Any) -> CanaryConfig:
    """The config's `canary` value: `default`, `off` (or false), a location, or a mapping with `clips` and
    `tolerance` (a number, or scorer names and `default` to numbers). ConfigError names the fix."""
    if isinstance(value, CanaryConfig):
        return value
    if value is None or value is True or value == "default":
        return CanaryConfig()
    if value is False or value == "off":
        return CanaryConfig(clips=None)
    if isinstance(value, str):
        return CanaryConfig(clips=value)
    if not isinstance(value, dict):
        raise ConfigError(f"canary must be default, off, a clip location or a mapping, got {value!r}")
    unknown = sorted(set(value) - {"clips", "tolerance"})
    if unknown:
        raise ConfigError(f"canary has unknown keys {unknown}; valid: clips, tolerance")
    clips = parse_canary(value.get("clips", "default")).clips
    tolerance = value.get("tolerance", {})
    if not isinstance(tolerance, dict):
        tolerance = {"default": tolerance}
    for name, number in tolerance.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or not number >= 0:
            raise ConfigError(f"canary tolerance for {name} must be a number >= 0, got {number!r}")
    return CanaryConfig(clips, tuple(sorted((str(k), float(v)) for k, v in tolerance.items())))


@dataclass(frozen=True)
class DriftConfig:
    """`drift:` in the run config (pipeline/drift.py): the family-wise false-alarm rate `alpha`, the smallest
    shift worth a flag `min_effect` (|Cohen's d|), and the fewest ok videos per side `min_videos`; or off."""

    enabled: bool = True
    alpha: float = 0.01
    min_effect: float = 0.2
    min_videos: int = 20


def parse_drift(value: Any) -> DriftConfig:
    """The config's `drift` value: on (default), `off`, or a mapping of alpha, min_effect and min_videos."""
    if isinstance(value, DriftConfig):
        return value
    if value is None or value is True or value == "on":
        return DriftConfig()
    if value is False or value == "off":
        return DriftConfig(enabled=False)
    if not isinstance(value, dict):
        raise ConfigError(f"drift must be on, off or a mapping of alpha, min_effect, min_videos; got {value!r}")
    unknown = sorted(set(value) - {"alpha", "min_effect", "min_videos"})
    if unknown:
        raise ConfigError(f"drift has unknown keys {unknown}; valid: alpha, min_effect, min_videos")
    alpha = value.get("alpha", 0.01)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ConfigError(f"drift alpha must be a probability between 0 and 1, got {alpha!r}")
    effect = value.get("min_effect", 0.2)
    if isinstance(effect, bool) or not isinstance(effect, int | float) or not effect >= 0:
        raise ConfigError(f"drift min_effect must be a number >= 0 (|Cohen's d|), got {effect!r}")
    videos = positive_int("drift min_videos", value.get("min_videos", 20))
    if videos < 2:
        raise ConfigError("drift min_videos must be at least 2 (a spread needs two values)")
    return DriftConfig(True, float(alpha), float(effect), videos)


@dataclass
class ScorerConfig:
    """One `-s NAME[=CHECKPOINT]` or YAML scorer entry; `options` go to the scorer's `plan()`.

    `device` (auto, gpu, cpu), `max_actors` and `labels` are the pipeline's, not the scorer's: where its pool
    runs, how far it may grow, and which nodes it must run on (Ray node labels, e.g. {"vidscore/pool": "gpu"}).
    None takes the run's `device`, the default growth and any node with the resources.
    """

    name: str
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    max_actors: int | None = None
    labels: dict[str, str] | None = None


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
        scorer_workers: most actors per CPU-run scorer (a scorer's own `max_actors` wins).
        device: where model scorers run: `auto` (GPU when the cluster has or its autoscaler can add one), `gpu` or
            `cpu`; a scorer's own `device` wins (`pipeline.placement`).
        gpu_wait_s: how long a run waits for the first GPU of GPU scorers (an autoscaling cluster starting one)
            before it stops with exit code 2.
        gpu_memory_gb: memory of one GPU, to decide which model scorers can share one.
        decode_labels: Ray node labels the decode actors must run on (e.g. {"vidscore/pool": "decode"}); None: any
            node with a free CPU (Ray prefers CPU-only nodes but may use a GPU node's spare CPUs).
        ray_address: the Ray cluster to join (else RAY_ADDRESS; with neither, a fresh local Ray of this run's own).
        endpoint_url: S3-compatible endpoint (MinIO, Ceph, R2); default from AWS_ENDPOINT_URL.
        rows_per_file: target rows per output Parquet file.
        lock_ttl_s: a run's claim on the table expires this long after its last heartbeat (a crashed run's
            claim stops blocking new runs then).
        failure_budget: the share of videos that may fail before the run exits with code 3: one fraction for
            every part, or a mapping of `decode`, scorer names and `default` to fractions (`pipeline.budget`).
        canary: the canary set every run scores (`pipeline.canary`): `default` (vidscore's clips), `off`, a
            manifest or folder of clips, or {clips: ..., tolerance: number or {scorer: number, default: number}}.
        drift: the drift test against the pinned or previous run (`pipeline.drift`): on (default), `off`, or
            {alpha: 0.01, min_effect: 0.2, min_videos: 20}.
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
    device: str = "auto"
    gpu_wait_s: float = 600.0
    gpu_memory_gb: float = 80.0
    decode_labels: dict[str, str] | None = None
    ray_address: str | None = None
    endpoint_url: str | None = None
    rows_per_file: int = 5000
    lock_ttl_s: float = 300.0
    failure_budget: Any = None
    canary: Any = "default"
    drift: Any = None

    def __post_init__(self) -> None:
        self.canary = parse_canary(self.canary)
        self.drift = parse_drift(self.drift)
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
        for name in ("endpoint_url", "ray_address"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be an address or URL, got {getattr(self, name)!r}")
        for where, device in [("device", self.device), *((f"{s.name}: device", s.device) for s in self.scorers)]:
            if device is not None and device not in DEVICES:
                raise ConfigError(f"{where} must be auto, gpu or cpu, got {device!r}")
        for s in self.scorers:
            if s.max_actors is not None:
                positive_int(f"{s.name}: max_actors", s.max_actors)
        for where, labels in [
            ("decode_labels", self.decode_labels),
            *((f"{s.name}: labels", s.labels) for s in self.scorers),
        ]:
            if labels is not None and (
                not isinstance(labels, dict)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
            ):
                raise ConfigError(
                    f"{where} must map node label names to values, e.g. {{vidscore/pool: decode}}, got {labels!r}"
                )
        if self.decode_backend not in ("auto", "decord", "pyav"):
            raise ConfigError(f"decode_backend must be auto, decord or pyav, got {self.decode_backend!r}")
        self._check_tolerances()

    def _check_tolerances(self) -> None:
        """Any scorer's name may carry a canary tolerance (a shared config file names them all, and -s picks
        some); another name is a typo that would silently leave a scorer on the default."""
        named = {k for k, _ in self.canary.tolerance} - {s.name for s in self.scorers} - {"default"}
        if not named:
            return  # nothing to look up: the scorer registry is not imported
        from vidscore.operators.scorers import SCORERS

        known = set(SCORERS) | {s.name for s in self.scorers}
        stray = sorted(named - known)
        if stray:
            raise ConfigError(f"canary tolerance names {stray}; use default or a scorer: {sorted(known)}")


POSITIVE_INTS = ("limit", "batch_size", "decode_workers", "decode_batch_size", "max_pixels", "min_frames",
                 "scorer_workers", "rows_per_file")  # fmt: skip
REQUIRED_INTS = ("decode_batch_size", "max_pixels", "min_frames", "scorer_workers", "rows_per_file")
POSITIVE_FLOATS = ("decode_timeout_s", "gpu_memory_gb", "lock_ttl_s", "gpu_wait_s")
DEVICES = ("auto", "gpu", "cpu")


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
    return ScorerConfig(
        name=entry.pop("name"),
        checkpoint=entry.pop("checkpoint", None),
        device=entry.pop("device", None),
        max_actors=entry.pop("max_actors", None),
        labels=entry.pop("labels", None),
        options=entry,
    )


def merge_scorers(file_scorers: list[ScorerConfig], flags: list[ScorerConfig]) -> list[ScorerConfig]:
    """`-s` flags choose which scorers run, in their order; each keeps the file's entry for it (options, device,
    max_actors), and a checkpoint on the flag replaces the file's."""
    entries = {s.name: s for s in file_scorers}
    out = []
    for flag in flags:
        base = entries.get(flag.name)
        if base is None:
            out.append(flag)
            continue
        out.append(replace(base, checkpoint=flag.checkpoint or base.checkpoint, options=dict(base.options)))
    return out


def merge(file_values: dict[str, Any], cli_values: dict[str, Any]) -> ScoreConfig:
    """Command-line values (those not None) override the YAML file's; `-s` flags merge with the file's scorer
    entries (`merge_scorers`), and `--device` applies to every scorer."""
    cli = {k: v for k, v in cli_values.items() if v is not None}
    if isinstance(cli.get("scorers"), list) and isinstance(file_values.get("scorers"), list):
        cli["scorers"] = merge_scorers(file_values["scorers"], cli["scorers"])
    if isinstance(cli.get("canary"), str) and isinstance(file_values.get("canary"), dict):
        cli["canary"] = {**file_values["canary"], "clips": cli["canary"]}  # --canary picks the clips only
    values = {**file_values, **cli}
    if "device" in cli and isinstance(values.get("scorers"), list):
        values["scorers"] = [replace(s, device=None) for s in values["scorers"]]
    for key in ("input", "output"):
        if not values.get(key):
            raise ConfigError(f"missing {key}: give it on the command line or as `{key}:` in the config file")
    try:
        return ScoreConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc
