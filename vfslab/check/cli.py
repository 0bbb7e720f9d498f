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
@click.option("--brief", is_flag=True, help="only the summary: one line per group")
@click.option("--protocols", default=None, metavar="A,B,...",
              help="run each protocol and show which groups of findings differ")
@trace_option
def check(scenario: str, protocol: str, policy: str, seed: int, duration: str | None,
          cpus: int, sets: tuple[str, ...], config: str | None, irq_stress: float,
          invariants: bool, strict: bool, speed: float, no_think: bool, as_json: bool,
          brief: bool, protocols: str | None, trace: str | None) -> None:
    """Run SCENARIO (default: `protocol`, every path the mail names) under the lock and IPL
    validator and report what is broken, with the call chains that did it: a summary line
    per group (the mail's rules first), then each finding."""
    from vfslab.check.report import text_report, to_json
    from vfslab.commands.run import build_config
    from vfslab.runner import run_scenario

    if protocols is not None:
        _compare_protocols(scenario, [p.strip() for p in protocols.split(",") if p.strip()],
                           policy, seed, duration, cpus, sets, config, irq_stress, invariants,
                           strict, speed, no_think, as_json)
        return
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
        click.echo(text_report(checker, brief=brief))
        if res.panic is not None:
            click.echo("")
            click.echo(res.panic.report())
    raise SystemExit(1 if checker.findings() else 0)


def _compare_protocols(scenario: str, protos: list[str], policy: str, seed: int,
                       duration: str | None, cpus: int, sets: tuple[str, ...],
                       config: str | None, irq_stress: float, invariants: bool, strict: bool,
                       speed: float, no_think: bool, as_json: bool) -> None:
    """`check --protocols a,b`: the groups of findings of each, and which differ."""
    from vfslab.check.report import groups
    from vfslab.commands.run import build_config
    from vfslab.errors import InputError
    from vfslab.runner import run_scenario

    if len(protos) < 2:
        raise InputError("--protocols: expected at least two, comma-separated")
    found: dict[str, dict[str, int]] = {}
    panics: dict[str, str] = {}
    for proto in protos:
        cfg = build_config(scenario, proto, policy, seed, duration, cpus, sets, config,
                           irq_stress, invariants, True, strict, speed, no_think)
        res = run_scenario(cfg)
        found[proto] = {label: len(g) for label, g in groups(res.checker.findings())}
        if res.panic is not None:
            panics[proto] = res.panic.message
    labels: list[str] = []              # in group order (the mail's rules first)
    for proto in protos:
        labels.extend(lb for lb in found[proto] if lb not in labels)
    if as_json:
        click.echo(json.dumps({"scenario": scenario, "protocols": protos,
                               "groups": {lb: {p: found[p].get(lb, 0) for p in protos}
                                          for lb in labels}, "panics": panics}, indent=2))
    else:
        click.echo(f"vfslab check {scenario}: groups of findings by protocol "
                   f"(numbers are findings; - none)")
        for lb in labels:
            cells = "  ".join(f"{p}={found[p].get(lb, 0) or '-'}" for p in protos)
            same = len({found[p].get(lb, 0) > 0 for p in protos}) == 1
            click.echo(f"  {'  ' if same else '* '}{lb}\n      {cells}")
        for p, msg in panics.items():
            click.echo(f"  {p}: panic: {msg}")
        click.echo("(* : present in some protocols and not others)")
    raise SystemExit(1 if any(found.values()) or panics else 0)
