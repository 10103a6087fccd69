"""Secrets never leak: not into logs, error messages, the score table, nor its run metadata."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.s3.conftest import KEY_ID, S3, SECRET, S3Corpus
from tests.s3.proxy import FaultProxy
from vidscore.jobs.score import main

pytestmark = pytest.mark.slow


def stored_texts(s3: S3, bucket: str, prefix: str) -> dict[str, str]:
    """Everything a run stored: each object's raw bytes (Parquet, summary JSON), and the decoded table.

    Parquet pages are zstd-compressed, so the raw bytes alone would hide a leaked string; the decoded rows and
    the schema metadata are checked too.
    """
    keys = s3.keys(bucket, prefix)
    texts = {k: s3.client.get_object(Bucket=bucket, Key=k)["Body"].read().decode("latin-1") for k in keys}
    assert any(k.endswith(".parquet") for k in keys) and any(k.endswith(".json") for k in keys), keys
    table = s3.read_table(f"s3://{bucket}/{prefix}")
    texts["rows"] = json.dumps(table.to_pylist(), default=str)
    texts["schema"] = str(table.schema) + repr(table.schema.metadata)
    return texts


def vidscore(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "vidscore"
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=300)


def test_credentials_never_appear_in_output_logs_or_errors(
    s3: S3, s3_corpus: S3Corpus, ray_cluster: str, tmp_path: Path
) -> None:
    """A whole CLI run with sentinel credentials, through throttling, a denied object and a missing one.

    The session's AWS variables are sentinels (conftest.py), held by this subprocess and by the workers of the
    cluster it joins, so messages made on either side are covered.
    """
    rows = [*s3_corpus.rows, {"uri": f"{s3_corpus.prefix}/videos/never-uploaded.mp4", "generator": "frozen"}]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bucket = s3.bucket("scores")
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET and os.environ["AWS_ACCESS_KEY_ID"] == KEY_ID
    env = {**os.environ, "RAY_ADDRESS": ray_cluster}
    with FaultProxy(s3.host, rate=0.1, seed=3, faults=("slowdown", "internal"), deny=r"/soft-drift-000\.mp4$") as proxy:
        env["AWS_ENDPOINT_URL"] = proxy.url
        done = vidscore(["score", str(manifest), "-o", f"s3://{bucket}/run", "-s", "technical"], env)
        assert done.returncode == 0, done.stderr[-3000:]
        # (c) an output on a bucket that does not exist: refused before any work, and still no secret
        missing = vidscore(["score", str(manifest), "-o", "s3://no-such-bucket-vidscore/run"], env)
    assert proxy.counts["denied"] and proxy.counts["faults"], proxy.counts
    assert missing.returncode == 2 and "no such bucket; create the bucket" in missing.stderr, missing.stderr
    assert "no-such-bucket-vidscore" not in {b["Name"] for b in s3.client.list_buckets()["Buckets"]}

    table = {r["uri"].rsplit("/", 1)[1]: r for r in s3.read_table(f"s3://{bucket}/run").to_pylist()}
    assert table["soft-drift-000.mp4"]["status"] == "fetch_error"  # error paths were taken
    assert table["never-uploaded.mp4"]["status"] == "fetch_error"
    texts = {"stdout": done.stdout, "stderr": done.stderr, "refused": missing.stdout + missing.stderr}
    texts.update(stored_texts(s3, bucket, "run"))
    for where, text in texts.items():
        assert SECRET not in text and KEY_ID not in text, where


def test_presigned_urls_score_and_their_signatures_stay_out(
    s3: S3, s3_corpus: S3Corpus, ray_cluster: str, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """Manifest uris are presigned https-style URLs (fetched over HTTP, no S3 credentials needed)."""
    import boto3
    from botocore.config import Config

    bucket = s3.bucket("scores")
    with FaultProxy(s3.host) as proxy:  # the proxy rejects expired presigned URLs, as S3 does (moto does not)
        signer = boto3.client("s3", endpoint_url=proxy.url, config=Config(signature_version="s3v4"))  # sentinel keys

        def presign(row: dict, expires: int) -> str:
            key = row["uri"].split("/", 3)[3]
            params = {"Bucket": s3_corpus.bucket, "Key": key}
            return signer.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

        good = [{**r, "uri": presign(r, 3600)} for r in s3_corpus.rows if "frozen" not in r["uri"]]
        expired = [{**r, "uri": presign(r, 1)} for r in s3_corpus.rows if "frozen" in r["uri"]]
        signatures = [parse_qs(urlsplit(r["uri"]).query)["X-Amz-Signature"][0] for r in good + expired]
        manifest = tmp_path / "presigned.jsonl"
        manifest.write_text("".join(json.dumps(r) + "\n" for r in good + expired))
        time.sleep(2.1)  # the 1-second URLs expire
        out = f"s3://{bucket}/presigned"
        assert main([str(manifest), "-o", out, "-s", "technical", "--endpoint-url", s3.url]) == 0
        assert proxy.counts["expired"] >= len(expired)
    printed = capfd.readouterr()

    table = s3.read_table(out)
    rows = {r["uri"]: r for r in table.to_pylist()}
    plain = {r["uri"].split("?", 1)[0]: r for r in good + expired}
    assert sorted(rows) == sorted(plain)  # the uri column holds the URL without its query string
    for uri, r in rows.items():
        if "frozen" in uri:
            assert r["status"] == "fetch_error" and uri.rsplit("/", 1)[1] in r["error"], r
            assert "access denied (HTTP 403); an expired" in r["error"], r["error"]
        else:
            assert r["status"] == ("decode_error" if "corrupt" in uri else "ok"), r
            assert r["content_key"] is not None
    texts = {"stdout": printed.out, "stderr": printed.err, **stored_texts(s3, bucket, "presigned")}
    for where, text in texts.items():
        assert KEY_ID not in text and SECRET not in text, where
        assert not [s for s in signatures if s in text], where
