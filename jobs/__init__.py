"""Job entry points: `python -m jobs.<name>` is what `ray job submit` runs; `vidscore <name>` dispatches here."""
