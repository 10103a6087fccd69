"""bench/e2e.py on a few clips: the whole `vidscore score` job and the reference-style loop give the same scores,
for each model it benchmarks."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["videoscore", "videoreward"])
def test_e2e_benchmark_job_and_reference_agree(tmp_path: Path, model: str) -> None:
    cmd = [sys.executable, "bench/e2e.py", "--model", model, "--clips", "6", "--rounds", "1", "--work", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True).stdout
    found = re.search(r"scores: (\d+) videos compared, max abs difference (\S+) \((\w+),", out)
    assert found and found.group(1) == "6" and found.group(3) == "ok", out
    assert float(found.group(2)) < 1e-4, out
    assert f"tiny {model}" in out and re.search(r"^ratio: \d+\.\d+$", out, re.M), out
