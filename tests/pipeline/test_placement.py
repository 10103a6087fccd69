"""Placement from declared intent: device rules, autoscaler reach, GPU sharing by memory, pool growth, decode pool
sizing, the wait for a GPU, and the staged input blocks."""

import sys

import pyarrow as pa
import pytest

from vidscore.operators.frames import FrameSpec
from vidscore.operators.scorers.plan import ScorerPlan
from vidscore.pipeline.build import cpu_runtime_env, decode_reserve, drops_frames, input_dataset, placements_for
from vidscore.pipeline.config import ConfigError, ScoreConfig, ScorerConfig
from vidscore.pipeline.placement import Capacity, Placement, decode_workers, on_gpu, place_scorers, wait_for_gpu


def plan(name: str, gb: float) -> ScorerPlan:
    return ScorerPlan(name=name, cls=object, frame_spec=FrameSpec.uniform(8, "linspace"), fields=(), gpu_memory_gb=gb)


def shares(placed: dict[str, Placement]) -> dict[str, tuple[float, int, int]]:
    return {n: (p.num_gpus, p.min_actors, p.max_actors) for n, p in placed.items()}


NO_GPU = Capacity(cpus=8, gpus=0)
AUTOSCALES_GPUS = Capacity(cpus=8, gpus=0, max_cpus=64, max_gpus=4)


def test_auto_takes_gpu_when_the_cluster_has_one_or_its_autoscaler_can_add_one() -> None:
    model = plan("videoscore", 24)
    assert on_gpu(model, "auto", Capacity(cpus=8, gpus=2))[0]
    assert on_gpu(model, "auto", AUTOSCALES_GPUS) == (True, "auto: the cluster autoscaler can add GPU nodes")
    assert not on_gpu(model, "auto", NO_GPU)[0]
    assert not on_gpu(model, "auto", Capacity(cpus=8, gpus=0, max_cpus=64, max_gpus=None))[0]


def test_explicit_devices_win_over_what_is_up_and_models_only_go_to_gpu() -> None:
    assert on_gpu(plan("videoscore", 24), "gpu", NO_GPU)[0]
    assert not on_gpu(plan("videoscore", 24), "cpu", Capacity(cpus=8, gpus=8))[0]
    assert not on_gpu(plan("technical", 0), "gpu", Capacity(cpus=8, gpus=8))[0]


def test_an_autoscaling_cluster_at_zero_gpus_gets_gpu_pools_that_may_grow_to_its_limit() -> None:
    plans = [plan("videoscore", 24), plan("mjvideo", 8), plan("technical", 0)]
    placed = place_scorers(plans, {}, {}, AUTOSCALES_GPUS, gpu_memory_gb=80, cpu_actors=2)
    assert shares(placed) == {"videoscore": (0.75, 1, 4), "mjvideo": (0.25, 1, 4), "technical": (0.0, 1, 2)}


def test_models_that_do_not_fit_one_gpu_split_the_gpus_and_max_actors_overrides() -> None:
    cap = Capacity(cpus=8, gpus=4)
    placed = place_scorers([plan("a", 60), plan("b", 40)], {}, {}, cap, gpu_memory_gb=80, cpu_actors=1)
    assert shares(placed) == {"a": (1.0, 1, 2), "b": (1.0, 1, 2)}
    placed = place_scorers([plan("a", 60), plan("b", 40)], {}, {"a": 3}, cap, gpu_memory_gb=80, cpu_actors=1)
    assert shares(placed) == {"a": (1.0, 1, 3), "b": (1.0, 1, 2)}


def test_a_single_model_takes_whole_gpus_and_cpu_devices_use_cpu_pools() -> None:
    cap = Capacity(cpus=8, gpus=2)
    assert shares(place_scorers([plan("a", 20)], {}, {}, cap, 80, 1)) == {"a": (1.0, 1, 2)}
    assert shares(place_scorers([plan("a", 20)], {"a": "cpu"}, {}, cap, 80, 3)) == {"a": (0.0, 1, 3)}
    assert shares(place_scorers([plan("a", 20)], {}, {}, NO_GPU, 80, 1)) == {"a": (0.0, 1, 1)}


def test_unbounded_autoscalers_get_a_default_growth_limit() -> None:
    cap = Capacity(cpus=0, gpus=0, max_cpus=sys.maxsize, max_gpus=sys.maxsize)
    assert shares(place_scorers([plan("a", 20)], {}, {}, cap, 80, 1)) == {"a": (1.0, 1, 16)}
    assert decode_workers(None, cap, reserved=0.5) == 63


def test_config_devices_per_scorer_beat_the_run_device() -> None:
    cfg = ScoreConfig(
        input="i", output="o", device="cpu", scorers=[ScorerConfig("videoscore", device="gpu", max_actors=2),
                                                      ScorerConfig("mjvideo")],
    )  # fmt: skip
    placed = placements_for([plan("videoscore", 24), plan("mjvideo", 8)], cfg, NO_GPU)
    assert shares(placed) == {"videoscore": (1.0, 1, 2), "mjvideo": (0.0, 1, 1)}


def test_the_last_reader_of_each_frame_column_drops_it() -> None:
    shared, own = FrameSpec.uniform(16, "arange"), FrameSpec.uniform(8, "linspace")
    plans = [
        ScorerPlan(name="first", cls=object, frame_spec=shared, fields=()),
        ScorerPlan(name="own", cls=object, frame_spec=own, fields=()),
        ScorerPlan(name="second", cls=object, frame_spec=shared, fields=()),
    ]
    assert drops_frames(plans) == {"first": False, "own": True, "second": True}


def test_decode_workers_leave_room_for_scorers_and_follow_the_autoscaler() -> None:
    reserved = decode_reserve({"technical": Placement(0.0, 1, 1, "")})
    assert reserved == 0.5
    assert decode_workers(None, Capacity(cpus=2, gpus=0), reserved) == 1
    assert decode_workers(None, Capacity(cpus=16, gpus=0), reserved) == 15
    assert decode_workers(None, Capacity(cpus=0, gpus=0, max_cpus=32), reserved) == 31  # head num-cpus: 0
    assert decode_workers(3, Capacity(cpus=16, gpus=0), reserved) == 3


def test_staged_chunks_become_small_blocks_covering_every_row_once(ray_cluster) -> None:
    import ray

    chunks = [pa.table({"video_id": [str(i) for i in range(s, s + 500)]}) for s in (0, 500)]
    ds = input_dataset([ray.put(c) for c in chunks], videos=1000, workers=4)
    blocks = [ray.get(ref) for bundle in ds.iter_internal_ref_bundles() for ref in bundle.block_refs]
    assert sum(len(b) for b in blocks) == 1000 and max(len(b) for b in blocks) <= 64 and len(blocks) >= 16
    assert pa.concat_tables(blocks).column("video_id").to_pylist() == [str(i) for i in range(1000)]
    small = input_dataset([ray.put(chunks[0].slice(0, 3))], videos=3, workers=8)
    assert [len(ray.get(r)) for b in small.iter_internal_ref_bundles() for r in b.block_refs] == [1, 1, 1]


def test_cpu_scorers_may_use_the_nodes_cores_unless_the_job_says_otherwise(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_runtime_env(8, Placement(0.0, 1, 2, "")) == {"env_vars": {"OMP_NUM_THREADS": "4"}}
    assert cpu_runtime_env(2, Placement(0.0, 1, 4, "")) == {"env_vars": {"OMP_NUM_THREADS": "1"}}
    assert cpu_runtime_env(8, Placement(0.5, 1, 2, "")) is None  # GPU actors: Ray's default
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_runtime_env(8, Placement(0.0, 1, 1, "")) is None


def test_a_required_gpu_that_never_joins_stops_the_run_with_the_fix(ray_cluster) -> None:
    placed = {"videoscore": Placement(1.0, 1, 1, "device: gpu"), "technical": Placement(0.0, 1, 1, "no model: CPU")}
    with pytest.raises(ConfigError, match=r"videoscore must run on GPU but no GPU joined .* within 1 s.*--device cpu"):
        wait_for_gpu(placed, wait_s=1, cpus_per_actor=0.25)
    assert wait_for_gpu({"technical": Placement(0.0, 1, 1, "")}, wait_s=1, cpus_per_actor=0.25) == 0.0
