"""The sandbox: a real child process that is killed on timeout and restarted after a crash."""

import ctypes
import os
import time

import pytest

from operators.sandbox import Sandbox, SandboxCrash, SandboxTimeout


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
    with pytest.raises(RuntimeError, match="ValueError: bad input"):
        Sandbox(timeout_s=30).run(fail)
