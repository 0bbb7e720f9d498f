"""`vfslab hunt [SCENARIO] --protocol P --cpus N --schedules K`: run K seeded schedules of the
whole stack until one fails for real (a deadlock, a panic, a broken invariant), and print
the one command that replays it bit for bit.

The strategy is seeded interrupt-point delivery aimed at critical sections
(`machine.irq_stress_mode=locked`, sim/interrupts.py): at an interrupt point where the running
context holds a spin lock of a kind interrupt handlers have taken so far, with probability
`--stress`, one of the interrupts due on that CPU that its spl lets in (a seeded choice) is
delivered there. That is the schedule of the mail's violations: a handler wanting a lock its
own CPU's thread holds (2.0's biodone -> brelvp -> holdrele). Each schedule is one run with
its own seed, with the invariant checks on; schedules are independent, so they run in
parallel on the sweep engines, in waves, and the first failure by schedule order is the one
reported, whatever the engine.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from vfslab.commands.common import parse_duration_s, parse_sets, trace_option
from vfslab.errors import InputError

NS = 1_000_000_000


def _config(point: dict[str, Any], seed: int) -> Any:
    from vfslab.runner import RunConfig

    return RunConfig(scenario=point["scenario"], protocol=point["protocol"],
                     ncpus=point["cpus"], irq_stress=point["stress"], seed=seed,
                     duration_s=point["duration_s"], invariants=True,
                     kernel={**point["machine"], "irq_stress_mode": "locked"},
                     policy=point["policy"])


def run_schedules(point: dict[str, Any]) -> dict[str, Any]:
    """One batch of schedules, in order, stopping at the first that fails (a sweep engine's
    point: it runs in a worker process)."""
    from vfslab.kern.diagnostic import InvariantError
    from vfslab.runner import run_scenario
    from vfslab.sim.panic import Deadlock

    ran = 0
    for i in range(point["first"], point["last"]):
        seed = point["seed"] + i
        res = run_scenario(_config(point, seed))
        ran += 1
        p = res.panic
        if p is not None:
            kind = ("deadlock" if isinstance(p, Deadlock) else
                    "invariant" if isinstance(p, InvariantError) else "panic")
            return {"first": point["first"], "ran": ran, "found": True, "schedule": i,
                    "seed": seed, "kind": kind, "message": p.message, "where": p.context,
                    "at_ns": p.time_ns, "chains": p.stacks}
    return {"first": point["first"], "ran": ran, "found": False}


def replay_command(point: dict[str, Any], seed: int, sets: tuple[str, ...]) -> str:
    dur = point["duration_s"]
    parts = ["vfslab run", point["scenario"], "--protocol", point["protocol"], "--policy",
             point["policy"], "--cpus", str(point["cpus"]), "--irq-stress",
             f"{point['stress']:g}", "--seed", str(seed), "--duration", f"{dur:g}s",
             "--invariants", "--set machine.irq_stress_mode=locked",
             *(f"--set {s}" for s in sets)]
    return " ".join(parts)


def _collector(rows: list[dict[str, Any]], bar: Any) -> Any:
    def on_row(row: dict[str, Any]) -> None:
        rows.append(row)
        bar.advance(int(row.get("ran", 0)))
    return on_row


@click.command()
@click.argument("scenario", default="protocol")
@click.option("--protocol", default="netbsd-2.0", show_default=True)
@click.option("--policy", default="syncer", show_default=True)
@click.option("--cpus", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--schedules", type=click.IntRange(1), default=1000, show_default=True,
              help="how many seeded schedules to try at most")
@click.option("--stress", type=click.FloatRange(0, 1, min_open=True), default=0.5,
              show_default=True, help="probability of an early interrupt at a critical "
                                      "section's interrupt point")
@click.option("--duration", default="10s", show_default=True,
              help="emulated time per schedule")
@click.option("--seed", type=int, default=0, show_default=True,
              help="schedule i runs with seed SEED + i")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="machine.X or a kernel setting, as for run")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True)
@click.option("--engine", type=click.Choice(["local", "ray", "dask"]), default="local",
              show_default=True)
@click.option("--json", "as_json", is_flag=True)
@trace_option
def hunt(scenario: str, protocol: str, policy: str, cpus: int, schedules: int,
         stress: float, duration: str, seed: int, sets: tuple[str, ...], jobs: int,
         engine: str, as_json: bool, trace: str | None) -> None:
    """Seeded schedules of SCENARIO until one fails for real; the failure, its call
    chains, and the command that replays it (with --trace FILE, the replay's timeline is
    written too)."""
    from vfslab.commands.progress import progress, wanted
    from vfslab.kern.protocols import protocol_class
    from vfslab.plugins import canonical
    from vfslab.sweep import engines

    protocol = canonical(protocol)
    protocol_class(protocol)
    pol_opts, machine, cost = parse_sets(sets)
    if pol_opts or cost:
        raise InputError("--set: hunt takes machine.X and kernel settings only")
    point0 = {"scenario": scenario, "protocol": protocol, "policy": policy, "cpus": cpus,
              "stress": stress, "duration_s": parse_duration_s(duration, "--duration"),
              "seed": seed, "machine": machine}
    batch = 10
    wave = batch * max(1, jobs)
    found: dict[str, Any] | None = None
    ran = 0
    wall0 = time.perf_counter()
    with progress("hunt", schedules, wanted(as_json), unit="schedules") as bar:
        start = 0
        while start < schedules and found is None:
            stop = min(schedules, start + wave)
            points = [{**point0, "first": a, "last": min(stop, a + batch)}
                      for a in range(start, stop, batch)]
            rows: list[dict[str, Any]] = []
            engines.execute(points, _collector(rows, bar), engine, jobs, None,
                            "vfslab.commands.hunt:run_schedules")
            bad = [r for r in rows if r.get("status") == "failed"]
            if bad:
                engines.reraise(bad[0])
                raise InputError(f"a schedule could not run: {bad[0]['error']}")
            hits = [r for r in rows if r["found"]]
            if hits:
                found = min(hits, key=lambda r: r["schedule"])
                # schedules after the first failure in its wave do not count as run
                ran = found["schedule"] + 1
            else:
                ran = stop
            start = stop
    wall = time.perf_counter() - wall0
    out: dict[str, Any] = {"found": found is not None, "schedules_run": ran,
                           "schedules_per_s": ran / wall if wall > 0 else 0.0,
                           "scenario": scenario, "protocol": protocol, "cpus": cpus}
    if found is not None:
        out.update(kind=found["kind"], seed=found["seed"], schedule=found["schedule"],
                   message=found["message"], where=found["where"], at_ns=found["at_ns"],
                   chains=found["chains"],
                   replay=replay_command(point0, found["seed"], sets))
        if trace:
            from vfslab.runner import run_scenario

            cfg = _config(point0, found["seed"])
            cfg.trace = trace
            run_scenario(cfg)
            out["trace"] = trace
    else:
        out.update(kind=None, seed=None, replay=None, chains=[])
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(f"vfslab hunt {scenario}, protocol {protocol}, {cpus} cpus: "
                   f"{ran:,} schedules in {wall:.1f} s ({out['schedules_per_s']:.1f}/s)")
        if found is None:
            click.echo("no failure found")
        else:
            click.echo(f"FOUND at schedule {found['schedule']} (seed {found['seed']}): "
                       f"{found['kind']} at {found['at_ns'] / NS:.6f} s, in {found['where']}")
            click.echo(f"  {found['message']}")
            for i, chain in enumerate(found["chains"]):
                click.echo(f"  chain #{i}: " + " -> ".join(chain))
            click.echo(f"replay: {out['replay']}")
            if trace:
                click.echo(f"the replay's timeline: {trace} (open it at ui.perfetto.dev)")
    raise SystemExit(1 if found is not None else 0)
