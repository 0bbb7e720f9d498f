"""`vfslab bench trace`: what `--trace` costs: the same run untraced and traced, alternating,
best of N wall times; the ratio (aim: at most 2x), the trace's size, and the peak Python
memory of one run each way (the trace is streamed: it should add little)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import click


def _run(scenario: str, seconds: float, cpus: int, trace: str | None,
         memory: bool = False) -> tuple[float, Any]:
    from vfslab.runner import RunConfig, run_scenario

    t0 = time.perf_counter()
    res = run_scenario(RunConfig(scenario=scenario, duration_s=seconds, ncpus=cpus,
                                 trace=trace, measure_memory=memory))
    return time.perf_counter() - t0, res


@click.command()
@click.option("--scenario", default="pr24596", show_default=True)
@click.option("--seconds", type=float, default=20.0, show_default=True,
              help="emulated seconds per run")
@click.option("--cpus", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--repeats", type=click.IntRange(1, 10), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def trace(scenario: str, seconds: float, cpus: int, repeats: int, as_json: bool) -> None:
    """Slowdown of a run with --trace, against the same run without."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.pftrace")
        off: list[float] = []
        on: list[float] = []
        res: Any = None
        for _ in range(repeats):
            off.append(_run(scenario, seconds, cpus, None)[0])
            w, res = _run(scenario, seconds, cpus, path)
            on.append(w)
        size = os.path.getsize(path)
        mem_off = _run(scenario, seconds, cpus, None, True)[1].summary["peak_python_bytes"]
        mem_on = _run(scenario, seconds, cpus, path, True)[1].summary["peak_python_bytes"]
    tr = res.summary["trace"]
    out = {"ratio": min(on) / min(off), "wall_off_s": min(off), "wall_on_s": min(on),
           "scenario": scenario, "emulated_s": seconds, "cpus": cpus,
           "packets": tr["packets"], "trace_bytes": size,
           "peak_python_bytes_off": mem_off, "peak_python_bytes_on": mem_on,
           "memory_ratio": mem_on / mem_off if mem_off else 0.0}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    mib = 1 << 20
    click.echo(f"{scenario}, {seconds:g} emulated s, {cpus} cpu, best of {repeats}")
    click.echo(f"  untraced: {min(off):.3f} s wall")
    click.echo(f"  traced:   {min(on):.3f} s wall ({tr['packets']:,} packets, "
               f"{size / mib:,.1f} MiB)")
    click.echo(f"  slowdown: {out['ratio']:.2f}x (aim: <= 2x)")
    click.echo(f"  peak Python memory: {mem_off / mib:,.1f} MiB untraced, "
               f"{mem_on / mib:,.1f} MiB traced ({out['memory_ratio']:.2f}x)")
