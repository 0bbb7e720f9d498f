"""`vfslab bench ...`: speed and memory targets, each a ratio against a peer measured in the
same run (never a timed unit test)."""

from __future__ import annotations

import click

from vfslab.cli import LazyGroup

BENCHES: dict[str, str] = {
    "engine": "vfslab.bench.engine:engine",
    "stack": "vfslab.bench.stack:stack",
    "check": "vfslab.bench.check:check",
    "policy": "vfslab.bench.policy:policy",
    "sweep": "vfslab.bench.sweep:sweep",
    "crash": "vfslab.bench.crash:crash",
    "replay": "vfslab.bench.replay:replay",
    "trace": "vfslab.bench.trace:trace",
    "fsck": "vfslab.bench.fsck:fsck",
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench() -> None:
    """Benchmarks: vfslab against a peer measured in the same run."""
