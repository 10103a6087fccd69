"""A corpus of bad inputs through the real CLI: each one a classified row, the good videos scored normally."""

import json
from pathlib import Path

import av
import numpy as np
import pyarrow.dataset as pads
import pytest
from PIL import Image

from vidscore.jobs.corpus import encode_video, render
from vidscore.jobs.score import main

pytestmark = pytest.mark.slow


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def test_bad_input_corpus(tmp_path: Path, ray_cluster: str) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    good = encode_video(d / "good.mp4", render("crisp-motion", 1, 12, 48, 64))
    encode_video(d / "good2.mp4", render("soft-drift", 2, 12, 48, 64))
    # A real VP9/WebM stream whose name says MP4: content decides, so it scores normally.
    encode_video(tmp_path / "real.webm", render("crisp-motion", 3, 12, 48, 64), codec="libvpx-vp9")
    (d / "wrong-extension.mp4").write_bytes((tmp_path / "real.webm").read_bytes())
    (d / "zero-byte.mp4").write_bytes(b"")
    (d / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (d / "random-bytes.mp4").write_bytes(np.random.default_rng(0).bytes(8192))
    Image.fromarray(render("frozen", 4, 1, 48, 64)[0]).save(tmp_path / "still.png")
    (d / "image.mp4").write_bytes((tmp_path / "still.png").read_bytes())
    audio_only(d / "audio-only.mp4")
    encode_video(d / "one-frame.mp4", render("crisp-motion", 5, 1, 48, 64))
    huge = np.zeros((2, 4352, 8704, 3), np.uint8)  # 37.9 Mpx frames, past the 8K-UHD default limit
    encode_video(d / "huge.mp4", huge, options={"preset": "ultrafast"})
    (d / "metadata.jsonl").write_text(json.dumps({"file_name": "missing.mp4", "prompt": "never uploaded"}) + "\n")

    out = tmp_path / "scores"
    # 8 of 11 videos fail to decode: past the default decode budget (half), so the run is red (exit 3), and
    # still writes every row and its summary.
    assert main([str(d), "-o", str(out)]) == 3
    summary = json.loads(next((out / "_vidscore").glob("run-*.json")).read_text())
    assert summary["failure_budget"]["decode"] == {"failed": 8, "of": 11, "fraction": 0.7273, "budget": 0.5,
                                                   "breached": True}  # fmt: skip
    assert summary["exit_code"] == 3 and not summary["failure_budget"]["technical"]["breached"]
    rows = {r["uri"].rsplit("/", 1)[1]: r for r in pads.dataset(str(out), format="parquet").to_table().to_pylist()}
    expected = {
        "good.mp4": ("ok", None),
        "good2.mp4": ("ok", None),
        "wrong-extension.mp4": ("ok", None),
        "zero-byte.mp4": ("decode_error", "not a readable video"),
        "truncated.mp4": ("decode_error", "not a readable video"),
        "random-bytes.mp4": ("decode_error", "not a readable video"),
        "image.mp4": ("decode_error", "still image"),
        "audio-only.mp4": ("decode_error", "no video stream"),
        "one-frame.mp4": ("decode_error", "1 frame(s)"),
        "huge.mp4": ("decode_error", "exceeds max_pixels"),
        "missing.mp4": ("fetch_error", "FileNotFoundError"),
    }
    assert {k: r["status"] for k, r in rows.items()} == {k: v[0] for k, v in expected.items()}
    for name, (_, message) in expected.items():
        if message:
            assert message in rows[name]["error"], (name, rows[name]["error"])
        else:
            assert rows[name]["technical_sharpness"] > 0 and rows[name]["error"] is None
    assert rows["wrong-extension.mp4"]["codec"] == "vp9"
    assert rows["huge.mp4"]["width"] is None  # refused before decoding: nothing probed is kept
