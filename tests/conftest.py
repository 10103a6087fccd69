"""Shared fixtures: real encoded videos and one local Ray cluster for the end-to-end tests."""

import os
import secrets
import tempfile
from pathlib import Path

# A hub cache, in the hub's own layout, holding the files the scorers' plans check for the published checkpoints:
# plans resolve hub ids before any work (offline clusters pre-populate this cache the same way), and this
# machine cannot reach the hub. Set before anything imports huggingface_hub, which reads it once.
HUB_CACHE = Path(tempfile.mkdtemp(prefix="vidscore-hub-cache-"))
os.environ["HF_HUB_CACHE"] = str(HUB_CACHE)
for _repo, _file in [
    *((f"TIGER-Lab/{n}", "config.json") for n in ("VideoScore", "VideoScore-anno-only", "VideoScore-v1.1",
                                                    "MantisScore", "MantisScore-anno-only")),
    ("MJ-Bench/MJ-VIDEO-2B", "model.safetensors"),
    ("OpenGVLab/InternVL2-2B", "config.json"),
    ("KwaiVGI/VideoReward", "model_config.json"),
    ("Qwen/Qwen2-VL-2B-Instruct", "config.json"),
]:  # fmt: skip
    _root = HUB_CACHE / f"models--{_repo.replace('/', '--')}"
    (_root / "snapshots" / ("0" * 40)).mkdir(parents=True, exist_ok=True)
    (_root / "snapshots" / ("0" * 40) / _file).write_text("{}")
    (_root / "refs").mkdir(exist_ok=True)
    (_root / "refs" / "main").write_text("0" * 40)

import numpy as np  # noqa: E402 - after the hub cache is set
import pytest  # noqa: E402

from vidscore.jobs.corpus import encode_video, make_corpus, render  # noqa: E402

# Token authentication on, as for every cluster vidscore starts or ships: the session's own token, so the tests
# never read or write the developer's ~/.ray/auth_token. Every Ray the tests start, and every job they run, uses it.
TOKEN = Path(tempfile.mkdtemp(prefix="vidscore-ray-token-")) / "auth_token"
TOKEN.write_text(secrets.token_hex(32))
os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_AUTH_TOKEN_PATH"] = str(TOKEN)
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

    # address="local": a new Ray of the session's own, never one that happens to run on the machine
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
