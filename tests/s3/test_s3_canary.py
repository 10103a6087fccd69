"""Canary, drift and the report on a table in object storage (a real S3 API): the default clips are written into
the table's prefix and scored by the workers from there, pinning and the comparison read S3, the canary rows stay
out of the table, and the report reads the latest run's canary outcome from the bucket."""

import json

import pytest

from tests.s3.conftest import S3, S3Corpus
from vidscore.jobs import cli
from vidscore.jobs.score import main
from vidscore.schemas.scores import CANARY_PREFIX

pytestmark = pytest.mark.slow


def latest_summary(s3: S3, bucket: str, prefix: str) -> dict:
    keys = sorted(k for k in s3.keys(bucket, f"{prefix}/_vidscore/run-") if k.endswith(".json"))
    return json.loads(s3.client.get_object(Bucket=bucket, Key=keys[-1])["Body"].read())


def test_canary_drift_and_report_on_s3(s3: S3, s3_corpus: S3Corpus, ray_cluster: str, capsys) -> None:
    bucket = s3.bucket("scores")
    out = f"s3://{bucket}/nightly"
    argv = [s3_corpus.manifest, "-o", out, "-s", "technical", "--endpoint-url", s3.url]
    assert main([*argv, "--limit", "5"]) == 0
    clips = sorted(k.rsplit("/", 1)[1] for k in s3.keys(bucket, "nightly/_vidscore/canary/clips/"))
    assert clips == ["chef.mp4", "coast.mp4", "fox.mp4", "still.mp4"]
    first = latest_summary(s3, bucket, "nightly")
    assert set(first["canary"]["record"]["status"].values()) == {"ok"} and first["canary"]["reference"] is None
    assert "error" not in first["drift"] and first["drift"]["results"]
    table = s3.read_table(out)
    assert len(table) == 5 and not any(v.startswith(CANARY_PREFIX) for v in table.column("video_id").to_pylist())

    assert cli.main(["canary", "pin", out, "--endpoint-url", s3.url]) == 0
    assert s3.keys(bucket, "nightly/_vidscore/canary/baseline.json")

    capsys.readouterr()
    assert main(argv) == 0  # the other 5 videos; the canary again, against the pinned baseline
    second = latest_summary(s3, bucket, "nightly")
    assert second["canary"]["reference"]["kind"] == "pinned" and not second["canary"]["alerts"]
    assert second["canary"]["moved"]["technical"]["max_abs"] <= 1e-6 and second["exit_code"] == 0
    assert len(s3.read_table(out)) == 10

    report = f"s3://{bucket}/reports/n2"
    assert cli.main(["report", out, "-o", report, "--resamples", "50", "--endpoint-url", s3.url]) == 0
    summary = json.loads(s3.client.get_object(Bucket=bucket, Key="reports/n2/summary.json")["Body"].read())
    assert summary["latest_run"]["run_id"] == second["run_id"] and summary["latest_run"]["canary_alerts"] == []
    assert summary["latest_run"]["canary_reference"]["kind"] == "pinned"
    page = s3.client.get_object(Bucket=bucket, Key="reports/n2/report.html")["Body"].read().decode()
    assert f"No canary or drift alert in the latest run ({second['run_id']}" in page
