"""Seeded bootstrap confidence intervals and shared-bin histograms for the report.

Percentile bootstrap: resample with replacement, take the 2.5th and 97.5th percentiles of the resampled means.
Run-vs-run differences are paired (per-video differences resampled) when both runs scored the same videos, and
unpaired (each side resampled independently) otherwise.
Resampling is done in blocks so memory stays bounded (about 4M indices at a time) on large generators.
"""

import numpy as np

BLOCK = 4_000_000


def _resampled_means(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = len(x)
    per_block = max(1, BLOCK // n)
    out = np.empty(resamples)
    for start in range(0, resamples, per_block):
        b = min(per_block, resamples - start)
        out[start : start + b] = x[rng.integers(0, n, size=(b, n))].mean(axis=1)
    return out


def _clean(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x[np.isfinite(x)]


def mean_ci(
    values: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None, float | None, int]:
    """(mean, low, high, n) of the finite values; None where there are no values (CI collapses for n = 1)."""
    x = _clean(values)
    if len(x) == 0:
        return None, None, None, 0
    means = _resampled_means(x, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(x.mean()), float(lo), float(hi), len(x)


def diff_ci(
    a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """(mean(a) - mean(b), low, high): both samples resampled independently (two unpaired runs)."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) == 0 or len(xb) == 0:
        return None, None, None
    rng = np.random.default_rng(seed)
    diffs = _resampled_means(xa, resamples, rng) - _resampled_means(xb, resamples, rng)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return float(xa.mean() - xb.mean()), float(lo), float(hi)


def paired_diff_ci(
    a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """(mean(a - b), low, high) for paired values (the same videos scored by two runs): the per-video
    differences resampled together, which removes the spread between videos from the interval."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = x - y
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return None, None, None
    means = _resampled_means(d, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(d.mean()), float(lo), float(hi)


def histogram(groups: dict[str, np.ndarray], bins: int = 20) -> tuple[list[float], dict[str, list[int]]]:
    """Bin edges shared by every group (so bars stack), and each group's counts."""
    finite = {g: _clean(v) for g, v in groups.items()}
    pooled = np.concatenate([v for v in finite.values()] + [np.empty(0)])
    if len(pooled) == 0:
        return [], {g: [] for g in groups}
    lo, hi = float(pooled.min()), float(pooled.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    counts = {g: np.histogram(v, bins=edges)[0].astype(int).tolist() for g, v in finite.items()}
    return edges.tolist(), counts
