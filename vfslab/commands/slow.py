"""`vfslab slow DIR`: the slowest system calls of a run, each with what it waited on."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vfslab.errors import InputError
from vfslab.kern.fcntl import ERRNO_NAMES

# what the table shows of each call (metrics/output.py writes them)
COLUMNS = ("t_s", "process", "call", "path", "offset", "bytes", "result", "latency_ns", "wait",
           "wait_ns")


def _tables(d: Path) -> list[tuple[str, Path]]:
    """(label, slow_calls.parquet) for a run's directory or a compare's (one per column)."""
    if (d / "slow_calls.parquet").is_file():
        return [(d.name, d / "slow_calls.parquet")]
    found = sorted((p.parent.name, p) for p in d.glob("*/slow_calls.parquet"))
    if not found:
        raise InputError(f"{d}: no slow_calls.parquet here or one level down; expected the "
                         "--out directory of `vfslab run` or `vfslab compare`")
    return found


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1),
              help="how many calls to show")
@click.option("--call", "call", default=None, help="only this call (read, pread, fsync, ...)")
@click.option("--json", "as_json", is_flag=True)
def slow(directory: str, top: int, call: str | None, as_json: bool) -> None:
    """The slowest calls of a run written with --out DIR (its slowest 1,000 of each kind are
    kept): when, which process, the call, its file, offset and bytes, the result, the
    latency, and the longest sleep it made with what it slept on."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rich.console import Console
    from rich.table import Table

    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"{d}: no such directory")
    out: dict[str, list[dict[str, object]]] = {}
    for label, path in _tables(d):
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"not a Parquet table ({e})", str(path)) from None
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise InputError(f"not a table of slow calls: no column {', '.join(missing)}",
                             str(path))
        rows = table.to_pylist()
        if call is not None:
            rows = [r for r in rows if r["call"] == call]
        rows.sort(key=lambda r: -int(r["latency_ns"]))
        out[label] = rows[:top]
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    con = Console()
    for label, rows in out.items():
        t = Table(title=f"slowest calls: {label}" + (f" ({call})" if call else ""))
        for col in ("t (s)", "process", "call", "path", "offset", "bytes", "result",
                    "latency (ms)", "waited on", "for (ms)"):
            t.add_column(col, justify="left" if col in ("process", "call", "path",
                                                        "waited on") else "right")
        for r in rows:
            rv = int(r["result"])  # type: ignore[call-overload]
            res = ERRNO_NAMES.get(-rv, f"errno {-rv}") if rv < 0 else f"{rv:,}"
            off = int(r["offset"])  # type: ignore[call-overload]
            t.add_row(f"{r['t_s']:.3f}", str(r["process"]), str(r["call"]), str(r["path"]),
                      "—" if off < 0 else f"{off:,}", f"{r['bytes']:,}", res,
                      f"{int(r['latency_ns']) / 1e6:.3f}",  # type: ignore[call-overload]
                      str(r["wait"]) or "—",
                      f"{int(r['wait_ns']) / 1e6:.3f}")  # type: ignore[call-overload]
        con.print(t)
