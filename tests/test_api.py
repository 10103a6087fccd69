"""The public API: `import vidscore` is cheap and complete; `vidscore.score` scores a Ray Dataset inside one's own
pipeline exactly as the score job does; `vidscore.latest` reads the table (tests/test_readme.py runs its example)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import vidscore
from vidscore.jobs.score import main
from vidscore.jobs.table import read_scores
from vidscore.pipeline.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_import_vidscore_is_cheap_and_names_its_api() -> None:
    code = "import sys, vidscore; print(sorted(m for m in ('torch', 'ray', 'transformers') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert set(vidscore.__all__) == {"latest", "score", "scorers", "ScorerConfig", "TableError"}
    assert all(getattr(vidscore, name) for name in vidscore.__all__)
    assert {"technical", "videoscore", "mjvideo"} <= set(vidscore.scorers())
    with pytest.raises(AttributeError):
        vidscore.not_an_api  # noqa: B018


@pytest.mark.slow
def test_score_a_ray_dataset_like_the_job(corpus: Path, ray_cluster: str, tmp_path: Path) -> None:
    import ray

    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    items = [{"video_id": f"mine-{i}", "uri": str(corpus.parent / r["uri"]), "shard": i} for i, r in enumerate(rows)]
    scored = vidscore.score(ray.data.from_items(items), ["technical"], decode_workers=1).take_all()

    by_uri = {r["uri"]: r for r in scored}
    assert sorted(r["video_id"] for r in scored) == sorted(i["video_id"] for i in items)  # every row, once
    assert {r["shard"] for r in scored} == set(range(len(items)))  # own columns pass through
    assert not any(k.startswith(("frames__", "todo__")) for k in scored[0])  # internal columns stay inside
    bad = [r for r in scored if r["status"] != "ok"]
    assert len(bad) == 1 and bad[0]["uri"].endswith("corrupt-000.mp4") and bad[0]["error"]

    out = tmp_path / "scores"
    assert main([str(corpus), "-o", str(out), "-s", "technical"]) == 0
    job = read_scores(str(out)).collect().to_dicts()
    for row in job:  # same operators, same numbers
        mine = by_uri[row["uri"]]
        assert mine["technical_sharpness"] == row["technical_sharpness"]
        assert mine["technical_motion"] == row["technical_motion"]
        assert mine["status"] == row["status"]


def test_score_refuses_a_dataset_without_its_columns(ray_cluster: str) -> None:
    import ray

    with pytest.raises(ConfigError, match=r"needs columns \['uri'\]"):
        vidscore.score(ray.data.from_items([{"video_id": "a"}]), ["technical"])
    with pytest.raises(ConfigError, match="unknown scorer 'nope'"):
        vidscore.score(ray.data.from_items([{"video_id": "a", "uri": "x"}]), ["nope"])


def test_the_wheel_installs_one_top_level_package(tmp_path: Path) -> None:
    """`pip install vidscore` adds `vidscore` (and its dist-info) to site-packages, nothing named pipeline, jobs..."""
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir),
         str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheel_dir.glob("vidscore-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    top = {p.name for p in target.iterdir() if p.name != "bin"}
    assert {t for t in top if not t.endswith(".dist-info")} == {"vidscore"}, top
    for sub in ("pipeline", "operators", "jobs", "schemas"):
        assert (target / "vidscore" / sub / "__init__.py").is_file()
    assert (target / "vidscore/jobs/configs/score.yaml").is_file()
    assert (target / "vidscore/operators/scorers/videoscore_prompt.txt").is_file()
    # Installed, from outside the repository: the package imports, and no bare `pipeline` module exists.
    code = (
        "import importlib, importlib.util, vidscore, vidscore.jobs.cli, vidscore.operators.scorers.videoscore;"
        "[importlib.import_module(m) for m in vidscore.jobs.cli.JOBS.values()];"  # every job, evaluate's scipy too
        "print('RESULT', vidscore.__file__, importlib.util.find_spec('pipeline'), importlib.util.find_spec('jobs'))"
    )
    # -S: no .pth files (the dev install's editable finder); the path is the wheel, the stdlib and the venv's
    # site-packages for dependencies, never the repository.
    path = [str(target), *(p for p in sys.path if p.startswith(sys.base_prefix) or p.endswith("site-packages"))]
    done = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:] = {path!r}; {code}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    assert len(line.split()) == 4, line
    _, where, pipeline, jobs = line.split()
    assert where.startswith(str(target)) and pipeline == "None" and jobs == "None"
