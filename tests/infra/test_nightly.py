"""infra/kuberay/nightly.py: the dated RayJob it renders and how it waits, without a Kubernetes API."""

import datetime as dt
import importlib.util
import urllib.error
from pathlib import Path

import pytest
import yaml

KUBERAY = Path(__file__).resolve().parents[2] / "infra" / "kuberay"
spec = importlib.util.spec_from_file_location("vidscore_nightly", KUBERAY / "nightly.py")
nightly = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nightly)

TEMPLATE = yaml.safe_load((KUBERAY / "rayjob-score.yaml").read_text())


def test_run_date_is_yesterday_in_utc_unless_given() -> None:
    at_two = dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.timezone.utc)
    assert nightly.run_date(None, at_two) == dt.date(2026, 3, 4)
    assert nightly.run_date("", at_two + dt.timedelta(hours=20)) == dt.date(2026, 3, 4)  # a late retry: same date
    assert nightly.run_date("2025-12-31", at_two) == dt.date(2025, 12, 31)


def test_render_points_the_template_at_the_dated_partitions() -> None:
    job = nightly.render(TEMPLATE, dt.date(2026, 3, 4), "s3://b/dumps/{date}/", "s3://b/scores/date={date}/")
    entry = job["spec"]["entrypoint"]
    assert entry.startswith("python -m vidscore.jobs.score s3://b/dumps/2026-03-04/ -o s3://b/scores/date=2026-03-04/ ")
    assert entry.endswith("-s videoscore=TIGER-Lab/VideoScore -s mjvideo --config /etc/vidscore/score.yaml")
    assert job["metadata"]["name"] == "vidscore-nightly-20260304"
    assert job["metadata"]["labels"]["vidscore/run-date"] == "2026-03-04"
    assert job["spec"]["rayClusterSpec"] == TEMPLATE["spec"]["rayClusterSpec"]
    # The submitter pod carries the Ray token for `ray job submit`; rendering must not drop it.
    assert job["spec"]["submitterPodTemplate"] == TEMPLATE["spec"]["submitterPodTemplate"]
    assert {e["name"] for e in job["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["env"]} >= {
        "RAY_AUTH_MODE",
        "RAY_AUTH_TOKEN",
    }
    assert TEMPLATE["metadata"]["name"] == "vidscore-score"  # the template itself is untouched


def test_render_rejects_a_template_it_cannot_rewrite() -> None:
    bad = {"metadata": {}, "spec": {"entrypoint": "python -m vidscore.jobs.score --limit 3"}}
    with pytest.raises(ValueError, match="INPUT"):
        nightly.render(bad, dt.date(2026, 1, 1), "{date}", "{date}")
    bad["spec"]["entrypoint"] = "python -m vidscore.jobs.score in -o a -o b"
    with pytest.raises(ValueError, match="exactly once"):
        nightly.render(bad, dt.date(2026, 1, 1), "{date}", "{date}")


def test_wait_polls_until_terminal_and_rides_out_api_errors() -> None:
    replies = [
        urllib.error.URLError("connection refused"),
        {"status": {"jobDeploymentStatus": "Initializing"}},
        {"status": {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}},
        {"status": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}},
    ]
    sleeps = []

    def get(name: str) -> dict:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    assert nightly.wait(get, "vidscore-nightly-20260304", 5, sleeps.append) == "SUCCEEDED"
    assert sleeps == [5, 5, 5]


def test_wait_stops_when_the_rayjob_is_gone() -> None:
    def get(name: str) -> dict:
        raise urllib.error.HTTPError("u", 404, "Not Found", {}, None)

    with pytest.raises(urllib.error.HTTPError):
        nightly.wait(get, "x", 1, lambda s: None)


def test_dry_run_prints_the_rayjob(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--template", str(KUBERAY / "rayjob-score.yaml"), "--input", "s3://b/d/{date}/"]
    code = nightly.main([*argv, "--output", "s3://b/s/{date}/", "--date", "2026-01-02", "--dry-run"])
    assert code == 0
    job = yaml.safe_load(capsys.readouterr().out)
    assert job["kind"] == "RayJob" and job["metadata"]["name"] == "vidscore-nightly-20260102"
    assert nightly.main([*argv, "--output", "s3://b/s/{date}/", "--date", "not-a-date", "--dry-run"]) == 2
