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


def write_run(res: Any, out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k = res.kernel
    pq.write_table(series_table(k), out / "timeseries.parquet")
    pq.write_table(latency_table(k), out / "latency.parquet")
    (out / "summary.json").write_text(json.dumps(res.summary, indent=2, sort_keys=True,
                                                 default=str))
    label = f"{res.summary['policy']}/{res.summary['protocol']}"
    files = plot_runs({label: k}, out, res.scenario.name)
    return [out / "timeseries.parquet", out / "latency.parquet", out / "summary.json", *files]
