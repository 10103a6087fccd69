"""Crash resume and incremental runs: exactly-once output after kills, and reruns score only what changed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from vidscore.jobs.corpus import encode_video, render
from vidscore.jobs.score import main
from vidscore.jobs.table import read_scores

pytestmark = pytest.mark.slow
VIDSCORE = str(Path(sys.executable).parent / "vidscore")


def committed(out: Path) -> list[Path]:
    return sorted(out.glob("run_date=*/part-*.parquet"))


def rows(out: Path) -> list[dict]:
    return pads.dataset([str(p) for p in committed(out)], format="parquet").to_table().to_pylist()


def wait_for(condition, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.05)


@pytest.fixture()
def big_manifest(corpus: Path, tmp_path: Path) -> Path:
    """60 rows (the corpus' 10 videos six times under distinct ids): long enough to kill mid-run."""
    lines = [json.loads(x) for x in corpus.read_text().splitlines()]
    out = tmp_path / "manifest.jsonl"
    with out.open("w") as f:
        for copy in range(6):
            for i, row in enumerate(lines):
                uri = str(corpus.parent / row["uri"])
                f.write(json.dumps({**row, "uri": uri, "video_id": f"v{copy}-{i}"}) + "\n")
    return out


@pytest.mark.parametrize("point", ["before_first_file", "after_first_file"])
def test_driver_killed_then_rerun_gives_every_video_once(
    big_manifest: Path, ray_cluster: str, tmp_path: Path, point: str
) -> None:
    out, config = tmp_path / "scores", tmp_path / "job.yaml"
    config.write_text("rows_per_file: 2\ndecode_batch_size: 1\n")
    args = ["score", str(big_manifest), "-o", str(out), "--config", str(config)]
    proc = subprocess.Popen(
        [VIDSCORE, *args],
        env={**os.environ, "RAY_ADDRESS": ray_cluster},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if point == "before_first_file":
        wait_for(lambda: (out / "_vidscore").exists(), proc)  # validated, Ray joined, no file yet
    else:
        wait_for(lambda: len(committed(out)) >= 1, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r["video_id"]: r["run_id"] for r in rows(out)} if committed(out) else {}
    assert len(before) < 60

    assert main(args[1:]) == 0
    after = rows(out)
    ids = [r["video_id"] for r in after]
    assert sorted(ids) == sorted(f"v{c}-{i}" for c in range(6) for i in range(10)) and len(set(ids)) == 60
    # What the killed run committed was kept, not scored again.
    assert all(r["run_id"] == before[r["video_id"]] for r in after if r["video_id"] in before)
    assert sum(r["status"] == "decode_error" for r in after) == 6


def test_killed_decode_worker_costs_nothing(ray_cluster: str, tmp_path: Path) -> None:
    # Long clips (every frame up to the last sampled one is decoded) keep the one decoder busy well past the
    # first commit, so the kill lands while it still has work.
    clip = encode_video(tmp_path / "long.mp4", render("crisp-motion", 1, 240, 192, 256))
    big_manifest = tmp_path / "long.jsonl"
    big_manifest.write_text("".join(json.dumps({"uri": str(clip), "video_id": f"v{i}"}) + "\n" for i in range(30)))
    out, config = tmp_path / "scores", tmp_path / "job.yaml"
    config.write_text("rows_per_file: 2\ndecode_batch_size: 1\ndecode_workers: 1\n")
    args = ["score", str(big_manifest), "-o", str(out), "--config", str(config)]
    proc = subprocess.Popen(
        [VIDSCORE, *args],
        env={**os.environ, "RAY_ADDRESS": ray_cluster},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_for(lambda: len(committed(out)) >= 1, proc)
    victims = decoder_workers()
    assert victims, "no decode worker process of this run found"
    for pid in victims:  # only this run's live decode actors, by pid from Ray's actor table
        os.kill(pid, signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    ids = [r["video_id"] for r in rows(out)]
    assert len(ids) == 30 == len(set(ids))
    summary = json.loads(next((out / "_vidscore").glob("run-*.json")).read_text())
    assert sum(summary["actor_restarts"].values()) >= 1 and "worker restarts:" in stdout


def decoder_workers(timeout_s: float = 60) -> list[int]:
    """Pids of the live decode actors in the test cluster (Ray's GCS actor table; this test process is a driver
    of that cluster). A killed driver's job ends with its actors, so these belong to the run under test. Polled:
    the table can lag the actor's start."""
    from ray._private.state import actors

    deadline = time.monotonic() + timeout_s
    while True:
        table = actors().values()
        found = [int(a["Pid"]) for a in table if "Decoder" in a.get("ActorClassName", "") and a["State"] == "ALIVE"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_incremental_runs_score_only_new_changed_or_reconfigured(tmp_path: Path, ray_cluster: str) -> None:
    src, out = tmp_path / "dump", tmp_path / "scores"
    src.mkdir()
    for i in range(4):
        encode_video(src / f"clip{i}.mp4", render("crisp-motion", i, 8, 48, 64))
    (src / "gone.mp4").write_bytes(b"")  # a decode_error: not retried while unchanged
    assert main([str(src), "-o", str(out)]) == 0
    assert len(rows(out)) == 5

    # Same input again: nothing to do.
    assert main([str(src), "-o", str(out)]) == 0
    assert len(rows(out)) == 5

    # Night two: one new clip, one clip re-rendered in place, the broken file replaced by a real clip.
    encode_video(src / "clip4.mp4", render("soft-drift", 4, 8, 48, 64))
    encode_video(src / "clip1.mp4", render("frozen", 99, 8, 48, 64))
    encode_video(src / "gone.mp4", render("soft-drift", 5, 8, 48, 64))
    assert main([str(src), "-o", str(out)]) == 0
    runs = {r["run_id"] for r in rows(out)}
    assert len(runs) == 2
    latest_run = max(runs)
    rescored = sorted(r["uri"].rsplit("/", 1)[1] for r in rows(out) if r["run_id"] == latest_run)
    assert rescored == ["clip1.mp4", "clip4.mp4", "gone.mp4"]

    # "The latest score per video": one row per video, the re-rendered clip now static.
    latest = {r["uri"].rsplit("/", 1)[1]: r for r in read_scores(str(out)).collect().to_dicts()}
    assert len(latest) == 6 and latest["clip1.mp4"]["technical_static"] and latest["gone.mp4"]["status"] == "ok"

    # A scorer configuration change (here the static threshold, recorded in technical_revision) rescores all.
    (tmp_path / "cfg.yaml").write_text("scorers:\n  - name: technical\n    static_threshold: 0.01\n")
    assert main([str(src), "-o", str(out), "--config", str(tmp_path / "cfg.yaml")]) == 0
    assert len(rows(out)) == 8 + 6
    assert main([str(src), "-o", str(out), "--config", str(tmp_path / "cfg.yaml")]) == 0
    assert len(rows(out)) == 14
    assert {r["technical_revision"] for r in read_scores(str(out)).collect().to_dicts()} == {"1+static_threshold=0.01"}


def test_retryable_failures_are_retried(tmp_path: Path, ray_cluster: str) -> None:
    manifest, out = tmp_path / "m.jsonl", tmp_path / "scores"
    manifest.write_text(json.dumps({"uri": str(tmp_path / "later.mp4"), "video_id": "later"}) + "\n")
    assert main([str(manifest), "-o", str(out)]) == 3  # its only video failed: over the failure budget
    assert [r["status"] for r in rows(out)] == ["fetch_error"]
    encode_video(tmp_path / "later.mp4", render("crisp-motion", 1, 8, 48, 64))
    assert main([str(manifest), "-o", str(out)]) == 0
    assert sorted(r["status"] for r in rows(out)) == ["fetch_error", "ok"]
    assert read_scores(str(out)).collect()["status"].to_list() == ["ok"]
