"""Watches which videos a model scorer's forward receives together, for the canary-isolation tests."""

from typing import Any

import numpy as np

from vidscore.schemas.scores import CANARY_PREFIX


def groups(scorer: Any, batch: dict[str, np.ndarray], frames_of: Any) -> list[list[np.ndarray]]:
    """Run `scorer(batch)`, recording the frame arrays of each forward call (`frames_of(args)` picks them)."""
    seen: list[list[np.ndarray]] = []
    forward = scorer.score

    def watched(*args: Any) -> Any:
        seen.append(list(frames_of(args)))
        return forward(*args)

    scorer.score = watched
    try:
        scorer(batch)
    finally:
        del scorer.score
    return seen


def check_canary_scored_alone(scorer: Any, batch: dict[str, np.ndarray], column: str, frames_of: Any) -> None:
    """Row 1 becomes a canary row: it must be scored in a forward of its own, the other rows together."""
    plain = groups(scorer, batch, frames_of)
    assert max(len(g) for g in plain) > 1  # without a canary, rows share forwards (else this checks nothing)
    ids = batch["video_id"].copy()
    ids[1] = CANARY_PREFIX + "fox"
    seen = groups(scorer, {**batch, "video_id": ids}, frames_of)
    canary = batch[column][1]
    (own,) = [g for g in seen if any(v is canary for v in g)]
    assert len(own) == 1
    assert sum(len(g) for g in seen) == len(ids)
