"""Shared fixtures: real encoded videos and one local Ray cluster for the end-to-end tests."""

import os
from pathlib import Path

import numpy as np
import pytest

from jobs.corpus import encode_video, make_corpus, render

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus: 3 generators x 3 clips + one truncated file; returns the manifest path."""
    return make_corpus(tmp_path_factory.mktemp("corpus"), per_generator=3, num_frames=20)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plain H.264 MP4: 30 frames of 96x64."""
    return encode_video(tmp_path_factory.mktemp("clip") / "clip.mp4", render("crisp-motion", 7, 30, 64, 96))


def gradient_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """Frames whose content encodes their index, so a wrong frame pick is visible."""
    y, x = np.mgrid[0:height, 0:width]
    frames = [
        np.stack([(x * 3 + 8 * t) % 256, (y * 5) % 256, np.full_like(x, (40 * t) % 256)], -1) for t in range(num_frames)
    ]
    return np.asarray(frames, dtype=np.uint8)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the session, with more logical CPUs than cores so actor pools never starve reads."""
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
