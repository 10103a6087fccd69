"""Listing a large prefix: every object becomes a row, at the cost of the paged LIST calls and nothing per object.

10,000 objects here (bench/scale.py times 100,000). They are put into the running moto server's store
directly: moto takes ~10 ms per PUT over HTTP on this 2-core VM (100,000 would take minutes), and creating them
is not what is under test. The listing itself goes over HTTP, through a counting proxy.
"""

import pytest

from tests.s3.conftest import S3
from tests.s3.proxy import FaultProxy
from vidscore.operators.read import read_input

OBJECTS = 10_000
PAGE = 1000  # S3's (and moto's) ListObjectsV2 page size


def moto_backend():
    """The in-process moto server's S3 store (the same one its HTTP API serves)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


@pytest.mark.slow
def test_large_prefix_lists_every_object_in_pages(s3: S3) -> None:
    bucket = s3.bucket("dump")
    keys = [f"day1/gen{i % 5}/clip-{i:06d}.mp4" for i in range(OBJECTS)]
    everything = [*keys, "day1/gen0/notes.txt", "other/clip.mp4"]
    backend = moto_backend()
    for key in everything:
        backend.put_object(bucket, key, b"")
    assert s3.client.list_objects_v2(Bucket=bucket, Prefix="day1/gen4/", MaxKeys=1)["KeyCount"] == 1
    try:
        with FaultProxy(s3.host) as proxy:
            table = read_input(f"s3://{bucket}/day1/", endpoint_url=proxy.url)
    finally:  # 10k objects left in the session's server would slow every later test
        for key in everything:
            backend.delete_object(bucket, key)
    assert len(table) == OBJECTS
    assert table.column("uri").to_pylist() == sorted(f"s3://{bucket}/{k}" for k in keys)
    assert table.column("generator").value_counts().to_pylist() == [
        {"values": f"gen{g}", "counts": OBJECTS // 5} for g in range(5)
    ]
    assert len(set(table.column("video_id").to_pylist())) == OBJECTS
    # One HEAD for the prefix, then one LIST per page: nothing per object.
    assert proxy.counts["requests"] <= OBJECTS // PAGE + 3, proxy.counts


def test_keys_with_hash_and_question_mark_are_distinct_videos(s3: S3, clip) -> None:
    """`#` and `?` are part of an S3 key: each such object is its own video, fetched by its own key."""
    import numpy as np

    from vidscore.operators.decode import Decoder
    from vidscore.operators.frames import FrameSpec

    bucket = s3.bucket("keys")
    names = ["gen x/hash#1.mp4", "gen x/hash#2.mp4", "gen x/what?.mp4"]
    for name in names:
        s3.client.upload_file(str(clip), bucket, name)
    table = read_input(f"s3://{bucket}/", endpoint_url=s3.url)
    assert table.column("uri").to_pylist() == [f"s3://{bucket}/{n}" for n in names]
    assert len(set(table.column("video_id").to_pylist())) == 3
    spec = FrameSpec.uniform(4, "linspace")
    out = Decoder([spec], endpoint_url=s3.url, timeout_s=None)({"uri": np.array(table.column("uri").to_pylist())})
    assert list(out["status"]) == ["ok"] * 3, list(out["error"])
