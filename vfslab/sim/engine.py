"""The emulation engine: a clock in integer nanoseconds, an event queue, CPUs with spl levels,
interrupt delivery, and kernel threads that sleep and wake (tsleep(9)/wakeup(9)).

Time. The event queue orders events by (time, sequence number), so ties break in the order the
events were posted: a run is a pure function of its inputs and seed. Each CPU has a local clock
that advances with the CPU time charged by the code running on it (`charge`). A thread runs from
one sleep to the next in one *step*; during a step its CPU's clock moves ahead of the event loop.

Interrupt points. Every spl change, lock operation and guarded-field access calls `ipoint()`.
There, an interrupt whose time has come (its time <= the CPU's local clock) is taken at once, in
the middle of the thread's critical section, exactly as hardware would take it at that
instruction; if the CPU's spl masks it, it stays pending and is taken when the spl drops. With
`irq_stress` > 0 an interrupt point also takes the next posted interrupt early with that
probability, drawn from a seeded stream: the deterministic, seeded rule that makes rare windows
(an interrupt inside a three-instruction critical section) happen in a short run, reproducibly.
Early delivery moves device completions earlier, so stress runs are for protocol checking, not
for performance numbers.

Multiprocessors. Host execution is sequential; emulated CPUs interleave at thread steps and at
interrupt points. An interrupt for another CPU is taken at an interrupt point only while no spin
lock is held anywhere: had the other CPU's handler wanted such a lock, it would have spun until
the release, which is the same as running it after the release.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Generator, Iterator
from heapq import heappop, heappush
from typing import Any

from vfslab.sim.context import CPU, SRUN, SSLEEP, SZOMB, Context, Intr, IntrFrame, Thread
from vfslab.sim.costs import CostModel
from vfslab.sim.ipl import IPL_BIO, IPL_NONE, IPL_SOFTCLOCK, ipl_name
from vfslab.sim.panic import Panic, SimulationError
from vfslab.sim.stack import add_boundary, call_chain

EWOULDBLOCK = 35     # tsleep's timeout return value, as errno EWOULDBLOCK
NS_PER_S = 1_000_000_000
QUANTUM_NS = 10_000_000      # a thread that runs this long without sleeping yields

Event = tuple[int, int, Callable[[Any], None], Any]


def _sleep_wait() -> Generator[None, Any, Any]:
    """The one yield of a sleep: the engine resumes it with the wakeup value."""
    v = yield
    return v


class Stats:
    """Engine-wide counters the metrics and `compare` read; cheap enough to keep always."""

    __slots__ = ("nswitch", "npulled", "wakeup_latency")

    def __init__(self) -> None:
        self.nswitch = 0
        self.npulled = 0
        # from wakeup() to the woken thread running: [count, total_ns, max_ns]
        self.wakeup_latency = [0, 0, 0]


class Engine:
    """One emulated machine's clock, CPUs, interrupts and threads."""

    def __init__(self, ncpus: int = 1, seed: int = 0, costs: CostModel | None = None,
                 irq_stress: float = 0.0, hz: int = 100) -> None:
        if ncpus < 1:
            raise ValueError("ncpus must be at least 1")
        if not 0.0 <= irq_stress <= 1.0:
            raise ValueError("irq_stress is a probability, from 0 to 1")
        self.now = 0
        self._heap: list[Event] = []
        self._seq = 0
        self.seed = seed
        self.cpus = [CPU(i) for i in range(ncpus)]
        self.cur: Context | None = None
        self.runq: deque[Thread] = deque()
        self.sleepq: dict[object, list[Thread]] = {}
        self.threads: list[Thread] = []
        self.checker: Any = None
        self.costs = costs or CostModel()
        self.irq_stress = irq_stress
        self._stress_rng = self.random("irq-points")
        self.nspin_held = 0
        self.stats = Stats()
        # interrupt latency per level: [count, total_ns, max_ns]
        self._intr_lat: list[list[int]] = [[0, 0, 0] for _ in range(16)]
        self._intr_entry_ns = self.costs.intr_entry
        self._intr_exit_ns = self.costs.intr_exit
        self._ctxsw_ns = self.costs.ctxsw
        self.hz = hz
        self.tick_ns = NS_PER_S // hz
        self._irq_fn = self._irq_event
        self._dispatch_fn = self._dispatch
        self._running = False
        # CPUs made busy by a wakeup during the current event: dispatched right after it,
        # without a trip through the heap, when nothing else is due first
        self._immediate: list[CPU] = []
        self._cancelled: set[int] = set()   # sequence numbers of withdrawn interrupts
        self._nimmediate = 0

    # ---- randomness -------------------------------------------------------------------------
    def random(self, stream: str) -> random.Random:
        """An independent seeded stream: adding a consumer never shifts another's draws."""
        return random.Random(f"vfslab:{self.seed}:{stream}")

    # ---- clock and events -------------------------------------------------------------------
    def time(self) -> int:
        """The current time as the running code sees it: its CPU's local clock."""
        cur = self.cur
        return cur.cpu.t if cur is not None else self.now

    def charge(self, ns: int) -> None:
        """Charge CPU time to the running context."""
        self.cur.cpu.t += ns  # type: ignore[union-attr]

    def _push(self, t: int, fn: Callable[[Any], None], arg: Any) -> None:
        self._seq += 1
        heappush(self._heap, (t, self._seq, fn, arg))

    def at(self, t: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call fn(arg) at time t outside any emulated context, charging no CPU time: for
        observers (metric samplers), never for emulated kernel code."""
        self._push(t, fn, arg)

    def run(self, until: int | None = None) -> None:
        """Process events in order until none is left or the next is after `until`.

        An emulated panic (including a deadlock) propagates to the caller with its report.
        """
        heap = self._heap
        imm = self._immediate
        pop = heappop
        limit = until if until is not None else 1 << 62
        self._running = True
        try:
            while heap or imm:
                if imm:
                    self._run_immediate(until)
                    if not heap:
                        continue
                if heap[0][0] > limit:
                    break
                t, _, fn, arg = pop(heap)
                if t > self.now:
                    self.now = t
                fn(arg)
        finally:
            self._running = False
        if until is not None and until > self.now:
            self.now = until

    def _run_immediate(self, until: int | None) -> None:
        imm = self._immediate
        heap = self._heap
        while imm:
            cpu = imm[0]
            t = cpu.t if cpu.t > self.now else self.now
            if (heap and heap[0][0] < t) or (until is not None and t > until):
                # something is due first: go through the heap after all
                for c in imm:
                    self._push(c.t if c.t > self.now else self.now, self._dispatch_fn, c)
                imm.clear()
                return
            imm.pop(0)
            if t > self.now:
                self.now = t
            self._nimmediate += 1
            self._dispatch(cpu)

    def pending_events(self) -> int:
        return len(self._heap)

    def events_processed(self) -> int:
        """Events taken from the queue or dispatched at once (for run summaries)."""
        return self._seq - len(self._heap) + self._nimmediate

    def intr_latency(self) -> dict[int, list[int]]:
        """Interrupt latency (posting to handler start) per level: [count, total, max] ns."""
        return {lvl: list(r) for lvl, r in enumerate(self._intr_lat) if r[0]}

    # ---- interrupts ---------------------------------------------------------------------------
    def post_intr(self, cpu: int | CPU, level: int, handler: Callable[[Any], None], arg: Any,
                  at: int | None = None, name: str | None = None) -> Intr:
        """A device or timer requests an interrupt at `level` on a CPU at `at` (default now)."""
        c = cpu if isinstance(cpu, CPU) else self.cpus[cpu]
        t = self.time() if at is None else at
        self._seq += 1
        seq = self._seq
        irq = (level, handler, arg, name or str(getattr(handler, "__name__", "intr")), c, t, seq)
        heappush(self._heap, (t, seq, self._irq_fn, irq))
        return irq

    def cancel_intr(self, irq: Intr) -> None:
        """Withdraw a posted interrupt that has not been taken yet (callout_stop)."""
        self._cancelled.add(irq[6])

    def _is_cancelled(self, irq: Intr) -> bool:
        c = self._cancelled
        if c and irq[6] in c:
            c.discard(irq[6])
            return True
        return False

    def _irq_event(self, irq: Intr) -> None:
        if self._cancelled and self._is_cancelled(irq):
            return
        cpu = irq[4]
        if cpu.t < self.now:
            cpu.t = self.now
        if irq[0] > cpu.ipl:
            self._run_intr(cpu, irq)
        else:
            cpu.pending.append(irq)

    def _arrive(self, irq: Intr) -> None:
        cpu = irq[4]
        if irq[0] > cpu.ipl:
            self._run_intr(cpu, irq)
        else:
            cpu.pending.append(irq)

    def _run_intr(self, cpu: CPU, irq: Intr) -> None:
        outer = cpu.ctx
        prev = self.cur
        # interrupt frames are reused per nesting depth (a handler that leaked a lock keeps
        # its frame: the lock still names it)
        pool = cpu.frames
        depth = cpu.depth
        level = irq[0]
        if depth < len(pool) and not pool[depth].held:
            frame = pool[depth]
            frame.irq = irq
            frame.outer = outer
            frame.name = irq[3]
            frame.level = level
        else:
            frame = IntrFrame(irq, cpu, outer)
            if depth < len(pool):
                pool[depth] = frame
            else:
                pool.append(frame)
        cpu.depth = depth + 1
        saved = cpu.ipl
        start = cpu.t
        if level > saved:
            cpu.ipl = level
            if level >= IPL_BIO > saved:
                cpu.high_since = start
        lat = start - irq[5]
        rec = self._intr_lat[level]
        rec[0] += 1
        if lat > 0:
            rec[1] += lat
            if lat > rec[2]:
                rec[2] = lat
        cpu.t = start + self._intr_entry_ns
        cpu.ctx = frame
        self.cur = frame
        irq[1](irq[2])
        end = cpu.t + self._intr_exit_ns
        cpu.t = end
        if self.checker is not None:
            self.checker.on_intr_exit(frame)
        cpu.intr_ns += end - start
        if outer is None:
            cpu.busy_ns += end - start
        cpu.depth = depth
        cpu.ctx = outer
        self.cur = prev
        if cpu.ipl != saved:
            self._setipl(cpu, saved)
        elif cpu.pending:
            self._deliver_pending(cpu)

    def _setipl(self, cpu: CPU, new: int) -> None:
        old = cpu.ipl
        if new == old:
            return
        cpu.ipl = new
        if new >= IPL_BIO:
            if old < IPL_BIO:
                cpu.high_since = cpu.t
        elif old >= IPL_BIO:
            cpu.bio_ns += cpu.t - cpu.high_since
            cpu.high_since = -1
        if new < old and cpu.pending:
            self._deliver_pending(cpu)

    def _deliver_pending(self, cpu: CPU) -> None:
        pend = cpu.pending
        while pend:
            best = None
            for irq in pend:
                if irq[0] > cpu.ipl and (best is None or irq[0] > best[0]):
                    best = irq
            if best is None:
                return
            pend.remove(best)
            if not (self._cancelled and self._is_cancelled(best)):
                self._run_intr(cpu, best)

    def ipoint(self) -> None:
        """An interrupt point: take any interrupt whose time has come (see the module doc)."""
        heap = self._heap
        if not heap:
            return
        head = heap[0]
        if head[2] is not self._irq_fn:
            return
        cpu = self.cur.cpu  # type: ignore[union-attr]
        if head[0] <= cpu.t:
            self._take_due(cpu)
        elif self.irq_stress and self._stress_rng.random() < self.irq_stress:
            self._pull_forward(cpu)

    def _take_due(self, cpu: CPU) -> None:
        heap = self._heap
        fn = self._irq_fn
        while heap:
            head = heap[0]
            if head[0] > cpu.t or head[2] is not fn:
                return
            irq: Intr = head[3]
            if self._cancelled and self._is_cancelled(irq):
                heappop(heap)
                continue
            tcpu = irq[4]
            if tcpu is not cpu:
                if self.nspin_held:
                    return
                if tcpu.t < head[0]:
                    tcpu.t = head[0]
            heappop(heap)
            self._arrive(irq)

    def _pull_forward(self, cpu: CPU) -> None:
        heap = self._heap
        irq: Intr = heap[0][3]
        tcpu = irq[4]
        if tcpu is not cpu:
            if self.nspin_held:
                return
            if tcpu.t < cpu.t:
                tcpu.t = cpu.t
        heappop(heap)
        if self._cancelled and self._is_cancelled(irq):
            return
        self.stats.npulled += 1
        self._arrive(irq)

    def _drain(self, cpu: CPU) -> None:
        """After a step: take what came due during it, the CPU now idle at IPL_NONE."""
        heap = self._heap
        fn = self._irq_fn
        while heap:
            head = heap[0]
            if head[0] > cpu.t or head[2] is not fn:
                return
            heappop(heap)
            irq: Intr = head[3]
            if self._cancelled and self._is_cancelled(irq):
                continue
            tcpu = irq[4]
            if tcpu.t < head[0]:
                tcpu.t = head[0]
            self._arrive(irq)

    # ---- spl(9) -------------------------------------------------------------------------------
    def splraise(self, level: int) -> int:
        """Raise the CPU's level to at least `level`; return the old level for splx."""
        cur = self.cur
        cpu = cur.cpu  # type: ignore[union-attr]
        self.ipoint()
        cpu.t += self.costs.spl
        old = cpu.ipl
        if level > old:
            self._setipl(cpu, level)
        if self.checker is not None:
            self.checker.on_spl(cur, old, cpu.ipl)
        return old

    def splbio(self) -> int:
        return self.splraise(IPL_BIO)

    def splx(self, s: int) -> None:
        """Restore a level saved by splraise; pending interrupts above it are taken now."""
        cur = self.cur
        cpu = cur.cpu  # type: ignore[union-attr]
        cpu.t += self.costs.spl
        old = cpu.ipl
        if self.checker is not None:
            self.checker.on_spl(cur, old, s)
        self._setipl(cpu, s)
        self.ipoint()

    def spl0(self) -> None:
        self.splx(IPL_NONE)

    def curipl(self) -> int:
        return self.cur.cpu.ipl  # type: ignore[union-attr]

    # ---- threads ------------------------------------------------------------------------------
    def spawn(self, name: str, body: Generator[Any, Any, Any], proc: object = None) -> Thread:
        """Create a kernel thread running generator `body`; it becomes runnable now."""
        td = Thread(name, body, len(self.threads) + 1)
        td.proc = proc
        self.threads.append(td)
        self.runq.append(td)
        self._kick(self.time())
        return td

    def _kick(self, t: int) -> None:
        for cpu in self.cpus:
            if cpu.idle:
                cpu.idle = False
                if cpu.t < t:
                    cpu.t = t
                if self._running:
                    self._immediate.append(cpu)
                else:
                    self._push(cpu.t, self._dispatch_fn, cpu)
                return
        for cpu in self.cpus:
            if cpu.running is not None:
                cpu.want_resched = True

    def _dispatch(self, cpu: CPU) -> None:
        if cpu.t < self.now:
            cpu.t = self.now
        runq = self.runq
        heap = self._heap
        while runq:
            td = runq.popleft()
            if td.state != SRUN:
                continue
            self._step(cpu, td)
            if heap and heap[0][0] < cpu.t:
                if runq:
                    self._push(cpu.t, self._dispatch_fn, cpu)
                    return
                break
        cpu.idle = True
        if runq:   # woken by an interrupt taken while we were finishing
            cpu.idle = False
            self._push(cpu.t, self._dispatch_fn, cpu)

    def _step(self, cpu: CPU, td: Thread) -> None:
        """Run a thread until it sleeps, yields or exits."""
        t = cpu.t
        if cpu.last_thread is not td:
            t += self._ctxsw_ns
            self.stats.nswitch += 1
            td.nswitch += 1
            cpu.last_thread = td
        if td.woken_at >= 0:
            lat = t - td.woken_at
            wl = self.stats.wakeup_latency
            wl[0] += 1
            wl[1] += lat
            if lat > wl[2]:
                wl[2] = lat
            td.woken_at = -1
        cpu.t = t
        cpu.step_start = t
        td.cpu = cpu
        cpu.running = td
        cpu.ctx = td
        self.cur = td
        cpu.want_resched = False
        if td.ipl:
            self._setipl(cpu, td.ipl)
        val = td.wakeval
        td.wakeval = None
        try:
            td.gen.send(val)
        except StopIteration as stop:
            td.state = SZOMB
            td.result = stop.value
        end = cpu.t
        td.cpu_ns += end - t
        cpu.busy_ns += end - t
        cpu.running = None
        cpu.ctx = None
        self.cur = None
        ipl = cpu.ipl
        td.ipl = ipl
        if ipl:
            self._setipl(cpu, IPL_NONE)
        state = td.state
        if state == SRUN:
            self.runq.append(td)
        elif state == SSLEEP:
            if self.checker is not None:
                self.checker.on_sleep(td, td.wmesg)
        elif state == SZOMB:
            if self.checker is not None:
                self.checker.on_thread_exit(td)
            for cb in td.on_exit:
                cb(td)
            self._wakeup_at(td, end)
        heap = self._heap
        if heap and heap[0][0] <= end and heap[0][2] is self._irq_fn:
            self._drain(cpu)

    # ---- sleep and wakeup (tsleep(9)) ---------------------------------------------------------
    def tsleep(self, ident: object, wmesg: str, timo: int = 0) -> Generator[None, Any, Any]:
        """Sleep on `ident` until wakeup(ident) or `timo` ns (0: no timeout). Use with
        `yield from`; returns 0 when woken, EWOULDBLOCK on timeout.

        Calling it registers the sleep at once, so it panics even in a handler that forgets
        `yield from`.
        """
        cur = self.cur
        if cur is None or cur.intr:
            where = cur.describe() if cur is not None else "no context"
            raise Panic(f"tsleep(\"{wmesg}\") from {where}: an interrupt handler cannot sleep",
                        where, [call_chain(2)], self.time())
        td: Thread = cur  # type: ignore[assignment]
        td.state = SSLEEP
        td.wchan = ident
        td.wmesg = wmesg
        td.sleepgen += 1
        q = self.sleepq.get(ident)
        if q is None:
            self.sleepq[ident] = [td]
        else:
            q.append(td)
        if timo > 0:
            self.post_intr(self.cpus[0], IPL_SOFTCLOCK, self._sleep_timeout, (td, td.sleepgen),
                           at=td.cpu.t + timo, name="softclock")
        return _sleep_wait()

    def _sleep_timeout(self, arg: tuple[Thread, int]) -> None:
        td, gen = arg
        if td.state != SSLEEP or td.sleepgen != gen:
            return
        q = self.sleepq.get(td.wchan)
        if q is not None:
            q.remove(td)
            if not q:
                del self.sleepq[td.wchan]
        self._make_runnable(td, EWOULDBLOCK, self.time())

    def _make_runnable(self, td: Thread, val: object, t: int) -> None:
        td.state = SRUN
        td.wchan = None
        td.wakeval = val
        cpu = td.cpu
        if cpu is not None and cpu.running is td:
            return     # woken before it got off the CPU: the step's end requeues it
        td.woken_at = t
        self.runq.append(td)
        self._kick(t)

    def wakeup(self, ident: object) -> None:
        """Wake every thread asleep on `ident`, in the order they went to sleep."""
        q = self.sleepq.pop(ident, None)
        if q is None:
            return
        cur = self.cur
        t = cur.cpu.t if cur is not None else self.now
        for td in q:
            self._make_runnable(td, 0, t)

    def _wakeup_at(self, ident: object, t: int) -> None:
        q = self.sleepq.pop(ident, None)
        if q is not None:
            for td in q:
                self._make_runnable(td, 0, t)

    def yield_cpu(self) -> Iterator[None]:
        """Give the CPU to other runnable threads (preemption at a user boundary)."""
        cur = self.cur
        if cur is None or cur.intr:
            raise SimulationError("yield_cpu outside a thread")
        return _sleep_wait()

    def want_resched(self) -> bool:
        """Should the running thread give up the CPU at its next user boundary: a thread was
        woken, or it has run a scheduling quantum (10 ms) without sleeping."""
        cur = self.cur
        if cur is None:
            return False
        cpu = cur.cpu
        return cpu.want_resched or cpu.t - cpu.step_start > QUANTUM_NS

    def join(self, td: Thread) -> Generator[None, Any, None]:
        """Wait for a thread to exit."""
        while td.state != SZOMB:
            yield from self.tsleep(td, "join")

    def sleeping(self) -> list[Thread]:
        return [td for td in self.threads if td.state == SSLEEP]

    def describe_ipl(self) -> str:
        cur = self.cur
        return ipl_name(cur.cpu.ipl) if cur is not None else "idle"


for _code in (Engine._step.__code__, Engine._run_intr.__code__, Engine.run.__code__):
    add_boundary(_code)

# Re-exported so callers need one import for the common names.
__all__ = ["EWOULDBLOCK", "NS_PER_S", "Engine", "Panic", "SRUN", "SSLEEP", "SZOMB", "Thread"]
