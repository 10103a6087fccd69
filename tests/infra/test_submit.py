"""`ray job submit` of the score job to a real Ray head on loopback, the way a cluster runs it.

Starts its own head (`ray start --head --block` on free ports, its own temp dir) and stops only that
process tree at the end; it never calls `ray stop`, which would also stop other Ray instances on the machine.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from vidscore.jobs.corpus import make_corpus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The dashboard (and so the job API) is in ray[default], not in ray[data].
DASHBOARD_MODULES = ("aiohttp_cors", "opencensus", "prometheus_client", "colorful", "grpc", "smart_open")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the `ray start --block` process (it stops what it started), then SIGKILL whatever of its
    process tree is left, workers included (they run in their own sessions, so a group kill misses them)."""
    import psutil

    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=10)
    proc.wait(timeout=10)


@pytest.fixture
def ray_head() -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head with the dashboard on 127.0.0.1; yields (dashboard address, env for the `ray` CLI)."""
    missing = [m for m in DASHBOARD_MODULES if m not in sys.modules and find_spec(m) is None]
    if missing:
        pytest.skip(f"ray job submit needs the Ray dashboard: pip install 'ray[default]' (missing {missing})")
    gcs, dash, client, agent, agent_grpc, metrics, runtime_env, node_mgr, obj_mgr = free_ports(9)
    temp_dir = tempfile.mkdtemp(prefix="vsray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # Token authentication on (Ray's default for `ray start --head`), with the test session's generated token
    # (tests/conftest.py): what a new user's `ray start --head` + `ray job submit` does.
    assert os.environ["RAY_AUTH_MODE"] == "token" and Path(os.environ["RAY_AUTH_TOKEN_PATH"]).is_file()
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        # Workers and the job's `python` come from this venv, so the job imports what the tests import.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # Two CPUs, as on a small workstation: the actor pools then hold every CPU, and anything else in the graph
    # that asks for a whole one (e.g. a repartition task) would wait forever.
    cmd = [
        str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
        "--num-cpus=2", "--include-dashboard=true", f"--dashboard-port={dash}", "--dashboard-host=127.0.0.1",
        f"--temp-dir={temp_dir}", f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={runtime_env}", f"--node-manager-port={node_mgr}",
        f"--object-manager-port={obj_mgr}", "--disable-usage-stats",
    ]  # fmt: skip
    log = open(Path(temp_dir) / "ray-start.log", "w+b")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                token = Path(env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
                ask = urllib.request.Request(f"{address}/api/version", headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(ask, timeout=2) as resp:
                    if json.load(resp).get("ray_version"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"Ray head did not come up:\n{log.read().decode(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield address, env
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit(address: str, env: dict[str, str], runtime_env: dict, *entrypoint: str) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", str(ROOT)]
    cmd += ["--runtime-env-json", json.dumps(runtime_env), "--", *entrypoint]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_ray_job_submit_scores_and_a_rerun_resumes(ray_head: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = ray_head
    manifest = make_corpus(tmp_path / "corpus", per_generator=2, num_frames=12)
    out = tmp_path / "scores"
    # The job runs in an uploaded copy of the repo (a temp dir on the cluster): absolute input and output,
    # and the same upload excludes as infra/runtime_env.yaml so .venv, .git and demo output stay home.
    excludes = yaml.safe_load((ROOT / "infra/runtime_env.yaml").read_text())["excludes"]
    runtime_env = {"excludes": excludes, "env_vars": {"HF_HOME": str(tmp_path / "hf")}}
    entrypoint = ("python", "-m", "vidscore.jobs.score", str(manifest), "-o", str(out), "--limit", "4")

    # The Jobs API refuses a client without the cluster's token: nobody who reaches port 8265 runs code.
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    refused = submit(address, {**env, "RAY_AUTH_TOKEN_PATH": str(wrong)}, runtime_env, *entrypoint)
    assert refused.returncode != 0 and not out.exists()
    assert re.search(r"401|403|[Uu]nauthori[sz]ed|[Aa]uthentication", refused.stdout + refused.stderr), refused.stderr

    first = submit(address, env, runtime_env, *entrypoint)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "succeeded" in first.stdout + first.stderr
    table = pq.read_table(out)
    assert table.num_rows == 4
    assert table.column("status").to_pylist() == ["ok"] * 4
    assert len(set(table.column("video_id").to_pylist())) == 4

    # What a RayJob retry does after a crash: the same command again. Nothing is rescored or duplicated.
    second = submit(address, env, runtime_env, *entrypoint)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "4 up to date in" in second.stdout + second.stderr
    assert pq.read_table(out).num_rows == 4
