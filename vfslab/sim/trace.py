"""The engine's timeline hooks: what a trace (vfslab/trace/) is told as the machine runs.

`Engine.tracer` is None unless a trace is being written; each hook is then one attribute
test on its path. Times are the running CPU's clock in ns. The engine calls:
- `step_begin`/`step_end` around each thread step on a CPU (`switched`: the step began with
  a context switch, as `Stats.nswitch` counts them);
- `intr_begin`/`intr_end` around each interrupt handler, nested inside whatever it
  interrupted;
- `spl` whenever splraise or splx has run (the CPU's level may or may not have moved);
- `wakeup` when a sleeping thread is made runnable by the running context (wakeup(9), a
  timeout, a join), before it runs;
- `spin_held`/`spin_released` from simple_lock(9) (one holder, no recursion: the lock is
  its hold's key) and `lock_held`/`lock_released` from lockmgr(9) (shared and recursive
  holds): a hold of one lock `key` of class `cls` by a context, taken in function `where`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vfslab.sim.context import CPU, Context, Thread
    from vfslab.sim.intr import Intr


class EngineTracer:
    """Override what the trace wants; each default does nothing."""

    def step_begin(self, cpu: CPU, td: Thread, t: int, switched: bool) -> None:
        """A thread starts a step on `cpu` at `t` (its saved spl already restored)."""

    def step_end(self, cpu: CPU, td: Thread, t: int) -> None:
        """The step ends at `t` (the thread slept, yielded or exited)."""

    def intr_begin(self, cpu: CPU, irq: Intr, t: int) -> None:
        """A handler starts at `t`, the CPU already at the interrupt's level."""

    def intr_end(self, cpu: CPU, irq: Intr, t: int, back_to: int) -> None:
        """The handler returned at `t`; the CPU goes back to level `back_to`."""

    def spl(self, cpu: CPU, t: int) -> None:
        """splraise or splx ran on `cpu` (read `cpu.ipl` for the level now)."""

    def wakeup(self, waker: Context | None, td: Thread, t: int) -> None:
        """`td` was made runnable at `t` by `waker` (None: by the event loop itself)."""

    def spin_held(self, lk: object, cls: str, ctx: Context, t: int, where: str) -> None:
        """`ctx` holds the simple_lock `lk` (class `cls`) from `t`, taken in `where`."""

    def spin_released(self, lk: object, t: int) -> None:
        """The simple_lock `lk` was released at `t`."""

    def lock_held(self, cls: str, key: object, ctx: Context, t: int, where: str) -> None:
        """`ctx` holds lockmgr lock `key` (class `cls`) from `t`, taken in `where`."""

    def lock_released(self, key: object, ctx: Context, t: int) -> None:
        """`ctx` released one hold of lock `key` at `t`."""


__all__ = ["EngineTracer"]
