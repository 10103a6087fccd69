"""`vidscore report`: leaderboard numbers, comparison deltas, the HTML rendered in a real headless browser, S3."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests.jobs import scoretable as st
from vidscore.jobs import cli, stats
from vidscore.jobs.report import main

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


def test_mixed_scorers_with_comparison(tmp_path: Path) -> None:
    st.write(tmp_path / "tonight", st.mixed_table(shift=0.5))
    st.write(tmp_path / "last", st.mixed_table(shift=0.0))
    summary = run_report(tmp_path / "tonight", tmp_path / "r", "--compare", str(tmp_path / "last"))
    assert "mjvideo_overall" in summary["score_columns"] and "videoscore_visual_quality" in summary["score_columns"]
    assert not any(c.endswith(("_checkpoint", "_revision", "_frames")) for c in summary["score_columns"])
    cmp = summary["comparison"]
    d = next(g for g in cmp["generators"] if g["generator"] == "b")["scores"]["mjvideo_overall"]
    assert d["delta"] == pytest.approx(0.5) and d["delta"] == pytest.approx(d["mean"] - d["baseline_mean"])
    assert d["ci_low"] < 0.5 < d["ci_high"]
    assert "## Change vs" in (tmp_path / "r" / "leaderboard.md").read_text()


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


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium chromium-driver)")
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    st.write(tmp_path / "s", st.technical_table())
    st.write(tmp_path / "old", st.technical_table(seed=5))
    run_report(tmp_path / "s", tmp_path / "r", "--compare", str(tmp_path / "old"))
    page = (tmp_path / "r" / "report.html").as_uri()
    flags = [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=60, check=True).stdout
    parser = _Dom()
    parser.feed(dom)
    assert re.search(r'<table id="leaderboard">', dom) and re.search(r'<table id="comparison">', dom)
    assert {"g0", "g1", "g2"} <= set(parser.cells)
    svgs = [a for t, a in parser.tags if t == "svg"]
    bars = [a for t, a in parser.tags if t == "rect" and a.get("class") == "bar"]
    assert len(svgs) == 4 * 3 and len(bars) > 3 * 4 and all(float(b["width"]) > 0 for b in bars)
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2000", page], capture_output=True, timeout=60)
    with Image.open(shot) as img:
        assert img.size == (1200, 2000)
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
