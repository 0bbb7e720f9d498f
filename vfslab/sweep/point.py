"""One run of a sweep: a pure function of its parameters, the same on every engine."""

from __future__ import annotations

import time
import traceback
from typing import Any

from vfslab.failure import RunFailure
from vfslab.sweep.spec import run_id


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            continue
        else:
            out[key] = v
    return out


def run_point(point: dict[str, Any]) -> dict[str, Any]:
    """Run one point; return one flat row: every parameter and every summary figure, or the
    error of a run that failed (a failed run is a row too)."""
    from vfslab.commands.run import build_config
    from vfslab.runner import run_scenario

    row: dict[str, Any] = {"run_id": run_id(point), **{f"param.{k}": v for k, v in point.items()}}
    t0 = time.perf_counter()
    try:
        sets = tuple(f"{k}={v}" for k, v in point.items()
                     if "." in k and k not in ("duration_s",))
        cfg = build_config(str(point["scenario"]), str(point.get("protocol", "netbsd-2.0")),
                           str(point["policy"]), int(point.get("seed", 0)),
                           f"{point['duration_s']}s", int(point.get("cpus", 1)), sets, None,
                           0.0, False, False)
        res = run_scenario(cfg)
        s = res.summary
        row.update(flatten(s.get("figures", {}), "fig."))
        row.update(flatten(s.get("costs", {}), "cost."))
        for key in ("operations", "bytes_written", "bytes_read",
                    "disk_bytes_written", "disk_bytes_read", "window_s"):
            row[key] = s.get(key)
        row["syscall_errors"] = s.get("syscall_errors_total")
        row["status"] = "panic" if s.get("panic") else "ok"
        row["error"] = s.get("panic") or ""
    except RunFailure as e:  # a plug-in's or vfslab's: whose code and where
        row["status"] = "failed"
        row["error"] = str(e)
    except Exception as e:   # a failed run is recorded and the sweep goes on
        row["status"] = "failed"
        row["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
    row["wall_s"] = time.perf_counter() - t0
    return row
