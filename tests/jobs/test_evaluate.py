"""`vidscore evaluate`: metrics against scipy and hand-computed cases, label layouts, the real MJ-BENCH-VIDEO labels."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

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
    # an unscored side (NaN) leaves the pair out instead of counting it wrong
    nan = M.preference_accuracy(np.array([1.0, np.nan, 2.0]), np.array([0.0, 0.0, np.nan]))
    assert nan["n"] == 1 and nan["strict"] == 100.0
    # a zero tie margin matches exact ties only
    zero = M.pairwise_accuracy([1.0, 1.0], [1.0, 1.1], ["tie", "tie"], tie_margin=0.0)
    assert zero["value"] == 50.0


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
    # Pearson and Kendall (tau-b) beside Spearman, on the same matched pairs
    for kind, fn in (("pearson", pearsonr), ("kendall", kendalltau)):
        want = [fn(values[:, k], human[:, k]).statistic * 100 for k in range(5)]
        # the table stores float32: Pearson sees values within 1e-7 of these (ranks are unchanged)
        assert [got["metrics"][kind][a]["value"] for a in videoscore.ASPECTS] == pytest.approx(want, abs=1e-3)
        assert got["metrics"][f"{kind}_mean"] == pytest.approx(np.mean(want), abs=1e-3)
        assert all(got["metrics"][kind][a]["n"] == 12 for a in videoscore.ASPECTS)
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
    assert got["rule"] == {"columns": [f"videoscore_{a}" for a in videoscore.ASPECTS], "tie_margin": 0.5}
    # The rule is configurable: one column, a tighter tie margin.
    one = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "p.csv"), "--pairwise-columns",
                   "videoscore_visual_quality", "--tie-margin", "0.15")  # fmt: skip
    v = values[:, 0]
    hits = [
        (v[a] > v[b]) if p == "0" else (v[b] > v[a]) if p == "1" else abs(v[a] - v[b]) < 0.15
        for (a, b), p in zip(pairs, prefs)
    ]
    assert one["metrics"]["pairwise_accuracy"]["value"] == pytest.approx(100 * np.mean(hits))
    assert one["rule"] == {"columns": ["videoscore_visual_quality"], "tie_margin": 0.15}
    assert main([str(scores), "--labels", str(tmp_path / "p.csv"), "--pairwise-columns", "nope_x"]) == 2


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
    # Per-aspect preference from `category_preference`: the aspect's winner against its aspect score (built above
    # from the overall_score labels, every 7th flipped).
    aspect_of = {"Alignment": "alignment", "Safety": "safety", "Fineness": "fineness",
                 "Coherence & Consistency": "coherence_consistency", "Bias": "bias_fairness"}  # fmt: skip
    position = {a: c for c, a in enumerate(ASPECT_KEYS.values())}
    for name, aspect in aspect_of.items():
        wins = loses = equal = 0
        for p, r in enumerate(rows):
            w = {"video 1 better": 0, "video 2 better": 1}.get(r["category_preference"][name].lower())
            if w is None:
                continue
            value = [
                [1.0, -1.0, 0.0][[1, 2, 0].index(list(r[f"video_{k}_overall_score"].values())[position[aspect]])]
                * (-1.0 if (2 * p + k + position[aspect]) % 7 == 0 else 1.0)
                for k in (0, 1)
            ]
            wins += value[w] > value[1 - w]
            equal += value[w] == value[1 - w]
            loses += 1
        got_aspect = got["metrics"]["aspect_preference"][aspect]
        assert got_aspect["n"] == loses and got_aspect["equal"] == equal
        assert got_aspect["strict"] == (pytest.approx(100 * wins / loses) if loses else None)
    assert got["matching"]["unknown_label_keys"] == []  # every category_preference key maps to an aspect


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


# Label sets in the Hugging Face `datasets` layouts: each must give exactly the metrics of the same labels as a file.

VF_NAMES = [
    "visual quality",
    "temporal consistency",
    "dynamic degree",
    "text-to-video alignment",
    "factual consistency",
]


def _vf_rows() -> list[dict]:
    """VideoFeedback labels for `_videoscore_table`: 12 scored, one not-ok, one unmatched (partial keys: nulls)."""
    human = np.random.default_rng(1).integers(1, 5, size=(12, 5))
    rows = [{"video": f"g/v{i}.mp4", **{n: int(human[i, k]) for k, n in enumerate(VF_NAMES)}} for i in range(12)]
    return rows + [{"video": "g/v99.mp4", "visual quality": 1}, {"video": "nope/v1.mp4", "visual quality": 2}]


def _same_result(got: dict, ref: dict) -> None:
    assert got["format"] == ref["format"] and got["matching"] == ref["matching"]
    assert got["metrics"] == ref["metrics"]


def test_datasets_save_to_disk_matches_jsonl(tmp_path: Path, monkeypatch) -> None:
    import datasets

    scores, values = _videoscore_table(tmp_path)
    rows = _vf_rows()
    (tmp_path / "vf.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ref = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf.jsonl"))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "vf_ds"))
    got = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf_ds"))
    _same_result(got, ref)
    assert got["matching"]["matched"] == 12 and got["matching"]["unmatched_examples"] == ["nope/v1.mp4"]
    human = np.array([[r[n] for n in VF_NAMES] for r in rows[:12]])
    expected = [spearmanr(values[:, k], human[:, k]).statistic * 100 for k in range(5)]
    assert [got["metrics"]["spearman"][a]["value"] for a in videoscore.ASPECTS] == pytest.approx(expected)
    for more in (["--format", "evalcrafter"], ["--limit", "5"]):
        ref = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf.jsonl"), *more)
        _same_result(evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf_ds"), *more), ref)
    # A `datasets.Video` column ({bytes, path}) reads as its path. save_to_disk embeds the files (so they must
    # exist; empty ones here) and keeps only their file name, so matching is by file name: unique here.
    monkeypatch.chdir(tmp_path)
    for r in rows[:12]:
        Path(r["video"]).parent.mkdir(exist_ok=True)
        Path(r["video"]).touch()
    features = datasets.Features({"video": datasets.Video(), **{n: datasets.Value("int64") for n in VF_NAMES}})
    datasets.Dataset.from_list(rows[:12], features=features).save_to_disk(str(tmp_path / "vf_video"))
    (tmp_path / "vf12.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:12]))
    ref = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf12.jsonl"))
    _same_result(evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf_video")), ref)


def _pairs_csv(path: Path, pairs: list[tuple[int, int]], prefs: list[str]) -> Path:
    path.write_text("\n".join(["video_0,video_1,preference"] + [f"g/v{a}.mp4,v{b},{p}" for (a, b), p in
                                                                   zip(pairs, prefs)]) + "\n")  # fmt: skip
    return path


def test_datasets_dict_splits_and_classlabel(tmp_path: Path, capsys) -> None:
    import datasets

    scores, _ = _videoscore_table(tmp_path)
    # The preference as a ClassLabel: stored as the index (tie = 2), read as the name.
    features = datasets.Features(
        {
            "video_0": datasets.Value("string"),
            "video_1": datasets.Value("string"),
            "preference": datasets.ClassLabel(names=["0", "1", "tie"]),
        }
    )
    splits = {
        "train": ([(0, 1), (2, 3), (4, 5)], ["1", "1", "tie"]),
        "test": ([(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)], ["0", "1", "tie", "0", "tie", "1"]),
    }
    dd = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(
                {
                    "video_0": [f"g/v{a}.mp4" for a, _ in pairs],
                    "video_1": [f"v{b}" for _, b in pairs],
                    "preference": prefs,
                },  # fmt: skip
                features=features,
            )
            for name, (pairs, prefs) in splits.items()
        }
    )
    dd.save_to_disk(str(tmp_path / "pairs"))
    for name, (pairs, prefs) in splits.items():
        ref = evaluate(tmp_path, str(scores), "--labels", str(_pairs_csv(tmp_path / f"{name}.csv", pairs, prefs)))
        got = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "pairs"), "--split", name)
        _same_result(got, ref)
        assert got["format"] == "pairwise" and got["matching"]["bad_preference"] == 0
        if name == "test":  # the default split
            _same_result(evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "pairs")), ref)
    # No `test` and several splits, or a split it lacks: exit 2, naming the splits.
    datasets.DatasetDict({"train": dd["train"], "validation": dd["test"]}).save_to_disk(str(tmp_path / "tv"))
    assert main([str(scores), "--labels", str(tmp_path / "tv")]) == 2
    assert "none is `test`: pick one with --split (one of ['train', 'validation'])" in capsys.readouterr().err
    assert main([str(scores), "--labels", str(tmp_path / "pairs"), "--split", "dev"]) == 2
    assert "has no split 'dev'" in capsys.readouterr().err


def test_datasets_nested_mjbench_labels(tmp_path: Path) -> None:
    import datasets

    rows = json.loads(MJBENCH.read_text())[:60]
    scores = _mjbench_scores(tmp_path, rows)
    (tmp_path / "mj.json").write_text(json.dumps(rows))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "mj_ds"))  # the label dicts become structs
    ref = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "mj.json"))
    got = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "mj_ds"))
    _same_result(got, ref)
    assert got["format"] == "mjbench" and got["matching"]["matched"] == 120
    assert got["metrics"]["fine_grained"]["criteria_pooled"]["n"] > 0


def test_datasets_hub_style_folder(tmp_path: Path) -> None:
    import polars as pl

    scores, _ = _videoscore_table(tmp_path)
    rows = _vf_rows()
    (tmp_path / "vf.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "README.md").write_text("# labels\n")
    pl.DataFrame(rows).write_parquet(repo / "data" / "test-00000-of-00001.parquet")
    pl.DataFrame(rows[:4]).write_parquet(repo / "data" / "train-00000-of-00001.parquet")
    ref = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf.jsonl"))
    _same_result(evaluate(tmp_path, str(scores), "--labels", str(repo)), ref)


def test_datasets_bad_folders(tmp_path: Path, capsys) -> None:
    import datasets

    scores, _ = _videoscore_table(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi")
    assert main([str(scores), "--labels", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert "is a folder but not a `datasets` one" in err and "save_to_disk" in err
    datasets.Dataset.from_list(_vf_rows()).save_to_disk(str(tmp_path / "broken"))
    (tmp_path / "broken" / "state.json").write_text("{not json")
    assert main([str(scores), "--labels", str(tmp_path / "broken")]) == 2
    assert "is not readable as a `datasets` folder" in capsys.readouterr().err
    (tmp_path / "vf.jsonl").write_text(json.dumps(_vf_rows()[0]))
    assert main([str(scores), "--labels", str(tmp_path / "vf.jsonl"), "--split", "test"]) == 2
    assert "is a file; --split picks a `datasets` split" in capsys.readouterr().err
    datasets.Dataset.from_list(_vf_rows(), split="test").save_to_disk(str(tmp_path / "one"))
    assert evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "one"), "--split", "test")["matching"]["matched"]
    assert main([str(scores), "--labels", str(tmp_path / "one"), "--split", "train"]) == 2
    assert "is a single Dataset (split: test); drop --split train" in capsys.readouterr().err
    assert main([str(scores), "--labels", str(tmp_path / "nowhere")]) == 2
    assert "or a folder written by datasets' save_to_disk" in capsys.readouterr().err
