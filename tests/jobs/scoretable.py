"""Synthetic score tables (real Parquet, known values) and a loopback S3 for the analysis-job tests."""

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vidscore.schemas import mjvideo, technical, videoscore
from vidscore.schemas.scores import BASE_FIELDS, METADATA_FIELDS

RUN = "20260101T000000-aaaaaa"


def table(rows: list[dict[str, Any]], scorers: tuple[str, ...] = ("technical",)) -> pa.Table:
    """A score table with the real schema's base, metadata and scorer columns; missing values are null.

    A row with any of a scorer's values counts as scored by it (its `<scorer>_checkpoint` is set), as in tables
    `vidscore score` writes."""
    rows = [
        {**r, **{f"{p}_checkpoint": "ckpt" for p in scorers if any(k.startswith(f"{p}_") for k in r)}, **r}
        for r in rows
    ]
    fields = list(BASE_FIELDS + METADATA_FIELDS)
    extra = [k for k in rows[0] if k not in {f.name for f in fields}]
    for name in scorers:
        fields += {"technical": technical.FIELDS, "videoscore": videoscore.FIELDS, "mjvideo": mjvideo.FIELDS}[name]
    names = {f.name for f in fields}
    fields += [pa.field(k, pa.array([r.get(k) for r in rows]).type) for k in extra if k not in names]
    cols = {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in fields}
    return pa.table(cols, schema=pa.schema([f.with_nullable(True) for f in fields]))


def write(root: Path, t: pa.Table, run: str = RUN, part: int = 0) -> Path:
    """Write `t` the way `vidscore score` names files: part-<run id>-<uuid>-<task>.parquet, plus a metadata dir."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "_vidscore").mkdir(exist_ok=True)
    (root / "_vidscore" / f"run-{run}.json").write_text("{}")
    path = root / f"part-{run}-0123abcd-{part:06d}-0.parquet"
    pq.write_table(t, path)
    return path


def row(video_id: str, generator: str, status: str = "ok", **scores: Any) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "uri": f"/data/videos/{generator}/{video_id}.mp4",
        "prompt": f"prompt {int(video_id[1:]) % 3}" if video_id[1:].isdigit() else "p",
        "generator": generator,
        "status": status,
        "error": None if status == "ok" else "boom",
        **scores,
    }


def technical_table(n_per_generator: int = 10, seed: int = 0) -> pa.Table:
    """Generators g0, g1, g2: sharpness = 100*g + i (so ranks are known), one failed row in g1."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(3):
        for i in range(n_per_generator):
            rows.append(
                row(
                    f"v{g * 100 + i}",
                    f"g{g}",
                    technical_sharpness=float(100 * g + i),
                    technical_motion=float(rng.uniform()),
                    technical_brightness=float(0.1 * g),
                    technical_contrast=float(i % 2),
                )
            )
    rows.append(row("v999", "g1", status="decode_error"))
    return table(rows)


def mixed_table(n_per_generator: int = 8, shift: float = 0.0, seed: int = 1) -> pa.Table:
    """videoscore + mjvideo columns for generators a and b; `shift` moves every score (a 'later run')."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, base in (("a", 2.0), ("b", 3.0)):
        for i in range(n_per_generator):
            r = row(f"v{ord(g) * 100 + i}", g)
            for a in videoscore.ASPECTS:
                r[f"{videoscore.PREFIX}_{a}"] = base + shift + float(rng.normal(0, 0.3))
            for c in mjvideo.SCORE_COLUMNS:
                r[c] = base - 2.5 + shift + float(rng.normal(0, 0.5))
            rows.append(r)
    return table(rows, scorers=("videoscore", "mjvideo"))


@contextlib.contextmanager
def s3_server(monkeypatch: Any, bucket: str = "scores") -> Iterator[Any]:
    """moto's S3 server on 127.0.0.1 with the AWS_* variables the jobs read; yields a boto3 client."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    try:
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
        client.create_bucket(Bucket=bucket)
        yield client
    finally:
        server.stop()


def upload(client: Any, root: Path, bucket: str, prefix: str) -> str:
    """Copy a local folder to s3://bucket/prefix; returns the URL."""
    for path in root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
    return f"s3://{bucket}/{prefix}"
