"""Job entry points: `python -m vidscore.jobs.<name>` is what `ray job submit` runs; `vidscore <name>` too."""
