"""The emulation engine of one machine: a clock in integer nanoseconds and a deterministic
event queue (events.py), CPUs with spl levels and interrupt delivery (interrupts.py), and
kernel threads that sleep and wake (threads.py). It knows nothing of the system it runs: the
emulated kernel registers its own functions for call chains (stack.py).

Determinism: the queue breaks ties by posting order and every random choice comes from a
named stream seeded by the run's seed (`random(name)`), so a run is a pure function of its
inputs and seed.

Multiprocessors: host execution is sequential; emulated CPUs interleave at thread steps and at
interrupt points (interrupts.py).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from vfslab.sim.context import CPU, SRUN, SSLEEP, SZOMB, Context, Thread
from vfslab.sim.costs import CostModel
from vfslab.sim.events import EventQueue
from vfslab.sim.interrupts import Interrupts
from vfslab.sim.panic import Panic
from vfslab.sim.stack import add_boundary
from vfslab.sim.threads import EWOULDBLOCK, QUANTUM_NS, Threads
from vfslab.sim.trace import EngineTracer

NS_PER_S = 1_000_000_000


class Stats:
    """Engine-wide counters the metrics and `compare` read; cheap enough to keep always."""

    __slots__ = ("nswitch", "npulled", "wakeup_latency")

    def __init__(self) -> None:
        self.nswitch = 0
        self.npulled = 0
        # from wakeup() to the woken thread running: [count, total_ns, max_ns]
        self.wakeup_latency = [0, 0, 0]


class Engine(EventQueue, Interrupts, Threads):
    """One emulated machine's clock, CPUs, interrupts and threads."""

    def __init__(self, ncpus: int = 1, seed: int = 0, costs: CostModel | None = None,
                 irq_stress: float = 0.0, hz: int = 100, irq_stress_mode: str = "next"
                 ) -> None:
        if ncpus < 1:
            raise ValueError("ncpus must be at least 1")
        if not 0.0 <= irq_stress <= 1.0:
            raise ValueError("irq_stress is a probability, from 0 to 1")
        if irq_stress_mode not in ("next", "locked"):
            raise ValueError("irq_stress_mode is next or locked")
        self._init_events(seed)
        self.cpus = [CPU(i) for i in range(ncpus)]
        self.cur: Context | None = None
        self.runq: deque[Thread] = deque()
        self.nsteps = 0                  # thread steps begun (the watchdog's progress)
        self.sleepq: dict[object, list[Thread]] = {}
        # note each thread's longest sleep (Thread.wait_ns): on when a per-call record
        # wants it, off for the engine's own speed
        self.track_waits = False
        self.threads: list[Thread] = []
        self.checker: Any = None
        self.tracer: EngineTracer | None = None     # a timeline being written (sim/trace.py)
        self.costs = costs or CostModel()
        self.nspin_held = 0
        # keys (the kernel's lock classes) of spin locks taken by interrupt handlers so far:
        # irq_stress_mode=locked aims at critical sections of these
        self.irq_lock_keys: set[object] = set()
        self.stats = Stats()
        self._ctxsw_ns = self.costs.ctxsw
        self.hz = hz
        self.tick_ns = NS_PER_S // hz
        self._init_interrupts(irq_stress, self.random("irq-points"), irq_stress_mode)

    def reset_accounting(self) -> None:
        """Count CPU time, time at or above IPL_BIO, interrupts, their latencies, context
        switches and wakeup latencies afresh from now (a measured run after its setup; they
        counted from boot, so a run's "CPU time per operation" held the setup's work, found
        when laying files out made it 2.4 times smaller on database). A step or handler
        running now is counted whole when it ends."""
        now = self.now
        for cpu in self.cpus:
            cpu.busy_ns = cpu.bio_ns = cpu.intr_ns = cpu.nintr = 0
            if cpu.high_since >= 0:
                cpu.high_since = max(cpu.t, now)
        self.stats.nswitch = 0
        self.stats.wakeup_latency = [0, 0, 0]
        self._intr_lat = [[0, 0, 0] for _ in self._intr_lat]


# the frames that start a context: a call chain stops there
for _code in (Engine._step.__code__, Engine._run_intr.__code__, Engine.run.__code__):
    add_boundary(_code)

# Re-exported so callers need one import for the common names.
__all__ = ["EWOULDBLOCK", "NS_PER_S", "QUANTUM_NS", "Engine", "Panic", "SRUN", "SSLEEP", "SZOMB",
           "Thread"]
