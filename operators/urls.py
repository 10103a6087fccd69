"""URLs: a video's identity, and the scrubbed form that may appear in any output.

Two rules, kept apart on purpose:
- identity (`identity`): what names the video. Object-store keys keep every character (`#` and `?` are part of
  an S3 key); an HTTP(S) URL keeps its query except the parameters that carry credentials (a re-signed presigned
  URL is the same video; `download?id=1` and `download?id=2` are not).
- display (`redact`, `redact_text`): what may be printed, logged or stored. Deny by default: userinfo never
  stays, credential parameters are dropped, and any other HTTP(S) query parameter keeps its value only when its
  name is on an allow-list of parameters that name content (`id`, `version`, `format`, ...); every other value
  becomes `REDACTED`.
"""

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

HTTP = ("http", "https")
REDACTED = "REDACTED"
# Query parameters whose values may appear in outputs: they name content, never grant access.
SAFE_PARAMS = frozenset({
    "id", "v", "version", "versionid", "generation", "alt", "file", "filename", "name", "format", "fmt", "type", "ext",
    "page", "part", "index", "idx", "clip", "seed", "t", "start", "end", "frame", "width", "height", "w", "h",
    "quality", "res", "resolution", "lang", "download", "dl", "raw",
})  # fmt: skip
# Parameters that carry or derive from credentials (presigned S3/GCS/Azure, tokens): never part of identity.
_CREDENTIAL = re.compile(
    r"(?i)^(x-amz-.*|x-goog-.*|signature|expires|awsaccesskeyid|googleaccessid|policy|key-pair-id|sig|se|sp|sv|"
    r"sr|st|spr|srt|ss|sks|skoid|sktid|skt|ske|skv|sdd|.*token.*|.*secret.*|.*passw.*|pwd|.*api[-_]?key.*|key|"
    r"auth.*|.*credential.*|session.*|client[-_]?secret|code)$"
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{},]+")
_BARE_SECRET = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[-_]?key|access[-_]?key|secret[-_]?key|signature|sig|credential)"
    r"(\s*[=:]\s*)([^\s&'\",;]+)"
)


def _netloc(parts) -> str:  # noqa: ANN001 - a SplitResult
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def _split(url: str):  # noqa: ANN202 - (scheme, SplitResult or None)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme, (urlsplit(url) if scheme in HTTP else None)


def identity(url: str) -> str:
    """The video's identity: credentials and credential parameters removed, everything that names it kept."""
    scheme, parts = _split(url)
    if not scheme:
        return url
    if parts is None:  # object stores, file://: the whole key is the name; only userinfo goes
        rest = url.split("://", 1)[1]
        head, sep, tail = rest.partition("/")
        return f"{scheme}://{head.rsplit('@', 1)[-1]}{sep}{tail}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _CREDENTIAL.match(k)]
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    return urlunsplit((parts.scheme, _netloc(parts), parts.path, encoded, ""))


def redact(url: str) -> str:
    """The form of `url` that may be printed or stored (module docstring: deny by default)."""
    scheme, parts = _split(url)
    if parts is None:
        return identity(url)
    # Credential parameters go (as from the identity); of the rest, only allow-listed values stay.
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _CREDENTIAL.match(k)]
    query = [(k, v if k.lower() in SAFE_PARAMS else REDACTED) for k, v in pairs]
    encoded = "&".join(f"{quote(k, safe='')}={v if v == REDACTED else quote(v, safe='')}" for k, v in query)
    return urlunsplit((parts.scheme, _netloc(parts), parts.path, encoded, ""))


def redact_text(text: str) -> str:
    """Free text (exception messages, logs) with every URL in it redacted and bare `secret=value` pairs masked."""
    text = _URL.sub(lambda m: redact(m.group(0)), text)
    return _BARE_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
