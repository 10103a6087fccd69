"""Drift in real runs: two nightly `vidscore score` runs into one table, where one generator's fresh clips come
from the same distribution and another's got blurred and slow. The second run's summary flags only the latter,
names the columns and prints it, and the table's report shows it at the top."""

import json
from pathlib import Path

import pytest

from vidscore.jobs.corpus import encode_video, render
from vidscore.jobs.report import main as report_main
from vidscore.jobs.score import main

pytestmark = pytest.mark.slow


def night(folder: Path, clips: dict[str, tuple[str, int]]) -> Path:
    """A manifest of 25 tiny clips per generator: generator -> (rendering style, first seed)."""
    folder.mkdir(parents=True)
    rows = []
    for generator, (style, seed) in clips.items():
        for i in range(25):
            path = encode_video(folder / f"{generator}-{i}.mp4", render(style, seed + i, 8, 48, 64))
            rows.append({"uri": str(path), "generator": generator, "prompt": "p"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_the_second_night_flags_the_generator_that_got_worse_only(
    ray_cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "scores"
    first = night(tmp_path / "n1", {"steady": ("crisp-motion", 0), "slipping": ("crisp-motion", 1000)})
    second = night(tmp_path / "n2", {"steady": ("crisp-motion", 500), "slipping": ("soft-drift", 2000)})
    args = ["-o", str(out), "-s", "technical", "--canary", "off"]
    assert main([str(first), *args]) == 0
    summaries = sorted((out / "_vidscore").glob("run-*.json"))
    opening = json.loads(summaries[-1].read_text())["drift"]
    assert opening["tested"] == 0 and all("no earlier run" in r["why"] for r in opening["results"])

    capsys.readouterr()
    assert main([str(second), *args]) == 0  # drift is information: the run itself succeeds
    block = json.loads(sorted((out / "_vidscore").glob("run-*.json"))[-1].read_text())["drift"]
    assert block["tested"] == 8 and block["test"] == "two-sample Kolmogorov-Smirnov, Holm-corrected"
    flagged = {(r["generator"], r["column"]) for r in block["results"] if r.get("flagged")}
    assert flagged and {g for g, _ in flagged} == {"slipping"}
    assert ("slipping", "technical_sharpness") in flagged and ("slipping", "technical_motion") in flagged
    steady = [r for r in block["results"] if r["generator"] == "steady"]
    assert len(steady) == 4 and all(r["tested"] and not r["flagged"] for r in steady)
    printed = capsys.readouterr().out
    assert "drift: 8 tested" in printed and "drift: slipping technical_sharpness fell by" in printed

    # The report of the table leads with the latest run's drift alerts.
    assert report_main([str(out), "-o", str(tmp_path / "report"), "--resamples", "50"]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    alerts = page[page.index('<ul id="alerts">') : page.index("</ul>", page.index('<ul id="alerts">'))]
    assert '<li class="alert">drift: slipping technical_sharpness fell by' in alerts and "steady" not in alerts
    assert "ALERT drift: slipping" in capsys.readouterr().out
