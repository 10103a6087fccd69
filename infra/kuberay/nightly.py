"""Nightly submitter: create the RayJob for one run date and wait for it; the CronJob in nightly-cronjob.yaml runs it.

The RayJob is rayjob-score.yaml with its input and output pointed at the run date's partitions
(`--input s3://bucket/dumps/{date}/ --output s3://bucket/scores/`; `{date}` works in both) and a name that carries
the date. The name makes the submission idempotent: a retried or repeated submitter for the same date
attaches to the RayJob that already exists instead of starting a second run, and a RayJob retry
(backoffLimit) resumes into the same output partition.

Standard library plus PyYAML only (both in the vidscore image); talks to the Kubernetes API with the
pod's service-account token. Exit 0 when the Ray job succeeded, 1 when it failed, 2 on bad arguments.
"""

import argparse
import copy
import datetime as dt
import json
import os
import shlex
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import yaml

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TERMINAL = {"Complete", "Failed"}


def run_date(explicit: str | None, now: dt.datetime | None = None) -> dt.date:
    """RUN_DATE if given (backfills), else yesterday in UTC: a 02:00 UTC schedule scores the finished day,
    and every retry inside the 20 h deadline still computes the same date."""
    if explicit:
        return dt.date.fromisoformat(explicit)
    now = now or dt.datetime.now(dt.timezone.utc)
    return (now - dt.timedelta(days=1)).date()


def render(template: dict[str, Any], day: dt.date, input_pattern: str, output_pattern: str) -> dict[str, Any]:
    """The RayJob for `day`: template copy with a dated name and the entrypoint's INPUT and -o OUTPUT replaced."""
    job = copy.deepcopy(template)
    stamp = day.isoformat()
    tokens = shlex.split(job["spec"]["entrypoint"])
    if tokens[:3] != ["python", "-m", "vidscore.jobs.score"] or len(tokens) < 4 or tokens[3].startswith("-"):
        raise ValueError(f"template entrypoint must start `python -m vidscore.jobs.score INPUT`, got {tokens[:4]}")
    flags = [i for i, t in enumerate(tokens) if t in ("-o", "--output")]
    if len(flags) != 1 or flags[0] + 1 >= len(tokens):
        raise ValueError("template entrypoint must give the output exactly once as `-o OUTPUT`")
    tokens[3] = input_pattern.format(date=stamp)
    tokens[flags[0] + 1] = output_pattern.format(date=stamp)
    job["spec"]["entrypoint"] = shlex.join(tokens)
    meta = job.setdefault("metadata", {})
    meta.pop("generateName", None)
    meta["name"] = f"vidscore-nightly-{day:%Y%m%d}"
    meta.setdefault("labels", {}).update({"app.kubernetes.io/component": "nightly", "vidscore/run-date": stamp})
    return job


class Api:
    """The few Kubernetes API calls needed, with the in-cluster service account."""

    def __init__(self, namespace: str | None = None) -> None:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        self.base = f"https://{host}:{port}"
        with open(f"{SA_DIR}/token") as f:
            self.token = f.read().strip()
        if namespace is None:
            with open(f"{SA_DIR}/namespace") as f:
                namespace = f.read().strip()
        self.rayjobs = f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs"
        self.ctx = ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=self.ctx, timeout=60) as resp:
            return json.load(resp)

    def create(self, job: dict[str, Any]) -> bool:
        """True if created, False if a RayJob of that name already exists (a retry: attach to it).

        fieldValidation=Strict: a field the installed RayJob CRD does not know (authOptions.secretName needs
        KubeRay >= 1.6.0) fails the submission instead of being silently dropped, which would leave the operator
        unable to authenticate its job-status checks."""
        try:
            self.request("POST", f"{self.rayjobs}?fieldValidation=Strict", job)
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                return False
            raise

    def get(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"{self.rayjobs}/{name}")


def wait(get: Any, name: str, poll_s: float, sleep: Any = time.sleep) -> str:
    """Poll until the RayJob's deployment is terminal; returns its Ray job status (SUCCEEDED, FAILED, ...)."""
    while True:
        try:
            status = get(name).get("status", {})
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):  # no access, or the RayJob was deleted: waiting cannot help
                raise
            print(f"nightly: status check failed ({exc}); retrying", file=sys.stderr)
            status = {}
        except (urllib.error.URLError, TimeoutError) as exc:  # API server blips: keep waiting
            print(f"nightly: status check failed ({exc}); retrying", file=sys.stderr)
            status = {}
        if status.get("jobDeploymentStatus") in TERMINAL:
            return status.get("jobStatus") or "FAILED"
        sleep(poll_s)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--template", required=True, help="RayJob manifest to copy (rayjob-score.yaml)")
    p.add_argument("--input", required=True, help="input pattern with {date}, e.g. s3://bucket/dumps/{date}/")
    p.add_argument(
        "--output", required=True, help="score table (may use {date}); one table for all nights: s3://bucket/scores/"
    )
    p.add_argument("--date", default=os.environ.get("RUN_DATE"), help="run date YYYY-MM-DD (default yesterday, UTC)")
    p.add_argument("--poll-seconds", type=float, default=60.0)
    p.add_argument("--dry-run", action="store_true", help="print the RayJob and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with open(args.template) as f:
            template = yaml.safe_load(f)
        job = render(template, run_date(args.date), args.input, args.output)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        print(f"nightly: error: {exc}", file=sys.stderr)
        return 2
    name = job["metadata"]["name"]
    if args.dry_run:
        print(yaml.safe_dump(job, sort_keys=False))
        return 0
    api = Api()
    created = api.create(job)
    print(f"nightly: {'created' if created else 'attached to existing'} RayJob {name}: {job['spec']['entrypoint']}")
    status = wait(api.get, name, args.poll_seconds)
    print(f"nightly: RayJob {name} finished with Ray job status {status}")
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
