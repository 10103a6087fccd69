"""Fixtures for the multi-node tests."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight VideoScore checkpoint in the released layout: a model scorer that declares GPU memory."""
    from vidscore.jobs.tiny import videoscore

    return videoscore.build(tmp_path_factory.mktemp("tiny") / "videoscore")
