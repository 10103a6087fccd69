"""Failure reports say what happened: no transport prefixes, PyAV's reason kept, timeouts measure decoding."""

from pathlib import Path

import numpy as np

from vidscore.jobs.corpus import encode_video, render
from vidscore.operators.decode import Decoder
from vidscore.operators.frames import FrameSpec
from vidscore.operators.scorers.rows import record_failure

SPEC = FrameSpec.uniform(8, "linspace")


def decode(path: Path, **kwargs) -> tuple[str, str]:
    out = Decoder([SPEC], **kwargs)({"uri": np.array([str(path)], dtype=object)})
    return out["status"][0], out["error"][0]


def test_no_transport_prefixes_in_sandboxed_errors(tmp_path: Path) -> None:
    (tmp_path / "zero.mp4").write_bytes(b"")
    status, error = decode(tmp_path / "zero.mp4", timeout_s=30)
    assert status == "decode_error" and error.startswith("not a readable video"), error
    assert "RuntimeError" not in error and "DecodeError" not in error and "ChildError" not in error


def test_pyav_reason_is_kept_when_decord_also_fails(tmp_path: Path, monkeypatch) -> None:
    """In `auto`, a video PyAV opens but cannot decode goes to decord; when decord fails too, the row says
    PyAV's reason, not decord's opaque one."""
    from vidscore.operators import video_file as module

    def pyav_fails(*args, **kwargs):
        raise module.DecodeError("3 of 8 sampled frames could not be decoded")

    def decord_fails(*args, **kwargs):
        raise RuntimeError("DECORDError: av_read_frame failed with 1094995529")

    monkeypatch.setattr(module, "_pyav_frames", pyav_fails)
    monkeypatch.setattr(module, "_decord_frames", decord_fails)
    clip = encode_video(tmp_path / "c.mp4", render("crisp-motion", 1, 8, 48, 64))
    status, error = decode(clip, timeout_s=None)  # in-process, so the patched readers are the ones used
    assert (status, error) == (
        "decode_error",
        "3 of 8 sampled frames could not be decoded; decord could not read it either",
    )
    status, error = decode(clip, timeout_s=None, backend="decord")  # forced: decord's own message it is
    assert "av_read_frame" in error


def test_the_timeout_measures_decoding_not_start_up(tmp_path: Path) -> None:
    clip = encode_video(tmp_path / "c.mp4", render("crisp-motion", 1, 8, 48, 64))
    # A fresh decoder process takes longer than this to start (it imports PyAV, NumPy, Pillow); decoding a tiny
    # clip takes milliseconds.
    assert decode(clip, timeout_s=0.25) == ("ok", None)


def test_a_missing_earlier_error_is_not_nan() -> None:
    batch = {"video_id": np.array(["a"], dtype=object), "status": np.array(["ok"], dtype=object),
             "error": np.array([np.nan])}  # fmt: skip
    record_failure(batch, 0, "mjvideo", "out of memory")
    assert batch["error"][0] == "mjvideo: out of memory" and batch["mjvideo_error"][0] == "out of memory"
