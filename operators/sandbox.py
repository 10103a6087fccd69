"""A killable child process for work that can hang or crash (native decoders on hostile input).

One call at a time; a call past its deadline kills the child, a child that dies is restarted for the next
call, so a bad video costs its own row instead of a worker or the job.
"""

import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from typing import Any


class SandboxTimeout(Exception):
    """The call ran past its wall-clock limit; the child was killed."""


class SandboxCrash(Exception):
    """The child process died during the call (e.g. a segfault in native code)."""


def _pack(result: Any) -> tuple[bytes, str | None, list[tuple[int, int]]]:
    """Pickle `result` with its array buffers out of band, in one shared-memory block: a pipe would copy
    tens of MB of frames per video through the kernel in small chunks, shared memory costs one memcpy."""
    buffers: list[pickle.PickleBuffer] = []
    payload = pickle.dumps(result, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    total = sum(v.nbytes for v in views)
    if not total:
        return payload, None, []
    block = SharedMemory(create=True, size=total)
    resource_tracker.unregister(block._name, "shared_memory")  # the parent unlinks it
    spans, position = [], 0
    for view in views:
        block.buf[position : position + view.nbytes] = view
        spans.append((position, view.nbytes))
        position += view.nbytes
    name = block.name
    block.close()
    return payload, name, spans


def _unpack(payload: bytes, name: str | None, spans: list[tuple[int, int]]) -> Any:
    if name is None:
        return pickle.loads(payload)
    block = SharedMemory(name=name)
    try:
        buffers = [bytearray(block.buf[start : start + size]) for start, size in spans]
    finally:
        block.close()
        block.unlink()
    return pickle.loads(payload, buffers=buffers)


def _serve(conn: Any) -> None:
    while True:
        try:
            fn, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", _pack(fn(*args))))
        except Exception as exc:  # noqa: BLE001 - shipped back to the parent as data
            conn.send(("error", (type(exc).__name__, str(exc))))


class Sandbox:
    """Runs `fn(*args)` in a child process with a timeout.

    Args:
        timeout_s: wall-clock limit per call.
    """

    def __init__(self, timeout_s: float) -> None:
        # spawn, not fork: the parent is a threaded Ray worker, and forking threads is unsafe.
        self.context = multiprocessing.get_context("spawn")
        self.timeout_s, self.process, self.conn = timeout_s, None, None

    def _start(self) -> None:
        self.conn, child = self.context.Pipe()
        self.process = self.context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
        self.process = self.conn = None

    def run(self, fn: Callable, *args: Any) -> Any:
        """The result of `fn(*args)`; re-raises its exception type name and message as RuntimeError."""
        if self.process is None or not self.process.is_alive():
            self._start()
        self.conn.send((fn, args))
        if not self.conn.poll(self.timeout_s):
            self.stop()
            raise SandboxTimeout(f"no result after {self.timeout_s:g}s; the decoder was killed")
        try:
            kind, value = self.conn.recv()
        except (EOFError, OSError):  # the child died: end of pipe, or a reset connection
            self.process.join()
            code = self.process.exitcode
            self.process = self.conn = None
            raise SandboxCrash(f"the decoder process died (exit code {code})") from None
        if kind == "error":
            raise RuntimeError(f"{value[0]}: {value[1]}")
        return _unpack(*value)
