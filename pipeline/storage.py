"""Filesystem access through fsspec: local paths, file://, s3:// (any fsspec URL), with safe messages."""

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_SECRET_PARAM = re.compile(r"(?i)(X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId|token|sig|se|sp|sv)=[^&\s]*")


def redact(url: str) -> str:
    """A URL safe to print or store: no userinfo, no query string (presigned signatures live there)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str) -> str:
    """Scrub URLs' credentials and signature parameters out of free text such as exception messages."""
    text = re.sub(r"(\w+://)[^/\s:@]+:[^/\s@]+@", r"\1", text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=REDACTED", text)


def storage_options(url: str, endpoint_url: str | None = None) -> dict[str, Any]:
    """fsspec options for `url`. S3 endpoint: the explicit option, else AWS_ENDPOINT_URL(_S3), else AWS."""
    if not url.startswith(("s3://", "s3a://")):
        return {}
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def filesystem(url: str, endpoint_url: str | None = None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a local path or URL."""
    import fsspec

    return fsspec.core.url_to_fs(url, **storage_options(url, endpoint_url))


def join(base: str, name: str) -> str:
    """Join a relative name onto a local path or URL prefix."""
    if "://" in name or name.startswith("/"):
        return name
    return base.rstrip("/") + "/" + name.lstrip("/")


def to_url(fs: Any, path: str) -> str:
    """The URL form of a path returned by `fs` (s3 listings drop the scheme)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return path
    return f"{protocol}://{path}"
