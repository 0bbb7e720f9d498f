"""Progress on long commands (rich: a bar, counts and the time left), on the terminal only:
nothing on a pipe, a file or with --json, so output that is read by programs is unchanged.
It is drawn on stderr, and drawing never touches an emulated machine (runs are the same with
and without it)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def wanted(as_json: bool = False) -> bool:
    """Progress only for a person watching: stderr is a terminal and the output not JSON."""
    return not as_json and sys.stderr.isatty()


class Bar:
    """One task's bar; `update(completed)` or `advance(n)`. A no-op when not shown."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._p = progress
        self._t = task

    def advance(self, n: float = 1) -> None:
        if self._p is not None:
            self._p.update(self._t, advance=n)

    def update(self, completed: float, total: float | None = None, **fields: Any) -> None:
        if self._p is not None:
            if total is not None:
                fields["total"] = total
            self._p.update(self._t, completed=completed, **fields)


@contextmanager
def progress(description: str, total: float, show: bool, unit: str = "") -> Iterator[Bar]:
    """A bar for `total` units of work (crashes, runs, emulated seconds)."""
    if not show:
        yield Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    cols.append(MofNCompleteColumn() if not unit else
                TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"))
    cols += [TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(),
             TextColumn("left")]
    with Progress(*cols, console=Console(stderr=True), transient=True) as p:
        yield Bar(p, p.add_task(description, total=total))
