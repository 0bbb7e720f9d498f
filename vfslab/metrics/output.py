"""Writing a run's measurements: the time series and the latency samples as Parquet,
summary.json, and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vfslab.metrics.plots import plot_runs


def series_table(k: Any) -> pa.Table:
    return pa.table({name: pa.array(np.asarray(vals)) for name, vals in k.metrics.series.items()})


def latency_table(k: Any) -> pa.Table:
    ops: list[str] = []
    ns: list[int] = []
    for op, vals in sorted(k.metrics.lat.items()):
        ops.extend([op] * len(vals))
        ns.extend(vals)
    return pa.table({"op": pa.array(ops, pa.string()), "latency_ns": pa.array(ns, pa.int64())})


def slow_table(k: Any) -> pa.Table:
    """The slowest calls of each kind, in full (Metrics.syscall_record), slowest first; times
    in seconds from the start of the measured run."""
    met = k.metrics
    t0 = met.t0
    recs = met.slow_calls()
    return pa.table({
        "t_s": pa.array([(r.start - t0) / 1e9 for r in recs], pa.float64()),
        "pid": pa.array([r.pid for r in recs], pa.int64()),
        "process": pa.array([r.proc for r in recs], pa.string()),
        "call": pa.array([r.call for r in recs], pa.string()),
        "path": pa.array([r.path for r in recs], pa.string()),
        "offset": pa.array([r.off for r in recs], pa.int64()),
        "bytes": pa.array([r.nbytes for r in recs], pa.int64()),
        "result": pa.array([r.rv for r in recs], pa.int64()),
        "latency_ns": pa.array([r.end - r.start for r in recs], pa.int64()),
        "wait": pa.array([r.wait for r in recs], pa.string()),
        "wait_ns": pa.array([r.wait_ns for r in recs], pa.int64()),
    })


def write_run(res: Any, out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k = res.kernel
    pq.write_table(series_table(k), out / "timeseries.parquet")
    pq.write_table(latency_table(k), out / "latency.parquet")
    pq.write_table(slow_table(k), out / "slow_calls.parquet")
    (out / "summary.json").write_text(json.dumps(res.summary, indent=2, sort_keys=True,
                                                 default=str))
    label = f"{res.summary['policy']}/{res.summary['protocol']}"
    files = plot_runs({label: k}, out, res.scenario.name)
    return [out / "timeseries.parquet", out / "latency.parquet", out / "slow_calls.parquet",
            out / "summary.json", *files]
