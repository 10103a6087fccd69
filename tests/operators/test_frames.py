"""Frame specs: index rules and resize rules against the reference recipes."""

import numpy as np
import pytest
from PIL import Image

from vidscore.operators.frames import FrameSpec, resize_frame, sample_indices, target_size


def videoscore_example_indices(total: int, n: int) -> list[int]:
    # TIGER-Lab VideoScore example: arange with a float step when longer than N, else every frame.
    if total > n:
        return list(np.arange(0, total, total / n).astype(int))
    return list(range(total))


def mjvideo_indices(total: int, n: int) -> list[int]:
    # MJ-VIDEO data processor: frame 0 always, the last frame never.
    return list(np.linspace(0, total - 1, n, endpoint=False, dtype=int))


@pytest.mark.parametrize("total", [1, 5, 15, 16, 17, 30, 47, 48, 49, 121, 1000, 4801])
@pytest.mark.parametrize("n", [8, 16, 48])
def test_index_rules_match_references(total: int, n: int) -> None:
    assert list(sample_indices(FrameSpec.uniform(n, "arange"), total)) == videoscore_example_indices(total, n)
    assert list(sample_indices(FrameSpec.uniform(n, "linspace_open"), total)) == mjvideo_indices(total, n)
    linspace = sample_indices(FrameSpec.uniform(n, "linspace"), total)
    assert len(linspace) == n and linspace[0] == 0 and linspace[-1] == total - 1


def test_arange_never_duplicates_and_has_exactly_n() -> None:
    for total in range(17, 3000):
        idx = sample_indices(FrameSpec.uniform(16, "arange"), total)
        assert len(idx) == 16 and len(set(idx.tolist())) == 16 and idx.max() < total


def test_empty_video_has_no_indices() -> None:
    assert len(sample_indices(FrameSpec.uniform(16, "arange"), 0)) == 0


@pytest.mark.parametrize(
    ("hw", "expected"),
    [
        ((320, 512), (378, 512)),  # models.md: 512x320 -> h378 x w512
        ((720, 1280), (551, 980)),  # models.md: 1280x720 -> h551 x w980
        ((1280, 720), (980, 551)),  # portrait
        ((16, 16), (378, 378)),  # tiny frames are raised to the shortest edge
        ((1080, 1920), (551, 980)),
        ((400, 400), (400, 400)),
        ((2000, 500), (980, 378)),  # very tall: width 245 is raised to 378 independently
    ],
)
def test_idefics2_sizes(hw: tuple[int, int], expected: tuple[int, int]) -> None:
    assert target_size(FrameSpec.uniform(16, "arange", "idefics2", (378, 980)), *hw) == expected


def test_idefics2_sizes_match_transformers() -> None:
    from transformers.image_processing_utils import SizeDict
    from transformers.models.idefics2.image_processing_pil_idefics2 import get_resize_output_image_size

    spec = FrameSpec.uniform(16, "arange", "idefics2", (378, 980))
    rng = np.random.default_rng(0)
    for h, w in rng.integers(8, 2500, size=(200, 2)):
        ref = get_resize_output_image_size(np.zeros((3, h, w)), SizeDict(shortest_edge=378, longest_edge=980))
        assert target_size(spec, int(h), int(w)) == tuple(ref)


def test_resize_uses_reference_pil_filters() -> None:
    frame = np.random.default_rng(1).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    idefics2 = resize_frame(FrameSpec.uniform(16, "arange", "idefics2", (378, 980)), frame)
    expected = np.asarray(Image.fromarray(frame).resize((378, 378), Image.Resampling.BILINEAR))
    assert idefics2.dtype == np.uint8 and np.array_equal(idefics2, expected)
    squash = resize_frame(FrameSpec.uniform(8, "linspace_open", "squash", (448, 448)), frame)
    assert np.array_equal(squash, np.asarray(Image.fromarray(frame).resize((448, 448), Image.Resampling.BICUBIC)))


def test_fit_never_upscales() -> None:
    spec = FrameSpec.uniform(16, "linspace", "fit", (512,))
    assert target_size(spec, 100, 80) == (100, 80)
    assert target_size(spec, 720, 1280) == (288, 512)


def test_spec_validation_names_the_fix() -> None:
    with pytest.raises(ValueError, match="index_rule"):
        FrameSpec.uniform(8, "random")
    with pytest.raises(ValueError, match="takes 2 size values"):
        FrameSpec.uniform(8, "arange", "squash", (448,))
    with pytest.raises(ValueError, match="num_frames"):
        FrameSpec.uniform(0, "arange")


def test_spec_column_names_are_distinct() -> None:
    a = FrameSpec.uniform(16, "arange", "idefics2", (378, 980))
    b = FrameSpec.uniform(48, "arange", "idefics2", (378, 980))
    assert a.column != b.column and a.column.startswith("frames__")


def test_spec_keys_are_unchanged_so_tables_stay_comparable() -> None:
    # `<scorer>_frames` in existing tables holds these keys; a rerun compares them to decide what is stale.
    assert FrameSpec.uniform(16, "arange", "idefics2", (378, 980)).key == "16_arange_idefics2_378x980"
    assert FrameSpec.uniform(8, "linspace_open", "squash", (448, 448)).key == "8_linspace_open_squash_448x448"
    assert FrameSpec.uniform(16, "linspace", "fit", (512,)).key == "16_linspace_fit_512"
    assert FrameSpec.uniform(16, "arange").column == "frames__16_arange_none"
