"""The score job against a misbehaving S3: throttling, 5xx, stalls and denied objects, through a real proxy."""

import pytest

from tests.s3.conftest import S3, S3Corpus
from tests.s3.proxy import FaultProxy
from tests.s3.test_s3_end_to_end import check_corpus_table
from vidscore.jobs.score import main

pytestmark = pytest.mark.slow


def test_job_completes_through_throttling_errors_and_stalls(
    s3: S3, s3_corpus: S3Corpus, ray_cluster: str, capsys: pytest.CaptureFixture
) -> None:
    """25% of requests fail (503 SlowDown, 500 after the write took effect) or stall; nothing is lost or doubled.

    On top of the random faults, the first request of each kind for every video and every table file is
    answered 500 (a PUT's after the store took it), so the decoders' fetches and the writers' commits
    (overwriting, not adding) retry in every run, whatever the random draw.
    """
    out = f"s3://{s3.bucket('scores')}/faulty"
    with FaultProxy(s3.host, rate=0.25, seed=7, stall_s=0.5, fail_first=r"\.(mp4|parquet)$") as proxy:
        argv = [s3_corpus.manifest, "-o", out, "-s", "technical", "--endpoint-url", proxy.url]
        assert main(argv) == 0
        first = dict(proxy.counts)
        # The rerun lists and reads the table through the same faults, and must find all of it.
        assert main(argv) == 0
    assert all(first.get(kind) for kind in ("slowdown", "internal", "stall")), first
    faulted = {(method, key.rsplit(".", 1)[-1]) for fault, method, key in proxy.log if fault != "stall"}
    assert {("PUT", "parquet"), ("HEAD", "mp4"), ("GET", "mp4")} <= faulted, faulted
    assert "10 input videos, 10 up to date in" in capsys.readouterr().out
    check_corpus_table(s3, s3.read_table(out), s3_corpus)  # read straight from the store, not the proxy
    bucket, prefix = out[5:].split("/", 1)
    keys = s3.keys(bucket, prefix)
    assert not [k for k in keys if "/.probe-" in k or "/.staging-" in k], keys
    assert len([k for k in keys if k.startswith(f"{prefix}/_vidscore/run-")]) == 2


def test_denied_object_is_a_fetch_error_row(s3: S3, s3_corpus: S3Corpus, ray_cluster: str) -> None:
    out = f"s3://{s3.bucket('scores')}/denied"
    with FaultProxy(s3.host, deny=r"/frozen-001\.mp4$") as proxy:
        assert main([s3_corpus.manifest, "-o", out, "--endpoint-url", proxy.url]) == 0
        assert proxy.counts["denied"] >= 1
    rows = {r["uri"].rsplit("/", 1)[1]: r for r in s3.read_table(out).to_pylist()}
    assert len(rows) == len(s3_corpus.rows)
    denied = rows.pop("frozen-001.mp4")
    assert denied["status"] == "fetch_error" and "access denied" in denied["error"].lower(), denied["error"]
    assert denied["error"].startswith(f"{s3_corpus.prefix}/videos/frozen-001.mp4: ")
    rows.pop("corrupt-000.mp4")
    assert all(r["status"] == "ok" for r in rows.values())


def test_a_failed_table_write_ends_with_a_summary_and_a_short_message(
    s3: S3, s3_corpus: S3Corpus, ray_cluster: str, capsys: pytest.CaptureFixture
) -> None:
    """Writes to the table's data files are denied after the preflight passed: exit 1, one-line reason."""
    bucket = s3.bucket("scores")
    with FaultProxy(s3.host, deny=r"/run_date(=|%3D)") as proxy:
        code = main([s3_corpus.manifest, "-o", f"s3://{bucket}/t", "--endpoint-url", proxy.url, "--limit", "4"])
    out, err = capsys.readouterr()
    assert code == 1, (code, [line for line in err.splitlines() if "vidscore" in line or "Error" in line][-15:])
    assert "the run failed part-way: PermissionError" in err, [x for x in err.splitlines() if "vidscore" in x]
    assert "Traceback" not in err, err[err.index("Traceback") - 1500 : err.index("Traceback") + 200]
    assert "RUN FAILED part-way" in out and "status:" in out  # the summary is printed
    assert not [k for k in s3.keys(bucket, "t/") if "run_date=" in k]
