"""`vfslab run SCENARIO`: run one scenario and print what happened."""

from __future__ import annotations

import json
from typing import Any

import click

from vfslab.commands.common import (
    output_dir,
    parse_duration_s,
    parse_sets,
    scenario_options,
    trace_option,
)
from vfslab.errors import InputError
from vfslab.sim.costs import CostModel


def build_config(scenario: str, protocol: str, policy: str, seed: int, duration: str | None,
                 cpus: int, sets: tuple[str, ...], config: str | None, irq_stress: float,
                 invariants: bool, check: bool, strict: bool = False, speed: float = 1.0,
                 no_think: bool = False, selected: list[str] | None = None) -> Any:
    """The RunConfig of one run. `selected`: every policy the command runs (compare), so
    that `--set` keys for any of them are accepted and checked."""
    from vfslab.kern.protocols import protocol_class
    from vfslab.plugins import canonical, check_policy_sets, options_for
    from vfslab.runner import RunConfig

    policy = canonical(policy)
    protocol = canonical(protocol)
    protocol_class(protocol)
    pol_opts, machine, cost = parse_sets(sets, config)
    pol_opts = check_policy_sets(pol_opts, [canonical(p) for p in selected or [policy]])
    kernel: dict[str, Any] = dict(machine)
    if cost:
        cm = CostModel()
        for key, val in cost.items():
            if key not in CostModel.field_names():
                raise InputError(f"cost.{key}: unknown cost; expected one of "
                                 f"{', '.join(CostModel.field_names())}")
            if isinstance(val, bool) or not isinstance(val, (int, float)) or \
                    val != int(val) or not 0 <= val <= 10**12:
                raise InputError(f"cost.{key}: expected nanoseconds, a whole number from 0 "
                                 f"to 10^12, got {val!r}")
            setattr(cm, key, int(val))
        kernel["costs"] = cm
    dur = parse_duration_s(duration, "--duration") if duration is not None else None
    return RunConfig(scenario=scenario, protocol=protocol, policy=policy,
                     policy_options=options_for(policy, pol_opts), seed=seed, ncpus=cpus,
                     check=check, irq_stress=irq_stress, duration_s=dur,
                     invariants=invariants, kernel=kernel, strict=strict, speed=speed,
                     no_think=no_think)


def print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"vfslab run {s['scenario']}  (protocol {s['protocol']}, policy "
                    f"{s['policy']}, seed {s['seed']}, {s['cpus']} cpu)", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    rows = [
        ("emulated time", f"{s['emulated_s']:.2f} s"),
        ("wall time", f"{s['wall_s']:.2f} s"),
        ("operations", f"{s['operations']:,}"),
        ("syscall errors", _errors_text(s)),
        *([("vnode table full (ENFILE)", f"{s['vnode_table_full']:,}")]
          if s.get("vnode_table_full") else []),
        ("bytes read by programs", f"{s['bytes_read']:,}"),
        ("bytes written by programs", f"{s['bytes_written']:,}"),
        ("bytes read from disk", f"{s['disk_bytes_read']:,}"),
        ("bytes written to disk", f"{s['disk_bytes_written']:,}"),
        ("dirty pages at end", f"{s['dirty_pages_end']:,}"),
        ("dirty buffers at end", f"{s['dirty_bufs_end']:,}"),
    ]
    for op, lat in s["latency"].items():
        rows.append((f"{op} latency p50/p99/max",
                     f"{lat['p50_ms']:.3f} / {lat['p99_ms']:.3f} / {lat['max_ms']:.3f} ms "
                     f"(n={lat['count']:,})"))
    rp = s.get("replay")
    if rp is not None:
        rows.append(("replay: calls / replayed", f"{rp.get('calls', 0):,} / "
                                                 f"{rp.get('replayed', 0):,}"))
        div = rp.get("diverged", 0)
        parts = [f"{call} {key} x{v['count']} (lines {', '.join(map(str, v['first_lines']))})"
                 for call, by in rp.get("diverged_by_call", {}).items()
                 for key, v in by.items()]
        rows.append(("replay: diverged from the log", f"{div:,}" + (
            "\n" + "\n".join(parts[:8]) + ("\n..." if len(parts) > 8 else "") if parts
            else "")))
        nm = rp.get("not_modelled", {})
        if nm:
            rows.append(("replay: calls not modelled", ", ".join(
                f"{n} x{c:,}" for n, c in sorted(nm.items(), key=lambda kv: -kv[1]))))
        rows.append(("replay: ran to completion",
                     f"no: cut at the cap of {rp['cap_s']:g} s, unfinished: "
                     f"{', '.join(rp['unfinished_processes'])}" if rp.get("cut") else "yes"))
    for key, val in s.get("policy_report", {}).items():
        rows.append((f"{s['policy']}: {_report_name(key)}",
                     f"{val:,.3f}" if isinstance(val, float) else
                     f"{val:,}" if isinstance(val, int) else str(val)))
    tr = s.get("trace")
    if tr:
        rows.append(("trace", f"{tr['file']} ({tr['packets']:,} packets: "
                              f"{tr['thread_steps']:,} thread steps, {tr['interrupts']:,} "
                              f"interrupts, {tr['disk_requests']:,} disk requests, "
                              f"{tr['syscalls']:,} calls; open it at ui.perfetto.dev)"))
    if "invariant_checks" in s:
        rows.append(("invariant checks passed", f"{s['invariant_checks']:,}"
                     if not s.get("panic") else "a check failed (below)"))
    mem = s.get("memory")
    if mem:
        mib = 1 << 20
        rows.append(("host memory (RSS) peak", f"{mem['peak_rss_bytes'] / mib:,.1f} MiB"))
        rows.append((f"RSS growth after warm-up ({mem['warm_at_s']:g} s)",
                     f"{mem['rss_growth_after_warmup_bytes'] / mib:+,.1f} MiB"))
        rows.append(("Python heap blocks growth after warm-up",
                     f"{mem['python_blocks_growth_after_warmup']:+,}"))
        rows.append(("emulated disk blocks held (growth)",
                     f"{mem['disk_blocks_held']:,} ({mem['disk_blocks_growth_after_warmup']:+,})"))
    for what, val in rows:
        t.add_row(what, val)
    con.print(t)
    if s.get("panic"):
        con.print(f"[bold red]{s['panic']}[/]")


def _errors_text(s: dict[str, Any]) -> str:
    """The total, then each call's errnos: "66 (write ENOSPC 64, open ENOENT 2)"."""
    total = s["syscall_errors_total"]
    parts = [f"{op} {name} {n:,}" for op, by in s["syscall_errors"].items()
             for name, n in sorted(by.items(), key=lambda kv: -kv[1])]
    return f"{total:,}" + (f" ({', '.join(parts)})" if parts else "")


def _report_name(key: str) -> str:
    """A policy report's key as a row name: the unit suffix in parentheses."""
    for suffix, unit in (("_mb_s", "MB/s"), ("_mb", "MB"), ("_s", "s")):
        if key.endswith(suffix):
            return f"{key[:-len(suffix)].replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


@click.command()
@click.argument("scenario", default="stream")
@click.option("--protocol", default="netbsd-2.0", show_default=True,
              help="netbsd-2.0 | splbio-always | split-interlock | biodoned")
@click.option("--policy", default="syncer", show_default=True, help="syncer | trickle | linux")
@scenario_options
@click.option("--check", is_flag=True, help="run the lock/IPL validator (off by default)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="write time series, summary.json and plots to this directory")
@click.option("--crash-at", default=None, metavar="T|random",
              help="cut power T after the workload starts (or at a seeded random instant), "
                   "repair, mount again and report what was lost")
@click.option("--crash-after-request", type=click.IntRange(1), default=None, metavar="N",
              help="cut power when the workload's Nth disk request completes")
@click.option("--no-tear", is_flag=True, help="with a crash: writes in service are lost "
              "whole instead of torn at a sector")
@click.option("--image", type=click.Path(dir_okay=False), default=None,
              help="with a crash: save the disk image as the power cut left it")
@click.option("--memory-every", default=None, metavar="T",
              help="sample Python's heap every T of emulated time (a soak: is it flat?)")
@click.option("--from-image", "from_image", type=click.Path(dir_okay=False, exists=True),
              default=None, help="run on this file system image (one fsck finds clean, "
                                 "e.g. after `vfslab fsck -y`) instead of a new one")
@trace_option
def run(scenario: str, protocol: str, policy: str, seed: int, duration: str | None, cpus: int,
        sets: tuple[str, ...], config: str | None, irq_stress: float, invariants: bool,
        strict: bool, speed: float, no_think: bool, check: bool, as_json: bool,
        out: str | None, crash_at: str | None, crash_after_request: int | None,
        no_tear: bool, image: str | None, memory_every: str | None,
        from_image: str | None, trace: str | None) -> None:
    """Run SCENARIO (a built-in name, a .toml file, fio:JOB or strace:LOG)."""
    from vfslab.runner import run_scenario

    cfg = build_config(scenario, protocol, policy, seed, duration, cpus, sets, config,
                       irq_stress, invariants, check, strict, speed, no_think)
    cfg.trace = trace
    if from_image is not None:
        from vfslab.crash.image import load_image

        cfg.image = load_image(from_image)
    if memory_every is not None:
        cfg.memory_every_s = parse_duration_s(memory_every, "--memory-every")
        if cfg.memory_every_s <= 0:
            raise InputError(f"--memory-every: expected a positive time, got {memory_every!r}")
    if out:
        output_dir(out)
    crash = None
    if crash_at is not None or crash_after_request is not None:
        from vfslab.commands.crash import crash_run

        res, crash = crash_run(cfg, crash_at, crash_after_request, not no_tear, image)
    elif image is not None:
        raise InputError("--image: only with --crash-at or --crash-after-request")
    else:
        from vfslab.commands.progress import progress, wanted

        with progress("running", 1.0, wanted(as_json), unit="emulated s") as bar:
            cfg.on_progress = lambda done_s, total_s: bar.update(done_s, total=total_s)
            res = run_scenario(cfg)
    for w in res.scenario.warnings:
        click.echo(f"vfslab: warning: {w}", err=True)
    s = res.summary
    if res.checker is not None:
        from vfslab.check.report import to_json

        s["check"] = to_json(res.checker, protocol, res.scenario.name)
    if out:
        from vfslab.metrics.output import write_run

        write_run(res, out)
    if crash is not None:
        s["crash"] = crash.to_dict()
    if as_json:
        click.echo(json.dumps(s, indent=2, sort_keys=True))
    else:
        print_summary(s)
        if res.checker is not None:
            from vfslab.check.report import text_report

            click.echo(text_report(res.checker))
        if crash is not None:
            from vfslab.commands.crash import print_crash

            print_crash(crash)
    if res.panic is not None or (crash is not None and crash.bug()):
        raise SystemExit(1)
    if res.checker is not None and res.checker.findings():
        raise SystemExit(1)          # as `vfslab check`: findings fail a CI gate
    errs = s.get("fio", {}).get("errors", [])
    if errs:
        e = errs[0]
        click.echo(f"vfslab: fio job {e['job']}: {e['call']} failed with {e['errno']}, which "
                   f"stops the job as fio's continue_on_error=none does"
                   + (f" ({len(errs)} jobs stopped)" if len(errs) > 1 else ""), err=True)
        raise SystemExit(1)
    comp = s.get("completion", {})
    if comp.get("cut") and s.get("replay") is None:
        click.echo(f"vfslab: the run was cut at its cap of {comp['cap_s']:g} s with "
                   f"{', '.join(comp['unfinished_processes'])} unfinished", err=True)
    rp = s.get("replay")
    if strict and rp is not None and (rp.get("diverged") or rp.get("cut")):
        what = (f"{rp['diverged']:,} calls diverged from the log" if rp.get("diverged")
                else f"cut short at {rp['cap_s']:g} s")
        click.echo(f"vfslab: --strict: the replay of {res.scenario.name} {what}", err=True)
        raise SystemExit(1)
