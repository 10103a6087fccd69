"""Shipped job configs load and resolve: every key valid, every scorer known, options accepted."""

from pathlib import Path

import pytest

from vidscore.operators.scorers import SCORERS
from vidscore.pipeline.config import load_yaml, merge

CONFIGS = sorted((Path(__file__).parents[2] / "jobs" / "configs").glob("score*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_score_config_loads(path: Path) -> None:
    cfg = merge(load_yaml(str(path)), {})
    assert cfg.scorers and all(s.name in SCORERS for s in cfg.scorers)
    plans = {s.name: SCORERS[s.name].plan(s.checkpoint, **s.options) for s in cfg.scorers}
    for name, plan in plans.items():
        assert plan.name == name and plan.frame_spec.column.startswith("frames__")
    assert all(p.batch_size >= 1 for p in plans.values())
