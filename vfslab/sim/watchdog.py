"""A run that stops making progress is stopped, not left to hang.

Emulated code runs in the host's one Python thread, so an endless loop in a kernel thread's
step (a plug-in's daemon that never sleeps, a loop in vfslab's own code) would freeze the
command with no word, and threads that wake each other at one instant for ever would spin
without emulated time passing. The watchdog looks, every tick of wall time, at two things the
engine keeps: the count of thread steps begun (`Engine.nsteps`) and the event loop's clock.
No step begun for `limit_s` of wall time: a step is stuck; steps but the clock standing still
for `limit_s`: a livelock. Either raises `Hang` from whatever the main thread is executing, so
the traceback (and vfslab.failure's report) names the loop's own line.

It uses SIGALRM and an interval timer, so it works only in a process's main thread on a
system that has them (the command line, the local pool's workers; not tasks run in threads,
as Dask's are), and stays off where another handler owns SIGALRM. It costs the engine one
counter per step.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vfslab.sim.engine import Engine

LIMIT_S = 60.0


class Hang(Exception):
    """The engine made no progress for the watchdog's limit of wall time."""


@contextmanager
def watchdog(m: Engine, limit_s: float = LIMIT_S) -> Iterator[None]:
    """Watch `m` while the block runs (see the module doc); `limit_s` 0 turns it off."""
    if (limit_s <= 0 or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None)):
        yield
        return
    tick = min(1.0, limit_s / 4)
    last = [m.nsteps, m.now]
    stuck = [0.0, 0.0]                   # wall seconds: no step begun; clock standing

    def on_tick(_signum: int, _frame: FrameType | None) -> None:
        steps, now = m.nsteps, m.now
        stuck[0] = stuck[0] + tick if steps == last[0] else 0.0
        stuck[1] = stuck[1] + tick if now == last[1] else 0.0
        last[0], last[1] = steps, now
        if stuck[0] >= limit_s:
            cur = m.cur
            who = cur.describe() if cur is not None else "the event loop"
            raise Hang(f"no progress for {stuck[0]:.0f} s of wall time: {who} has run since "
                       f"emulated time {now / 1e9:.6f} s without sleeping or yielding (an "
                       f"endless loop?)")
        if stuck[1] >= limit_s:
            raise Hang(f"emulated time has stood at {now / 1e9:.6f} s for {stuck[1]:.0f} s of "
                       f"wall time while threads ran (a livelock: threads waking each other "
                       f"with no time passing?)")

    old = signal.signal(signal.SIGALRM, on_tick)
    signal.setitimer(signal.ITIMER_REAL, tick, tick)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
