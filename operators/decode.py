"""Decode: fetch each video once, probe it, and sample frames for every requested frame spec.

One decode per video serves all scorers (operators/video_file.py decodes the union of every spec's indices
once, then each spec picks and resizes its frames with the reference's filter). Only sampled, resized uint8
frames leave this stage; the video's bytes never enter the object store. Failures become rows with a status.
"""

import importlib
import os
import tempfile
import time

import numpy as np

from vidscore.operators.frames import FrameSpec
from vidscore.operators.sandbox import Sandbox, SandboxTimeout
from vidscore.operators.scorers.rows import arrow_safe, wanted
from vidscore.operators.storage import content_key, filesystem, is_local, with_retries
from vidscore.operators.urls import redact, redact_text
from vidscore.operators.video_file import DecodeError, decode_file
from vidscore.schemas.scores import DECODE_ERROR, DECODE_TIMEOUT, FETCH_ERROR, OK

EMPTY = np.zeros((0, 0, 0, 3), dtype=np.uint8)
_FLOAT_META = ("size_bytes", "num_frames", "fps", "duration_s", "width", "height", "rotation", "decode_s")


def preloads(specs: list[FrameSpec]) -> tuple[str, ...]:
    """Modules the decode child imports before its per-video clock starts: this one (and so video_file), each
    spec's sampler and resizer module, and what those name in `IMPORTS` (torch for Qwen2-VL's recipe), so a
    first video does not pay seconds of imports against its timeout."""
    modules = [__name__]
    for spec in specs:
        for part in (spec.sampler, spec.resizer):
            module = importlib.import_module(type(part).__module__)
            modules += [module.__name__, *getattr(module, "IMPORTS", ())]
    return tuple(dict.fromkeys(modules))


class Decoder:
    """Fetches, probes and samples videos; one instance per CPU worker.

    Args:
        specs: every frame spec the run's scorers asked for (deduplicated by the pipeline).
        endpoint_url: S3-compatible endpoint for s3:// uris (else the AWS environment decides).
        backend: `auto` (PyAV sparse decode, decord when PyAV fails), `pyav`, or `decord`. PyAV comes
            first because it skips unneeded frames (bench/decode.py: ~2.2x decord) with identical pixels.
        threads: decode and colour-conversion threads per video; 1 keeps one video per core, scale out with
            more workers.
        timeout_s: wall-clock limit for one video's decode, enforced by killing a child process
            (`decode_timeout` row); None decodes in-process, unprotected.
        max_pixels: larger frames are refused (`decode_error`) before decoding: bounded memory.
        min_frames: shorter videos are refused (`decode_error`): one frame has no motion to judge.
        readers: per spec column, the scorers that read it. A row gets only the specs of the scorers this run
            runs on it (`todo__<scorer>` columns); a row no scorer runs on (a metadata-only update) is not
            fetched at all and leaves with a null status. None: every row gets every spec.
    """

    def __init__(
        self,
        specs: list[FrameSpec],
        endpoint_url: str | None = None,
        backend: str = "auto",
        threads: int = 1,
        timeout_s: float | None = 600.0,
        max_pixels: int = 7680 * 4320,
        min_frames: int = 2,
        readers: dict[str, list[str]] | None = None,
    ) -> None:
        if backend not in ("auto", "decord", "pyav"):
            raise ValueError(f"unknown decode backend {backend!r}; use auto, decord or pyav")
        self.specs, self.endpoint_url, self.backend, self.threads = specs, endpoint_url, backend, threads
        self.max_pixels, self.min_frames, self.readers = max_pixels, min_frames, readers
        self.sandbox = Sandbox(timeout_s, preload=preloads(specs)) if timeout_s else None
        # Removed with the decoder (TemporaryDirectory cleans up when collected or at exit).
        self._scratch = tempfile.TemporaryDirectory(prefix="vidscore-decode-")
        self.scratch = self._scratch.name

    def fetch(self, uri: str) -> tuple[str, int, str | None, bool]:
        """(local path, size, content key, is_temporary). Remote objects stream to local scratch disk."""
        fs, path = filesystem(uri, self.endpoint_url)
        info = with_retries(fs.info, path)
        if is_local(fs):
            return path, info["size"], content_key(info), False
        suffix = os.path.splitext(redact(path))[1]  # not the query string of a presigned URL
        local = os.path.join(self.scratch, f"{os.getpid()}-{time.monotonic_ns()}{suffix}")
        with_retries(fs.get_file, path, local)
        return local, os.path.getsize(local), content_key(info), True

    def decode(self, path: str, specs: list[FrameSpec]) -> tuple[dict, dict[str, np.ndarray]]:
        """Metadata and frames per spec column for one local file, in the sandbox when enabled."""
        args = (path, specs, self.backend, self.threads, self.max_pixels, self.min_frames)
        return self.sandbox.run(decode_file, *args) if self.sandbox else decode_file(*args)

    def _needed(self, batch: dict[str, np.ndarray], spec: FrameSpec) -> np.ndarray:
        """Per row: whether a scorer this run runs on it reads `spec`."""
        rows = len(batch["uri"])
        if self.readers is None:
            return np.ones(rows, dtype=bool)
        flags = [wanted(batch, name) for name in self.readers.get(spec.column, [])]
        return np.logical_or.reduce(flags) if flags else np.zeros(rows, dtype=bool)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(batch["uri"])
        status, error = np.array([OK] * rows, dtype=object), np.full(rows, None, dtype=object)
        meta = {k: np.full(rows, np.nan) for k in _FLOAT_META}
        text = {k: np.full(rows, None, dtype=object) for k in ("codec", "decoder", "content_key")}
        columns = {s.column: np.empty(rows, dtype=object) for s in self.specs}
        todo = {s.column: self._needed(batch, s) for s in self.specs}
        for i, uri in enumerate(batch["uri"]):
            for column in columns.values():
                column[i] = EMPTY
            specs = [s for s in self.specs if todo[s.column][i]]
            if not specs:  # nothing to score on this video in this run: not even fetched
                status[i] = None
                continue
            start = time.perf_counter()
            try:
                path, meta["size_bytes"][i], text["content_key"][i], temporary = self.fetch(str(uri))
            except Exception as exc:  # noqa: BLE001 - a missing or unreadable object is a row, not a crash
                detail = f"{type(exc).__name__}: {redact_text(str(exc))}"
                if isinstance(exc, PermissionError):  # s3fs says only "Forbidden"
                    detail = f"access denied; check read permission on it ({detail})"
                elif getattr(exc.__cause__, "status", None) in (401, 403):  # fsspec's HTTP reports "not found"
                    detail = f"access denied (HTTP {exc.__cause__.status}); an expired or invalid presigned URL?"
                message = f"{redact(str(uri))}: {detail}"
                status[i], error[i] = FETCH_ERROR, message[:500]
                continue
            try:
                info, frames = self.decode(path, specs)
                for key, value in info.items():
                    if key in meta:
                        meta[key][i] = np.nan if value is None else value
                text["codec"][i], text["decoder"][i] = info["codec"], info["decoder"]
                for column, array in frames.items():
                    columns[column][i] = array
            except SandboxTimeout as exc:
                status[i], error[i] = DECODE_TIMEOUT, str(exc)
            except Exception as exc:  # noqa: BLE001 - corrupt input of any kind becomes a row
                reason = str(exc).replace(path, redact(str(uri))) if temporary else str(exc)  # not the scratch path
                kind = getattr(exc, "type_name", type(exc).__name__)  # the child's exception, not the transport's
                message = reason if kind == DecodeError.__name__ else f"{kind}: {reason}"
                status[i], error[i] = DECODE_ERROR, redact_text(message)[:300]
            finally:
                if temporary:
                    os.unlink(path)
            meta["decode_s"][i] = time.perf_counter() - start
        batch.update(meta)
        batch.update(columns)
        batch.update(text)
        batch.update({"status": status, "error": error})
        return arrow_safe(batch)
