"""End to end: the real `vidscore score` CLI on a local Ray against real encoded videos."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from tests.conftest import gradient_frames
from vidscore.jobs.corpus import encode_video
from vidscore.jobs.score import main
from vidscore.operators.read import video_id_for
from vidscore.schemas.scores import score_schema
from vidscore.schemas.technical import FIELDS

pytestmark = pytest.mark.slow


def read_table(out: Path) -> pa.Table:
    return pads.dataset(str(out), format="parquet").to_table()


def manifest_ids(manifest: Path) -> list[str]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    return [video_id_for(str(manifest.parent / r["uri"])) for r in rows]


def test_score_corpus(corpus: Path, ray_cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "scores"
    assert main([str(corpus), "-o", str(out), "-s", "technical"]) == 0
    table = read_table(out)
    expected = score_schema(FIELDS, [pa.field("seed", pa.int64())])
    assert table.schema.remove_metadata() == expected.remove_metadata()
    assert sorted(table.column("video_id").to_pylist()) == sorted(manifest_ids(corpus))
    rows = {r["uri"].rsplit("/", 1)[1]: r for r in table.to_pylist()}
    bad = rows.pop("corrupt-000.mp4")
    assert bad["status"] == "decode_error" and "corrupt-000.mp4" in bad["error"] and bad["technical_motion"] is None
    assert all(r["status"] == "ok" and r["technical_sharpness"] > 0 and r["num_frames"] == 20 for r in rows.values())
    assert rows["frozen-000.mp4"]["technical_static"] and not rows["crisp-motion-000.mp4"]["technical_static"]
    assert rows["crisp-motion-001.mp4"]["seed"] == 1 and rows["crisp-motion-001.mp4"]["prompt"].startswith("a chef")
    printed = capsys.readouterr().out
    assert "status: decode_error=1, ok=9" in printed and "crisp-motion" in printed and "videos/s" in printed
    summary = json.loads(next((out / "_vidscore").glob("run-*.json")).read_text())
    assert summary["rows"] == 10 and summary["generators"]["frozen"]["ok"] == 3
    # Each actor pool's busy share comes from Ray's own stage times: positive, and at most the pool's capacity.
    assert set(summary["pool_busy"]) == {"Decoder", "TechnicalScorer"}
    assert all(0 < v <= 1.05 for v in summary["pool_busy"].values()) and "pool busy: Decoder" in printed

    # Rerunning the same command adds nothing; a grown manifest scores only the new video.
    assert main([str(corpus), "-o", str(out), "-s", "technical"]) == 0
    assert len(read_table(out)) == 10
    grown = tmp_path / "grown.jsonl"
    extra = {"uri": str(corpus.parent / "videos/frozen-000.mp4"), "video_id": "copy-of-frozen", "seed": 9}
    grown.write_text(corpus.read_text().replace('"uri": "', f'"uri": "{corpus.parent}/') + json.dumps(extra) + "\n")
    assert main([str(grown), "-o", str(out), "-s", "technical"]) == 0
    ids = read_table(out).column("video_id").to_pylist()
    assert len(ids) == 11 == len(set(ids)) and "copy-of-frozen" in ids


def test_manifest_streams_in_chunks_whose_types_differ(
    corpus: Path, ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest read in many small chunks, a column null-typed in the first ones: every row once, one type."""
    import vidscore.operators.read as read

    monkeypatch.setattr(read, "JSON_BLOCK_BYTES", 250)
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    manifest = tmp_path / "m.jsonl"
    notes = [None] * 6 + [f"note {i}" for i in range(6, len(rows))]
    uris = [str(corpus.parent / r["uri"]) for r in rows]
    manifest.write_text("".join(json.dumps({"uri": u, "note": n}) + "\n" for u, n in zip(uris, notes)))
    assert len(list(read.iter_input(str(manifest)))) >= 3
    out = tmp_path / "scores"
    assert main([str(manifest), "-o", str(out), "-s", "technical"]) == 0
    table = read_table(out)
    assert table.schema.field("note").type == pa.string()
    assert dict(zip(table.column("uri").to_pylist(), table.column("note").to_pylist())) == dict(zip(uris, notes))


def test_folder_of_mixed_videos(ray_cluster: str, tmp_path: Path) -> None:
    src = tmp_path / "dump"
    (src / "gen_a").mkdir(parents=True)
    (src / "gen_b").mkdir()
    encode_video(src / "gen_a/landscape.mp4", gradient_frames(30, 72, 128))
    encode_video(src / "gen_a/portrait.mp4", gradient_frames(30, 128, 72))
    encode_video(src / "gen_a/tiny.mp4", gradient_frames(12, 16, 16))
    encode_video(src / "gen_b/vp9.webm", gradient_frames(30, 64, 96), codec="libvpx-vp9")
    encode_video(src / "gen_b/hevc.mkv", gradient_frames(30, 64, 96), codec="libx265")
    encode_video(src / "gen_b/mpeg4.avi", gradient_frames(30, 64, 96), codec="mpeg4")
    (src / "gen_b/empty.mp4").write_bytes(b"")
    (src / "metadata.jsonl").write_text(
        json.dumps({"file_name": "gen_a/portrait.mp4", "prompt": "tall"})
        + "\n"
        + json.dumps({"file_name": "gen_b/gone.mp4", "prompt": "missing file"})
        + "\n"
    )
    out = tmp_path / "scores"
    assert main([str(src), "-o", str(out), "--batch-size", "3"]) == 0
    rows = {r["uri"].rsplit("/", 1)[1]: r for r in read_table(out).to_pylist()}
    assert len(rows) == 8
    assert {k: r["status"] for k, r in rows.items() if r["status"] != "ok"} == {
        "empty.mp4": "decode_error",
        "gone.mp4": "fetch_error",
    }
    assert (rows["portrait.mp4"]["width"], rows["portrait.mp4"]["height"], rows["portrait.mp4"]["prompt"]) == (
        72,
        128,
        "tall",
    )
    assert {rows[k]["codec"] for k in ("vp9.webm", "hevc.mkv", "mpeg4.avi")} == {"vp9", "hevc", "mpeg4"}
    assert rows["tiny.mp4"]["decoder"].split()[0] == "pyav" and rows["tiny.mp4"]["technical_sharpness"] is not None
    assert {r["generator"] for r in rows.values()} == {"gen_a", "gen_b"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nosuch"], "unknown scorer 'nosuch'"),
        (["-s", "technical=some/ckpt"], "no checkpoint"),
        (["--limit", "0"], "limit must be a whole number >= 1"),
    ],
)
def test_bad_configuration_fails_before_work(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    out = tmp_path / "scores"
    assert main([str(corpus), "-o", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(out.rglob("*.parquet"))


def test_bad_input_and_output_fail_before_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "m.jsonl").write_text('{"path": "a.mp4"}\n')
    assert main([str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "o")]) == 2
    assert "no `uri` column" in capsys.readouterr().err
    assert main([str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main([str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_console_script_joins_running_cluster(corpus: Path, ray_cluster: str, tmp_path: Path) -> None:
    env = {**os.environ, "RAY_ADDRESS": ray_cluster}
    vidscore = str(Path(sys.executable).parent / "vidscore")
    done = subprocess.run(
        [vidscore, "score", str(corpus), "-o", str(tmp_path / "o"), "--limit", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "scored 4 videos" in done.stdout and len(read_table(tmp_path / "o")) == 4
