"""`vfslab record -- CMD ARGS`: run a command under strace and keep a log vfslab can replay
(`vfslab run strace:LOG`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("-o", "--output", default="vfslab-trace.log", show_default=True,
              help="where to write the strace log")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record(output: str, command: tuple[str, ...]) -> None:
    """Run COMMAND under `strace -f -tt -T -y` and save the log for replay."""
    strace = shutil.which("strace")
    if strace is None:
        raise click.ClickException("strace is not installed (apt-get install strace)")
    if shutil.which(command[0]) is None:
        raise click.ClickException(f"{command[0]}: no such program (not found, or not "
                                   "executable): nothing to record")
    where = Path(output).expanduser().resolve().parent
    if not where.is_dir():
        raise click.ClickException(f"{output}: cannot write the log: no directory {str(where)!r}")
    try:
        rc = subprocess.run([strace, "-f", "-tt", "-T", "-y", "-o", output, *command],
                            check=False).returncode
    except OSError as e:
        raise click.ClickException(f"cannot run strace: {e}") from None
    from vfslab.workload.strace import parse

    tr = parse(output)
    ncalls = sum(len(v) for v in tr.procs.values())
    click.echo(f"{output}: {tr.lines:,} lines, {ncalls:,} file system calls in "
               f"{len(tr.procs)} process(es); command exited {rc}")
    click.echo(f"replay it with: vfslab run strace:{output}")
