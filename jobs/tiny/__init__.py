"""Tiny random-weight checkpoints in the exact hub layout of each reward model (tests, demo, benchmarks)."""
