"""Shared model-scorer runtime: device/dtype/attention choice and fault-isolating batched execution."""

import hashlib
import importlib.util
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def pick_device(device: str = "auto") -> tuple[str, "object"]:
    """(device, dtype): bf16 on CUDA, fp32 on CPU. `auto` takes CUDA when the process can see one."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device 'cpu'")
    return device, (torch.bfloat16 if device.startswith("cuda") else torch.float32)


def device_dtype(model: "object") -> tuple[str, str, str | None]:
    """Where a model's weights sit and how it attends, as provenance strings: (`cuda:0 (NVIDIA H100 80GB HBM3)`
    or `cpu`, `bfloat16`, `flash_attention_2` / `sdpa` / `eager`, joined with `+` when submodels differ)."""
    import torch

    weight = next(model.parameters())
    device = str(weight.device)
    if weight.device.type == "cuda":
        device = f"{device} ({torch.cuda.get_device_name(weight.device)})"
    kernels = []
    for module in model.modules():
        kernel = getattr(getattr(module, "config", None), "_attn_implementation", None)
        if kernel and kernel not in kernels:
            kernels.append(kernel)
    return device, str(weight.dtype).removeprefix("torch."), "+".join(kernels) or None


def attention_implementation(device: str) -> str:
    """flash-attention 2 on CUDA when installed, else PyTorch SDPA (also the CPU choice)."""
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def length_buckets(lengths: Sequence[int], max_batch: int, alone: Sequence[bool] = ()) -> list[list[int]]:
    """Item indices grouped by similar length, at most `max_batch` each, so padding waste stays small. Items
    flagged `alone` (canary rows) get a group each: their scores then never depend on which other videos
    shared their batch, so a canary reruns bit for bit in the same environment, bf16 GPU kernels included."""
    single = [i for i in range(len(lengths)) if i < len(alone) and alone[i]]
    order = sorted((i for i in range(len(lengths)) if not (i < len(alone) and alone[i])), key=lambda i: lengths[i])
    return [[i] for i in single] + [order[i : i + max_batch] for i in range(0, len(order), max_batch)]


def stage_frames(videos: Sequence[np.ndarray], device: str) -> "torch.Tensor":  # noqa: F821 - lazy torch
    """A group's frames as one uint8 (N, H, W, 3) tensor on `device`, zero-padded to its largest frame.

    Frames cross to the GPU as uint8 (4x fewer bytes than float pixels) from pinned host memory with an
    asynchronous copy, and are normalised there; on CPU this is one copy into a contiguous block.
    """
    import torch

    h, w = (max(v.shape[i] for v in videos) for i in (1, 2))
    shape = (sum(len(v) for v in videos), h, w, 3)
    padded = any(v.shape[1:3] != (h, w) for v in videos)
    host = (torch.zeros if padded else torch.empty)(shape, dtype=torch.uint8, pin_memory=device.startswith("cuda"))
    view, start = host.numpy(), 0
    for v in videos:
        view[start : start + len(v), : v.shape[1], : v.shape[2]] = v
        start += len(v)
    return host.to(device, non_blocking=True)


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower()


def run_isolated(
    fn: Callable[[list[int]], np.ndarray], groups: list[list[int]]
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Run `fn(group) -> (len(group), k) array` over groups; returns results and failure messages by item.

    A failing group is split in half and retried, down to single items: a CUDA out-of-memory error costs
    throughput, not videos, and one bad video is recorded alone while its batch-mates are scored.
    """
    results: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}

    def run(group: list[int]) -> None:
        try:
            out = fn(group)
        except Exception as exc:  # noqa: BLE001 - every failure becomes data, see docstring
            if _is_oom(exc):
                import torch

                torch.cuda.empty_cache()
            if len(group) == 1:
                failures[group[0]] = f"{type(exc).__name__}: {exc}"[:500]
                return
            half = len(group) // 2
            run(group[:half])
            run(group[half:])
            return
        for item, row in zip(group, out):
            results[item] = row

    for group in groups:
        run(group)
    return results, failures


def weights_hash(files: Sequence[Path]) -> str:
    """Cheap content hash of local weights: sizes, safetensors headers and three 64 KiB samples per file (a
    PyTorch pickle, which has no header, is sampled at its start, middle and end)."""
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with file.open("rb") as fh:
            header = int.from_bytes(fh.read(8), "little") if file.suffix == ".safetensors" else 0
            digest.update(fh.read(header))
            for offset in (8 + header if header else 0, size // 2, max(0, size - 65536)):
                fh.seek(offset)
                digest.update(fh.read(65536))
    return "sha256:" + digest.hexdigest()[:16]


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_local(source: str) -> bool:
    """Whether a checkpoint name is a local directory (it exists, or is not shaped like `owner/name`)."""
    return Path(source).expanduser().exists() or not HUB_ID.match(source)


def fetch(source: str, allow: Sequence[str], revision: str | None = None, cache_dir: str | None = None) -> Path:
    """A local directory as is, or a hub snapshot of `source` restricted to the `allow` patterns (never code)."""
    if is_local(source):
        return Path(source).expanduser()
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(source, revision=revision, cache_dir=cache_dir, allow_patterns=list(allow)))


@contextmanager
def empty_model(device: str, dtype: "object") -> Iterator[None]:
    """Build modules directly on `device` in `dtype`, skipping random initialisation (the checkpoint overwrites
    every tensor, and initialising billions of parameters takes longer than loading them)."""
    import torch

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        from contextlib import nullcontext as no_init_weights
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device), no_init_weights():
            yield
    finally:
        torch.set_default_dtype(default)


def pinned_commit(revision: str | None) -> str | None:
    """The revision when it is a full hub commit hash (a branch or tag can move, so it pins nothing)."""
    return revision if revision and re.fullmatch(r"[0-9a-f]{40}", revision) else None


def check_hub(repo: str, filename: str, revision: str | None = None, cache_dir: str | None = None) -> None:
    """Fail on the driver, before any work, when a hub checkpoint cannot be resolved: `filename` must be in the
    local hub cache or, online, exist in `repo` at `revision` (a metadata request; nothing is downloaded)."""
    import os

    from huggingface_hub import file_exists, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename, cache_dir=cache_dir, revision=revision)
    if isinstance(cached, str):
        return
    fix = "check the id and revision, the network and HF_TOKEN, or give a local directory in the hub layout"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ValueError(f"checkpoint {repo!r} is not in the local hub cache and HF_HUB_OFFLINE is set; {fix}")
    try:
        found = file_exists(repo, filename, revision=revision)
    except Exception as exc:  # noqa: BLE001 - unreachable hub, bad token, bad revision: all refuse here
        raise ValueError(f"checkpoint {repo!r} cannot be resolved on the hub ({type(exc).__name__}); {fix}") from exc
    if not found:
        raise ValueError(f"checkpoint {repo!r} has no {filename} on the hub (a typo in the id?); {fix}")
