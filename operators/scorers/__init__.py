"""Scorers, one per file. This dict is the one place that maps a scorer name to its class."""

from vidscore.operators.scorers.mjvideo import MJVideoScorer
from vidscore.operators.scorers.technical import TechnicalScorer
from vidscore.operators.scorers.videoreward import VideoRewardScorer
from vidscore.operators.scorers.videoscore import VideoScoreScorer

SCORERS: dict[str, type] = {
    "technical": TechnicalScorer,
    "videoscore": VideoScoreScorer,
    "mjvideo": MJVideoScorer,
    "videoreward": VideoRewardScorer,
}
