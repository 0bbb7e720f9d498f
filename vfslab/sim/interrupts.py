"""Interrupts and spl(9) on the emulated CPUs.

A device or timer posts an interrupt (an `Intr`) for a time. It *arrives* at its CPU by one
path, `_deliver`: from the event queue when its time comes; at an interrupt point of the
running code once that code's local clock has passed its time; at the end of a thread's step
for what came due during it; or early, with `irq_stress`, from a seeded draw. On arrival it is
taken at once if the CPU's spl allows, inside whatever runs there, else held pending and taken
when the spl drops below its level, highest level first.

Interrupt points. Every spl change, lock operation and guarded-field access calls `ipoint()`:
hardware would take a due interrupt at that instruction. With `irq_stress` > 0 an interrupt
point also takes the next posted interrupt early with that probability, from a seeded stream:
the deterministic rule that makes rare windows (an interrupt inside a three-instruction
critical section) happen in a short run, reproducibly. Early delivery moves device
completions earlier, so stress runs are for protocol checking, not for performance numbers.
Mode `locked` (`vfslab hunt`) aims the stress at critical sections: only at an interrupt
point where the running context holds a spin lock of a kind interrupt handlers have taken
(learned as the run goes), and then one of the interrupts due on this CPU that its spl lets
in (a seeded choice, whatever else is due first) arrives there: the schedule of a
lock-protocol violation, where the handler wants a lock its own CPU holds.

Multiprocessors. An interrupt for another CPU arrives at an interrupt point only while no
spin lock is held anywhere: had the other CPU's handler wanted such a lock, it would have spun
until the release, which is the same as running it after the release.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any

from vfslab.sim.context import CPU, IntrFrame
from vfslab.sim.intr import Intr
from vfslab.sim.ipl import IPL_BIO, IPL_NONE

_new = object.__new__

if TYPE_CHECKING:
    from vfslab.sim.context import Context
    from vfslab.sim.costs import CostModel
    from vfslab.sim.events import Event
    from vfslab.sim.trace import EngineTracer


class Interrupts:
    """Mixin of Engine: posting and delivering interrupts, running handlers, spl."""

    cpus: list[CPU]
    cur: Context | None
    now: int
    costs: CostModel
    checker: Any
    tracer: EngineTracer | None
    nspin_held: int
    irq_lock_keys: set[object]
    stats: Any
    _heap: list[Event]
    _seq: int
    time: Callable[[], int]

    def _init_interrupts(self, irq_stress: float, stress_rng: random.Random,
                         mode: str = "next") -> None:
        self.irq_stress = irq_stress
        self._stress_locked = mode == "locked"
        self._stress_rng = stress_rng
        # interrupt latency per level: [count, total_ns, max_ns]
        self._intr_lat: list[list[int]] = [[0, 0, 0] for _ in range(16)]
        self._intr_entry_ns = self.costs.intr_entry
        self._intr_exit_ns = self.costs.intr_exit
        self._irq_fn = self._deliver          # the queue event of an interrupt (identity)

    def intr_latency(self) -> dict[int, list[int]]:
        """Interrupt latency (posting to handler start) per level: [count, total, max] ns."""
        return {lvl: list(r) for lvl, r in enumerate(self._intr_lat) if r[0]}

    # ---- posting --------------------------------------------------------------------------
    def post_intr(self, cpu: int | CPU, level: int, handler: Callable[[Any], None], arg: Any,
                  at: int | None = None, name: str | None = None) -> Intr:
        """A device or timer requests an interrupt at `level` on a CPU at `at` (default now)."""
        c = self.cpus[cpu] if type(cpu) is int else cpu
        if at is None:
            cur = self.cur
            at = cur.cpu.t if cur is not None else self.now
        seq = self._seq = self._seq + 1
        # Intr(...) without the Python-level __init__ call: posting is on every I/O's path
        irq = _new(Intr)
        irq.level = level
        irq.handler = handler
        irq.arg = arg
        irq.name = name if name is not None else str(getattr(handler, "__name__", "intr"))
        irq.cpu = c  # type: ignore[assignment]
        irq.time = at
        irq.seq = seq
        irq.cancelled = False
        heappush(self._heap, (at, seq, self._irq_fn, irq))
        return irq

    def cancel_intr(self, irq: Intr) -> None:
        """Withdraw a posted interrupt that has not been taken yet (callout_stop)."""
        irq.cancelled = True

    # ---- arrival: the one path ------------------------------------------------------------
    def _deliver(self, irq: Intr, t: int = -1) -> None:
        """The interrupt reaches its CPU at time `t` (default, from the queue: the loop's
        now): the CPU's clock catches up to t, then the handler runs at once if the spl
        allows, else the interrupt waits pending."""
        if irq.cancelled:
            return
        cpu = irq.cpu
        if t < 0:
            t = self.now
        if cpu.t < t:
            cpu.t = t
        if irq.level > cpu.ipl:
            self._run_intr(cpu, irq)
        else:
            cpu.pending.append(irq)

    def ipoint(self) -> None:
        """An interrupt point: take any interrupt whose time has come (see the module doc)."""
        heap = self._heap
        if not heap:
            return
        head = heap[0]
        cur: Any = self.cur
        is_irq = head[2] is self._irq_fn
        if is_irq and head[0] <= cur.cpu.t:
            self._take_due(cur.cpu, True)
        elif self.irq_stress:
            if self._stress_locked:
                if cur.nspin and self._in_irq_section(cur) \
                        and self._stress_rng.random() < self.irq_stress:
                    self._pull_for(cur.cpu)
            elif is_irq and self._stress_rng.random() < self.irq_stress:
                self._pull_forward(cur.cpu)

    def _take_due(self, cpu: CPU, at_ipoint: bool) -> None:
        """Deliver, in order, every interrupt due by the CPU's clock. At an interrupt point
        another CPU's interrupt waits while a spin lock is held; at the end of a step (the
        CPU idle) it does not."""
        heap = self._heap
        fn = self._irq_fn
        while heap:
            head = heap[0]
            if head[0] > cpu.t or head[2] is not fn:
                return
            irq: Intr = head[3]
            if at_ipoint and irq.cpu is not cpu and self.nspin_held and not irq.cancelled:
                return
            heappop(heap)
            self._deliver(irq, irq.time)

    def _pull_forward(self, cpu: CPU) -> None:
        """irq_stress: the next posted interrupt arrives now, early."""
        heap = self._heap
        irq: Intr = heap[0][3]
        if irq.cpu is not cpu and self.nspin_held:
            return
        heappop(heap)
        if irq.cancelled:
            return
        self.stats.npulled += 1
        self._deliver(irq, cpu.t)

    def _in_irq_section(self, cur: Any) -> bool:
        """Does the running context hold a spin lock of a kind some interrupt handler has
        taken (learned as the run goes, as lockdep learns irq-safe classes)?"""
        keys = self.irq_lock_keys
        return any(getattr(h, "cls", None) in keys for h in cur.held)

    def _pull_for(self, cpu: CPU) -> None:
        """irq_stress, mode locked: one of the interrupts posted for `cpu` that its spl lets
        in now (a seeded choice among them, so a disk completion is as likely as the next
        clock tick) arrives now."""
        heap = self._heap
        fn = self._irq_fn
        ipl = cpu.ipl
        # one the spl lets in now: a masked one would only wait for the splx
        ok = [i for i, ev in enumerate(heap) if ev[2] is fn and ev[3].cpu is cpu
              and not ev[3].cancelled and ev[3].level > ipl]
        if not ok:
            return
        i = ok[self._stress_rng.randrange(len(ok))]
        irq: Intr = heap[i][3]
        heap[i] = heap[-1]
        heap.pop()
        heapify(heap)
        self.stats.npulled += 1
        self._deliver(irq, cpu.t)

    # ---- running a handler ----------------------------------------------------------------
    def _run_intr(self, cpu: CPU, irq: Intr) -> None:
        outer = cpu.ctx
        prev = self.cur
        # interrupt frames are reused per nesting depth (a handler that leaked a lock keeps
        # its frame: the lock still names it)
        pool = cpu.frames
        depth = cpu.depth
        level = irq.level
        try:
            frame = pool[depth]
        except IndexError:
            frame = None
        if frame is not None and not frame.held:
            frame.irq = irq
            frame.outer = outer
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
        lat = start - irq.time
        rec = self._intr_lat[level]
        rec[0] += 1
        if lat > 0:
            rec[1] += lat
            if lat > rec[2]:
                rec[2] = lat
        cpu.t = start + self._intr_entry_ns
        cpu.ctx = frame
        self.cur = frame
        tr = self.tracer
        if tr is not None:
            tr.intr_begin(cpu, irq, start)
        irq.handler(irq.arg)
        end = cpu.t + self._intr_exit_ns
        cpu.t = end
        if self.checker is not None:
            self.checker.on_intr_exit(frame)
        if tr is not None:
            tr.intr_end(cpu, irq, end, saved)
        cpu.intr_ns += end - start
        if outer is None:
            cpu.busy_ns += end - start
        cpu.depth = depth
        cpu.ctx = outer
        self.cur = prev
        ipl = cpu.ipl
        if ipl != saved:
            # back to the interrupted level (_setipl, inline: this is the hot path)
            cpu.ipl = saved
            if saved >= IPL_BIO:
                if ipl < IPL_BIO:
                    cpu.high_since = end
            elif ipl >= IPL_BIO:
                cpu.bio_ns += end - cpu.high_since
                cpu.high_since = -1
            if saved < ipl and cpu.pending and cpu.deliver_depth != depth:
                self._deliver_pending(cpu)
        elif cpu.pending and cpu.deliver_depth != depth:
            self._deliver_pending(cpu)

    def _deliver_pending(self, cpu: CPU) -> None:
        """Take pending interrupts the spl now allows, highest level first. A handler this
        loop runs does not deliver the next pending one itself on its way out: the loop
        does, in the same order, without a Python frame per interrupt (found by the stress
        loop: 490 interrupts pending at once on `stream` overflowed the stack)."""
        pend = cpu.pending
        outer = cpu.deliver_depth
        cpu.deliver_depth = cpu.depth
        while pend:
            best = None
            for irq in pend:
                if irq.level > cpu.ipl and (best is None or irq.level > best.level):
                    best = irq
            if best is None:
                break
            pend.remove(best)
            if not best.cancelled:
                self._run_intr(cpu, best)
        cpu.deliver_depth = outer

    # ---- spl(9) ---------------------------------------------------------------------------
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
        if self.tracer is not None:
            self.tracer.spl(cpu, cpu.t)
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
        if self.tracer is not None:
            self.tracer.spl(cpu, cpu.t)
        self.ipoint()

    def spl0(self) -> None:
        self.splx(IPL_NONE)

    def curipl(self) -> int:
        return self.cur.cpu.ipl  # type: ignore[union-attr]
