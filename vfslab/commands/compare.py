"""`vfslab compare [SCENARIO] --policies a,b,c --protocols x,y`: the same workload and seed
under several writeback policies and/or locking protocols, side by side, with plots.

With no arguments this is vfslab's main job: the pr24596 scenario under the 2004 syncer, the
trickle syncer and Linux's writeback.
"""

from __future__ import annotations

import json
from typing import Any

import click

from vfslab.commands.common import output_dir, scenario_options, trace_option
from vfslab.errors import InputError

POLICY_ROWS = [
    ("peak 1-s write rate", "peak_write_rate_bps", "MB/s"),
    ("mean dirtying rate", "mean_dirty_rate_bps", "MB/s"),
    ("peak / dirtying rate", "peak_ratio", "x"),
    ("peak 1-s dirtying / mean dirtying", "peak_dirty_ratio", "x"),
    ("lowest possible peak / dirtying", "peak_bound_ratio", "x"),
    ("max dirty data", "max_dirty_bytes", "MB"),
    ("max dirty age (at risk)", "max_dirty_age_s", "s"),
    ("dirty pages on no worklist", "max_unlisted_dirty_pages", ""),
    ("... oldest of them", "max_unlisted_dirty_age_s", "s"),
    ("dirty pages the kernel thinks clean", "max_unknown_dirty_pages", ""),
    ("... the oldest of those", "max_unknown_dirty_age_s", "s"),
    ("read latency p50", "read_latency_p50_ms", "ms"),
    ("read latency p99", "read_latency_p99_ms", "ms"),
    ("write latency p99", "write_latency_p99_ms", "ms"),
    ("fsync latency p99", "fsync_latency_p99_ms", "ms"),
    ("bytes dirtied", "bytes_dirtied", "MB"),
    ("disk bytes written", "disk_bytes_written", "MB"),
    ("... plus backlog at end", "disk_bytes_to_durable", "MB"),
    ("(disk + backlog) / dirtied", "write_amplification", "x"),
    ("program write throughput", "throughput_write_bps", "MB/s"),
]

PROTOCOL_ROWS = [
    ("CPU time at >= IPL_BIO", "ipl_bio_ms_per_s", "ms/s"),
    ("BIO interrupt latency mean", "bio_intr_mean_us", "us"),
    ("BIO interrupt latency max", "bio_intr_max_us", "us"),
    ("I/O completion latency mean", "completion_latency_mean_us", "us"),
    ("I/O completion latency max", "completion_latency_max_us", "us"),
    ("context switches", "context_switches", ""),
    ("CPU time per operation", "cpu_us_per_op", "us"),
    ("operations", "operations", ""),
    ("program write throughput", "throughput_write_bps", "MB/s"),
]


def _fmt(val: float, unit: str) -> str:
    if unit in ("MB/s", "MB"):
        return f"{val / 1e6:,.1f}"
    if unit == "x":
        return f"{val:.2f}"
    if isinstance(val, int) or unit == "":
        return f"{val:,.0f}"
    return f"{val:,.1f}" if abs(val) >= 10 else f"{val:,.3f}"


def result_row(res: Any) -> dict[str, Any]:
    s = res.summary
    f = dict(s["figures"])
    c = s["costs"]
    f["peak_ratio"] = (f["peak_write_rate_bps"] / f["mean_dirty_rate_bps"]
                       if f["mean_dirty_rate_bps"] else 0.0)
    f["peak_dirty_ratio"] = (f["peak_dirty_rate_bps"] / f["mean_dirty_rate_bps"]
                             if f["mean_dirty_rate_bps"] else 0.0)
    f["peak_bound_ratio"] = (f["peak_write_bound_bps"] / f["mean_dirty_rate_bps"]
                             if f["mean_dirty_rate_bps"] else 0.0)
    bio = c["interrupt_latency"].get("IPL_BIO", {"mean_us": 0.0, "max_us": 0.0})
    f.update({
        "ipl_bio_ms_per_s": c["ipl_bio_ms_per_s"],
        "bio_intr_mean_us": bio["mean_us"],
        "bio_intr_max_us": bio["max_us"],
        "completion_latency_mean_us": c["completion_latency_mean_us"],
        "completion_latency_max_us": c["completion_latency_max_us"],
        "context_switches": c["context_switches"],
        "cpu_us_per_op": c["cpu_us_per_op"],
        "operations": s["operations"],
        "interrupt_latency": c["interrupt_latency"],
        "window_s": s["window_s"],
        "panic": s["panic"],
        "disk_queue": res.kernel.cfg.disk_queue,
    })
    return f


@click.command()
@click.argument("scenario", default="pr24596")
@click.option("--policies", default=None, help="comma list (default: syncer,trickle,linux)")
@click.option("--protocols", default=None, help="comma list of locking protocols")
@click.option("--vary", default=None, metavar="KEY=V1,V2",
              help="also run each policy with KEY (a --set key) at each value, e.g. "
                   "machine.disk_queue=disksort,mq-deadline")
@scenario_options
@click.option("--json", "as_json", is_flag=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="directory for plots, per-run Parquet and compare.json "
                   "[default: vfslab-out/compare-SCENARIO, none with --json]")
@click.option("--no-out", is_flag=True, help="print the table only; write no files")
@trace_option
def compare(scenario: str, policies: str | None, protocols: str | None, vary: str | None,
            seed: int,
            duration: str | None, cpus: int, sets: tuple[str, ...], config: str | None,
            irq_stress: float, invariants: bool, strict: bool, speed: float, no_think: bool,
            as_json: bool, out: str | None, no_out: bool, trace: str | None) -> None:
    """Run SCENARIO under several writeback policies and/or locking protocols."""
    pols = [p.strip() for p in (policies or ("syncer" if protocols else
                                             "syncer,trickle,linux")).split(",") if p.strip()]
    protos = [p.strip() for p in (protocols or "netbsd-2.0").split(",") if p.strip()]
    if not pols or not protos:
        raise InputError("--policies/--protocols: expected a comma-separated list")
    variants: list[tuple[str, tuple[str, ...]]] = [("", ())]
    if vary is not None:
        key, eq, vals = vary.partition("=")
        values = [v.strip() for v in vals.split(",") if v.strip()]
        if not eq or not key.strip() or not values:
            raise InputError(f"--vary: expected KEY=V1,V2,..., got {vary!r}")
        variants = [(v, (f"{key.strip()}={v}",)) for v in values]
    if not no_out and (out is not None or not as_json):
        output_dir(out if out is not None else "vfslab-out")     # the default's parent
    from vfslab.commands.progress import progress, wanted

    runs: dict[str, Any] = {}
    nruns = len(protos) * len(pols) * len(variants)
    with progress("compare", nruns, wanted(as_json), unit="runs") as bar:
        _compare_runs(scenario, pols, protos, variants, seed, duration, cpus, sets, config,
                      irq_stress, invariants, strict, speed, no_think, as_json, runs, bar,
                      trace)
    _finish(scenario, pols, protos, seed, as_json, out, no_out, runs)


def _compare_runs(scenario: str, pols: list[str], protos: list[str],
                  variants: list[tuple[str, tuple[str, ...]]], seed: int,
                  duration: str | None, cpus: int, sets: tuple[str, ...],
                  config: str | None, irq_stress: float, invariants: bool, strict: bool,
                  speed: float, no_think: bool, as_json: bool, runs: dict[str, Any],
                  bar: Any, trace: str | None = None) -> None:
    from vfslab.commands.run import build_config
    from vfslab.runner import run_scenario

    for proto in protos:
        for pol in pols:
            for value, extra in variants:
                label = pol if len(protos) == 1 else (proto if len(pols) == 1
                                                      else f"{pol}/{proto}")
                if value:
                    label = f"{label} {value}"
                cfg = build_config(scenario, proto, pol, seed, duration, cpus,
                                   (*sets, *extra), config, irq_stress, invariants, False,
                                   strict, speed, no_think, selected=pols)
                if trace is not None:
                    cfg.trace = trace_file(trace, label)
                if not as_json:
                    click.echo(f"running {scenario} with policy {pol}, protocol {proto}"
                               f"{', ' + extra[0] if extra else ''} ...", err=True)
                runs[label] = run_scenario(cfg)
                bar.advance()


def trace_file(path: str, label: str) -> str:
    """One trace per run: FILE's stem with the run's label, "t.pftrace" -> "t-syncer.pftrace"."""
    from pathlib import Path

    p = Path(path)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return str(p.with_name(f"{p.stem}-{safe}{p.suffix}"))


def _finish(scenario: str, pols: list[str], protos: list[str], seed: int, as_json: bool,
            out: str | None, no_out: bool, runs: dict[str, Any]) -> None:
    first = next(iter(runs.values()))
    rows = {label: result_row(r) for label, r in runs.items()}
    doc = {"scenario": first.scenario.name, "seed": seed,
           "window_s": {label: r["window_s"] for label, r in rows.items()},
           "results": rows}
    if len(pols) > 1 and "trickle" in rows:
        doc["window_s"] = rows["trickle"]["window_s"]
    if out is None and not as_json and not no_out:
        # the plots are half of what a comparison shows: write them unless asked not to
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in first.scenario.name)
        out = f"vfslab-out/compare-{safe}"
    if no_out:
        out = None
    if out:
        from vfslab.metrics.output import write_run
        from vfslab.metrics.plots import plot_runs

        for label, r in runs.items():
            write_run(r, f"{out}/{label.replace('/', '_').replace(' ', '_')}")
        plot_runs({label: r.kernel for label, r in runs.items()}, out, first.scenario.name)
        with open(f"{out}/compare.json", "w") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True, default=str)
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return
    _print_table(first.scenario.name, seed, rows, len(protos) > 1 and len(pols) == 1)
    if out:
        click.echo(f"plots (dirty backlog, write throughput, latency CDFs) and data in {out}/")
    for label, r in runs.items():
        if r.panic is not None:
            click.echo(f"{label}: {r.panic.report()}", err=True)


def _print_table(scenario: str, seed: int, rows: dict[str, dict[str, Any]],
                 protocols: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"vfslab compare {scenario} (seed {seed})")
    table.add_column("")
    for label in rows:
        table.add_column(label, justify="right")
    table.add_column("unit")
    spec = PROTOCOL_ROWS if protocols else POLICY_ROWS
    for name, key, unit in spec:
        op = key.split("_latency_")[0] if "_latency_" in key else None
        # a latency of an operation the workload never made is not measured: not 0 ms
        table.add_row(name, *["—" if op and r.get(f"{op}_ops") == 0 else _fmt(r[key], unit)
                              for r in rows.values()], unit)
    if not protocols:
        table.add_row("promised window", *[f"{r['window_s']:.0f}" for r in rows.values()], "s")
        table.add_row("disk queue", *[r["disk_queue"] for r in rows.values()], "")
    Console(width=max(100, Console().width)).print(table)
