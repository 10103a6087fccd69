"""The README's Python example runs as written, on a real table."""

import re
from pathlib import Path

import pytest

from tests.pipeline.runs import tech, write_run

README = Path(__file__).parents[1] / "README.md"


def test_the_table_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "from vidscore import latest" in b)
    scores = tmp_path / "scores"
    vs = {"videoscore_visual_quality": 3.0, "videoscore_checkpoint": "ckpt", "videoscore_status": "ok"}
    mj = {"mjvideo_overall": 0.5, "mjvideo_checkpoint": "ckpt", "mjvideo_status": "ok"}
    write_run(scores, "20260101T000000-aaaaaa", [{"video_id": "a", **tech(1.0), **vs}], ("technical", "videoscore"))
    write_run(scores, "20260102T000000-bbbbbb", [{"video_id": "a", **mj}], ("mjvideo",))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - the documented example itself
    best = namespace["best"]
    assert best.to_dicts() == [
        {"video_id": "a", "generator": "g", "status": "ok", "videoscore_visual_quality": 3.0, "mjvideo_overall": 0.5}
    ]
