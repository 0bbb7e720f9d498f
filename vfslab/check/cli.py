"""`vfslab check [SCENARIO] --protocol NAME`: run a scenario under the validator; exit 1 when
it finds anything, 0 when clean, so it works as a CI gate."""

from __future__ import annotations

import json

import click

from vfslab.commands.common import scenario_options, trace_option


@click.command()
@click.argument("scenario", default="protocol")
@click.option("--protocol", default="netbsd-2.0", show_default=True,
              help="netbsd-2.0 | splbio-always | split-interlock | biodoned")
@click.option("--policy", default="syncer", show_default=True)
@scenario_options
@click.option("--json", "as_json", is_flag=True, help="findings as JSON")
@trace_option
def check(scenario: str, protocol: str, policy: str, seed: int, duration: str | None,
          cpus: int, sets: tuple[str, ...], config: str | None, irq_stress: float,
          invariants: bool, strict: bool, speed: float, no_think: bool, as_json: bool,
          trace: str | None) -> None:
    """Run SCENARIO (default: `protocol`, every path the mail names) under the lock and IPL
    validator and report what is broken, with the call chains that did it."""
    from vfslab.check.report import text_report, to_json
    from vfslab.commands.run import build_config
    from vfslab.runner import run_scenario

    cfg = build_config(scenario, protocol, policy, seed, duration, cpus, sets, config,
                       irq_stress, invariants, True, strict, speed, no_think)
    cfg.trace = trace
    from vfslab.commands.progress import progress, wanted

    with progress("checking", 1.0, wanted(as_json), unit="emulated s") as bar:
        cfg.on_progress = lambda done_s, total_s: bar.update(done_s, total=total_s)
        res = run_scenario(cfg)
    checker = res.checker
    if as_json:
        out = to_json(checker, protocol, res.scenario.name)
        if res.panic is not None:
            out["panic"] = res.panic.report()
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(text_report(checker))
        if res.panic is not None:
            click.echo("")
            click.echo(res.panic.report())
    raise SystemExit(1 if checker.findings() else 0)
