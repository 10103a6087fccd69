"""A killable child process for work that can hang or crash (native decoders on hostile input).

One call at a time; a call past its deadline kills the child, a child that dies is restarted for the next
call, so a bad video costs its own row instead of a worker or the job.
"""

import multiprocessing
from collections.abc import Callable
from typing import Any


class SandboxTimeout(Exception):
    """The call ran past its wall-clock limit; the child was killed."""


class SandboxCrash(Exception):
    """The child process died during the call (e.g. a segfault in native code)."""


def _serve(conn: Any) -> None:
    while True:
        try:
            fn, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", fn(*args)))
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
        except EOFError:
            self.process.join()
            code = self.process.exitcode
            self.process = self.conn = None
            raise SandboxCrash(f"the decoder process died (exit code {code})") from None
        if kind == "error":
            raise RuntimeError(f"{value[0]}: {value[1]}")
        return value
