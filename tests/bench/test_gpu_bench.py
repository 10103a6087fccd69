"""bench/gpu.py in its CPU check mode: the GPU benchmark runs every model end to end within its budget, its two
ways of scoring agree for each model, and it ends with one summary table."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("videoscore16", "mjvideo", "videoreward")


@pytest.mark.slow
def test_gpu_benchmark_runs_tiny_and_both_ways_agree(tmp_path: Path) -> None:
    cmd = [sys.executable, "bench/gpu.py", "--tiny", "--work", str(tmp_path), "--models", ",".join(MODELS)]
    cmd += ["--clips", "4", "--reference-clips", "2", "--clip-size", "128x96", "--seconds", "0.2", "--max-batch", "2"]
    cmd += ["--batch", "2", "--workers", "1"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True).stdout
    # The pipeline's operators and the reference-style loops score the same videos alike, for every model.
    diffs = [float(d) for d in re.findall(r"max score difference (\S+)", out)]
    assert len(diffs) == len(MODELS) and all(d < 1e-4 for d in diffs), out
    assert re.search(r"^\s+2\s+\d+\.\d+", out, re.M), out  # a sweep reached batch 2
    table = out[out.index("\nmodel ") :]
    for model in MODELS:  # one summary row per model, with its own max difference in the last column
        row = re.search(rf"^{model}\s.*\s(\S+)$", table, re.M)
        assert row and float(row.group(1)) < 1e-4, table
        assert re.search(rf"^ratio {model}: \d", out, re.M), out
    assert re.search(r"^all on 1 GPU +one decode .* \d+ clips$", table, re.M), table
    assert "all on 1 GPU: videoscore16, mjvideo, videoreward in one process" in table, table
    assert all(len(line) <= 120 for line in table.splitlines()), table


@pytest.mark.slow
def test_a_spent_budget_skips_models_and_says_so(tmp_path: Path) -> None:
    """With no time left a model is skipped and named in the table, not silently dropped (tiny mode runs
    everything, so this checks the full-size rule through its flag on CPU: --budget-s 0 with --tiny)."""
    cmd = [sys.executable, "bench/gpu.py", "--tiny", "--work", str(tmp_path), "--models", "mjvideo,videoreward"]
    cmd += ["--clips", "4", "--reference-clips", "2", "--clip-size", "128x96", "--budget-s", "0", "--strict-budget"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True).stdout
    assert re.search(r"^mjvideo\s+skipped: no time left", out, re.M), out
    assert re.search(r"^videoreward\s+skipped: no time left", out, re.M), out
    assert "ratio mjvideo" not in out and "all on 1 GPU" not in out, out
