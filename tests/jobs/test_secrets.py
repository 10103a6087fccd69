"""Sentinel secrets in manifest URLs reach no output of a run: stdout, stderr and logs, table, run summary."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from tests.operators.test_storage import SECRETS

pytestmark = pytest.mark.slow


def test_no_sentinel_in_anything_a_run_writes(tmp_path: Path, ray_cluster: str, clip: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on: every https fetch fails with a message naming the URL
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    leaky = [
        f"http://TOKENSENTINEL1@127.0.0.1:{port}/a.mp4",
        f"http://user:PWSENTINEL3@127.0.0.1:{port}/b.mp4",
        f"http://127.0.0.1:{port}/c.mp4?api_key=KEYSENTINEL2&password=PWSENTINEL3&id=3",
        f"http://127.0.0.1:{port}/d.mp4?X-Goog-Signature=GCSSIGSENTINEL4&sig=AZSIGSENTINEL5&mystery=UNKNOWNSENTINEL6",
    ]
    manifest = tmp_path / "m.jsonl"
    rows = [{"uri": u, "prompt": "p"} for u in leaky] + [{"uri": str(clip), "prompt": "ok"}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scores"
    script = Path(sys.executable).parent / "vidscore"
    done = subprocess.run(
        [str(script), "score", str(manifest), "-o", str(out), "--failure-budget", "1"],
        env={**__import__("os").environ, "RAY_ADDRESS": ray_cluster},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    table = pads.dataset(str(out), format="parquet").to_table().to_pylist()
    assert sum(r["status"] == "fetch_error" for r in table) == 4  # the error paths were taken
    assert any("id=3" in r["uri"] for r in table)  # what names content stays
    texts = {"stdout": done.stdout, "stderr (logs)": done.stderr, "table": json.dumps(table, default=str)}
    texts.update({p.name: p.read_text() for p in (out / "_vidscore").glob("*.json")})
    assert "vidscore INFO plan:" in done.stderr  # the log is part of what is checked
    for where, text in texts.items():
        assert not [s for s in SECRETS if s in text], (where, [s for s in SECRETS if s in text])
