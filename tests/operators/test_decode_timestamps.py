"""Decoding never trusts container timestamps blindly; rotated clips are scored upright."""

from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import gradient_frames
from vidscore.operators.decode import Decoder
from vidscore.operators.frames import FrameSpec, resize_frame, sample_indices

SPECS = [
    FrameSpec.uniform(16, "arange"),
    FrameSpec.uniform(8, "linspace_open", "squash", (32, 32)),
    FrameSpec.uniform(16, "linspace"),
]


def write(path: Path, frames: np.ndarray, codec: str, pts: str = "normal", rotation: int = 0) -> Path:
    """Encode `frames`; pts="zero" stamps every packet 0 (as some recorders write MJPEG), "dup" pairs them."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        packets = [p for f in frames for p in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24"))]
        packets += list(stream.encode())
        for i, packet in enumerate(packets):
            if pts != "normal":
                packet.pts = packet.dts = 0 if pts == "zero" else i // 2
            out.mux(packet)
    return path


def every_frame(path: Path) -> list[np.ndarray]:
    """A full sequential decode: what the reference recipe sees."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def decode(path: Path, backend: str = "auto") -> dict:
    batch = Decoder(SPECS, backend=backend, timeout_s=30)({"uri": np.array([str(path)], dtype=object)})
    return {k: v[0] for k, v in batch.items()}


@pytest.mark.parametrize(("container", "pts"), [("mkv", "zero"), ("nut", "zero"), ("mkv", "dup")])
@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_duplicate_timestamps_give_the_reference_frames(tmp_path: Path, container: str, pts: str, backend: str) -> None:
    frames = gradient_frames(30, 48, 64)
    path = write(tmp_path / f"clip.{container}", frames, "mjpeg", pts)
    reference = every_frame(path)
    assert len(reference) == 30
    row = decode(path, backend)
    assert row["status"] == "ok", row["error"]
    assert row["decoder"].split()[0] == "pyav-sequential" and row["num_frames"] == 30
    for spec in SPECS:
        want = np.stack([resize_frame(spec, reference[i]) for i in sample_indices(spec, 30)])
        assert np.array_equal(row[spec.column], want), spec.key
    # Not 16 copies of the first frame: the sampled frames differ.
    first = row[SPECS[0].column]
    assert not all(np.array_equal(first[0], f) for f in first[1:])


def test_distinct_timestamps_keep_the_sparse_path(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.mkv", gradient_frames(30, 48, 64), "mjpeg")
    row = decode(path)
    assert row["decoder"].split()[0] == "pyav"
    reference = every_frame(path)
    assert np.array_equal(row[SPECS[0].column], np.stack([reference[i] for i in sample_indices(SPECS[0], 30)]))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_clips_are_scored_upright(tmp_path: Path, rotation: int) -> None:
    frames = np.zeros((12, 48, 64, 3), np.uint8)
    frames[:, :8, :8] = 255  # a marker in the stored frame's top-left corner
    path = write(tmp_path / "phone.mp4", frames, "libx264", rotation=rotation)
    row = decode(path)
    assert row["status"] == "ok" and row["rotation"] == rotation
    raw = SPECS[0].column
    stored = every_frame(path)
    want = np.stack([np.rot90(stored[i], rotation // 90) for i in sample_indices(SPECS[0], 12)])
    assert np.array_equal(row[raw], want)  # counter-clockwise, as the display matrix says
    assert row[raw].shape[1:3] == ((64, 48) if rotation % 180 else (48, 64))
    forced = decode(path, backend="decord")
    assert forced["status"] == "decode_error" and "rotated by" in forced["error"]
