"""A fault-injecting HTTP reverse proxy for S3 tests: real requests to a real (moto) server, some of them failed.

It forwards method, path, headers and body to the upstream server and streams the response back. On a seeded,
deterministic fraction of requests it answers like an overloaded S3 instead:

- `slowdown`: 503 SlowDown, before forwarding (the request never reaches the store);
- `internal`: 500 InternalError, after forwarding (the request took effect, its answer was lost: a retried
  PUT must overwrite, not duplicate);
- `stall`: sleeps `stall_s` before forwarding (a slow store; longer than a client's read timeout, it is a
  timeout).

Independently of the fraction, it answers 403 AccessDenied for object keys that match `deny`, and for
presigned URLs whose `X-Amz-Date` + `X-Amz-Expires` has passed (moto does not check expiry; S3 does); and
the first request for each key matching `fail_first` gets an `internal` fault, so a path can be made to
retry deterministically. `log` lists every injected fault as (fault, method, path without query), `requests`
every request as (method, path without query).
"""

import http.client
import random
import re
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULTS = ("slowdown", "internal", "stall")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
_CHUNK = 64 * 1024


def s3_error(code: str, message: str) -> bytes:
    """An S3 error document, as the real service sends it."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>vidscore-proxy</RequestId></Error>"
    ).encode()


class FaultProxy:
    """Reverse proxy on 127.0.0.1 in front of `upstream` (host:port); use as a context manager.

    Args:
        upstream: `host:port` of the real server.
        rate: fraction of requests that get a fault (0 disables random faults).
        faults: the kinds of fault, injected in turn.
        seed: which requests fail is deterministic for a given sequence of requests.
        stall_s: how long a stall sleeps before forwarding.
        deny: regex on the request path (`/bucket/key`); matching requests get 403 AccessDenied.
        methods: only requests with these methods get random faults (all when None).
        fail_first: regex on the request path; the first request (per method and path) gets `internal`.
    """

    def __init__(
        self,
        upstream: str,
        rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 0,
        stall_s: float = 2.0,
        deny: str | None = None,
        methods: tuple[str, ...] | None = None,
        fail_first: str | None = None,
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; use {FAULTS}")
        self.upstream, self.rate, self.faults, self.stall_s = upstream, rate, faults, stall_s
        self.deny = re.compile(deny) if deny else None
        self.methods, self.fail_first = methods, re.compile(fail_first) if fail_first else None
        self.counts: Counter = Counter()  # requests seen, faults injected by kind, denials
        self.log: list[tuple[str, str, str]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path without query), every request
        self._seen: set[tuple[str, str]] = set()
        self._random, self._lock = random.Random(seed), threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def draw(self, method: str, path: str) -> str | None:
        """The fault for this request, if any (also counts and logs it)."""
        key = urlsplit(path).path
        with self._lock:
            self.counts["requests"] += 1
            self.requests.append((method, key))
            fault = self._pick(method, key, path)
            if fault:
                self.log.append((fault, method, key))
            return fault

    def _pick(self, method: str, key: str, path: str) -> str | None:
        if self.deny and self.deny.search(key):
            self.counts["denied"] += 1
            return "deny"
        if _expired(path):
            self.counts["expired"] += 1
            return "expired"
        if self.fail_first and self.fail_first.search(key) and (method, key) not in self._seen:
            self._seen.add((method, key))
            self.counts["first_failed"] += 1
            return "internal"
        if self.methods is not None and method not in self.methods:
            return None
        if self._random.random() >= self.rate:
            return None
        fault = self.faults[self.counts["faults"] % len(self.faults)]  # every kind, in turn
        self.counts["faults"] += 1
        self.counts[fault] += 1
        return fault


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients drop idle keep-alive connections
            super().handle_error(request, client_address)


def _expired(path: str) -> bool:
    query = parse_qs(urlsplit(path).query)
    if "X-Amz-Date" not in query or "X-Amz-Expires" not in query:
        return False
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return time.time() > signed.timestamp() + int(query["X-Amz-Expires"][0])


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like S3

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _error(self, status: int, code: str, message: str) -> None:
            body = s3_error(code, message) if self.command != "HEAD" else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(s3_error(code, message))))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self, conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or "Content-Length" in self.headers or self.headers.get("Transfer-Encoding"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            return conn.getresponse()

        def _relay(self, response: http.client.HTTPResponse) -> None:
            self.send_response(response.status, response.reason)
            length = response.getheader("Content-Length")
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            if self.command == "HEAD" or response.status in (204, 304):
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                return
            if length is None:  # upstream streamed without a length: buffer it to give one
                data = response.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Content-Length", length)
            self.end_headers()
            while chunk := response.read(_CHUNK):
                self.wfile.write(chunk)

        def _handle(self) -> None:
            body = self._body()
            fault = proxy.draw(self.command, self.path)
            if fault == "deny":
                return self._error(403, "AccessDenied", "Access Denied")
            if fault == "expired":
                return self._error(403, "AccessDenied", "Request has expired")
            if fault == "slowdown":
                return self._error(503, "SlowDown", "Please reduce your request rate.")
            if fault == "stall":
                time.sleep(proxy.stall_s)
            conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
            try:
                response = self._forward(conn, body)
                if fault == "internal":
                    response.read()
                    return self._error(500, "InternalError", "We encountered an internal error. Please try again.")
                self._relay(response)
            finally:
                conn.close()

        def _safe_handle(self) -> None:
            try:
                self._handle()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. its read timed out during a stall)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _safe_handle

    return Handler
