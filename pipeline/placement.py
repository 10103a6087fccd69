"""Where each scorer runs and how far its pool may grow: from the configuration, not from what is up right now.

An autoscaling cluster (KubeRay GPU group at `replicas: 0`, AWS `min_workers: 0`) starts with no GPU. Reading
`ray.cluster_resources()` alone would put an 8B model on CPU there and never ask for a GPU node. Instead:

- `device: cpu` runs the scorer on CPU; `device: gpu` on GPU, always.
- `device: auto` (the default) takes GPU for a model scorer when the cluster has a GPU now, or when its autoscaler
  reports a node type with GPUs it may launch; otherwise CPU. Scorers without a model (technical) run on CPU.
- A GPU pool declares `num_gpus`, starts at one actor and may grow to `max_actors` (default: every GPU the cluster
  has or may get, at most DEFAULT_MAX_GPU_ACTORS when the autoscaler is unbounded). Ray Data asks the cluster
  autoscaler for nodes for actors it cannot place.
- Before any decode starts, the run waits up to `gpu_wait_s` for the first GPU (asking the autoscaler for one);
  none by then is a configuration error (exit 2), not a slow CPU run.
"""

import logging
import math
import sys
import time
from dataclasses import dataclass

from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.pipeline.config import ConfigError

log = logging.getLogger("vidscore")
# Growth caps for pools whose cluster reports no upper bound (an autoscaler node type with unlimited nodes).
DEFAULT_MAX_GPU_ACTORS = 16
DEFAULT_MAX_DECODE_ACTORS = 64


@dataclass(frozen=True)
class Capacity:
    """CPUs and GPUs the cluster has now, and the most its autoscaler may reach (None: no autoscaler reports)."""

    cpus: float
    gpus: float
    max_cpus: float | None = None
    max_gpus: float | None = None

    def reach(self, key: str) -> float:
        now, most = (self.cpus, self.max_cpus) if key == "CPU" else (self.gpus, self.max_gpus)
        return max(now, most or 0.0)


def capacity() -> Capacity:
    """Read from the connected Ray: current resources, and the node types the cluster autoscaler published."""
    import ray

    now = ray.cluster_resources()
    most: dict = {}
    try:  # The autoscaler (KubeRay, cluster launcher) publishes its node types to the GCS; no public API reads it.
        from ray._private.state import state

        most = state.get_max_resources_from_cluster_config() or {}
    except Exception as exc:  # noqa: BLE001 - an older or newer Ray without it: current resources only
        log.info("placement: no autoscaler limits readable (%s); using current resources", exc)
    return Capacity(
        cpus=float(now.get("CPU", 0.0)),
        gpus=float(now.get("GPU", 0.0)),
        max_cpus=float(most["CPU"]) if most.get("CPU") else None,
        max_gpus=float(most["GPU"]) if most.get("GPU") else None,
    )


@dataclass(frozen=True)
class Placement:
    """One scorer's pool: GPU share per actor (0 = CPU), its size range, and why it runs where it does."""

    num_gpus: float
    min_actors: int
    max_actors: int
    why: str


def _bounded(value: float, cap: int) -> int:
    return cap if value >= sys.maxsize else max(1, int(value))


def on_gpu(plan: ScorerPlan, device: str, cap: Capacity) -> tuple[bool, str]:
    """Whether `plan` runs on GPU under `device`, and the reason in words (for the log and the summary)."""
    if plan.gpu_memory_gb <= 0:
        return False, "no model: CPU"
    if device == "cpu":
        return False, "device: cpu"
    if device == "gpu":
        return True, "device: gpu"
    if cap.gpus >= 1:
        return True, f"auto: the cluster has {cap.gpus:g} GPUs"
    if (cap.max_gpus or 0) >= 1:
        return True, "auto: the cluster autoscaler can add GPU nodes"
    return False, "auto: no GPU in the cluster and none its autoscaler can add"


def place_scorers(
    plans: list[ScorerPlan],
    devices: dict[str, str],
    max_actors: dict[str, int | None],
    cap: Capacity,
    gpu_memory_gb: float,
    cpu_actors: int,
) -> dict[str, Placement]:
    """GPU share and pool size range per scorer.

    Model scorers on GPU whose declared memory fits one GPU together share every GPU (fractional `num_gpus` in
    proportion to memory), so each video's frames meet all models on the same node; otherwise each takes whole
    GPUs. `max_actors` (per scorer) overrides the default growth limit.
    """
    where = {p.name: on_gpu(p, devices.get(p.name, "auto"), cap) for p in plans}
    gpu_plans = [p for p in plans if where[p.name][0]]
    total = sum(p.gpu_memory_gb for p in gpu_plans)
    gpus = _bounded(cap.reach("GPU"), DEFAULT_MAX_GPU_ACTORS) if gpu_plans else 0
    placements = {}
    for plan in plans:
        gpu, why = where[plan.name]
        if not gpu:
            share, most = 0.0, cpu_actors
        elif total <= gpu_memory_gb:
            share = math.floor(100 * plan.gpu_memory_gb / total) / 100 if len(gpu_plans) > 1 else 1.0
            most = gpus
        else:
            share, most = 1.0, max(1, gpus // len(gpu_plans))
        most = max_actors.get(plan.name) or most
        placements[plan.name] = Placement(share, 1, most, why)
    return placements


def decode_workers(configured: int | None, cap: Capacity, reserved: float) -> int:
    """Most decode actors: the configured number, else every CPU the cluster has or may get, less `reserved`."""
    if configured:
        return configured
    return max(1, int(_bounded(cap.reach("CPU"), DEFAULT_MAX_DECODE_ACTORS) - reserved))


def wait_for_gpu(placements: dict[str, Placement], wait_s: float, cpus_per_actor: float) -> float:
    """Block until the cluster has a GPU for the GPU pools, asking its autoscaler for one; seconds waited.

    Raises ConfigError when none joins within `wait_s`: the run stops before decoding anything.
    """
    import ray

    shares = [p.num_gpus for p in placements.values() if p.num_gpus > 0]
    if not shares or ray.cluster_resources().get("GPU", 0.0) >= 1:
        return 0.0
    from ray.autoscaler.sdk import request_resources

    begin = time.monotonic()
    log.info("placement: no GPU in the cluster yet; asking the autoscaler and waiting up to %g s", wait_s)
    request_resources(bundles=[{"GPU": max(shares), "CPU": cpus_per_actor}])
    try:
        while ray.cluster_resources().get("GPU", 0.0) < 1:
            if time.monotonic() - begin > wait_s:
                names = ", ".join(n for n, p in placements.items() if p.num_gpus > 0)
                raise ConfigError(
                    f"{names} must run on GPU but no GPU joined the Ray cluster within {wait_s:g} s (gpu_wait_s). "
                    "Check that the cluster's GPU node group can start (quota, node selector, image pull), "
                    "raise gpu_wait_s, or run on CPU with --device cpu"
                )
            time.sleep(1.0)
    finally:
        request_resources(bundles=[])  # Ray Data asks for further nodes itself as its pools grow
    waited = time.monotonic() - begin
    log.info("placement: a GPU joined after %.0f s", waited)
    return waited
