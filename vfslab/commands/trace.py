"""`vfslab trace FILE`: what a trace written with --trace shows in a window of time, as text
(the Perfetto UI draws the same: open the file at https://ui.perfetto.dev)."""

from __future__ import annotations

import json
from typing import Any

import click

from vfslab.commands.common import parse_duration_s
from vfslab.errors import InputError

NS = 1_000_000_000


def _args_text(args: dict[str, Any]) -> str:
    out = []
    for k, v in args.items():
        if k == "tid":
            continue
        out.append(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(out)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--at", "at", default="0s", show_default=True, metavar="T",
              help="the window's start, from the workload's start as in `vfslab slow` and "
                   "the time series (e.g. 12.5s, 300ms)")
@click.option("--span", default="2ms", show_default=True, metavar="D", help="its length")
@click.option("--tracks", default="CPUs,disks,processes", show_default=True,
              help="comma list of groups (CPUs, locks, disks, processes, writeback) or "
                   "track names")
@click.option("--limit", default=40, show_default=True, type=click.IntRange(min=1),
              help="at most this many slices")
@click.option("--json", "as_json", is_flag=True)
def trace(file: str, at: str, span: str, tracks: str, limit: int, as_json: bool) -> None:
    """The slices of FILE that overlap [--at, --at + --span], by track: thread steps and
    interrupt handlers on each CPU, disk requests, system calls, lock holds."""
    from vfslab.trace.read import Slice, TraceFile

    try:
        tf = TraceFile(file)
    except Exception as e:        # protobuf's DecodeError and friends: not a trace
        raise InputError(f"{file}: not a Perfetto trace ({e})") from None
    base = tf.workload_start()
    t0 = base + round(parse_duration_s(at, "--at") * NS)
    t1 = t0 + round(parse_duration_s(span, "--span") * NS)
    if t1 <= t0:
        raise InputError(f"--span: expected a positive time, got {span!r}")
    want = {w.strip() for w in tracks.split(",") if w.strip()}
    rows: list[Slice] = []
    for uuid in tf.events:
        if uuid not in tf.tracks:
            continue
        name = tf.name(uuid)
        if not (tf.group(uuid) in want or name in want or name.split(" (pid")[0] in want):
            continue
        rows.extend(s for s in tf.slices(uuid) if s.start < t1 and s.start + s.dur > t0)
    rows.sort(key=lambda s: (s.track, s.start, s.depth))
    shown = rows[:limit]
    if as_json:
        click.echo(json.dumps([{"track": s.track, "t_s": (s.start - base) / NS,
                                "start_ns": s.start, "dur_ns": s.dur,
                                "name": s.name, "depth": s.depth, "args": s.args}
                               for s in shown], indent=2))
        return
    click.echo(f"{file}: {len(rows):,} slices in [{(t0 - base) / NS:.6f} s, "
               f"{(t1 - base) / NS:.6f} s) from the workload's start"
               + (f", the first {limit} shown" if len(rows) > limit else ""))
    width = max((len(s.track) for s in shown), default=5)
    for s in shown:
        indent = "  " * s.depth
        click.echo(f"{s.track:<{width}}  {(s.start - base) / NS:12.6f} s  "
                   f"{s.dur / 1e6:9.3f} ms  "
                   f"{indent}{s.name}  {_args_text(s.args)}".rstrip())
