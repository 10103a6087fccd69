"""`vidscore filter` on real Parquet score tables: rules, counts, outputs, joins, errors, S3."""

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.jobs import scoretable as st
from vidscore.jobs import cli
from vidscore.jobs.filter import main
from vidscore.jobs.table import read_scores
from vidscore.operators.read import read_input

EXAMPLE = Path(__file__).parents[2] / "jobs" / "configs" / "filter_example.yaml"


@pytest.fixture
def scores(tmp_path: Path) -> Path:
    st.write(tmp_path / "scores", st.technical_table())
    return tmp_path / "scores"


def kept_ids(path: Path) -> list[str]:
    return sorted(pl.read_parquet(path)["video_id"].to_list())


def test_where_percentile_topk_counts_and_sidecar(scores: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "train.parquet"
    argv = [str(scores), "-o", str(out), "--where", "technical_sharpness >= 5", "--where", "technical_contrast = 1"]
    argv += [
        "--top-percent",
        "technical_sharpness=50",
        "--top-k",
        "2",
        "--by",
        "technical_sharpness",
        "--per",
        "generator",
    ]
    assert main(argv) == 0
    # ok sharpness: g0 0..9, g1 100..109, g2 200..209; >= 5 drops g0's 0..4 (25 left); odd i: 13 left
    # (g0 5,7,9; g1 and g2 five each); top 50%: ceil(6.5) = 7 -> 209..201 and 109,107; top 2 per generator.
    assert kept_ids(out) == ["v107", "v109", "v207", "v209"]
    record = json.loads(Path(str(out) + ".rules.json").read_text())
    steps = [(s["rule"], s["kept"], s["dropped"]) for s in record["counts"]["steps"]]
    assert steps == [
        ("status = ok", 30, 1),
        ("where technical_sharpness >= 5", 25, 5),
        ("where technical_contrast = 1", 13, 12),
        ("top 50% by technical_sharpness", 7, 6),
        ("top 2 by technical_sharpness per generator", 4, 3),
    ]
    assert record["counts"]["input"] == 31 and record["input"] == str(scores)
    assert json.loads(pq.read_metadata(out).metadata[b"vidscore.filter"]) == record
    printed = capsys.readouterr().out
    assert "where technical_contrast = 1" in printed and "wrote 4 rows" in printed


def test_output_is_a_manifest_score_reads_again(scores: Path, tmp_path: Path) -> None:
    for ext in ("parquet", "jsonl", "csv"):
        out = tmp_path / f"keep.{ext}"
        assert main([str(scores), "-o", str(out), "--where", "technical_sharpness < 3"]) == 0
        manifest = read_input(str(out))  # the same reader `vidscore score` uses; it rejects score-table columns
        assert sorted(manifest.column("video_id").to_pylist()) == ["v0", "v1", "v2"]
        assert manifest.column_names[:4] == ["video_id", "uri", "prompt", "generator"]
        assert manifest.column("uri").to_pylist()[0].startswith("/data/videos/g0/")


def test_failed_rows_only_with_include_failed_and_with_scores(scores: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.parquet"
    assert main([str(scores), "-o", str(out), "--include-failed", "--with-scores", "--where", "status <> 'ok'"]) == 0
    df = pl.read_parquet(out)
    assert df["video_id"].to_list() == ["v999"] and "technical_sharpness" in df.columns
    assert main([str(scores), "-o", str(out), "--where", "status <> 'ok'"]) == 0
    assert pl.read_parquet(out).height == 0


def test_latest_run_wins_and_limit(tmp_path: Path) -> None:
    root = tmp_path / "scores"
    st.write(root, st.table([st.row("v1", "g", technical_sharpness=1.0), st.row("v2", "g", technical_sharpness=2.0)]))
    newer = st.table([st.row("v1", "g", technical_sharpness=10.0)], scorers=("technical", "videoscore"))
    st.write(root, newer, run="20260102T000000-bbbbbb")
    df = read_scores(str(root)).sort("video_id").collect()
    assert df["technical_sharpness"].to_list() == [10.0, 2.0] and "videoscore_visual_quality" in df.columns
    out = tmp_path / "one.jsonl"
    assert main([str(root), "-o", str(out), "--limit", "1"]) == 0
    assert len(out.read_text().splitlines()) == 1


def test_rules_file_records_version(scores: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        'version: "7"\nrules:\n  - where: technical_sharpness > 200\n  - top_k: 3\n    by: technical_motion\n'
    )
    out = tmp_path / "r.parquet"
    assert main([str(scores), "-o", str(out), "--rules", str(rules), "--where", "technical_sharpness < 209"]) == 0
    record = json.loads(Path(str(out) + ".rules.json").read_text())
    assert record["rules_version"] == "7" and record["rules_file"] == str(rules)
    assert [r["kind"] for r in record["rules"]] == ["where", "top_k", "where"]
    assert record["counts"]["kept"] == 3


def test_example_rules_file_runs_on_a_mixed_table(tmp_path: Path) -> None:
    t = st.mixed_table()
    rows = t.to_pylist()
    for i, r in enumerate(rows):
        r.update(technical_sharpness=float(40 + 5 * i), technical_static=i % 4 == 0)
    st.write(tmp_path / "s", st.table(rows, scorers=("technical", "videoscore", "mjvideo")))
    out = tmp_path / "x.csv"
    assert main([str(tmp_path / "s"), "-o", str(out), "--rules", str(EXAMPLE)]) == 0
    record = json.loads(Path(str(out) + ".rules.json").read_text())
    assert record["rules_version"] == "2026-11-01" and len(record["counts"]["steps"]) == 6


def test_join_back_onto_training_manifest(scores: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "train.jsonl"
    lines = [{"uri": f"/data/videos/g2/v{200 + i}.mp4", "caption_len": i} for i in range(5)]
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "joined.parquet"
    argv = [
        str(scores),
        "-o",
        str(out),
        "--where",
        "technical_sharpness >= 203",
        "--join",
        str(manifest),
        "--on",
        "uri",
    ]
    assert main(argv) == 0
    df = pl.read_parquet(out)
    assert sorted(df["caption_len"].to_list()) == [3, 4]
    record = json.loads(Path(str(out) + ".rules.json").read_text())
    assert record["join"]["rows"] == 2 and record["join"]["kept_not_in_manifest"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "sharpness > 1"], "unknown column(s) ['sharpness']; score columns: ['technical_sharpness'"),
        (["--where", "technical_sharpness >"], "'technical_sharpness >' is not a valid SQL expression"),
        (["--where", "technical_sharpness"], "is not a condition"),
        (["--where", "prompt > 3"], "cannot be evaluated"),
        (["--top-percent", "technical_sharpness=150"], "0 < PERCENT <= 100"),
        (["--top-k", "3"], "--top-k needs --by"),
        (["--top-k", "3", "--by", "nope"], "unknown column(s) ['nope']"),
        (["--top-k", "3", "--by", "technical_sharpness", "--per", "team"], "--per 'team': no such column"),
        (["--on", "uri"], "--on goes with --join"),
    ],
)
def test_bad_rules_exit_2_with_a_clear_message(scores: Path, tmp_path: Path, capsys, args, message) -> None:
    assert main([str(scores), "-o", str(tmp_path / "o.parquet"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vidscore filter: error: ") and message in err
    assert not (tmp_path / "o.parquet").exists()


def test_bad_inputs_exit_2(scores: Path, tmp_path: Path, capsys) -> None:
    assert main([str(scores), "-o", str(tmp_path / "o.txt")]) == 2
    assert "name it .parquet, .jsonl or .csv" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "no score table" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - where: x > 1\n")
    assert main([str(scores), "-o", str(tmp_path / "o.csv"), "--rules", str(bad)]) == 2
    assert "needs `version:`" in capsys.readouterr().err


def test_cli_dispatch_and_s3(scores: Path, monkeypatch) -> None:
    with st.s3_server(monkeypatch) as s3:
        url = st.upload(s3, scores, "scores", "nightly/scores")
        assert (
            cli.main(["filter", url, "-o", "s3://scores/curated/keep.parquet", "--where", "technical_sharpness > 205"])
            == 0
        )
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="scores", Prefix="curated/")["Contents"]}
        assert keys == {"curated/keep.parquet", "curated/keep.parquet.rules.json"}
        body = s3.get_object(Bucket="scores", Key="curated/keep.parquet")["Body"].read()
        assert sorted(pl.read_parquet(body)["video_id"].to_list()) == ["v206", "v207", "v208", "v209"]
