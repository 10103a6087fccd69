"""Which Ray a run uses: the cluster it was told to join, else a fresh local Ray of its own.

`ray.init()` with no address attaches to whatever Ray happens to run on the machine (another user's, or a dead
one it then waits on for minutes). A run joins only on purpose: `--ray-address` / `ray_address:` or RAY_ADDRESS
(which `ray job submit` sets for its entrypoint). A process that already called `ray.init` (a library user,
the tests) keeps its connection. Token authentication stays on: a token-auth cluster needs its token
(RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN), and a local Ray generates one.
"""

import logging
import os
import socket
from urllib.parse import urlsplit

from vidscore.operators.urls import redact
from vidscore.pipeline.config import ConfigError

log = logging.getLogger("vidscore")
CONNECT_TIMEOUT_S = 5.0
_how = {"mode": "existing"}  # how this process got its Ray, for the run summary


def address_of(configured: str | None) -> str | None:
    """The cluster to join: the configured address, else RAY_ADDRESS, else None (start a local Ray)."""
    return configured or os.environ.get("RAY_ADDRESS") or None


def check_address(address: str | None) -> None:
    """Fail before any work when the cluster to join cannot be reached (exit 2 with the fix), instead of
    `ray.init` waiting on a dead address."""
    if not address or address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    if parts.scheme in ("http", "https"):
        raise ConfigError(
            f"Ray address {redact(address)} is a dashboard (job submission) URL: submit with `ray job submit "
            f"--address {redact(address)} ...`, or join with the cluster's GCS address HOST:6379"
        )
    try:
        host, port = parts.hostname, parts.port or (10001 if parts.scheme == "ray" else 6379)
    except ValueError as exc:
        raise ConfigError(f"bad Ray address {redact(address)}: {exc}; use HOST:PORT") from exc
    if not host:
        raise ConfigError(f"bad Ray address {redact(address)}: use HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {host}:{port} ({exc.strerror or exc}): start it, fix --ray-address "
            "or RAY_ADDRESS, or unset both to run on a local Ray of this run's own"
        ) from exc


def connect(configured: str | None) -> None:
    """Join the configured cluster, or start a local Ray that belongs to this run (stopped when it exits)."""
    import ray

    address = address_of(configured)
    if not address:
        # "local" always starts a new instance, never one already running on the machine; no dashboard
        # (~2 s sooner on 2 cores).
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        _how["mode"] = "local"
        return
    check_address(address)
    if "RAY_AUTH_MODE" not in os.environ and token_available():
        # A joining driver sends its token only in token mode, which Ray 2.60 does not infer when joining.
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        ray.init(address=address, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises several types; all mean "cannot use this cluster"
        text = str(exc)
        hint = (
            f"check the address, that the cluster runs Ray {ray.__version__}, and its token: RAY_AUTH_TOKEN_PATH "
            "(a file) or RAY_AUTH_TOKEN must hold the cluster's token (`ray get-auth-token` on the head prints it)"
        )
        first = (text.splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"cannot join the Ray cluster at {redact(address)}: {first}; {hint}") from exc
    _how["mode"] = "joined"


def token_available() -> bool:
    """Whether this process has a Ray token: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return os.path.isfile(path) and os.path.getsize(path) > 0


def describe_cluster() -> dict:
    """The Ray this run used: how it got it, its GCS address, alive nodes and resources now."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    now = ray.cluster_resources()
    return {
        "mode": _how["mode"],
        "address": ray.get_runtime_context().gcs_address,
        "nodes": len(nodes),
        "cpus": now.get("CPU", 0.0),
        "gpus": now.get("GPU", 0.0),
    }
