"""Several Ray nodes on one machine (Ray's own multi-node harness, `ray.cluster_utils.Cluster`): a head, a CPU-only
worker and a worker that advertises a GPU. Runs join them on purpose (`--ray-address`), with token authentication.

- Placement: node labels in the configuration pin decode to the decode node and the GPU scorer to the GPU node,
  and every video is scored exactly once.
- Node loss: a worker node is killed mid-run (the head stays) and a replacement joins, as KubeRay replaces a pod.
  The run either completes with the lost work rescheduled, or fails with a clear message and the same command
  completes the rest; either way each video is in the table exactly once and nothing is scored twice.
- Join on purpose: with this cluster up (and registered as the machine's current Ray), a run without an address
  starts its own local Ray instead of attaching to it.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from vidscore.jobs.corpus import make_corpus

pytestmark = pytest.mark.slow
VIDSCORE = str(Path(sys.executable).parent / "vidscore")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    assert os.environ["RAY_AUTH_MODE"] == "token"  # tests/conftest.py: every node runs with token auth
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "gcs_server_port": free_port(), "object_store_memory": 300 << 20},
    )
    nodes = {
        "head": c.head_node,
        "cpu": c.add_node(num_cpus=2, labels={"vidscore/pool": "decode"}),
        "gpu": c.add_node(num_cpus=1, num_gpus=1, labels={"vidscore/pool": "gpu"}),
    }
    c.wait_for_nodes()
    try:
        yield c, nodes
    finally:
        c.shutdown()


def manifest(tmp_path: Path, copies: int) -> Path:
    """The demo corpus' clips (no corrupt one) `copies` times under distinct ids."""
    source = make_corpus(tmp_path / "corpus", per_generator=2, num_frames=12, include_bad=False)
    rows = [json.loads(x) for x in source.read_text().splitlines()]
    out = tmp_path / "manifest.jsonl"
    with out.open("w") as f:
        for copy in range(copies):
            for i, row in enumerate(rows):
                f.write(json.dumps({**row, "uri": str(source.parent / row["uri"]), "video_id": f"v{copy}-{i}"}) + "\n")
    return out


def score(address: str, manifest: Path, out: Path, config: Path, timeout_s: float = 420, **popen) -> subprocess.Popen:
    args = [VIDSCORE, "score", str(manifest), "-o", str(out), "--config", str(config), "--ray-address", address]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def table_rows(out: Path) -> list[dict]:
    files = sorted(str(p) for p in out.glob("run_date=*/part-*.parquet"))
    return pads.dataset(files, format="parquet").to_table(columns=["video_id", "status", "run_id"]).to_pylist()


def actor_nodes(address: str) -> dict[str, set[str]]:
    """Node ids per actor class, from the cluster's GCS actor table (dead actors included), read by a separate
    driver: this test process is attached to the session's own Ray."""
    code = (
        "import json, ray\n"
        f"ray.init(address={address!r}, log_to_driver=False)\n"
        "from ray._private.state import actors\n"
        "print(json.dumps([[a['ActorClassName'], a['Address']['NodeID']] for a in actors().values()]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, set[str]] = {}
    for cls, node in json.loads(done.stdout.strip().splitlines()[-1]):
        out.setdefault(cls.rsplit(".", 1)[-1].split("(")[-1].rstrip(")"), set()).add(node)
    return out


def config(tmp_path: Path, labels: str = "", **extra) -> Path:
    path = tmp_path / "job.yaml"
    lines = [f"scorers: [technical, {{name: videoscore, checkpoint: CKPT, device: gpu, batch_size: 2{labels}}}]"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_decode_on_cpu_nodes_scoring_on_the_gpu_node_every_video_once(cluster, checkpoint: Path, tmp_path: Path):
    c, nodes = cluster
    # Node labels pin each pool: decode on the decode node, the model on the GPU node.
    labels = ", labels: {vidscore/pool: gpu}"
    cfg = config(tmp_path, labels, decode_workers=2, gpu_wait_s=30, decode_labels="{vidscore/pool: decode}")
    cfg.write_text(cfg.read_text().replace("CKPT", str(checkpoint)))
    videos = manifest(tmp_path, copies=2)
    out = tmp_path / "scores"
    proc = score(c.address, videos, out, cfg)
    stdout, stderr = proc.communicate(timeout=420)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]

    rows = table_rows(out)
    ids = [r["video_id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(videos.read_text().splitlines())
    assert {r["status"] for r in rows} == {"ok"}
    summary = json.loads(next((out / "_vidscore").glob("run-*.json")).read_text())
    assert summary["ray"]["mode"] == "joined" and summary["ray"]["nodes"] == 3 and summary["ray"]["gpus"] == 1
    assert "1 GPU (device: gpu)" in summary["ray"]["placement"]["videoscore"]

    where = actor_nodes(c.address)
    gpu, cpu_nodes = nodes["gpu"].node_id, {nodes["head"].node_id, nodes["cpu"].node_id}
    scorer = next(k for k in where if k.lower().startswith("videoscore"))
    assert where[scorer] == {gpu}, where  # num_gpus: only the GPU node can hold the model scorer
    assert where["Decoder"] == {nodes["cpu"].node_id}, where  # decode_labels: only the labelled node decodes
    assert cpu_nodes == {nodes["head"].node_id, nodes["cpu"].node_id}
    technical = next(k for k in where if k.lower().startswith("technical"))
    assert where[technical] <= cpu_nodes | {gpu}, where


def test_a_worker_node_lost_mid_run_loses_nothing_and_scores_nothing_twice(cluster, checkpoint, tmp_path: Path):
    c, nodes = cluster
    # Decode pinned to the decode node, so the node lost is the one doing the run's decoding.
    cfg = config(tmp_path, decode_workers=2, decode_batch_size=1, rows_per_file=2, gpu_wait_s=30,
                 decode_labels="{vidscore/pool: decode}")  # fmt: skip
    cfg.write_text(cfg.read_text().replace("CKPT", str(checkpoint)))
    videos = manifest(tmp_path, copies=4)
    expected = len(videos.read_text().splitlines())
    out = tmp_path / "scores"
    proc = score(c.address, videos, out, cfg)
    deadline = time.monotonic() + 300
    while not list(out.glob("run_date=*/part-*.parquet")):  # mid-run: the first rows are committed
        assert proc.poll() is None, "the run ended before the node was lost: " + proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lost = nodes["cpu"].node_id
    assert lost in actor_nodes(c.address)["Decoder"]  # the node about to be lost is doing the run's decoding
    c.remove_node(nodes["cpu"], allow_graceful=False)  # kill the CPU worker: its decoders and blocks are gone
    c.add_node(num_cpus=2, labels={"vidscore/pool": "decode"})  # the replacement pod, in the same node group
    stdout, stderr = proc.communicate(timeout=420)
    first = proc.returncode
    if first != 0:
        # Ray could not recover: a one-line reason, and the same command completes the rest.
        assert first == 1 and "the run failed part-way" in stderr, stderr[-3000:]
        again = score(c.address, videos, out, cfg)
        stdout, stderr = again.communicate(timeout=420)
        assert again.returncode == 0, stdout[-2000:] + stderr[-3000:]
    rows = table_rows(out)
    scored = [r["video_id"] for r in rows if r["status"] is not None]
    assert len(scored) == len(set(scored)) == expected, (first, sorted(scored))
    assert {r["status"] for r in rows} == {"ok"}
    summaries = [json.loads(p.read_text()) for p in (out / "_vidscore").glob("run-*.json")]
    restarts = [s["actor_restarts"] for s in summaries]
    print(f"node loss: first run exit {first}; {len(summaries)} run(s); actor restarts {restarts}")


def test_without_an_address_a_run_starts_its_own_ray_not_the_one_running(cluster, tmp_path: Path):
    c, _ = cluster  # registered as this machine's current Ray: a bare ray.init() would attach to it
    videos = manifest(tmp_path, copies=1)
    out = tmp_path / "scores"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([VIDSCORE, "score", str(videos), "-o", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(next((out / "_vidscore").glob("run-*.json")).read_text())
    assert summary["ray"]["mode"] == "local" and summary["ray"]["address"] != c.address
    assert summary["ray"]["nodes"] == 1


def test_an_unreachable_or_dashboard_address_fails_before_any_work(tmp_path: Path):
    videos = manifest(tmp_path, copies=1)
    out = tmp_path / "scores"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    for address, message in [
        (f"127.0.0.1:{free_port()}", "cannot reach the Ray cluster at 127.0.0.1"),
        ("http://127.0.0.1:8265", "is a dashboard (job submission) URL"),
    ]:
        begin = time.monotonic()
        done = subprocess.run([VIDSCORE, "score", str(videos), "-o", str(out), "--ray-address", address], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2 and message in done.stderr.splitlines()[-1], done.stderr[-2000:]
        assert time.monotonic() - begin < 60 and not out.exists()
