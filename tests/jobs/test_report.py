"""`vidscore report`: leaderboard numbers, comparison deltas, the HTML rendered in a real headless browser, S3."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.jobs import scoretable as st
from vidscore.jobs import cli, stats
from vidscore.jobs.report import main
from vidscore.schemas import mjvideo, videoscore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def run_report(scores: Path, out: Path, *extra: str) -> dict:
    assert main([str(scores), "-o", str(out), "--resamples", "200", *extra]) == 0
    return json.loads((out / "summary.json").read_text())


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    x = np.arange(50, dtype=float)
    mean, lo, hi, n = stats.mean_ci(x, resamples=500, seed=3)
    assert (mean, n) == (24.5, 50) and lo < mean < hi
    assert stats.mean_ci(x, resamples=500, seed=3) == (mean, lo, hi, n)
    assert stats.mean_ci(np.array([np.nan]))[3] == 0
    delta, dlo, dhi = stats.diff_ci(x + 10, x, resamples=500)
    assert delta == pytest.approx(10.0) and dlo < 10 < dhi
    edges, counts = stats.histogram({"a": np.array([0.0, 1.0]), "b": np.array([1.0])}, bins=2)
    assert edges == [0.0, 0.5, 1.0] and counts == {"a": [1, 1], "b": [0, 1]}


def test_technical_only_leaderboard(tmp_path: Path) -> None:
    st.write(tmp_path / "s", st.technical_table())
    summary = run_report(tmp_path / "s", tmp_path / "r")
    gens = {g["generator"]: g for g in summary["generators"]}
    assert [g["generator"] for g in summary["generators"]] == ["g2", "g1", "g0"]  # by technical_sharpness
    assert summary["score_columns"] == [f"technical_{m}" for m in ("sharpness", "motion", "brightness", "contrast")]
    assert gens["g1"]["videos"] == 11 and gens["g1"]["ok"] == 10 and gens["g1"]["failures"] == {"decode_error": 1}
    assert gens["g1"]["failure_rate"] == pytest.approx(1 / 11)
    sharp = gens["g1"]["scores"]["technical_sharpness"]
    assert sharp["mean"] == pytest.approx(104.5) and sharp["n"] == 10 and sharp["ci_low"] < 104.5 < sharp["ci_high"]
    assert sum(sum(c) for c in summary["distributions"]["technical_sharpness"]["counts"].values()) == 30
    md = (tmp_path / "r" / "leaderboard.md").read_text()
    assert "| g1 | 11 | 10 | 9.1% | 104.500 [" in md


def renamed(t: pa.Table, prefix: str) -> pa.Table:
    """The same rows under other video ids: a baseline that scored other videos (unpaired)."""
    ids = [f"{prefix}{v}" for v in t.column("video_id").to_pylist()]
    return t.set_column(t.schema.get_field_index("video_id"), "video_id", pa.array(ids))


def test_mixed_scorers_paired_and_unpaired_comparison(tmp_path: Path) -> None:
    st.write(tmp_path / "tonight", st.mixed_table(shift=0.5))
    st.write(tmp_path / "last", st.mixed_table(shift=0.0))
    st.write(tmp_path / "other", renamed(st.mixed_table(shift=0.0), "x"))
    summary = run_report(tmp_path / "tonight", tmp_path / "r", "--compare", str(tmp_path / "last"))
    assert "mjvideo_overall" in summary["score_columns"] and "videoscore_visual_quality" in summary["score_columns"]
    assert not any(c.endswith(("_checkpoint", "_revision", "_frames")) for c in summary["score_columns"])
    # Same videos in both tables: per-video differences, all exactly +0.5 here, so the CI closes on 0.5.
    d = next(g for g in summary["comparison"]["generators"] if g["generator"] == "b")["scores"]["mjvideo_overall"]
    assert d["paired"] and d["pairs"] == 8 and d["delta"] == pytest.approx(0.5, abs=1e-6)
    assert d["ci_low"] == pytest.approx(0.5, abs=1e-6) and d["ci_high"] == pytest.approx(0.5, abs=1e-6)
    assert "## Change vs" in (tmp_path / "r" / "leaderboard.md").read_text()
    # Other videos: the two samples are resampled apart, and the CI reflects the spread between videos.
    unpaired = run_report(tmp_path / "tonight", tmp_path / "r2", "--compare", str(tmp_path / "other"))
    u = next(g for g in unpaired["comparison"]["generators"] if g["generator"] == "b")["scores"]["mjvideo_overall"]
    assert not u["paired"] and u["pairs"] == 0 and u["delta"] == pytest.approx(0.5, abs=1e-6)
    assert u["ci_low"] < 0.5 < u["ci_high"] and u["ci_high"] - u["ci_low"] > 0.1


def test_pairing_finds_a_small_change_that_unpaired_noise_hides(tmp_path: Path) -> None:
    st.write(tmp_path / "tonight", st.mixed_table(shift=0.1))
    st.write(tmp_path / "last", st.mixed_table(shift=0.0))
    st.write(tmp_path / "other", renamed(st.mixed_table(shift=0.0), "x"))
    paired = run_report(tmp_path / "tonight", tmp_path / "r", "--compare", str(tmp_path / "last"))
    moved = {(c["generator"], c["column"]) for c in paired["changes"]}
    assert ("a", "mjvideo_overall") in moved and ("b", "videoscore_mean") in moved
    assert all(c["paired"] and c["delta"] == pytest.approx(0.1, abs=1e-5) for c in paired["changes"])
    unpaired = run_report(tmp_path / "tonight", tmp_path / "r2", "--compare", str(tmp_path / "other"))
    assert ("a", "mjvideo_overall") not in {(c["generator"], c["column"]) for c in unpaired["changes"]}
    html_text = (tmp_path / "r" / "report.html").read_text()
    assert "+0.1 [0.1, 0.1] (paired over 8 videos)" in html_text and "more (all in summary.json" in html_text


def test_scorer_blocks_lead_with_overall_and_fold_criteria(tmp_path: Path) -> None:
    st.write(tmp_path / "s", st.mixed_table())
    summary = run_report(tmp_path / "s", tmp_path / "r")
    blocks = {b["name"]: b for b in summary["scorers"]}
    assert [b["name"] for b in summary["scorers"]] == ["videoscore", "mjvideo"]
    mj = blocks["mjvideo"]
    assert mj["headline"] == ["mjvideo_overall", *(f"mjvideo_{a}" for a in mjvideo.ASPECTS)]
    assert sorted(c for cols in mj["groups"].values() for c in cols) == sorted(mjvideo.CRITERION_COLUMNS)
    assert list(mj["groups"]) == [f"mjvideo_{a}" for a in mjvideo.ASPECTS]
    assert mj["provenance"]["checkpoint"] == ["ckpt"]
    vs = blocks["videoscore"]
    assert vs["headline"][0] == "videoscore_mean" and "videoscore_mean" in summary["derived"]
    gen = next(g for g in summary["generators"] if g["generator"] == "a")
    aspects = [gen["scores"][f"videoscore_{a}"]["mean"] for a in videoscore.ASPECTS]
    assert gen["scores"]["videoscore_mean"]["mean"] == pytest.approx(np.mean(aspects), abs=1e-6)
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count('<details class="criteria">') == 5 and "coherence_consistency: " in page


def test_terminal_leaderboard_fits_120_columns(tmp_path: Path, capsys) -> None:
    t = st.mixed_table()
    names = ["a-generator-with-a-very-long-name-v2.1-final", "b"]
    gens = [names[0] if g == "a" else g for g in t.column("generator").to_pylist()]
    st.write(tmp_path / "s", t.set_column(t.schema.get_field_index("generator"), "generator", pa.array(gens)))
    assert main([str(tmp_path / "s"), "-o", str(tmp_path / "r"), "--resamples", "50"]) == 0
    printed = capsys.readouterr().out.splitlines()[:-1]  # the last line lists the files written
    assert printed and max(len(line) for line in printed) <= 120
    assert any(line.startswith("mjvideo (ckpt)") for line in printed)
    assert any(line.startswith("a-generator-wit ") for line in printed)


def test_checkpoint_change_is_warned(tmp_path: Path) -> None:
    old = st.mixed_table()
    ck = old.schema.get_field_index("mjvideo_checkpoint")
    old = old.set_column(ck, "mjvideo_checkpoint", pa.array(["other-ckpt"] * len(old)))
    st.write(tmp_path / "tonight", st.mixed_table(shift=0.2))
    st.write(tmp_path / "last", old)
    summary = run_report(tmp_path / "tonight", tmp_path / "r", "--compare", str(tmp_path / "last"))
    (warning,) = summary["comparison"]["warnings"]
    assert warning.startswith("mjvideo: the two tables used different checkpoints (ckpt vs other-ckpt)")
    assert "Warning: mjvideo: the two tables used different checkpoints" in (tmp_path / "r" / "report.html").read_text()


class _Dom(HTMLParser):
    """Collects what the test asserts on from the browser's rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_td = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data.strip())


def rendered(tmp_path: Path, page: Path, name: str, width: int = 1400) -> tuple[str, int]:
    """(DOM after layout, the document's scroll width) at a `width`-pixel window in headless Chromium. The probe
    script is added to a copy of the page for the test only; the report itself has no scripts."""
    probe = tmp_path / f"{name}.html"
    script = "<script>document.body.dataset.scrollWidth = document.documentElement.scrollWidth</script>"
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    flags = [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},1000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=60, check=True)
    return dom.stdout, int(re.search(r'data-scroll-width="(\d+)"', dom.stdout).group(1))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium chromium-driver)")
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    # A demanding page: three scorers, long generator names and checkpoint paths, a comparison.
    t = st.mixed_table(shift=0.3)
    long = "generator-with-a-long-release-name-2026-11-30-final"
    gens = [long if g == "a" else g for g in t.column("generator").to_pylist()]
    t = t.set_column(t.schema.get_field_index("generator"), "generator", pa.array(gens))
    path = "/mnt/checkpoints/team-video-quality/experiments/2026-11/videoscore-v1.1-finetune-run-0042/step-120000"
    ck = t.schema.get_field_index("videoscore_checkpoint")
    t = t.set_column(ck, "videoscore_checkpoint", pa.array([path] * len(t)))
    st.write(tmp_path / "s", t)
    st.write(tmp_path / "old", st.mixed_table())
    run_report(tmp_path / "s", tmp_path / "r", "--compare", str(tmp_path / "old"))
    page = tmp_path / "r" / "report.html"
    dom, scroll = rendered(tmp_path, page, "probe")
    assert scroll <= 1400  # no horizontal scrolling at 1400 px
    parser = _Dom()
    parser.feed(dom)
    ids = [a.get("id") for _, a in parser.tags]
    order = ["summary", "checkpoints", "changes", "alerts", "scorer-videoscore", "scorer-mjvideo", "comparison-section",
             "failures"]  # fmt: skip
    assert [i for i in ids if i in order] == order  # the summary first, then one section per scorer, then changes
    assert {"leaderboard-videoscore", "leaderboard-mjvideo", "comparison"} <= set(ids)
    assert {long, "b"} <= set(parser.cells) and path in parser.cells
    dots = [a for t_, a in parser.tags if t_ == "circle" and a.get("class") == "dot"]
    ticks = [a for t_, a in parser.tags if t_ == "text" and a.get("class") == "tick"]
    assert len(dots) >= 2 * (6 + 6) and len(ticks) > 20  # a dot per generator in every lead chart, ticked axes
    # The instrument itself: a page that is wider than the window is measured as such.
    wide = tmp_path / "wide.html"
    wide.write_text(page.read_text().replace("</body>", '<div style="width:3000px">x</div></body>'))
    assert rendered(tmp_path, wide, "wide-probe")[1] > 1400
    shot = tmp_path / "shot.png"
    flags = [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1400,2000", page.as_uri()], capture_output=True,
                   timeout=60)  # fmt: skip
    with Image.open(shot) as img:
        assert img.size == (1400, 2000)
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or [0, 0]) > 10  # not one flat colour


def test_errors_exit_2(tmp_path: Path, capsys) -> None:
    st.write(tmp_path / "s", st.technical_table())
    assert main([str(tmp_path / "s"), "-o", str(tmp_path / "r"), "--columns", "videoscore_visual_quality"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vidscore report: error: --columns: ['videoscore_visual_quality'] not in")
    assert "technical_sharpness" in err
    assert main([str(tmp_path / "empty"), "-o", str(tmp_path / "r")]) == 2
    assert "no score table" in capsys.readouterr().err
    assert main([str(tmp_path / "s"), "-o", str(tmp_path / "r"), "--sort-by", "x"]) == 2
    assert not (tmp_path / "r").exists()


def test_limit_and_s3(tmp_path: Path, monkeypatch) -> None:
    st.write(tmp_path / "s", st.technical_table())
    with st.s3_server(monkeypatch) as s3:
        url = st.upload(s3, tmp_path / "s", "scores", "nightly")
        argv = ["report", url, "-o", "s3://scores/reports/n1", "--limit", "5", "--compare", url, "--resamples", "50"]
        assert cli.main(argv) == 0
        summary = json.loads(s3.get_object(Bucket="scores", Key="reports/n1/summary.json")["Body"].read())
        assert summary["videos"] == 5 and summary["input"] == url
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="scores", Prefix="reports/")["Contents"]}
        assert keys == {f"reports/n1/{n}" for n in ("report.html", "leaderboard.md", "summary.json")}


def test_a_few_shared_videos_do_not_make_a_comparison_paired(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    base = [st.row(f"v{i}", "g", technical_sharpness=float(3 + rng.normal(0, 0.1))) for i in range(30)]
    new = [st.row(f"v{100 + i}", "g", technical_sharpness=float(2.5 + rng.normal(0, 0.1))) for i in range(28)]
    now = base[:2] + new  # 2 videos rescored, 28 new: not the same videos
    st.write(tmp_path / "last", st.table(base))
    st.write(tmp_path / "tonight", st.table(now))
    summary = run_report(tmp_path / "tonight", tmp_path / "r", "--compare", str(tmp_path / "last"))
    (g,) = summary["comparison"]["generators"]
    d = g["scores"]["technical_sharpness"]
    mean = lambda rows: np.mean([r["technical_sharpness"] for r in rows])  # noqa: E731
    assert not d["paired"] and d["pairs"] == 2 and d["delta"] == pytest.approx(mean(now) - mean(base), abs=1e-4)
    changed = {(c["generator"], c["column"]) for c in summary["changes"]}
    assert d["ci_high"] < 0 and ("g", "technical_sharpness") in changed


def test_alerts_come_from_the_latest_run_that_checked_even_for_a_partition(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "scores"
    part = root / "run_date=2026-12-01"
    part.mkdir(parents=True)
    pq.write_table(st.technical_table(), part / f"part-{st.RUN}-000000.parquet")
    meta = root / "_vidscore"
    meta.mkdir()
    checked = {"canary": {"alerts": ["canary: technical moved by 0.2"], "notices": []}, "drift": {"alerts": []}}
    (meta / "run-20261201T000000000000-aaaaaa.json").write_text(json.dumps(checked))
    (meta / "run-20261202T000000000000-bbbbbb.json").write_text(json.dumps({"rows": 0}))  # scored nothing
    (meta / "run-20261203T000000000000-cccccc.json").write_text('{"canary": ')  # cut off mid-write
    for location in (root, part):
        summary = run_report(location, tmp_path / f"r-{location.name}")
        assert summary["latest_run"]["run_id"] == "20261201T000000000000-aaaaaa"
        assert summary["latest_run"]["canary_alerts"] == ["canary: technical moved by 0.2"]
        page = (tmp_path / f"r-{location.name}" / "report.html").read_text()
        assert '<li class="alert">canary: technical moved by 0.2</li>' in page


def test_terminal_ranks_a_mean_of_zero_above_negative_ones() -> None:
    from vidscore.jobs.report import terminal

    def gen(name: str, mean: float | None) -> dict:
        return {"generator": name, "ok": 1, "failure_rate": 0.0, "scores": {"videoreward_overall": {"mean": mean}}}

    summary = {"scorers": [{"name": "videoreward", "headline": ["videoreward_overall"], "provenance": {}}],
               "generators": [gen("neg", -1.0), gen("none", None), gen("zero", 0.0)]}  # fmt: skip
    rows = [line.split()[0] for line in terminal(summary).splitlines()[2:]]
    assert rows == ["zero", "neg", "none"]
