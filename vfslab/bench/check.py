"""`vfslab bench check`: the validator's cost: the same scenario with the validator on and
off, in one run; the ratio of wall times (aim: at most 2.5x)."""

from __future__ import annotations

import json
import time
from typing import Any

import click


def _run(scenario: str, seconds: float, check: bool, protocol: str) -> tuple[float, Any]:
    from vfslab.runner import RunConfig, run_scenario

    t0 = time.perf_counter()
    res = run_scenario(RunConfig(scenario=scenario, duration_s=seconds, check=check,
                                 protocol=protocol))
    return time.perf_counter() - t0, res


@click.command()
@click.option("--scenario", default="readwrite", show_default=True)
@click.option("--seconds", type=float, default=5.0, show_default=True,
              help="emulated seconds per run")
@click.option("--protocol", default="netbsd-2.0", show_default=True)
@click.option("--repeats", type=click.IntRange(1, 10), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def check(scenario: str, seconds: float, protocol: str, repeats: int, as_json: bool) -> None:
    """Slowdown of a run with the lock/IPL validator on, against off."""
    off = min(_run(scenario, seconds, False, protocol)[0] for _ in range(repeats))
    on_runs = [_run(scenario, seconds, True, protocol) for _ in range(repeats)]
    on = min(w for w, _ in on_runs)
    res = on_runs[0][1]
    out = {"ratio": on / off, "wall_off_s": off, "wall_on_s": on, "scenario": scenario,
           "emulated_s": seconds, "protocol": protocol,
           "checked_accesses": res.checker.naccess, "checked_locks": res.checker.nlock,
           "findings": len(res.checker.findings())}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{scenario}, {seconds:g} emulated s, protocol {protocol}, best of {repeats}")
    click.echo(f"  validator off: {off:.3f} s wall")
    click.echo(f"  validator on:  {on:.3f} s wall ({out['checked_accesses']:,} field accesses, "
               f"{out['checked_locks']:,} lock acquisitions checked)")
    click.echo(f"  slowdown: {on / off:.2f}x (aim: <= 2.5x)")
