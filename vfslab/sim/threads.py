"""Kernel threads on the emulated CPUs: spawning, dispatch, a thread's step, and sleep and
wakeup (tsleep(9)/wakeup(9)).

A kernel thread is a generator; a function that may sleep is a generator called with
`yield from`. A thread runs from one sleep to the next in one *step* on a CPU, whose local
clock moves ahead of the event loop by the CPU time the step charges; a context switch costs
`costs.ctxsw`. A woken thread goes on the run queue, and an idle CPU is kicked to take it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from vfslab.sim.context import CPU, SRUN, SSLEEP, SZOMB, Thread
from vfslab.sim.ipl import IPL_NONE, IPL_SOFTCLOCK, ipl_name
from vfslab.sim.panic import Panic, SimulationError
from vfslab.sim.stack import call_chain

if TYPE_CHECKING:
    from vfslab.sim.context import Context
    from vfslab.sim.events import Event
    from vfslab.sim.intr import Intr
    from vfslab.sim.trace import EngineTracer

EWOULDBLOCK = 35     # tsleep's timeout return value, as errno EWOULDBLOCK
QUANTUM_NS = 10_000_000      # a thread that runs this long without sleeping yields


def _sleep_wait() -> Generator[None, Any, Any]:
    """The one yield of a sleep: the engine resumes it with the wakeup value."""
    v = yield
    return v


class Threads:
    """Mixin of Engine: the run queue, the sleep queues and the threads' steps."""

    cpus: list[CPU]
    cur: Context | None
    now: int
    checker: Any
    tracer: EngineTracer | None
    stats: Any
    runq: deque[Thread]
    nsteps: int
    sleepq: dict[object, list[Thread]]
    track_waits: bool
    threads: list[Thread]
    tick_ns: int
    hz: int
    _heap: list[Event]
    _immediate: list[CPU]
    _running: bool
    _ctxsw_ns: int
    _irq_fn: Callable[..., None]
    time: Callable[[], int]
    _push: Callable[[int, Callable[[Any], None], Any], None]
    _setipl: Callable[[CPU, int], None]
    _take_due: Callable[[CPU, bool], None]
    post_intr: Callable[..., Intr]

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
        """A thread became runnable at t: an idle CPU takes it now (dispatched right after
        the current event), else running CPUs are asked to reschedule."""
        for cpu in self.cpus:
            if cpu.idle:
                cpu.idle = False
                if cpu.t < t:
                    cpu.t = t
                if self._running:
                    self._immediate.append(cpu)
                else:
                    self._push(cpu.t, self._dispatch, cpu)
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
                    self._push(cpu.t, self._dispatch, cpu)
                    return
                break
        cpu.idle = True
        if runq:   # woken by an interrupt taken while we were finishing
            cpu.idle = False
            self._push(cpu.t, self._dispatch, cpu)

    def _step(self, cpu: CPU, td: Thread) -> None:
        """Run a thread until it sleeps, yields or exits."""
        self.nsteps += 1
        t = cpu.t
        switched = cpu.last_thread is not td
        if switched:
            t += self._ctxsw_ns
            self.stats.nswitch += 1
            td.nswitch += 1
            cpu.last_thread = td
        if td.slept_at >= 0:
            slept = t - td.slept_at
            td.slept_at = -1
            if slept > td.wait_ns:
                td.wait_ns = slept
                td.wait_wmesg = td.wmesg
                td.wait_chan = td.slept_on
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
        tr = self.tracer
        if tr is not None:
            tr.step_begin(cpu, td, t, switched)
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
        if tr is not None:
            # before the spl drops: what that lets in runs after the step, not inside it
            tr.step_end(cpu, td, end)
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
            self._take_due(cpu, False)     # what came due during the step, the CPU now idle

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
        if self.track_waits:
            td.slept_at = td.cpu.t if td.cpu is not None else self.now
            td.slept_on = ident
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
        if self.tracer is not None:
            self.tracer.wakeup(self.cur, td, t)
        self.runq.append(td)
        self._kick(t)

    def wakeup(self, ident: object) -> None:
        """Wake every thread asleep on `ident`, in the order they went to sleep."""
        q = self.sleepq.pop(ident, None)
        if q is None:
            return
        cur = self.cur
        t = cur.cpu.t if cur is not None else self.now
        runq = self.runq
        kick = self._kick
        tr = self.tracer
        for td in q:
            # _make_runnable, inline (wakeup is the engine's hottest call)
            td.state = SRUN
            td.wchan = None
            td.wakeval = 0
            cpu = td.cpu
            if cpu is not None and cpu.running is td:
                continue
            td.woken_at = t
            if tr is not None:
                tr.wakeup(cur, td, t)
            runq.append(td)
            kick(t)

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

