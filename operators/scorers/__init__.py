"""Scorers, one per file. This dict is the one place that maps a scorer name to its class."""

from operators.scorers.mjvideo import MJVideoScorer
from operators.scorers.technical import TechnicalScorer
from operators.scorers.videoscore import VideoScoreScorer

SCORERS: dict[str, type] = {
    "technical": TechnicalScorer,
    "videoscore": VideoScoreScorer,
    "mjvideo": MJVideoScorer,
}
