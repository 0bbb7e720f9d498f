"""The `vfslab` command line.

Subcommands live in their own modules and are imported only when used, so `vfslab --help`
stays fast and a module's dependencies load only for its command.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tempfile
from typing import Any

import click

from vfslab.errors import InputError
from vfslab.failure import RunFailure, describe, host_path_error

# name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "run": "vfslab.commands.run:run",
    "compare": "vfslab.commands.compare:compare",
    "check": "vfslab.check.cli:check",
    "scenarios": "vfslab.commands.scenarios:scenarios",
    "record": "vfslab.workload.record:record",
    "fsck": "vfslab.commands.crash:fsck",
    "crashtest": "vfslab.commands.crash:crashtest",
    "sweep": "vfslab.sweep.cli:sweep",
    "report": "vfslab.sweep.cli:report",
    "bench": "vfslab.bench:bench",
    "slow": "vfslab.commands.slow:slow",
    "trace": "vfslab.commands.trace:trace",
    "hunt": "vfslab.commands.hunt:hunt",
}


def load(spec: str) -> Any:
    mod, _, attr = spec.partition(":")
    return getattr(importlib.import_module(mod), attr)


def _module_exists(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for name, spec in self.lazy.items():
            if _module_exists(spec.partition(":")[0]):
                names.add(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            try:
                cmd: click.Command = load(self.lazy[name])
                return cmd
            except ModuleNotFoundError as e:
                if e.name and self.lazy[name].startswith(e.name):
                    return None
                raise
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy=COMMANDS, epilog=(
    "Exit status: 0; 1 when run, check, crashtest or hunt found something (a panic, "
    "findings, fsync'd data lost); 2 bad input (file, line and what was expected); 3 your "
    "policy's or protocol's code raised (its file and line); 70 a bug in vfslab (the "
    "traceback is kept in a file); fsck keeps fsck(8)'s codes."))
@click.version_option(package_name="vfslab")
def cli() -> None:
    """vfslab: an executable, deterministic emulator of a BSD kernel's storage path."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input ends in one line naming file, line and what was expected."""
    args = sys.argv[1:] if argv is None else argv
    for i, a in enumerate(args):
        if "\x00" in a:
            click.echo(f"vfslab: argument {i + 1} ({a!r}) contains a NUL byte", err=True)
            sys.exit(2)
    try:
        cli.main(args=args, prog_name="vfslab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vfslab: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code in (1, 2) else e.exit_code)
    except InputError as e:
        click.echo(f"vfslab: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except RunFailure as e:
        _failed(e)
    except Exception as e:             # vfslab's own bug outside a run: said, not a traceback
        if host_path_error(e):
            assert isinstance(e, OSError)
            click.echo(f"vfslab: {e.filename}: {e.strerror}", err=True)
            sys.exit(2)
        _failed(describe(e, " ".join(["vfslab", *args]), None))


def _failed(e: RunFailure) -> None:
    """Say whose code failed and where (vfslab.failure); a bug in vfslab also leaves its whole
    traceback in a file, for the report."""
    click.echo(f"vfslab: {e}", err=True)
    if not e.plugin:
        with tempfile.NamedTemporaryFile("w", prefix="vfslab-traceback-", suffix=".txt",
                                         delete=False) as fh:
            fh.write(e.detail)
        click.echo(f"  the whole traceback, for a bug report: {fh.name}", err=True)
    sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
