"""Decode operator on real encoded videos: exact frames vs the reference recipe, metadata, bad inputs."""

import os
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import gradient_frames
from vidscore.jobs.corpus import encode_video
from vidscore.operators.decode import Decoder
from vidscore.operators.frames import FrameSpec, resize_frame, sample_indices

RAW = FrameSpec.uniform(16, "arange")
VIDEOSCORE = FrameSpec.uniform(16, "arange", "idefics2", (378, 980))
MJVIDEO = FrameSpec.uniform(8, "linspace_open", "squash", (448, 448))


def reference_frames(path: Path, spec: FrameSpec) -> np.ndarray:
    """The reference recipe: PyAV decodes every frame to RGB, then the sampled ones are picked."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack([resize_frame(spec, frames[i]) for i in sample_indices(spec, len(frames))])


def decode_one(path: Path, specs: list[FrameSpec], backend: str = "auto", timeout_s: float | None = 60) -> dict:
    batch = Decoder(specs, backend=backend, timeout_s=timeout_s)({"uri": np.array([str(path)], dtype=object)})
    return {k: v[0] for k, v in batch.items()}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "h264_mp4": encode_video(d / "a.mp4", gradient_frames(45, 120, 160), fps=15),
        "portrait_mp4": encode_video(d / "p.mp4", gradient_frames(20, 160, 96)),
        # B-pyramid: some B-frames are references, others are skipped when not sampled.
        "bframes_mp4": encode_video(
            d / "bf.mp4", gradient_frames(90, 64, 96), options={"x264-params": "bframes=4:b-pyramid=normal:keyint=30"}
        ),
        "vp9_webm": encode_video(d / "b.webm", gradient_frames(24, 64, 96), codec="libvpx-vp9"),
        "mpeg4_avi": encode_video(d / "c.avi", gradient_frames(24, 64, 96), codec="mpeg4"),
        "hevc_mkv": encode_video(d / "d.mkv", gradient_frames(24, 64, 96), codec="libx265"),
        "tiny_mp4": encode_video(d / "t.mp4", gradient_frames(20, 16, 16)),
        "one_frame": encode_video(d / "o.mp4", gradient_frames(1, 64, 64)),
        "three_frames": encode_video(d / "3.mp4", gradient_frames(3, 64, 64)),
    }


@pytest.mark.parametrize(
    "name", ["h264_mp4", "portrait_mp4", "bframes_mp4", "vp9_webm", "mpeg4_avi", "hevc_mkv", "tiny_mp4"]
)
def test_frames_equal_reference_recipe(videos: dict[str, Path], name: str) -> None:
    row = decode_one(videos[name], [RAW, VIDEOSCORE, MJVIDEO])
    assert row["status"] == "ok", row["error"]
    for spec in (RAW, VIDEOSCORE, MJVIDEO):
        np.testing.assert_array_equal(row[spec.column], reference_frames(videos[name], spec))


def test_metadata(videos: dict[str, Path]) -> None:
    row = decode_one(videos["h264_mp4"], [RAW])
    assert (row["num_frames"], row["width"], row["height"], row["codec"]) == (45, 160, 120, "h264")
    assert row["fps"] == pytest.approx(15.0) and row["duration_s"] == pytest.approx(3.0, abs=0.1)
    assert row["size_bytes"] == videos["h264_mp4"].stat().st_size and row["decoder"].split()[0] == "pyav"
    assert decode_one(videos["vp9_webm"], [RAW])["codec"] == "vp9"


def test_tiny_frames_decode(videos: dict[str, Path]) -> None:
    # decord 0.6.0 cannot convert 16x16 frames; PyAV can, and a forced decord run reports the failure.
    row = decode_one(videos["tiny_mp4"], [VIDEOSCORE])
    assert row["status"] == "ok" and row["decoder"].split()[0] == "pyav"
    assert row[VIDEOSCORE.column].shape == (16, 378, 378, 3)
    assert decode_one(videos["tiny_mp4"], [VIDEOSCORE], backend="decord")["status"] == "decode_error"


def test_falls_back_to_decord_when_pyav_cannot(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import vidscore.operators.video_file as decode

    def broken(*args: object) -> None:
        raise decode.DecodeError("simulated PyAV failure")

    monkeypatch.setattr(decode, "_pyav_frames", broken)
    row = decode_one(videos["h264_mp4"], [RAW], timeout_s=None)  # in-process, where the patch applies
    assert row["status"] == "ok" and row["decoder"].split()[0] == "decord"
    np.testing.assert_array_equal(row[RAW.column], reference_frames(videos["h264_mp4"], RAW))


def test_backends_agree(videos: dict[str, Path]) -> None:
    a = decode_one(videos["h264_mp4"], [RAW, MJVIDEO], backend="decord")
    b = decode_one(videos["h264_mp4"], [RAW, MJVIDEO], backend="pyav")
    assert (a["decoder"].split()[0], b["decoder"].split()[0]) == ("decord", "pyav")
    for spec in (RAW, MJVIDEO):
        np.testing.assert_array_equal(a[spec.column], b[spec.column])


def test_short_video_keeps_all_frames_without_duplication(videos: dict[str, Path]) -> None:
    row = decode_one(videos["three_frames"], [VIDEOSCORE, MJVIDEO])
    assert row[VIDEOSCORE.column].shape[0] == 3  # VideoScore: every frame, no duplication
    assert row[MJVIDEO.column].shape[0] == 8  # MJ-VIDEO: its rule repeats frames
    single = decode_one(videos["one_frame"], [VIDEOSCORE])
    assert single["status"] == "decode_error" and "1 frame(s)" in single["error"]


def test_bad_inputs_become_rows(tmp_path: Path, videos: dict[str, Path]) -> None:
    good = videos["h264_mp4"].read_bytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    Image.fromarray(gradient_frames(1, 32, 32)[0]).save(tmp_path / "image.png")
    (tmp_path / "image.mp4").write_bytes((tmp_path / "image.png").read_bytes())
    with av.open(str(tmp_path / "audio.m4a"), "w") as c:
        stream = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            c.mux(packet)
    names = ["empty.mp4", "truncated.mp4", "random.mp4", "image.mp4", "audio.m4a", "missing.mp4"]
    uris = [str(tmp_path / n) for n in names] + [str(videos["h264_mp4"])]
    batch = Decoder([VIDEOSCORE])({"uri": np.array(uris, dtype=object)})
    statuses = dict(zip(names + ["good"], batch["status"]))
    assert statuses == {**{n: "decode_error" for n in names[:5]}, "missing.mp4": "fetch_error", "good": "ok"}
    assert "still image (png)" in batch["error"][3] and "no video stream" in batch["error"][4]
    assert all(batch[VIDEOSCORE.column][i].shape[0] == 0 for i in range(6))
    assert batch[VIDEOSCORE.column][6].shape == (16, 378, 378, 3)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="decode backend"):
        Decoder([RAW], backend="opencv")


def test_hanging_decode_is_killed_and_costs_one_row(tmp_path: Path, videos: dict[str, Path]) -> None:
    # A FIFO with no writer: opening it blocks forever, like a decoder stuck on hostile input.
    os.mkfifo(tmp_path / "hang.mp4")
    uris = [str(tmp_path / "hang.mp4"), str(videos["h264_mp4"])]
    decoder = Decoder([RAW], timeout_s=3)
    start = time.monotonic()
    batch = decoder({"uri": np.array(uris, dtype=object)})
    assert list(batch["status"]) == ["decode_timeout", "ok"] and "killed" in batch["error"][0]
    assert time.monotonic() - start < 30
    np.testing.assert_array_equal(batch[RAW.column][1], reference_frames(videos["h264_mp4"], RAW))


def test_huge_frames_are_refused_before_decoding(videos: dict[str, Path]) -> None:
    batch = Decoder([RAW], max_pixels=100 * 100)({"uri": np.array([str(videos["h264_mp4"])], dtype=object)})
    assert batch["status"][0] == "decode_error" and "exceeds max_pixels" in batch["error"][0]


@pytest.mark.parametrize("timeout_s", [60, None])
def test_one_decoder_many_sizes_exact_frames(videos: dict[str, Path], timeout_s: float | None) -> None:
    # One decoder, videos of different sizes in a row: the sandbox's shared block is reused and grown, and
    # each row keeps its own frames (a later video does not overwrite an earlier row's).
    names = ["tiny_mp4", "h264_mp4", "portrait_mp4", "bframes_mp4", "h264_mp4", "hevc_mkv", "tiny_mp4"]
    decoder = Decoder([RAW, MJVIDEO], timeout_s=timeout_s)
    batch = decoder({"uri": np.array([str(videos[n]) for n in names], dtype=object)})
    assert list(batch["status"]) == ["ok"] * len(names)
    for i, name in enumerate(names):
        for spec in (RAW, MJVIDEO):
            np.testing.assert_array_equal(batch[spec.column][i], reference_frames(videos[name], spec))
            assert batch[spec.column][i].flags.writeable


def test_too_short_is_refused_without_a_fallback(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import vidscore.operators.video_file as decode

    def no_decord(*args: object) -> None:
        raise AssertionError("a refused video must not be retried with decord")

    monkeypatch.setattr(decode, "_decord_frames", no_decord)
    row = decode_one(videos["one_frame"], [RAW], timeout_s=None)  # in-process, where the patch applies
    assert row["status"] == "decode_error"
    assert row["error"] == "video has 1 frame(s); scoring needs at least 2"


@pytest.mark.parametrize(
    "spec", [FrameSpec.uniform(n, rule) for n in (1, 2, 5, 31, 90) for rule in ("arange", "linspace")]
)
def test_sparse_decode_exact_for_any_sampling(videos: dict[str, Path], spec: FrameSpec) -> None:
    # B-pyramid: wanted frames anywhere, including the last (the decoder is flushed after its packet).
    row = decode_one(videos["bframes_mp4"], [spec], backend="pyav", timeout_s=None)
    assert row["status"] == "ok", row["error"]
    np.testing.assert_array_equal(row[spec.column], reference_frames(videos["bframes_mp4"], spec))


def test_each_row_gets_only_the_specs_of_the_scorers_that_run_on_it(videos: dict[str, Path], tmp_path: Path) -> None:
    path = str(videos["h264_mp4"])
    batch = {
        "video_id": np.array(["a", "b", "c"], dtype=object),
        "uri": np.array([path, path, str(tmp_path / "missing.mp4")], dtype=object),
        "todo__videoscore": np.array([True, False, False]),
        "todo__mjvideo": np.array([True, True, False]),
    }
    readers = {VIDEOSCORE.column: ["videoscore"], MJVIDEO.column: ["mjvideo"]}
    out = Decoder([VIDEOSCORE, MJVIDEO], timeout_s=None, readers=readers)(batch)
    assert [len(f) for f in out[VIDEOSCORE.column]] == [16, 0, 0]
    assert [len(f) for f in out[MJVIDEO.column]] == [8, 8, 0]
    assert np.array_equal(out[MJVIDEO.column][1], reference_frames(videos["h264_mp4"], MJVIDEO))
    # Nothing runs on c (a metadata-only row): it is not even fetched, so its missing file is no fetch_error.
    assert list(out["status"]) == ["ok", "ok", None] and out["content_key"][2] is None


def test_the_decoder_column_names_the_backend_and_its_version(videos) -> None:
    """What decoded a video is provenance a canary compares: the backend with its version (and FFmpeg's)."""
    import av
    import decord

    pyav = decode_one(videos["h264_mp4"], [RAW], backend="pyav")["decoder"]
    assert pyav.startswith(f"pyav {av.__version__}") and "FFmpeg" in pyav
    assert decode_one(videos["h264_mp4"], [RAW], backend="decord")["decoder"] == f"decord {decord.__version__}"
