"""Agreement metrics, exactly as the reward models' papers compute them; every value is a percentage (x100).

- Spearman (VideoFeedback-test, EvalCrafter): scipy.stats.spearmanr (average ranks for ties) x 100; Pearson
  (scipy.stats.pearsonr) and Kendall tau-b (scipy.stats.kendalltau) beside it, on the same pairs.
- Pairwise accuracy (GenAI-Bench, VBench; VideoScore benchmark): a preference for one side is matched when that
  side scores strictly higher; a human tie is matched when the two scores differ by less than 0.5 (the
  paper's margin on the mean of VideoScore's five outputs; `--tie-margin` and `--pairwise-columns` change it).
- Fine-grained accuracy / F1 (MJ-BENCH-VIDEO): predicted good iff score > 0; labels 1 good, 2 bad, 0 unrelated
  (masked out); the positive class is good.
- Preference accuracy (MJ-BENCH-VIDEO overall, and per aspect from `category_preference`): pairs with a winner
  only; strict counts the winner scoring strictly higher; tie-aware also counts 0.5 for exactly equal scores.
"""

from typing import Any

import numpy as np

TIE = "tie"
TIE_MARGIN = 0.5


def _correlation(kind: str, scores: np.ndarray, human: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    s, h = np.asarray(scores, dtype=np.float64), np.asarray(human, dtype=np.float64)
    keep = np.isfinite(s) & np.isfinite(h)
    s, h = s[keep], h[keep]
    if len(s) < 2 or np.all(s == s[0]) or np.all(h == h[0]):
        return {"value": None, "n": int(len(s))}
    fn = {"spearman": stats.spearmanr, "pearson": stats.pearsonr, "kendall": stats.kendalltau}[kind]
    return {"value": float(fn(s, h).statistic * 100), "n": int(len(s))}


def spearman(scores: np.ndarray, human: np.ndarray) -> dict[str, Any]:
    """Spearman rho x 100 over the pairs where both values are finite; None when undefined (n < 2 or constant)."""
    return _correlation("spearman", scores, human)


def pearson(scores: np.ndarray, human: np.ndarray) -> dict[str, Any]:
    """Pearson r x 100 (linear agreement), on the same pairs as `spearman`."""
    return _correlation("pearson", scores, human)


def kendall(scores: np.ndarray, human: np.ndarray) -> dict[str, Any]:
    """Kendall tau-b x 100 (pair concordance, ties corrected), on the same pairs as `spearman`."""
    return _correlation("kendall", scores, human)


CORRELATIONS = {"spearman": spearman, "pearson": pearson, "kendall": kendall}


def pairwise_accuracy(
    score_0: np.ndarray, score_1: np.ndarray, preference: list, tie_margin: float = TIE_MARGIN
) -> dict[str, Any]:
    """Accuracy x 100 of predicting `preference` (0: video_0 better, 1: video_1 better, "tie") from two scores;
    a tie is matched when the scores differ by less than `tie_margin`."""
    s0, s1 = np.asarray(score_0, dtype=np.float64), np.asarray(score_1, dtype=np.float64)
    pref = np.asarray([str(p) for p in preference])
    diff = s0 - s1
    # A zero margin matches exact ties only (|diff| < 0 could never hold).
    tied = np.abs(diff) < tie_margin if tie_margin > 0 else diff == 0
    matched = np.where(pref == "0", diff > 0, np.where(pref == "1", diff < 0, tied))
    n = len(pref)
    out = {"value": float(matched.mean() * 100) if n else None, "n": int(n)}
    for name, mask in (("video_0_better", pref == "0"), ("video_1_better", pref == "1"), ("tie", pref == TIE)):
        out[name] = {"value": float(matched[mask].mean() * 100) if mask.any() else None, "n": int(mask.sum())}
    return out


def binary_agreement(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy and F1 x 100 of `score > 0` against labels (1 good, 2 bad, 0 unrelated and masked)."""
    s, lab = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    keep = ((lab == 1) | (lab == 2)) & np.isfinite(s)
    pred, truth = s[keep] > 0, lab[keep] == 1
    tp, fp = int((pred & truth).sum()), int((pred & ~truth).sum())
    fn, tn = int((~pred & truth).sum()), int((~pred & ~truth).sum())
    n = tp + fp + fn + tn
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    return {
        "accuracy": (tp + tn) / n * 100 if n else None,
        "f1": f1 * 100 if n else None,
        "n": n,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def preference_accuracy(winner_score: np.ndarray, loser_score: np.ndarray) -> dict[str, Any]:
    """Strict and tie-aware accuracy x 100 of the human winner scoring higher than the loser, over the pairs
    where both scores are finite."""
    w, lo = np.asarray(winner_score, dtype=np.float64), np.asarray(loser_score, dtype=np.float64)
    keep = np.isfinite(w) & np.isfinite(lo)  # a video the model did not score is left out, not counted wrong
    w, lo = w[keep], lo[keep]
    n = len(w)
    if n == 0:
        return {"strict": None, "tie_aware": None, "n": 0, "equal": 0}
    strict = float((w > lo).mean() * 100)
    equal = int((w == lo).sum())
    return {"strict": strict, "tie_aware": strict + 50 * equal / n, "n": int(n), "equal": equal}


def mean_of(values: list[float | None]) -> float | None:
    """Mean of the defined values (the papers' 'average over aspects'); None when none is defined."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None
