"""`vfslab bench sweep`: what the sweep machinery costs and what parallel workers buy. The peer
is the same runs called one after another in this process, measured in the same run; the
sweep runs them through the local engine with one worker (the engine's overhead: process
start, pickling, Parquet writes) and with every core (the speed-up)."""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import click


def _spec(dirpath: Path, duration: str, seeds: int) -> Path:
    spec = dirpath / "bench.toml"
    spec.write_text(f'[sweep]\nscenario = ["steadywriter"]\nduration = "{duration}"\n'
                    f'seeds = {seeds}\n[grid]\npolicy = ["syncer", "trickle", "linux"]\n')
    return spec


@click.command()
@click.option("--duration", default="10s", show_default=True, help="simulated time per run")
@click.option("--seeds", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="workers for the parallel pass (default: the machine's cores)")
@click.option("--json", "as_json", is_flag=True)
def sweep(duration: str, seeds: int, workers: int | None, as_json: bool) -> None:
    """Sweep engine overhead and parallel speed-up against in-process runs."""
    from vfslab.sweep.cli import run_sweep
    from vfslab.sweep.point import run_point
    from vfslab.sweep.spec import load

    workers = workers or multiprocessing.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spec = _spec(d, duration, seeds)
        points = load(str(spec))
        t0 = time.perf_counter()
        rows = [run_point(p) for p in points]
        inproc = time.perf_counter() - t0
        bad = [r for r in rows if r.get("status") != "ok"]
        if bad:
            raise click.ClickException(f"a benchmark run failed: {bad[0].get('error')}")
        t0 = time.perf_counter()
        run_sweep(str(spec), "local", 1, None, str(d / "one"), False, progress=False)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_sweep(str(spec), "local", workers, None, str(d / "many"), False, progress=False)
        many = time.perf_counter() - t0
    out: dict[str, Any] = {"runs": len(points), "workers": workers, "in_process_s": inproc,
                           "local_1_worker_s": one, f"local_{workers}_workers_s": many,
                           "overhead_ratio": one / inproc, "speedup": inproc / many}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    n = len(points)
    click.echo(f"{n} runs in process, one after another: {inproc:.2f} s "
               f"({n / inproc:.2f} runs/s)")
    click.echo(f"sweep, local engine, 1 worker:  {one:.2f} s   overhead "
               f"{out['overhead_ratio']:.2f}x (1.0x is free)")
    click.echo(f"sweep, local engine, {workers} workers: {many:.2f} s   speed-up "
               f"{out['speedup']:.2f}x (ideal {workers}x)")
