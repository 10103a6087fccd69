"""The sandbox: a real child process that is killed on timeout and restarted after a crash; results come back
through one reused shared-memory block that never outlives the sandbox."""

import ctypes
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vidscore.operators.sandbox import ChildError, Sandbox, SandboxCrash, SandboxTimeout, arena


def crash() -> None:
    ctypes.string_at(0)  # a real segfault in native code


def pid() -> int:
    return os.getpid()


def fail() -> None:
    raise ValueError("bad input")


def test_crash_costs_one_call_and_the_child_restarts() -> None:
    box = Sandbox(timeout_s=30)
    first = box.run(pid)
    assert first != os.getpid()
    with pytest.raises(SandboxCrash, match="died"):
        box.run(crash)
    assert box.run(pid) not in (first, os.getpid())


def test_timeout_kills_the_child() -> None:
    box = Sandbox(timeout_s=1)
    start = time.monotonic()
    with pytest.raises(SandboxTimeout):
        box.run(time.sleep, 60)
    assert time.monotonic() - start < 20 and box.process is None
    assert box.run(pid) != os.getpid()


def test_exceptions_come_back_as_messages() -> None:
    with pytest.raises(ChildError, match="^bad input$") as caught:
        Sandbox(timeout_s=30).run(fail)
    assert caught.value.type_name == "ValueError" and not caught.value.final


def filled(nbytes: int, value: int) -> np.ndarray:
    out = arena(nbytes)
    out[:] = value
    return out


def filled_then_crash(nbytes: int) -> None:
    filled(nbytes, 1)
    crash()


def filled_then_hang(nbytes: int) -> None:
    filled(nbytes, 1)
    time.sleep(60)


def two_arenas(first: int, second: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # The second does not fit the block the first took: plain memory, sent in band.
    return filled(first, 1), filled(second, 2), np.arange(10)


def shm_exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name}")


def test_arena_outside_a_sandbox_is_plain_memory() -> None:
    out = arena(16)
    assert out.dtype == np.uint8 and out.shape == (16,) and out.flags.writeable


def test_block_is_reused_and_grown_and_results_are_copies() -> None:
    box = Sandbox(timeout_s=30)
    first = box.run(filled, 3 << 20, 1)
    name = box.blocks[0].name
    second = box.run(filled, 3 << 20, 2)
    assert box.blocks[0].name == name  # same block, no new one per call
    assert (first == 1).all() and (second == 2).all()  # the second call did not overwrite the first result
    assert first.flags.writeable and first.nbytes == 3 << 20
    big = box.run(filled, 5 << 20, 3)
    assert box.blocks[0].name != name and box.blocks[0].size >= 5 << 20 and (big == 3).all()
    assert not shm_exists(name) and shm_exists(box.blocks[0].name)  # the outgrown block is unlinked
    a, b, c = box.run(two_arenas, 4 << 20, 6 << 20)
    assert (a == 1).all() and (b == 2).all() and a.nbytes == 4 << 20 and b.nbytes == 6 << 20
    np.testing.assert_array_equal(c, np.arange(10))
    grown = box.blocks[0].name
    box.close()
    assert not shm_exists(grown) and box.blocks == []


def test_block_survives_a_crash_and_a_timeout_then_is_unlinked() -> None:
    box = Sandbox(timeout_s=3)
    box.run(filled, 1 << 20, 1)
    name = box.blocks[0].name
    with pytest.raises(SandboxCrash):
        box.run(filled_then_crash, 1 << 20)
    with pytest.raises(SandboxTimeout):
        box.run(filled_then_hang, 1 << 20)
    assert box.blocks[0].name == name  # the parent owns it: a dead child takes nothing with it
    assert (box.run(filled, 1 << 20, 5) == 5).all()  # a fresh child maps the same block
    del box
    gc.collect()
    assert not shm_exists(name)  # unlinked when the sandbox goes


def test_crash_while_growing_leaks_no_block() -> None:
    box = Sandbox(timeout_s=30)
    with pytest.raises(SandboxCrash):
        box.run(filled_then_crash, 2 << 20)  # the block was created for this call, then the child died
    name = box.blocks[0].name
    assert (box.run(filled, 2 << 20, 4) == 4).all() and box.blocks[0].name == name
    box.close()
    assert not shm_exists(name)


def test_large_block_is_released_after_its_call() -> None:
    box = Sandbox(timeout_s=30, keep_bytes=2 << 20)
    assert (box.run(filled, 1 << 20, 1) == 1).all()
    kept = box.blocks[0].name
    assert (box.run(filled, 3 << 20, 2) == 2).all()
    assert box.blocks == [] and not shm_exists(kept)  # past keep_bytes: not kept between calls
    assert (box.run(filled, 1 << 20, 3) == 3).all()
    box.close()


def test_exit_without_close_leaks_no_block(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        "from vidscore.operators.sandbox import Sandbox\n"
        "from tests.operators.test_sandbox import filled\n"
        "if __name__ == '__main__':\n"
        "    box = Sandbox(timeout_s=30)\n"
        "    box.run(filled, 1 << 20, 1)\n"
        "    print(box.blocks[0].name)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert not shm_exists(done.stdout.strip()) and "leaked" not in done.stderr
