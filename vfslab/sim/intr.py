"""A posted interrupt: what a device or timer asked for, where and when."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vfslab.sim.context import CPU


class Intr:
    """An interrupt request at `level` on `cpu`, posted for `time`, to run `handler(arg)`.
    `seq` orders it among events of the same time; `cancelled` withdraws it (callout_stop)
    until it would have been taken."""

    __slots__ = ("level", "handler", "arg", "name", "cpu", "time", "seq", "cancelled")

    def __init__(self, level: int, handler: Callable[[Any], None], arg: Any, name: str,
                 cpu: CPU, time: int, seq: int) -> None:
        self.level = level
        self.handler = handler
        self.arg = arg
        self.name = name
        self.cpu = cpu
        self.time = time
        self.seq = seq
        self.cancelled = False

    def __repr__(self) -> str:
        return f"<Intr {self.name} ipl {self.level} cpu{self.cpu.index} at {self.time}>"
