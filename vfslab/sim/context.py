"""Execution contexts: kernel threads (LWPs) and interrupt frames, and the CPUs they run on.

A kernel thread is a generator: a function that may sleep is a generator and is called with
`yield from`; an interrupt handler is a plain function, so it cannot sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from vfslab.sim.intr import Intr
from vfslab.sim.ipl import IPL_NONE, ipl_name

# Thread states, after NetBSD's LSRUN/LSSLEEP/LSZOMB.
SRUN = 1      # runnable or running
SSLEEP = 2    # asleep on a wait channel
SZOMB = 3     # exited

ThreadBody = Generator[Any, Any, Any]


class Context:
    """What runs on a CPU: the validator and the lock code see one of these as `curctx`."""

    __slots__ = ("name", "cpu", "held", "nspin", "intr", "level", "nested")

    def __init__(self, name: str, cpu: CPU | None, intr: bool, level: int) -> None:
        self.name = name
        self.cpu: CPU = cpu  # type: ignore[assignment]  # threads get one when dispatched
        self.held: list[Any] = []   # locks held, innermost last (spin and sleep locks)
        self.nspin = 0              # spin locks among them
        # the nesting subclass each held lock was annotated with, by lock (lockdep's
        # subclass; only locks taken with one are here, so it is usually empty)
        self.nested: dict[Any, str] = {}
        self.intr = intr            # True for an interrupt frame
        self.level = level          # the IPL the context was entered at

    def describe(self) -> str:
        return self.name


class Thread(Context):
    """A kernel thread or a process's LWP."""

    __slots__ = ("gen", "state", "wchan", "wmesg", "sleepgen", "wakeval", "ipl", "tid",
                 "cpu_ns", "woken_at", "on_exit", "result", "proc", "nswitch", "slept_at",
                 "slept_on", "wait_ns", "wait_wmesg", "wait_chan")

    def __init__(self, name: str, gen: ThreadBody, tid: int) -> None:
        super().__init__(name, None, False, IPL_NONE)
        self.gen = gen
        self.state = SRUN
        self.wchan: object = None
        self.wmesg = ""
        self.sleepgen = 0
        self.wakeval: object = None
        self.ipl = IPL_NONE         # the spl saved while switched out
        self.tid = tid
        self.cpu_ns = 0             # CPU time consumed
        self.woken_at = -1          # when made runnable by wakeup (for wakeup latency)
        self.on_exit: list[Callable[[Thread], None]] = []
        self.result: object = None
        self.proc: object = None    # the emulated process owning this LWP, if any
        self.nswitch = 0
        # the longest sleep since `wait_ns` was last reset (a caller's per-call record): how
        # long, on what message and channel
        self.slept_at = -1
        self.slept_on: object = None
        self.wait_ns = 0
        self.wait_wmesg = ""
        self.wait_chan: object = None

    def describe(self) -> str:
        return f"thread {self.name}"


class IntrFrame(Context):
    """An interrupt handler running on a CPU, on top of whatever it interrupted. Its name and
    level are its interrupt's (read through, not copied: frames are reused at every
    interrupt)."""

    __slots__ = ("irq", "outer")

    def __init__(self, irq: Intr, cpu: CPU, outer: Context | None) -> None:
        self.cpu = cpu
        self.held = []
        self.nspin = 0
        self.nested = {}
        self.intr = True
        self.irq = irq
        self.outer = outer

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.irq.name

    @property
    def level(self) -> int:  # type: ignore[override]
        return self.irq.level

    def describe(self) -> str:
        return f"interrupt {self.name} at {ipl_name(self.level)} on cpu{self.cpu.index}"


class CPU:
    """One emulated CPU: its local clock, its spl, its pending interrupts and its accounting."""

    __slots__ = ("index", "t", "ipl", "pending", "running", "idle", "ctx",
                 "busy_ns", "high_since", "bio_ns", "intr_ns", "nintr", "want_resched",
                 "last_thread", "frames", "depth", "step_start", "deliver_depth")

    def __init__(self, index: int) -> None:
        self.index = index
        self.t = 0                   # local time: advances with the work charged on this CPU
        self.ipl = IPL_NONE
        self.pending: list[Intr] = []  # interrupts held off by the spl, taken when it drops
        self.running: Thread | None = None
        self.idle = True             # no dispatch scheduled and nothing running
        self.ctx: Context | None = None   # innermost context on this CPU
        self.busy_ns = 0             # time running threads or handlers
        self.high_since = -1         # when the CPU rose to IPL_BIO or above, -1 when below
        self.bio_ns = 0              # time spent at or above IPL_BIO
        self.intr_ns = 0             # time in interrupt handlers
        self.nintr = 0
        self.want_resched = False
        self.last_thread: Thread | None = None
        self.frames: list[IntrFrame] = []   # reusable interrupt frames, by nesting depth
        # the nesting depth at which a _deliver_pending loop is taking pending interrupts
        # (-1: none): a handler it ran leaves the next one to it instead of recursing
        self.deliver_depth = -1
        self.depth = 0
        self.step_start = 0           # when the running thread's step began
