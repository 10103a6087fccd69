"""Resource placement: GPU sharing by declared memory, CPU fallback, decode pool sizing, input blocks."""

import pyarrow as pa

from operators.frames import FrameSpec
from operators.scorers.plan import ScorerPlan
from pipeline.build import Placement, decode_workers, drops_frames, input_dataset, place_scorers
from pipeline.config import ScoreConfig


def plan(name: str, gb: float) -> ScorerPlan:
    return ScorerPlan(name=name, cls=object, frame_spec=FrameSpec(8, "linspace"), fields=(), gpu_memory_gb=gb)


def test_models_that_fit_share_each_gpu() -> None:
    plans = [plan("videoscore", 24), plan("mjvideo", 8), plan("technical", 0)]
    placed = place_scorers(plans, gpus=4, gpu_memory_gb=80, cpu_actors=2)
    assert placed == {"videoscore": Placement(0.75, 4), "mjvideo": Placement(0.25, 4), "technical": Placement(0, 2)}


def test_models_that_do_not_fit_split_the_gpus() -> None:
    placed = place_scorers([plan("a", 60), plan("b", 40)], gpus=4, gpu_memory_gb=80, cpu_actors=1)
    assert placed == {"a": Placement(1.0, 2), "b": Placement(1.0, 2)}


def test_single_model_takes_whole_gpus_and_no_gpu_means_cpu() -> None:
    assert place_scorers([plan("a", 20)], gpus=2, gpu_memory_gb=80, cpu_actors=1) == {"a": Placement(1.0, 2)}
    assert place_scorers([plan("a", 20)], gpus=0, gpu_memory_gb=80, cpu_actors=1) == {"a": Placement(0.0, 1)}


def test_the_last_reader_of_each_frame_column_drops_it() -> None:
    shared, own = FrameSpec(16, "arange"), FrameSpec(8, "linspace")
    plans = [
        ScorerPlan(name="first", cls=object, frame_spec=shared, fields=()),
        ScorerPlan(name="own", cls=object, frame_spec=own, fields=()),
        ScorerPlan(name="second", cls=object, frame_spec=shared, fields=()),
    ]
    assert drops_frames(plans) == {"first": False, "own": True, "second": True}


def test_decode_workers_leave_room_for_scorers() -> None:
    cfg = ScoreConfig(input="i", output="o")
    placed = {"technical": Placement(0.0, 1)}
    assert decode_workers(cfg, 2, placed) == 1
    assert decode_workers(cfg, 16, placed) == 15
    assert decode_workers(ScoreConfig(input="i", output="o", decode_workers=3), 16, placed) == 3


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
    from pipeline.build import cpu_runtime_env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_runtime_env(8, Placement(0.0, 2)) == {"env_vars": {"OMP_NUM_THREADS": "4"}}
    assert cpu_runtime_env(2, Placement(0.0, 4)) == {"env_vars": {"OMP_NUM_THREADS": "1"}}
    assert cpu_runtime_env(8, Placement(0.5, 2)) is None  # GPU actors: Ray's default
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_runtime_env(8, Placement(0.0, 1)) is None
