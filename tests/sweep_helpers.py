"""A deterministic stand-in run function for engine tests (importable by worker processes)."""

from __future__ import annotations

from typing import Any

from vfslab.sweep.spec import run_id


def fake_point(point: dict[str, Any]) -> dict[str, Any]:
    if point.get("trickle.window") == 13:
        raise ValueError("unlucky window")
    x = sum(ord(c) for c in str(sorted(point.items())))
    return {"run_id": run_id(point), **{f"param.{k}": v for k, v in point.items()},
            "fig.max_dirty_age_s": float(x % 97), "fig.read_latency_p99_ms": float(x % 31),
            "status": "ok", "error": "", "wall_s": 0.0}
