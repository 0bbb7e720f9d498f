"""Sweeps: many runs over policies, tunables, workloads and seeds, on a process pool, Ray or
Dask; results as a Parquet dataset that a killed sweep resumes from."""
