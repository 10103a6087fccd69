"""End to end on object storage: the real CLI reads videos from, and writes its table to, a real S3 API (moto)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.s3.conftest import S3, S3Corpus, free_port
from tests.s3.proxy import FaultProxy
from vidscore.jobs.score import main

pytestmark = pytest.mark.slow


def check_corpus_table(s3: S3, table, corpus: S3Corpus) -> dict[str, dict]:
    """Every input video exactly once; good clips ok with scores, the truncated one a decode_error."""
    rows = table.to_pylist()
    assert sorted(r["uri"] for r in rows) == sorted(r["uri"] for r in corpus.rows)
    assert len({r["video_id"] for r in rows}) == len(rows) == len(corpus.rows)
    by_name = {r["uri"].rsplit("/", 1)[1]: r for r in rows}
    bad = by_name.pop("corrupt-000.mp4")
    assert bad["status"] == "decode_error" and bad["technical_sharpness"] is None
    assert "corrupt-000.mp4" in bad["error"] and "vidscore-decode-" not in bad["error"], bad["error"]
    assert all(r["status"] == "ok" and r["technical_sharpness"] > 0 for r in by_name.values()), by_name
    for r in rows:  # the content key is size:ETag, as S3 reports them now
        head = s3.client.head_object(Bucket=corpus.bucket, Key=r["uri"].split("/", 3)[3])
        assert r["content_key"] == f"{head['ContentLength']}:{head['ETag'].strip(chr(34))}"
        assert r["size_bytes"] == head["ContentLength"]
    return by_name


def test_manifest_videos_and_table_on_s3_then_rerun(
    s3: S3, s3_corpus: S3Corpus, ray_cluster: str, capsys: pytest.CaptureFixture
) -> None:
    out = f"s3://{s3.bucket('scores')}/nightly"
    argv = [s3_corpus.manifest, "-o", out, "-s", "technical", "--endpoint-url", s3.url]
    assert main(argv) == 0
    by_name = check_corpus_table(s3, s3.read_table(out), s3_corpus)
    assert by_name["crisp-motion-001.mp4"]["seed"] == 1  # manifest columns pass through
    assert "status: decode_error=1, ok=9" in capsys.readouterr().out
    bucket, prefix = out[5:].split("/", 1)
    keys = s3.keys(bucket, prefix)
    parts = [k for k in keys if k.endswith(".parquet") and "/_vidscore/" not in k]  # the canary's are apart
    assert parts and all("/run_date=" in k and "/part-" in k for k in parts)
    summaries = [k for k in keys if k.startswith(f"{prefix}/_vidscore/run-") and k.endswith(".json")]
    assert len(summaries) == 1 and not [k for k in keys if "/.probe-" in k or "/.staging-" in k]
    summary = json.loads(s3.client.get_object(Bucket=bucket, Key=summaries[0])["Body"].read())
    assert summary["rows"] == 10 and summary["output"] == out

    # Same command, same output: nothing new is scored, nothing is duplicated.
    assert main(argv) == 0
    assert "10 input videos, 10 up to date in" in capsys.readouterr().out
    assert len(s3.read_table(out)) == 10
    assert [k for k in s3.keys(bucket, prefix) if k.endswith(".parquet") and "/_vidscore/" not in k] == parts


def test_prefix_of_videos_with_videofolder_metadata(s3: S3, s3_corpus: S3Corpus, ray_cluster: str) -> None:
    bucket = s3.bucket("dump")
    for row in s3_corpus.rows:  # day1/<generator>/<clip>.mp4, as generators write them
        source = {"Bucket": s3_corpus.bucket, "Key": row["uri"].split("/", 3)[3]}
        name = source["Key"].rsplit("/", 1)[1]
        s3.client.copy_object(Bucket=bucket, Key=f"day1/{row['generator']}/{name}", CopySource=source)
    names = [f"{r['generator']}/{r['uri'].rsplit('/', 1)[1]}" for r in s3_corpus.rows]
    meta = [{"file_name": n, "prompt": r["prompt"]} for n, r in zip(names, s3_corpus.rows)]
    meta.append({"file_name": "frozen/never-uploaded.mp4", "prompt": "gone"})
    body = "".join(json.dumps(m) + "\n" for m in meta).encode()
    s3.client.put_object(Bucket=bucket, Key="day1/metadata.jsonl", Body=body)

    out = f"s3://{bucket}/scores"
    assert main([f"s3://{bucket}/day1/", "-o", out, "--endpoint-url", s3.url]) == 0
    rows = {r["uri"]: r for r in s3.read_table(out).to_pylist()}
    assert len(rows) == len(s3_corpus.rows) + 1
    gone = rows.pop(f"s3://{bucket}/day1/frozen/never-uploaded.mp4")
    assert gone["status"] == "fetch_error" and gone["generator"] == "frozen"
    for uri, r in rows.items():
        generator, name = uri.split("/")[-2:]
        assert r["generator"] == generator and r["prompt"] is not None
        assert r["status"] == ("decode_error" if name == "corrupt-000.mp4" else "ok"), r

    # The rerun takes each video's content key from the listing: no request per video. Only the missing
    # video (fetch_error is retryable) is tried again.
    with FaultProxy(s3.host) as proxy:
        # Only the retried missing video is decoded, and it fails again: 100% of this run, so a budget of 1.
        assert main([f"s3://{bucket}/day1/", "-o", out, "--endpoint-url", proxy.url, "--failure-budget", "1"]) == 0
    videos = {path for _, path in proxy.requests if path.endswith(".mp4")}
    canary = {p for p in videos if p.startswith(f"/{bucket}/scores/_vidscore/canary/clips/")}
    assert videos - canary == {f"/{bucket}/day1/frozen/never-uploaded.mp4"}
    assert len(canary) == 4  # a run that scores anything scores the canary clips too
    assert len(s3.read_table(out)) == len(rows) + 2


def test_endpoint_from_environment_in_a_subprocess(s3: S3, s3_corpus: S3Corpus, ray_cluster: str) -> None:
    """The installed `vidscore` script, no --endpoint-url: AWS_ENDPOINT_URL decides; joins the test cluster.

    The cluster's workers were started without AWS_ENDPOINT_URL (conftest.py), as on a real cluster that a
    laptop joins with RAY_ADDRESS: the driver must hand its endpoint to the decoders and the writers.
    """
    out = f"s3://{s3.bucket('scores')}/from-env"
    env = {**os.environ, "AWS_ENDPOINT_URL": s3.url, "RAY_ADDRESS": ray_cluster}
    script = Path(sys.executable).parent / "vidscore"
    done = subprocess.run(
        [str(script), "score", s3_corpus.manifest, "-o", out, "-s", "technical"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    check_corpus_table(s3, s3.read_table(out), s3_corpus)


@pytest.mark.parametrize("side", ["input", "output"])
def test_missing_bucket_fails_before_work(s3: S3, s3_corpus: S3Corpus, corpus: Path, side: str, capsys) -> None:
    scores = s3.bucket("scores")
    buckets = {b["Name"] for b in s3.client.list_buckets()["Buckets"]}
    argv = {
        "input": ["s3://no-such-bucket-vidscore/day1/", "-o", f"s3://{scores}/x"],
        "output": [str(corpus), "-o", "s3://no-such-bucket-vidscore/scores"],
    }[side]
    assert main([*argv, "--endpoint-url", s3.url]) == 2
    err = capsys.readouterr().err
    assert f"{side} s3://no-such-bucket-vidscore/" in err and "does not exist" in err, err
    assert ("no such bucket; create the bucket" if side == "output" else "check the path") in err
    assert {b["Name"] for b in s3.client.list_buckets()["Buckets"]} == buckets, "a failed run created a bucket"
    assert s3.keys(scores) == []  # nothing written (the writability probe cleans up after itself)


@pytest.mark.parametrize("side", ["input", "output"])
def test_unreachable_endpoint_fails_before_work(
    s3_corpus: S3Corpus, corpus: Path, tmp_path: Path, side: str, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's connection retries take ~5 s per call otherwise
    argv = {
        "input": [s3_corpus.manifest, "-o", str(tmp_path / "scores")],
        "output": [str(corpus), "-o", "s3://scores/x"],
    }[side]
    assert main([*argv, "--endpoint-url", dead]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # after the log lines (plan, claim)
    assert last.startswith(f"vidscore score: error: {side} s3://") and "EndpointConnectionError" in last, err
    assert "check the" in err and "endpoint" in err
    assert not list(tmp_path.rglob("*.parquet"))
