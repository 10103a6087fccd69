"""bench/gpu.py in its CPU check mode: the GPU benchmark runs end to end, and its two ways of scoring agree."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_benchmark_runs_tiny_and_both_ways_agree(tmp_path: Path) -> None:
    cmd = [sys.executable, "bench/gpu.py", "--tiny", "--work", str(tmp_path), "--models", "videoscore16,mjvideo"]
    cmd += ["--clips", "4", "--reference-clips", "2", "--clip-size", "128x96", "--seconds", "0.2", "--max-batch", "2"]
    cmd += ["--batch", "2", "--workers", "1"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True).stdout
    # The pipeline's operators and the reference-style loops score the same videos alike, for both models.
    diffs = [float(d) for d in re.findall(r"max score difference (\S+)", out)]
    assert len(diffs) == 2 and all(d < 1e-4 for d in diffs), out
    assert re.search(r"^\s+2\s+\d+\.\d+", out, re.M), out  # the sweep reached batch 2
    assert "both models on one GPU" in out and re.search(r"^ratio videoscore16: \d", out, re.M), out
    assert re.search(r"^ratio mjvideo: \d", out, re.M), out
