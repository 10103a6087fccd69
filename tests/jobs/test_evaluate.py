"""`vidscore evaluate`: metrics against scipy and hand-computed cases, label layouts, the real MJ-BENCH-VIDEO labels."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from tests.jobs import scoretable as st
from vidscore.jobs import cli, labels
from vidscore.jobs import metrics as M
from vidscore.jobs.evaluate import main
from vidscore.schemas import mjvideo, videoscore

MJBENCH = Path(__file__).parents[1] / "fixtures" / "mjbench_video_test.json"
ASPECT_KEYS = dict(zip(["Alignment", "Safety", "Fineness", "Consistency", "Bias"], mjvideo.ASPECTS))


def evaluate(tmp_path: Path, *argv: str) -> dict:
    out = tmp_path / "metrics.json"
    assert main([*argv, "-o", str(out)]) == 0
    return json.loads(out.read_text())


def test_spearman_matches_scipy_with_ties() -> None:
    pred, human = np.array([1.0, 2.0, 2.0, 3.0, 5.0, np.nan]), np.array([1, 3, 2, 2, 4, 1])
    got = M.spearman(pred, human)
    assert got["n"] == 5 and got["value"] == pytest.approx(spearmanr(pred[:5], human[:5]).statistic * 100)
    assert M.spearman(np.ones(3), np.arange(3))["value"] is None


def test_pairwise_tie_rule_by_hand() -> None:
    # 0 better & 0 higher (hit); 1 better but 0 higher (miss); tie with |d| = 0.4 (hit); tie with |d| = 0.5 (miss);
    # 1 better and equal scores (miss: strictly higher required).
    got = M.pairwise_accuracy([3.0, 3.0, 2.0, 2.0, 1.0], [2.0, 2.5, 2.4, 2.5, 1.0], ["0", "1", "tie", "tie", "1"])
    assert got["value"] == pytest.approx(40.0) and got["n"] == 5
    assert got["tie"] == {"value": 50.0, "n": 2} and got["video_1_better"] == {"value": 0.0, "n": 2}


def test_binary_agreement_and_preference_by_hand() -> None:
    # labels 1 good / 2 bad / 0 masked; predicted good iff score > 0 (0.0 counts as bad).
    got = M.binary_agreement(np.array([0.5, -1.0, 0.0, 2.0, 9.0, -0.1]), np.array([1, 2, 1, 2, 0, 1]))
    assert (got["tp"], got["fp"], got["fn"], got["tn"], got["n"]) == (1, 1, 2, 1, 5)
    assert got["accuracy"] == pytest.approx(40.0) and got["f1"] == pytest.approx(100 * 2 / 5)
    pref = M.preference_accuracy(np.array([1.0, 0.0, 2.0, 0.3]), np.array([0.0, 0.0, 3.0, 0.2]))
    assert pref["strict"] == pytest.approx(50.0) and pref["tie_aware"] == pytest.approx(62.5) and pref["equal"] == 1


def test_matching_rule() -> None:
    m = labels.Matcher(["id1", "id2", "id3"], ["s3://b/mjb/test/0_0.mp4", "/x/xtest/0_1.mp4", "/y/a/0_1.mp4"])
    assert m.find("id2") == 1 and m.find("test/0_0.mp4") == 0 and m.find("./test/0_0.mp4") == 0
    assert m.find("s3://b/mjb/test/0_0.mp4") == 0 and m.find("a/0_1.mp4") == 2
    assert m.find("test/0_1.mp4") is None and m.find("0_1.mp4") is None
    assert m.report()["unmatched"] == 1 and m.report()["ambiguous"] == 1


def _videoscore_table(tmp_path: Path, n: int = 12) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    values = rng.normal(2.5, 0.7, size=(n, 5)).round(1)  # rounding makes ties
    names = [f"videoscore_{a}" for a in videoscore.ASPECTS]
    rows = [st.row(f"v{i}", "g", **dict(zip(names, map(float, values[i])))) for i in range(n)]
    rows.append(st.row("v99", "g", status="decode_error"))
    st.write(tmp_path / "s", st.table(rows, scorers=("videoscore",)))
    return tmp_path / "s", values


def test_videofeedback_and_evalcrafter(tmp_path: Path) -> None:
    scores, values = _videoscore_table(tmp_path)
    human = np.random.default_rng(1).integers(1, 5, size=(12, 5))
    names = [
        "visual quality",
        "temporal consistency",
        "dynamic degree",
        "text-to-video alignment",
        "factual consistency",
    ]
    rows = [{"video": f"g/v{i}.mp4", **{n: int(human[i, k]) for k, n in enumerate(names)}} for i in range(12)]
    rows += [{"video": "g/v99.mp4", "visual quality": 1}, {"video": "nope/v1.mp4", "visual quality": 2}]
    path = tmp_path / "vf.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    got = evaluate(tmp_path, str(scores), "--labels", str(path))
    assert got["format"] == "videofeedback"
    counts = {k: got["matching"][k] for k in ("labels", "matched", "unscored", "unmatched", "ambiguous")}
    assert counts == {"labels": 14, "matched": 12, "unscored": 1, "unmatched": 1, "ambiguous": 0}
    assert got["matching"]["unmatched_examples"] == ["nope/v1.mp4"]
    expected = [spearmanr(values[:, k], human[:, k]).statistic * 100 for k in range(5)]
    per = got["metrics"]["spearman"]
    assert [per[a]["value"] for a in videoscore.ASPECTS] == pytest.approx(expected)
    assert got["metrics"]["spearman_mean"] == pytest.approx(np.mean(expected))
    ec = evaluate(tmp_path, str(scores), "--labels", str(path), "--format", "evalcrafter")
    assert list(ec["metrics"]["spearman"]) == ["visual_quality", "temporal_consistency", "text_to_video_alignment"]
    assert ec["metrics"]["spearman_mean"] == pytest.approx(np.mean([expected[0], expected[1], expected[3]]))


def test_pairwise_csv(tmp_path: Path) -> None:
    scores, values = _videoscore_table(tmp_path)
    mean = values.mean(axis=1)
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)]
    prefs = ["0", "1", "tie", "0", "tie", "1"]
    lines = ["video_0,video_1,preference"] + [f"g/v{a}.mp4,v{b},{p}" for (a, b), p in zip(pairs, prefs)]
    (tmp_path / "p.csv").write_text("\n".join(lines + ["g/v0.mp4,g/v1.mp4,maybe"]) + "\n")
    got = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "p.csv"))
    hits = [
        (mean[a] > mean[b]) if p == "0" else (mean[b] > mean[a]) if p == "1" else abs(mean[a] - mean[b]) < 0.5
        for (a, b), p in zip(pairs, prefs)
    ]
    assert got["format"] == "pairwise" and got["matching"]["bad_preference"] == 1
    assert got["metrics"]["pairwise_accuracy"]["value"] == pytest.approx(100 * np.mean(hits))
    assert got["metrics"]["pairwise_accuracy"]["n"] == 6


def _mjbench_scores(tmp_path: Path, rows: list[dict]) -> Path:
    """Scores derived from the real labels: +1 good, -1 bad, 0 unrelated; every 7th (video, criterion) flipped."""
    out, flip = [], lambda v, c: -1.0 if (v + c) % 7 == 0 else 1.0  # noqa: E731
    for p, r in enumerate(rows):
        for k in (0, 1):
            v = 2 * p + k
            rec = st.row(f"m{v}", "mj")
            rec["uri"] = f"/data/mjb/{r[f'video_{k}_path']}"
            for c, (name, lab) in enumerate(r[f"video_{k}_label"].items()):
                rec[f"mjvideo_c_{labels.snake(name)}"] = {1: 1.0, 2: -1.0, 0: 0.0}[lab] * flip(v, c)
            for c, (name, lab) in enumerate(r[f"video_{k}_overall_score"].items()):
                rec[f"mjvideo_{ASPECT_KEYS[name]}"] = {1: 1.0, 2: -1.0, 0: 0.0}[lab] * flip(v, c)
            rec["mjvideo_overall"] = float([1, 0, 2][p % 3]) if k else 1.0  # equal, video_0 higher, video_1 higher
            out.append(rec)
    out.append(st.row("decoy", "mj") | {"uri": "/data/mjb/xtest/0_0.mp4"})
    st.write(tmp_path / "mj", st.table(out, scorers=("mjvideo",)))
    return tmp_path / "mj"


def test_mjbench_real_labels(tmp_path: Path) -> None:
    rows = json.loads(MJBENCH.read_text())
    got = evaluate(tmp_path, str(_mjbench_scores(tmp_path, rows)), "--labels", str(MJBENCH))
    assert got["format"] == "mjbench" and got["matching"]["matched"] == 2 * len(rows) == 2170
    assert got["matching"]["unmatched"] == 0 and got["matching"]["unknown_label_keys"] == []
    # Expected by hand: an unmasked label is predicted right unless flipped (0 scores are masked labels only).
    tp = fp = fn = tn = 0
    for p, r in enumerate(rows):
        for k in (0, 1):
            for c, lab in enumerate(r[f"video_{k}_label"].values()):
                if lab:
                    right, good = (2 * p + k + c) % 7 != 0, lab == 1
                    tp, fn = tp + (good and right), fn + (good and not right)
                    tn, fp = tn + (not good and right), fp + (not good and not right)
    pooled = got["metrics"]["fine_grained"]["criteria_pooled"]
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"]) == (tp, fp, fn, tn)
    assert pooled["accuracy"] == pytest.approx(100 * (tp + tn) / (tp + fp + fn + tn))
    assert pooled["f1"] == pytest.approx(100 * 2 * tp / (2 * tp + fp + fn))
    assert set(got["metrics"]["fine_grained"]["per_criterion"]) == set(mjvideo.CRITERIA)
    safety = got["metrics"]["fine_grained"]["per_aspect"]["safety"]
    assert safety["n"] == sum(r[f"video_{k}_overall_score"]["Safety"] > 0 for r in rows for k in (0, 1))
    # Overall: only "Video 1/2 better" (any case) count; video_0 scores 1, video_1 scores 1 / 0 / 2 by p % 3.
    strict = ties = n = 0
    for p, r in enumerate(rows):
        pref = r["overall_preference"].lower()
        if pref in ("video 1 better", "video 2 better"):
            n, s1 = n + 1, [1, 0, 2][p % 3]
            strict += (s1 < 1) if pref == "video 1 better" else (s1 > 1)
            ties += s1 == 1
    assert n == 118
    overall = got["metrics"]["overall_preference"]
    assert overall["n"] == n and overall["strict"] == pytest.approx(100 * strict / n)
    assert overall["tie_aware"] == pytest.approx(100 * (strict + 0.5 * ties) / n)


def test_limit_errors_and_s3(tmp_path: Path, monkeypatch, capsys) -> None:
    rows = json.loads(MJBENCH.read_text())
    scores = _mjbench_scores(tmp_path, rows[:20])
    (tmp_path / "few.json").write_text(json.dumps(rows[:20]))
    assert main([str(scores), "--labels", str(tmp_path / "few.json"), "--format", "pairwise"]) == 2
    assert "lacks columns ['videoscore_visual_quality'" in capsys.readouterr().err
    assert main([str(scores), "--labels", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with st.s3_server(monkeypatch) as s3:
        url = st.upload(s3, scores, "scores", "mj")
        s3.upload_file(str(tmp_path / "few.json"), "scores", "labels/test.json")
        argv = [
            "evaluate",
            url,
            "--labels",
            "s3://scores/labels/test.json",
            "--limit",
            "10",
            "-o",
            "s3://scores/m.json",
        ]
        assert cli.main(argv) == 0
        got = json.loads(s3.get_object(Bucket="scores", Key="m.json")["Body"].read())
        assert got["matching"]["labels"] == 20 and got["matching"]["matched"] == 20 and got["limit"] == 10
