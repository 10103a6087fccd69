"""Scorers, one per file. This dict is the one place that maps a scorer name to its class."""

from operators.scorers.technical import TechnicalScorer

SCORERS: dict[str, type] = {
    "technical": TechnicalScorer,
}
