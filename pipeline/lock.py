"""One writer per score table: a claim file taken with an exclusive create, kept alive by a heartbeat.

Claims are numbered (`_vidscore/lock/<n>.json`). A writer takes the next number with a create that fails when
the object exists (O_EXCL on local folders, S3's conditional `If-None-Match: *` on object stores), so of two runs
racing for the same number exactly one wins. It may take it only when no claim `n` is live: a finished run deletes
its claim, a crashed one stops its heartbeat and its claim expires `ttl_s` after the last beat (at once when the
claim names this host and a pid that no longer runs here).
"""

import json
import os
import posixpath
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any

from vidscore.operators.storage import filesystem, is_local
from vidscore.operators.urls import redact
from vidscore.pipeline.output import META_DIR, OutputError

LOCK_DIR = f"{META_DIR}/lock"


class TableLocked(OutputError):
    """Another run holds the table; raised before any work."""


def _now() -> float:
    return time.time()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class TableLock:
    """Claim `output` for run `run_id` (`with TableLock(...):`); refuses with TableLocked while a live claim exists.

    Args:
        output: the table location.
        run_id: the claiming run (named in the refusal other runs get).
        ttl_s: a claim whose heartbeat stopped this long ago is expired (a crashed run).
        endpoint_url: S3-compatible endpoint, if any.
    """

    def __init__(self, output: str, run_id: str, ttl_s: float = 300.0, endpoint_url: str | None = None) -> None:
        if ttl_s <= 0:
            raise ValueError(f"lock_ttl_s must be > 0, got {ttl_s}")
        self.output, self.run_id, self.ttl_s = output, run_id, ttl_s
        self.fs, base = filesystem(output, endpoint_url)
        self.dir = posixpath.join(base, LOCK_DIR)
        self.path: str | None = None
        self.started = _now()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _claims(self) -> list[str]:
        if not self.fs.exists(self.dir):
            return []
        return sorted(p for p in self.fs.ls(self.dir, detail=False) if p.endswith(".json"))

    def _body(self) -> bytes:
        now = _now()
        return json.dumps(
            {
                "run_id": self.run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": _iso(self.started),
                "heartbeat": _iso(now),
                "expires_at": now + self.ttl_s,
            }
        ).encode()

    def _staged(self, path: str, data: bytes) -> str:
        """A hidden local file next to `path` holding `data` (claims appear whole, never half-written)."""
        os.makedirs(posixpath.dirname(path), exist_ok=True)
        staging = posixpath.join(posixpath.dirname(path), f".{self.run_id}-{threading.get_ident()}.tmp")
        with open(staging, "wb") as f:
            f.write(data)
        return staging

    def _write(self, path: str, data: bytes) -> None:
        if is_local(self.fs):
            os.replace(self._staged(path, data), path)
        else:
            self.fs.pipe_file(path, data)

    def _create(self, path: str) -> bool:
        """Create `path` only if absent; False when another run created it first."""
        data = self._body()
        if is_local(self.fs):
            staging = self._staged(path, data)
            try:
                os.link(staging, path)  # fails if `path` exists: exclusive, and the claim is complete at once
            except FileExistsError:
                return False
            finally:
                os.unlink(staging)
            return True
        try:
            self.fs.pipe_file(path, data, mode="create")  # S3 PutObject with If-None-Match: *
        except (FileExistsError, OSError) as exc:
            if isinstance(exc, FileExistsError) or "PreconditionFailed" in str(exc) or "412" in str(exc):
                return False
            raise
        return True

    def _refuse(self, claim: dict[str, Any]) -> TableLocked:
        return TableLocked(
            f"score table {redact(self.output)} is being written by run {claim.get('run_id')} on host "
            f"{claim.get('host')} (pid {claim.get('pid')}), started {claim.get('started')}, last heartbeat "
            f"{claim.get('heartbeat')}. Wait for it to finish; if that run is dead, its claim expires at "
            f"{_iso(float(claim.get('expires_at', 0)))} (lock_ttl_s), then run again."
        )

    def _live(self, claim: dict[str, Any]) -> bool:
        if float(claim.get("expires_at", 0)) <= _now():
            return False
        if claim.get("host") == socket.gethostname():  # a crashed run on this machine: no need to wait
            try:
                os.kill(int(claim.get("pid", 0)), 0)
            except ProcessLookupError:
                return False
            except (PermissionError, ValueError, OSError):
                pass
        return True

    def acquire(self) -> None:
        while True:
            claims = self._claims()
            number = 0
            if claims:
                number = int(posixpath.basename(claims[-1]).split(".")[0])
                try:
                    claim = json.loads(self.fs.cat_file(claims[-1]))
                except FileNotFoundError:  # released just now: look again
                    continue
                if self._live(claim):
                    raise self._refuse(claim)
            path = posixpath.join(self.dir, f"{number + 1:012d}.json")
            if not self._create(path):
                raise self._refuse(json.loads(self.fs.cat_file(path)))
            break
        self.path = path
        for old in claims:  # expired or released claims are history
            self.fs.rm(old)
        self._beat = threading.Thread(target=self._heartbeat, name="vidscore-lock", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self._write(self.path, self._body())
            except Exception:  # noqa: BLE001 - a missed beat is retried; the claim lasts ttl_s
                continue

    def release(self) -> None:
        if self.path is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        self.fs.rm(self.path)  # the next run takes this number again, exclusively
        self.path = None

    def __enter__(self) -> "TableLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
