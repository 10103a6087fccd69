"""A killable child process for work that can hang or crash (native decoders on hostile input).

One call at a time; a call past its deadline kills the child, a child that dies is restarted for the next
call, so a bad video costs its own row instead of a worker or the job.

Large results come back through one shared-memory block that the parent owns and reuses: work that allocates
its output with `arena()` writes straight into pages both processes already have mapped, and the parent makes
the one copy the caller keeps. A fresh block per call cost more than the copy (page faults on both sides,
~40 ms each way for 44 MB of frames). Only the parent creates and unlinks blocks, so a killed child leaks none.
"""

import contextlib
import ctypes
import importlib
import multiprocessing
import pickle
import time
import weakref
from collections.abc import Callable
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np


class SandboxTimeout(Exception):
    """The call ran past its wall-clock limit; the child was killed."""


class SandboxCrash(Exception):
    """The child process died during the call (e.g. a segfault in native code)."""


class _ChildArena:
    """The child's view of the parent's block: bump allocation within one call, growth on request."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.block, self.base, self.used = conn, None, 0, 0

    def attach(self, name: str | None) -> None:
        """Start a call on the parent's current block (None: the parent released it)."""
        self.used = 0
        if self.block is not None and self.block.name == name:
            return
        if self.block is not None:
            with contextlib.suppress(BufferError):  # a view outlived its call: unmapped when that view goes
                self.block.close()
        self.block = SharedMemory(name=name) if name else None
        self.base = np.frombuffer(self.block.buf, np.uint8).ctypes.data if self.block else 0

    def take(self, nbytes: int) -> np.ndarray:
        if self.block is None or self.used + nbytes > self.block.size:
            if self.used or not nbytes:  # earlier buffers of this call live in the block: it cannot be replaced now
                return np.empty(nbytes, np.uint8)
            self.conn.send(("grow", nbytes))
            self.attach(self.conn.recv())
        view = np.frombuffer(self.block.buf, np.uint8, nbytes, self.used)
        self.used += nbytes
        return view

    def pack(self, result: Any) -> tuple[bytes, list[tuple[int, int]]]:
        """Pickle `result`; buffers inside the block travel as (offset, size), the rest in band."""
        spans: list[tuple[int, int]] = []

        def place(buffer: pickle.PickleBuffer) -> bool:
            raw = buffer.raw()
            start = np.frombuffer(raw, np.uint8).ctypes.data - self.base if raw.nbytes else -1
            if self.block is None or not 0 <= start <= self.block.size - raw.nbytes:
                return True
            spans.append((start, raw.nbytes))
            return False

        return pickle.dumps(result, protocol=5, buffer_callback=place), spans

    def finish(self, keep_bytes: int) -> None:
        if self.block is not None and self.block.size > keep_bytes:
            self.attach(None)


_arena: _ChildArena | None = None  # set in the child process only


def arena(nbytes: int) -> np.ndarray:
    """A writable uint8 buffer for a result. In a sandbox child it lies in the parent's shared block (no copy
    on the way back); anywhere else, or when earlier buffers of the same call hold the block, plain memory."""
    return _arena.take(nbytes) if _arena is not None else np.empty(nbytes, np.uint8)


def _keep_freed_memory() -> None:
    """Calls allocate and free frame-sized buffers over and over. glibc's defaults hand freed memory back and
    fault it in again (~1.5 MB per resized 720p frame, ~10% of the call); this process keeps up to 64 MB."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: leave the allocator alone
        libc = ctypes.CDLL(None)
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD, its maximum (fixed values also stop glibc adjusting both)


def _serve(conn: Any, preload: tuple[str, ...] = ()) -> None:
    global _arena
    _keep_freed_memory()
    for module in preload:  # imported before the clock starts: start-up is not the call's time
        importlib.import_module(module)
    _arena = child = _ChildArena(conn)
    conn.send(("ready", None))
    while True:
        try:
            fn, args, block, keep_bytes = conn.recv()
        except EOFError:
            return
        child.attach(block)
        try:
            conn.send(("ok", child.pack(fn(*args))))
        except Exception as exc:  # noqa: BLE001 - shipped back to the parent as data
            conn.send(("error", (type(exc).__name__, str(exc), bool(getattr(exc, "final", False)))))
        child.finish(keep_bytes)


def _release(blocks: list[SharedMemory]) -> None:
    while blocks:
        block = blocks.pop()
        block.close()
        block.unlink()


START_TIMEOUT_S = 120.0  # a child that cannot even import its modules this long is broken


class ChildError(Exception):
    """An exception raised in the child: its message, its type's name, and whether it was final."""

    def __init__(self, type_name: str, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.type_name, self.final = type_name, final


class Sandbox:
    """Runs `fn(*args)` in a child process with a timeout.

    Args:
        timeout_s: wall-clock limit per call.
        keep_bytes: a shared block larger than this is released after the call that needed it (tmpfs keeps
            written pages while they are mapped), and no memory is readied for the next result.
        preload: modules the child imports before it reports ready; the timeout counts from then, so it
            measures the call, not the child's start-up.
    """

    def __init__(self, timeout_s: float, keep_bytes: int = 256 << 20, preload: tuple[str, ...] = ()) -> None:
        # spawn, not fork: the parent is a threaded Ray worker, and forking threads is unsafe.
        self.context = multiprocessing.get_context("spawn")
        self.timeout_s, self.keep_bytes, self.process, self.conn = timeout_s, keep_bytes, None, None
        self.preload = preload
        self.blocks: list[SharedMemory] = []  # the shared block, once a call asked for one
        self.spare, self.last = None, 0  # memory for the next result; the size of the last one
        # Unlinked when the sandbox is collected or at exit (the resource tracker covers a killed parent).
        self._finalizer = weakref.finalize(self, _release, self.blocks)

    def _start(self) -> None:
        self.conn, child = self.context.Pipe()
        self.process = self.context.Process(target=_serve, args=(child, self.preload), daemon=True)
        self.process.start()
        child.close()
        try:
            ready = self.conn.poll(START_TIMEOUT_S) and self.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise SandboxCrash(f"the decoder process did not start within {START_TIMEOUT_S:g}s")

    def _grow(self, nbytes: int) -> str:
        _release(self.blocks)
        # A power of two spares regrowth; tmpfs charges only the pages written.
        self.blocks.append(SharedMemory(create=True, size=max(1 << 20, 1 << (nbytes - 1).bit_length())))
        return self.blocks[0].name

    def stop(self) -> None:
        """Kill the child; the block stays for the next one."""
        if self.process is not None:
            self.process.kill()
            self.process.join()
        self.process = self.conn = None

    def close(self) -> None:
        """Kill the child and unlink the block."""
        self.stop()
        _release(self.blocks)

    def _copy_out(self, spans: list[tuple[int, int]]) -> list[np.ndarray]:
        """The result's buffers, copied out of the block (it is reused) into memory the caller keeps."""
        total = sum(size for _, size in spans)
        spare, self.spare, self.last = self.spare, None, total
        # The spare was faulted in while the child worked; use it unless it would pin much unused memory.
        out = spare if spare is not None and total <= spare.size <= 4 * total / 3 else np.empty(total, np.uint8)
        block, buffers, position = np.frombuffer(self.blocks[0].buf, np.uint8) if spans else None, [], 0
        for start, size in spans:
            buffers.append(out[position : position + size])
            buffers[-1][...] = block[start : start + size]
            position += size
        return buffers

    def run(self, fn: Callable, *args: Any) -> Any:
        """The result of `fn(*args)`; its exception comes back as a ChildError with the same name and message."""
        if self.process is None or not self.process.is_alive():
            self._start()
        deadline = time.monotonic() + self.timeout_s
        try:
            self.conn.send((fn, args, self.blocks[0].name if self.blocks else None, self.keep_bytes))
            if self.spare is None and 0 < self.last <= self.keep_bytes:
                # Page faults of the next result's memory cost ~15 ms per 44 MB: take them now, while the
                # child works, instead of after it answers. One byte per page is enough.
                self.spare = np.empty(self.last, np.uint8)
                self.spare[::4096] = 0
            while True:
                if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                    self.stop()
                    raise SandboxTimeout(f"no result after {self.timeout_s:g}s; the decoder was killed")
                kind, value = self.conn.recv()
                if kind != "grow":
                    break
                self.conn.send(self._grow(value))
        except (EOFError, OSError):  # the child died: end of pipe, or a reset connection
            self.process.kill()  # a no-op on a dead child, which keeps its exit code
            self.process.join()
            code = self.process.exitcode
            self.process = self.conn = None
            raise SandboxCrash(f"the decoder process died (exit code {code})") from None
        if kind == "error":
            raise ChildError(*value)
        payload, spans = value
        buffers = self._copy_out(spans)
        if self.blocks and self.blocks[0].size > self.keep_bytes:
            _release(self.blocks)
        return pickle.loads(payload, buffers=buffers)
