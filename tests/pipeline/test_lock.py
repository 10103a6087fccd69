"""One writer per table: exclusive claims, refusal naming the holder, expiry of a crashed run's claim."""

import json
import threading
import time
from pathlib import Path

import pytest

from vidscore.pipeline.lock import TableLock, TableLocked


def test_second_claim_refuses_naming_the_holder_then_succeeds_after_release(tmp_path: Path) -> None:
    held = r"run 20260101T000000-aaaaaa on host \S+ \(pid \d+\), started 20"
    with TableLock(str(tmp_path), "20260101T000000-aaaaaa"), pytest.raises(TableLocked, match=held):
        TableLock(str(tmp_path), "20260101T000001-bbbbbb").acquire()
    with TableLock(str(tmp_path), "20260101T000002-cccccc"):
        pass


def test_a_crashed_runs_claim_expires(tmp_path: Path) -> None:
    crashed = TableLock(str(tmp_path), "20260101T000000-aaaaaa", ttl_s=0.5)
    crashed.acquire()
    crashed._stop.set()  # the process died: no more heartbeats, no release
    with pytest.raises(TableLocked):
        TableLock(str(tmp_path), "20260101T000001-bbbbbb").acquire()
    time.sleep(0.7)
    with TableLock(str(tmp_path), "20260101T000002-cccccc"):
        pass


def test_the_heartbeat_keeps_a_long_run_claimed(tmp_path: Path) -> None:
    with TableLock(str(tmp_path), "20260101T000000-aaaaaa", ttl_s=0.6):
        time.sleep(1.5)  # several TTLs
        with pytest.raises(TableLocked):
            TableLock(str(tmp_path), "20260101T000001-bbbbbb").acquire()


def race(location: str, endpoint_url: str | None = None) -> list[str]:
    """Eight runs claim at once; the winners' ids."""
    won, barrier = [], threading.Barrier(8)

    def claim(i: int) -> None:
        lock = TableLock(location, f"20260101T000000-{i:06d}", endpoint_url=endpoint_url)
        barrier.wait()
        try:
            lock.acquire()
            won.append(lock.run_id)
        except TableLocked:
            pass

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def test_exactly_one_of_racing_runs_wins_locally(tmp_path: Path) -> None:
    assert len(race(str(tmp_path))) == 1


def test_a_claim_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path: Path) -> None:
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    crashed = TableLock(str(tmp_path), "20260101T000000-aaaaaa", ttl_s=3600)
    crashed.acquire()
    crashed._stop.set()
    claim = json.loads(Path(crashed.path).read_text())
    Path(crashed.path).write_text(json.dumps({**claim, "pid": dead.pid}))
    with TableLock(str(tmp_path), "20260101T000001-bbbbbb"):
        assert [p.name for p in (tmp_path / "_vidscore" / "lock").iterdir()] == ["000000000002.json"]
    assert list((tmp_path / "_vidscore" / "lock").iterdir()) == []  # a finished run leaves no claim
