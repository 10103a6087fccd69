"""A real S3 API on loopback (moto's server over HTTP) with the real corpus uploaded, for object-storage tests.

Credentials: botocore signs every request, so Ray workers need AWS credentials too (moto accepts any). Workers
inherit the environment of the process that ran `ray.init`, which happens in the session `ray_cluster`
fixture, after collection. Setting the variables here, when pytest imports this file during collection, is
therefore early enough for every worker of the session cluster (and for a CLI subprocess that joins it with
RAY_ADDRESS). They are fake, set unconditionally so a developer's real credentials, profile or endpoint never
reach a test, and they are sentinels: test_security.py checks that they never show up in anything a run
prints or writes, on the driver and on the workers alike. The endpoint is NOT set in the environment: tests
pass it with `--endpoint-url` (or set AWS_ENDPOINT_URL in a subprocess, to test that path).
"""

import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.scoretable import upload

KEY_ID = "AKIASENTINELKEYID0042"
SECRET = "SENTINEL-not-a-real-secret-123"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/vidscore-tests/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/vidscore-tests/config",
}
os.environ.update(FAKE_AWS)
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(_name, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3:
    """A running moto S3 server: its endpoint, a boto3 client on it, and helpers."""

    url: str
    client: Any

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def bucket(self, prefix: str = "b") -> str:
        """A new, empty bucket with a unique name."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def filesystem(self, endpoint_url: str | None = None) -> Any:
        """An s3fs filesystem on this server (no listing cache: tests read what was just written)."""
        import s3fs

        return s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint_url or self.url}, skip_instance_cache=True)

    def read_table(self, output: str) -> Any:
        """The score table under `output` (s3://...), read back with pyarrow over s3fs."""
        import pyarrow.dataset as pads

        return pads.dataset(output.removeprefix("s3://"), filesystem=self.filesystem(), format="parquet").to_table()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """moto's S3 server on 127.0.0.1, for the whole session."""
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # SigV4 so presigned URLs carry X-Amz-Signature; a big pool for the bulk uploads.
    client = boto3.client("s3", endpoint_url=url, config=Config(signature_version="s3v4", max_pool_connections=64))
    try:
        yield S3(url, client)
    finally:
        server.stop()


@dataclass
class S3Corpus:
    """The session corpus on S3: videos under `prefix`, and manifests that name them."""

    bucket: str
    prefix: str  # s3://bucket/corpus
    manifest: str  # JSONL with absolute s3:// uris
    rows: list[dict[str, Any]]  # the manifest rows, uris absolute

    @property
    def names(self) -> list[str]:
        return sorted(r["uri"].rsplit("/", 1)[1] for r in self.rows)


@pytest.fixture(scope="session")
def s3_corpus(s3: S3, corpus: Path) -> S3Corpus:
    """The demo corpus (9 good clips + 1 truncated) uploaded to S3, with a manifest of absolute s3:// uris."""
    bucket = s3.bucket("videos")
    prefix = upload(s3.client, corpus.parent, bucket, "corpus")
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    rows = [{**r, "uri": f"{prefix}/{r['uri']}"} for r in rows]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    s3.client.put_object(Bucket=bucket, Key="manifests/absolute.jsonl", Body=body)
    return S3Corpus(bucket, prefix, f"s3://{bucket}/manifests/absolute.jsonl", rows)
