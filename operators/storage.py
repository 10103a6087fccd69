"""Filesystem access through fsspec: local paths, file://, s3:// (any fsspec URL). Used by operators/ and
pipeline/ alike; URL identity and redaction are in `operators.urls`."""

import logging
import os
from typing import Any

from vidscore.operators.urls import redact_text

log = logging.getLogger("vidscore")


def s3_endpoint(endpoint_url: str | None = None) -> str | None:
    """The S3 endpoint: the explicit option, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else None (AWS)."""
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def storage_options(url: str, endpoint_url: str | None = None) -> dict[str, Any]:
    """fsspec options for `url`. S3 endpoint: the explicit option, else AWS_ENDPOINT_URL(_S3), else AWS."""
    if not url.startswith(("s3://", "s3a://")):
        return {}
    endpoint = s3_endpoint(endpoint_url)
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def polars_options(url: str, endpoint_url: str | None = None) -> dict[str, str]:
    """polars' (object_store) options for `url`: the same endpoint rule as fsspec's."""
    endpoint = storage_options(url, endpoint_url).get("client_kwargs", {}).get("endpoint_url")
    if not endpoint:
        return {}
    options = {"aws_endpoint_url": endpoint}
    if endpoint.startswith("http://"):
        options["aws_allow_http"] = "true"
    return options


# Checks before any work: an endpoint that never answers must fail them in seconds, not after botocore's and
# s3fs's retries of default timeouts (minutes).
PREFLIGHT_S3 = {
    # Throttling and 5xx answers are still retried (botocore's standard mode); silence costs 3 x 5 s per call.
    "config_kwargs": {"connect_timeout": 5, "read_timeout": 5, "retries": {"max_attempts": 3, "mode": "standard"}},
}


def filesystem(url: str, endpoint_url: str | None = None, preflight: bool = False) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a local path or URL; `preflight`: short timeouts, few retries."""
    import fsspec

    options = storage_options(url, endpoint_url)
    if url.startswith(("s3://", "s3a://")):
        # s3fs would cache every listing for the life of the process: stale (files that workers write after
        # a listing look missing) and large (a dict per object).
        options["use_listings_cache"] = False
        if preflight:
            options.update(PREFLIGHT_S3)
    fs, path = fsspec.core.url_to_fs(url, **options)
    if preflight and hasattr(fs, "retries"):
        fs.retries = 1  # s3fs's own retry loop (its instance cache keys on the options: this one is the probe's)
    return fs, path


def is_local(fs: Any) -> bool:
    """Whether `fs` is the local filesystem (folders and renames exist) rather than an object store."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return any(p in ("file", "local") for p in protocols)


def join(base: str, name: str) -> str:
    """Join a relative name onto a local path or URL prefix."""
    if "://" in name or name.startswith("/"):
        return name
    return base.rstrip("/") + "/" + name.lstrip("/")


def to_url(fs: Any, path: str) -> str:
    """The URL form of a path returned by `fs` (s3 listings drop the scheme)."""
    if is_local(fs):
        return path
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{path}"


_TRANSIENT_WORDS = (
    "slowdown",
    "slow down",
    "throttl",
    "timeout",
    "timed out",
    "internalerror",
    "serviceunavailable",
    "service unavailable",
    "503",
    "500",
    "502",
    "504",
    "connection reset",
    "connection aborted",
    "requesttimeout",
    "temporarily",
)


def is_transient(exc: BaseException) -> bool:
    """Storage errors worth retrying: throttling, 5xx, timeouts, dropped connections."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in _TRANSIENT_WORDS)


def with_retries(fn: Any, *args: Any, attempts: int = 6, base_s: float = 0.2, **kwargs: Any) -> Any:
    """Call `fn`, retrying transient storage errors with exponential backoff and jitter (~12 s in all)."""
    import random
    import time

    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            pause = base_s * 2**attempt * (0.5 + random.random())
            reason = redact_text(f"{type(exc).__name__}: {exc}")[:200]
            name = getattr(fn, "__name__", "call")
            log.warning(
                "retries: storage %s (%s), attempt %d of %d in %.1fs", name, reason, attempt + 2, attempts, pause
            )
            time.sleep(pause)
    raise AssertionError("unreachable")


def content_key(info: dict[str, Any]) -> str | None:
    """`size:etag` for object stores, `size:mtime_ns` for files; None when the store tells neither."""
    size = info.get("size")
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag:
        return f"{size}:{str(etag).strip(chr(34))}"
    mtime = info.get("mtime") or info.get("LastModified") or info.get("updated")
    if mtime is None:
        return None
    if isinstance(mtime, int | float):
        return f"{size}:{int(float(mtime) * 1e9)}"
    return f"{size}:{mtime}"
