"""Qwen2-VL's frame recipe (VideoReward): frame counts, indices and sizes against worked examples of the reference
`vision_process`, the resize filter against PIL's antialiased bicubic, and the recipe through the real decoder."""

import numpy as np
import pytest
from PIL import Image

from tests.conftest import gradient_frames
from vidscore.jobs.corpus import encode_video
from vidscore.operators.frames import FrameSpec, VideoInfo
from vidscore.operators.scorers.qwen2vl_frames import FpsFrames, SmartResize, smart_resize
from vidscore.operators.video_file import decode_file


@pytest.mark.parametrize(
    ("frames", "fps", "count"),
    [
        (126, 24, 10),  # 5.25 s -> 10.5 -> 10
        (60, 24, 4),  # 2.5 s -> 5.0 -> round(2.5) * 2: half to even gives 4, not 6
        (72, 24, 6),
        (49, 16, 6),
        (81, 16, 10),
        (121, 24, 10),
        (5, 24, 4),  # the 4-frame floor
        (3, 24, 2),  # capped by the even part of the frame count
        (2000, 8, 500),
        (1601, 1, 768),  # the 768-frame ceiling
    ],
)
def test_frame_counts_follow_duration_times_fps(frames: int, fps: float, count: int) -> None:
    assert FpsFrames().count(VideoInfo(frames, fps)) == count


def test_indices_are_torch_linspace_rounded_half_to_even() -> None:
    assert FpsFrames().indices(VideoInfo(126, 24)).tolist() == [0, 14, 28, 42, 56, 69, 83, 97, 111, 125]
    assert FpsFrames().indices(VideoInfo(6, 2.4)).tolist() == [0, 2, 3, 5]  # 2.5 -> 2, 5/3*2=3.33 -> 3


def test_unknown_fps_or_a_single_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="frame rate is unknown"):
        FpsFrames().count(VideoInfo(100, None))
    with pytest.raises(ValueError, match="needs 2 to 1 frames"):
        FpsFrames().count(VideoInfo(1, 24))


@pytest.mark.parametrize(
    ("size", "out"),
    [
        ((240, 320), (280, 392)),
        ((480, 832), (336, 588)),
        ((720, 1280), (336, 588)),
        ((1080, 1920), (336, 588)),
        ((512, 512), (448, 448)),
        ((256, 256), (336, 336)),  # below the pixel floor: upscaled
        ((752, 1360), (308, 588)),
    ],
)
def test_smart_resize_sizes(size: tuple[int, int], out: tuple[int, int]) -> None:
    assert smart_resize(*size, min_pixels=100352, max_pixels=200704) == out
    assert SmartResize().size(*size) == out


def test_resize_is_antialiased_bicubic() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    frame[:, :640] = gradient_frames(1, 720, 640)[0]  # smooth and noisy halves
    out = SmartResize().apply(frame)
    assert out.shape == (336, 588, 3) and out.dtype == np.uint8
    pil = np.asarray(Image.fromarray(frame).resize((588, 336), Image.Resampling.BICUBIC)).astype(int)
    # torch's antialiased bicubic is PIL's kernel; PIL rounds to uint8 between its two passes, torch does not.
    diff = np.abs(out.astype(int) - pil)
    assert diff.mean() < 0.2 and np.percentile(diff, 99.9) <= 2, (diff.mean(), diff.max())
    import torch
    import torch.nn.functional as F  # noqa: N812

    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    plain = F.interpolate(x, size=(336, 588), mode="bicubic", align_corners=False).clamp(0, 255).round()
    plain = plain[0].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(plain - pil).mean() > 5 * diff.mean() + 1  # without antialias, the noise aliases


def test_the_recipe_runs_in_the_decoder_beside_another_spec(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    encode_video(path, gradient_frames(48, 64, 96), fps=12, options={"crf": "0"})  # 4 s
    spec, every = FrameSpec(FpsFrames(), SmartResize()), FrameSpec.uniform(48, "arange")
    _, out = decode_file(str(path), [spec, every], "pyav", 1, 7680 * 4320, 2)
    frames = out[spec.column]
    assert frames.shape == (8, 280, 392, 3)  # 4 s x 2 fps; 64x96 is under the pixel floor: upscaled
    indices = FpsFrames().indices(VideoInfo(48, 12.0))
    expected = np.stack([SmartResize().apply(f) for f in out[every.column][indices]])
    assert np.array_equal(frames, expected)
