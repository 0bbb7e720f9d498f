"""Timelines of runs: `--trace FILE` writes a Perfetto trace (tracer.py, perfetto.py)."""
