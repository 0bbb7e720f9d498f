"""`vfslab sweep SWEEP.toml` and `vfslab report DIR`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from vfslab.errors import InputError


def run_sweep(spec: str, engine: str, workers: int | None, address: str | None, out: str,
              resume: bool, fn: str = "vfslab.sweep.point:run_point", limit: int | None = None,
              progress: bool = True) -> dict[str, int]:
    """Run (or resume) a sweep; returns counts of runs done, failed and skipped."""
    from vfslab.sweep import engines
    from vfslab.sweep.results import ResultStore
    from vfslab.sweep.spec import load, run_id

    points = load(spec)
    store = ResultStore(out)
    done_ids = store.done_ids()
    for f, why in store.skipped:
        click.echo(f"warning: {f}: unreadable, left out ({why}); its runs will run again",
                   err=True)
    if (done_ids or store.skipped) and not resume:
        raise InputError(f"{out} already holds results: use --resume or another --out")
    todo = [p for p in points if run_id(p) not in done_ids]
    if limit is not None:
        todo = todo[:limit]
    counts = {"total": len(points), "skipped": len(points) - len(todo), "done": 0,
              "failed": 0}
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} done, {task.fields[failed]} failed"),
                  TimeRemainingColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task("sweep", total=len(todo), failed=0)

        def on_row(row: dict[str, Any]) -> None:
            store.append(row)
            counts["done"] += 1
            if row.get("status") == "failed":
                counts["failed"] += 1
            bar.update(task, advance=1, failed=counts["failed"])

        try:
            engines.execute(todo, on_row, engine, workers, address, fn)
        finally:
            store.flush()
    return counts


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--engine", type=click.Choice(["local", "ray", "dask"]), default="local",
              show_default=True)
@click.option("--address", default=None, help="a Ray cluster or Dask scheduler address")
@click.option("--workers", type=click.IntRange(1, 4096), default=None,
              help="processes (default: the machine's cores)")
@click.option("--out", default="sweep-out", show_default=True, type=click.Path(file_okay=False))
@click.option("--resume", is_flag=True, help="skip runs already in --out")
def sweep(spec: str, engine: str, address: str | None, workers: int | None, out: str,
          resume: bool) -> None:
    """Run every point of SPEC (a sweep TOML file) and append the rows to a Parquet dataset."""
    t0 = time.perf_counter()
    c = run_sweep(spec, engine, workers, address, out, resume)
    click.echo(f"{c['done']} runs ({c['failed']} failed), {c['skipped']} already done, "
               f"in {time.perf_counter() - t0:.1f} s; results in {out}/")


@click.command()
@click.argument("out", type=click.Path(file_okay=False, exists=True))
def report(out: str) -> None:
    """Tables (mean and 95% CI across seeds) and plots of a sweep's results."""
    from rich.console import Console
    from rich.table import Table

    from vfslab.sweep.report import METRICS, UNITS_NOTE, cell, plots, sort_key, summarize
    from vfslab.sweep.results import ResultStore

    store = ResultStore(out)
    rows = store.rows()
    for f, why in store.skipped:
        click.echo(f"warning: {f}: unreadable, left out of the report ({why})", err=True)
    if not rows:
        raise InputError("no results here", out)
    summ = summarize(rows)
    table = Table(title=f"{out}: {len(rows)} runs, {len(summ)} configurations")
    cand = sorted({k for rec in summ for k in rec
                   if k != "runs" and not k.startswith(("fig.", "window_s"))})
    # the parameters that vary (and the policy): constant ones are said once, above
    params = [p for p in cand if p == "policy" or len({str(r.get(p)) for r in summ}) > 1]
    fixed = {p: summ[0].get(p) for p in cand if p not in params}
    click.echo("fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    for p in params:
        table.add_column(p, no_wrap=True)
    table.add_column("runs", justify="right")
    for _, label, _scale, _op in METRICS:
        table.add_column(label, justify="right", no_wrap=True)
    for rec in sorted(summ, key=lambda r: sort_key(r, params)):
        cells = [str(rec.get(p, "")) for p in params] + [str(rec["runs"])]
        cells += [cell(rec, m, scale, op) for m, _label, scale, op in METRICS]
        table.add_row(*cells)
    con = Console()
    # piped, the table keeps its whole width rather than cutting headers and cells
    Console(width=con.width if con.is_terminal else 250).print(table)
    click.echo(UNITS_NOTE)
    files = plots(summ, Path(out))
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        click.echo(f"{len(failed)} failed runs, e.g.: {failed[0].get('error')}")
    click.echo("plots: " + ", ".join(str(f) for f in files))
