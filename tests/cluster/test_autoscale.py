"""An autoscaling cluster at zero GPUs: `device: auto` puts the model scorer on GPU because the autoscaler can add
GPU nodes, asks for one and waits; the GPU node joins (added here, as the autoscaler would) and the run completes
with the scorer on it. When no GPU comes within `gpu_wait_s` the run stops with exit 2 before decoding anything.

The node types are published the way Ray's autoscaler publishes them (its ClusterConfig in the GCS), which is
what placement reads; the test plays the autoscaler's part of starting the node.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.test_multinode import VIDSCORE, actor_nodes, free_port, manifest, table_rows

pytestmark = pytest.mark.slow

PUBLISH = """
import ray, sys
from ray._raylet import GCS_AUTOSCALER_CLUSTER_CONFIG_KEY as KEY, GCS_AUTOSCALER_STATE_NAMESPACE as NS
from ray.core.generated import autoscaler_pb2
from ray.experimental.internal_kv import _internal_kv_put
ray.init(address=sys.argv[1], log_to_driver=False)
config = autoscaler_pb2.ClusterConfig()
group = config.node_group_configs.add(name="gpu-workers", min_count=0, max_count=2)
group.resources["CPU"], group.resources["GPU"] = 1, 1
_internal_kv_put(KEY.encode(), config.SerializeToString(), overwrite=True, namespace=NS.encode())
"""


@pytest.fixture
def zero_gpu_cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 3, "gcs_server_port": free_port(), "object_store_memory": 300 << 20},
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", PUBLISH, c.address], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    try:
        yield c
    finally:
        c.shutdown()


def start(c, tmp_path: Path, checkpoint: Path, wait_s: int) -> tuple[subprocess.Popen, Path, Path]:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"scorers: [technical, {{name: videoscore, checkpoint: {checkpoint}, batch_size: 2}}]\n"
        f"gpu_wait_s: {wait_s}\ndecode_workers: 1\n"
    )
    videos, out = manifest(tmp_path, copies=1), tmp_path / "scores"
    args = [VIDSCORE, "score", str(videos), "-o", str(out), "--config", str(cfg), "--ray-address", c.address]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, videos, out


def wait_for_line(proc: subprocess.Popen, text: str, timeout_s: float = 180) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout_s
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return seen
        assert time.monotonic() < deadline, "".join(seen[-20:])
    raise AssertionError(f"the run ended before {text!r}:\n" + "".join(seen[-30:]))


def test_auto_asks_for_a_gpu_node_and_scores_on_it_when_it_joins(zero_gpu_cluster, checkpoint, tmp_path):
    c = zero_gpu_cluster
    proc, videos, out = start(c, tmp_path, checkpoint, wait_s=240)
    wait_for_line(proc, "asking the autoscaler")
    assert not list(out.glob("run_date=*/*.parquet"))  # nothing decoded or written while it waits
    gpu = c.add_node(num_cpus=1, num_gpus=1)  # what the autoscaler does for the request
    stdout, stderr = proc.communicate(timeout=420)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    summary = json.loads(next((out / "_vidscore").glob("run-*.json")).read_text())
    assert "(auto: the cluster autoscaler can add GPU nodes)" in summary["ray"]["placement"]["videoscore"]
    assert summary["ray"]["gpu_wait_s"] > 0 and summary["ray"]["gpus"] == 1
    assert "1-2 actors x 1 GPU" in summary["ray"]["placement"]["videoscore"]  # may grow to the autoscaler's max
    ids = [r["video_id"] for r in table_rows(out)]
    assert len(ids) == len(set(ids)) == len(videos.read_text().splitlines())
    scorer = next(v for k, v in actor_nodes(c.address).items() if k.lower().startswith("videoscore"))
    assert scorer == {gpu.node_id}


def test_no_gpu_within_the_wait_is_exit_2_before_any_work(zero_gpu_cluster, checkpoint, tmp_path):
    proc, _, out = start(zero_gpu_cluster, tmp_path, checkpoint, wait_s=3)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr[-3000:]
    assert "videoscore must run on GPU but no GPU joined the Ray cluster within 3 s" in stderr.splitlines()[-1]
    assert not list(out.glob("run_date=*/*.parquet")) and not list(out.glob("_vidscore/run-*.json"))
