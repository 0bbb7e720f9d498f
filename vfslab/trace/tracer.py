"""`--trace FILE`: a run as a Perfetto timeline (perfetto.py writes it).

What it shows, and where each comes from:
- **CPUs**: a track per CPU with each thread step as a slice named by the thread (the engine's
  step hooks; `switched` = 1 where the step began with a context switch) and interrupt
  handlers nested inside at their level (`ipl`); the CPU's spl level as a counter beside it.
  Wakeups are instants on the waker's CPU with a flow to the woken thread's next step; an
  I/O's submission is an instant with a flow to its biodone, in the completion interrupt.
- **Locks**: a track per lock class; each hold is a slice "holder in function" from the
  acquisition to the release (the lock code's hooks), in lanes where holds overlap.
- **Disks**: a track per disk with each request in service (read or write, what it is, the
  first block, its size, who queued it, how long it waited, and how many requests queued
  before it were still waiting when the elevator chose it: `overtook`), and the queue depth
  (queued and in service) as a counter.
- **Processes**: a process track per emulated process with its system calls (call, path,
  offset, bytes, result or errno, the longest wait), from the per-call records.
- **Writeback**: counters of dirty pages and bytes, pages under write and the oldest dirty
  data's age, from the metrics' samples; each writeback daemon's passes as slices.

Times are emulated ns from the machine's boot. Everything is written as it happens (the per-call
records when the call returns), so memory does not grow with the run; what is still open at
the end (a thread mid-step after a panic, locks still held, requests in service) is closed at
the last instant.
"""

from __future__ import annotations

import itertools
from typing import IO, TYPE_CHECKING, Any

from vfslab.kern.kern_waits import describe_buf
from vfslab.kern.notify import CallRecord, KernelObserver
from vfslab.sim.ipl import ipl_name
from vfslab.sim.trace import EngineTracer
from vfslab.trace.perfetto import INSTANT, SLICE_BEGIN, SLICE_END, Lanes, PerfettoWriter

if TYPE_CHECKING:
    from vfslab.dev.wd import Disk
    from vfslab.kern.buf import buf
    from vfslab.kern.init_main import Kernel
    from vfslab.sim.context import CPU, Context, Thread
    from vfslab.sim.intr import Intr

B_READ = 0x00100000
Hold = tuple[int, int, Lanes, int]
MS = 1_000_000
WORKLOAD_STARTS = "workload starts"


class LockLanes(Lanes):
    """A lock class's lanes, each with its holds' packets by function and holder (built
    once: a hold is then two appends of their numbers)."""

    def __init__(self, w: PerfettoWriter, track: int, name: str) -> None:
        super().__init__(w, track, name)
        self.holds: list[dict[str, dict[str, Hold]]] = [{}]

    def take(self, t: int) -> int:
        lane = super().take(t)
        while len(self.holds) < len(self.tracks):
            self.holds.append({})
        return lane


class Tracer(EngineTracer, KernelObserver):
    """Attach to a kernel before it runs; `close` at the end of the run."""

    def __init__(self, k: Kernel, file: IO[bytes]) -> None:
        self.k = k
        self.file = file
        self.w = w = PerfettoWriter(file)
        m = k.m
        g_cpu = w.track("CPUs", order=1)
        self.cpu_track = [w.track(f"cpu{c.index}", parent=g_cpu, order=2 * c.index + 1)
                          for c in m.cpus]
        self.spl_track = [w.counter_track(f"cpu{c.index} spl", parent=g_cpu)
                          for c in m.cpus]
        self.spl_level = [-1] * len(m.cpus)
        self._spl_tmpl: list[dict[int, int]] = [{} for _ in m.cpus]
        # per CPU: the end packets of the open slices (step and handlers), innermost last
        self.open_cpu: list[list[int]] = [[] for _ in m.cpus]
        self._step_end: dict[tuple[int, str], int] = {}
        self._step_begin: dict[tuple[int, str, int, bool], int] = {}
        self._wakeup: dict[tuple[int, str], int] = {}
        self._intr_tmpl: dict[tuple[int, str, int], tuple[int, int]] = {}
        self._g_locks = w.track("locks", order=2)
        self.lock_lanes: dict[str, LockLanes] = {}
        # open holds by (lock, holder); a recursive hold's outer ones wait in `deeper`
        # open holds by lock (spin) or (lock, holder) (sleep): (begin packet, end packet,
        # lanes, lane); a recursive hold's outer ones wait in `deeper`
        self.holds: dict[object, Hold] = {}
        self.deeper: dict[object, list[Hold]] = {}
        self._g_disks = w.track("disks", order=3)
        self.disk_lanes: dict[str, Lanes] = {}
        self.disk_queue_track: dict[str, int] = {}
        self.waiting: dict[int, tuple[int, int]] = {}     # id(buf) -> (arrival no, time)
        self.in_service: dict[int, tuple[Lanes, int, str]] = {}
        self._arrival = itertools.count(1)
        self.proc_lanes: dict[tuple[int, str], Lanes] = {}
        g_wb = w.track("writeback", order=4)
        self.pass_lanes = Lanes(w, w.track("writeback passes", parent=g_wb), "writeback passes")
        self.counters = {
            "dirty_pages": w.counter_track("dirty pages", parent=g_wb, unit="pages"),
            "dirty_bytes": w.counter_track("dirty bytes", parent=g_wb, unit="bytes"),
            "pageout_pages": w.counter_track("pages under write", parent=g_wb, unit="pages"),
            "oldest_dirty_s": w.counter_track("oldest dirty data", parent=g_wb, unit="s"),
        }
        self._flow = itertools.count(1)
        self.wake_flow: dict[int, int] = {}       # id(thread) -> flow to its next step
        self.io_flow: dict[int, int] = {}         # id(buf) -> flow to its biodone
        # what was traced, for tests and the summary
        self.steps = 0
        self.switches = 0
        self.interrupts = 0
        self.requests = 0
        self.calls = 0
        self.closed = False

    def attach(self) -> None:
        k = self.k
        k.m.tracer = self
        k.notify.attach(self)
        k.disk.trace = self
        k.metrics.sample_hooks.append(self.sample)

    # ---- CPUs (the engine's hooks) ---------------------------------------------------------
    def _spl(self, cpu: CPU, t: int) -> None:
        i = cpu.index
        ipl = cpu.ipl
        if ipl != self.spl_level[i]:
            self.spl_level[i] = ipl
            self.w.counter_int(self.spl_track[i], t, ipl)

    def step_begin(self, cpu: CPU, td: Thread, t: int, switched: bool) -> None:
        i = cpu.index
        track = self.cpu_track[i]
        self.steps += 1
        if switched:
            self.switches += 1
        key = (track, td.name, td.tid, switched)
        begin = self._step_begin.get(key)
        if begin is None:
            args: dict[str, int | float | str] = {"tid": td.tid}
            if switched:
                args["switched"] = 1
            begin = self._step_begin[key] = self.w.template(SLICE_BEGIN, track, td.name, args)
        flow = self.wake_flow.pop(id(td), 0)
        self.w.with_flows(t, begin, ends_flows=(flow,) if flow else ())
        end = self._step_end.get((track, td.name))
        if end is None:
            end = self._step_end[(track, td.name)] = self.w.template(SLICE_END, track, td.name)
        self.open_cpu[i].append(end)
        self._spl(cpu, t)

    def step_end(self, cpu: CPU, td: Thread, t: int) -> None:
        i = cpu.index
        if self.open_cpu[i]:
            self.w.emit(t, self.open_cpu[i].pop())
        if self.spl_level[i]:             # the thread's level is saved; the CPU goes to 0
            self.spl_level[i] = 0
            self.w.counter(self.spl_track[i], t, 0)

    def intr_begin(self, cpu: CPU, irq: Intr, t: int) -> None:
        i = cpu.index
        self.interrupts += 1
        track = self.cpu_track[i]
        key = (track, irq.name, irq.level)
        pair = self._intr_tmpl.get(key)
        if pair is None:
            pair = self._intr_tmpl[key] = (
                self.w.template(SLICE_BEGIN, track, irq.name, {"ipl": ipl_name(irq.level)}),
                self.w.template(SLICE_END, track, irq.name))
        self.w.emit(t, pair[0])
        self.open_cpu[i].append(pair[1])
        self._spl(cpu, t)

    def intr_end(self, cpu: CPU, irq: Intr, t: int, back_to: int) -> None:
        i = cpu.index
        if self.open_cpu[i]:
            self.w.emit(t, self.open_cpu[i].pop())
        if back_to != self.spl_level[i]:
            self.spl_level[i] = back_to
            self.w.counter_int(self.spl_track[i], t, back_to)

    def spl(self, cpu: CPU, t: int) -> None:
        # at every splbio and splx: the writer's emit, inline, from a template per level
        i = cpu.index
        ipl = cpu.ipl
        if ipl != self.spl_level[i]:
            self.spl_level[i] = ipl
            tmpl = self._spl_tmpl[i].get(ipl)
            if tmpl is None:
                tmpl = self._spl_tmpl[i][ipl] = self.w.counter_template(
                    self.spl_track[i], ipl)
            w = self.w
            w._times.append(t)
            w._ids.append(tmpl)
            w._left -= 1
            if not w._left:
                w.flush()

    def wakeup(self, waker: Context | None, td: Thread, t: int) -> None:
        if waker is None or id(td) in self.wake_flow:
            return
        flow = next(self._flow)
        self.wake_flow[id(td)] = flow
        track = self.cpu_track[waker.cpu.index]
        tmpl = self._wakeup.get((track, td.name))
        if tmpl is None:
            tmpl = self._wakeup[(track, td.name)] = self.w.template(
                INSTANT, track, f"wakeup {td.name}")
        self.w.with_flows(t, tmpl, flows=(flow,))

    # ---- locks -----------------------------------------------------------------------------
    def _hold(self, cls: str, ctx: Context, t: int, where: str) -> Hold:
        """The packets of a hold of a lock of class `cls` by `ctx` in function `where`
        beginning at `t`, on the first lane of the class's track free then: (begin, end,
        lanes, lane), built once per lane, holder and function."""
        lanes = self.lock_lanes.get(cls)
        if lanes is None:
            lanes = self.lock_lanes[cls] = LockLanes(
                self.w, self.w.track(cls, parent=self._g_locks), cls)
        free_at = lanes.free_at
        if 0 <= free_at[0] <= t:          # Lanes.take's common case, inline
            free_at[0] = -1
            lane = 0
        else:
            lane = lanes.take(t)
        by_where = lanes.holds[lane].get(where)
        if by_where is None:
            by_where = lanes.holds[lane][where] = {}
        name = ctx.name
        entry = by_where.get(name)
        if entry is None:
            track = lanes.tracks[lane]
            text = f"{name} in {where}"
            entry = by_where[name] = (self.w.template(SLICE_BEGIN, track, text),
                                      self.w.template(SLICE_END, track, text), lanes, lane)
        return entry

    def spin_held(self, lk: object, cls: str, ctx: Context, t: int, where: str) -> None:
        # at every simple_lock: kept lean (the writer's emit is inline). A spin lock has
        # one holder and does not recurse: the lock is the key of its hold.
        entry = self.holds[lk] = self._hold(cls, ctx, t, where)
        w = self.w
        w._times.append(t)
        w._ids.append(entry[0])
        w._left -= 1
        if not w._left:
            w.flush()

    def spin_released(self, lk: object, t: int) -> None:
        got = self.holds.pop(lk, None)
        if got is None:
            return
        got[2].free_at[got[3]] = t
        w = self.w
        w._times.append(t)
        w._ids.append(got[1])
        w._left -= 1
        if not w._left:
            w.flush()

    def lock_held(self, cls: str, key: object, ctx: Context, t: int, where: str) -> None:
        """A lockmgr hold: one per holder (shared holds overlap) and per recursion."""
        entry = self._hold(cls, ctx, t, where)
        hk = (id(key), id(ctx))
        holds = self.holds
        if hk in holds:                   # a recursive hold (lockmgr LK_CANRECURSE)
            self.deeper.setdefault(hk, []).append(holds[hk])
        holds[hk] = entry
        self.w.emit(t, entry[0])

    def lock_released(self, key: object, ctx: Context, t: int) -> None:
        hk = (id(key), id(ctx))
        got = self.holds.pop(hk, None)
        if got is None:
            return
        st = self.deeper.get(hk)
        if st:
            self.holds[hk] = st.pop()
            if not st:
                del self.deeper[hk]
        got[2].free_at[got[3]] = t
        self.w.emit(t, got[1])

    # ---- disks (the driver's hooks) ----------------------------------------------------------
    def _disk(self, disk: Disk) -> Lanes:
        lanes = self.disk_lanes.get(disk.name)
        if lanes is None:
            lanes = self.disk_lanes[disk.name] = Lanes(
                self.w, self.w.track(disk.name, parent=self._g_disks), disk.name)
            self.disk_queue_track[disk.name] = self.w.counter_track(
                f"{disk.name} queue", parent=self._g_disks, unit="requests")
        return lanes

    def _depth(self, disk: Disk, t: int) -> None:
        self._disk(disk)
        self.w.counter(self.disk_queue_track[disk.name], t, disk.queue_length())

    def queued(self, disk: Disk, bp: Any, t: int) -> None:
        self.waiting[id(bp)] = (next(self._arrival), t)
        self._depth(disk, t)

    def started(self, disk: Disk, req: Any, t: int) -> None:
        lanes = self._disk(disk)
        self.requests += 1
        parts = getattr(req, "bufs", None) or [req]
        first = min((self.waiting.pop(id(bp), (0, t)) for bp in parts), default=(0, t))
        # requests queued before this one and still waiting: the elevator chose it first
        overtook = sum(1 for n, _ in self.waiting.values() if n < first[0])
        lead = parts[0]
        what = describe_buf(lead) if hasattr(lead, "b_lblkno") else (
            "read" if req.b_flags & B_READ else "write")
        args: dict[str, int | float | str] = {
            "block": req.b_blkno // 8, "KiB": req.b_bcount // 1024,
            "by": str(getattr(lead, "b_proc", None) or "?"),
            "queued ms": (t - first[1]) / MS, "overtook": overtook}
        if len(parts) > 1:
            args["merged"] = len(parts)
        lane = lanes.take(t)
        name = what if len(parts) == 1 else f"{what} (+{len(parts) - 1} merged)"
        self.in_service[id(req)] = (lanes, lane, name)
        self.w.begin(lanes.tracks[lane], t, name, args)
        self._depth(disk, t)

    def finished(self, disk: Disk, req: Any, t: int, ok: bool) -> None:
        got = self.in_service.pop(id(req), None)
        if got is not None:
            lanes, lane, name = got
            if not ok:
                self.w.instant(lanes.tracks[lane], t, "EIO")
            self.w.end(lanes.tracks[lane], t, name)
            lanes.give(lane, t)
        self._depth(disk, t)          # the driver has taken it out of service already

    # ---- the kernel's notifications ------------------------------------------------------------
    def io_started(self, bp: buf) -> None:
        cur = self.k.m.cur
        if cur is None:
            return
        flow = next(self._flow)
        self.io_flow[id(bp)] = flow
        self.w.instant(self.cpu_track[cur.cpu.index], cur.cpu.t,
                       "read" if bp.b_flags & B_READ else "write", flows=(flow,))

    def io_done(self, bp: buf) -> None:
        flow = self.io_flow.pop(id(bp), 0)
        cur = self.k.m.cur
        if not flow or cur is None:
            return
        self.w.instant(self.cpu_track[cur.cpu.index], cur.cpu.t, "biodone",
                       ends_flows=(flow,))

    def syscall_record(self, rec: CallRecord) -> None:
        key = (rec.pid, rec.proc)
        lanes = self.proc_lanes.get(key)
        if lanes is None:
            lanes = self.proc_lanes[key] = Lanes(
                self.w, self.w.process_track(rec.pid, rec.proc), f"{rec.proc} calls")
        self.calls += 1
        args: dict[str, int | float | str] = {"bytes": rec.nbytes}
        if rec.path:
            args["path"] = rec.path
        if rec.off >= 0:
            args["offset"] = rec.off
        if rec.rv < 0:
            from vfslab.kern.fcntl import ERRNO_NAMES

            args["errno"] = ERRNO_NAMES.get(-rec.rv, str(-rec.rv))
        else:
            args["result"] = rec.rv
        if rec.wait:
            args["waited"] = f"{rec.wait_ns / MS:.3f} ms on {rec.wait}"
        lane = lanes.take(rec.start)
        track = lanes.tracks[lane]
        self.w.begin(track, rec.start, rec.call, args)
        self.w.end(track, rec.end, rec.call)
        lanes.give(lane, rec.end)

    def writeback_pass(self, daemon: str, kind: str, start: int, end: int) -> None:
        lane = self.pass_lanes.take(start)
        track = self.pass_lanes.tracks[lane]
        name = f"{daemon}: {kind}"
        self.w.begin(track, start, name)
        self.w.end(track, end, name)
        self.pass_lanes.give(lane, end)

    # ---- counters (the metrics' samples) -------------------------------------------------------
    def sample(self, now: int) -> None:
        s = self.k.metrics.series
        for name, track in self.counters.items():
            v = s[name][-1]
            self.w.counter(track, now, v)

    # ---- the end ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close what is still open at the last instant, detach, flush the file."""
        if self.closed:
            return
        self.closed = True
        k = self.k
        t = max(k.m.now, *(c.t for c in k.m.cpus))
        for stack in self.open_cpu:
            while stack:
                self.w.emit(t, stack.pop())
        for _begin, end, _lanes, _lane in [*self.holds.values(),
                                           *(h for st in self.deeper.values() for h in st)]:
            self.w.emit(t, end)
        self.holds.clear()
        self.deeper.clear()
        for lanes, lane, name in self.in_service.values():
            self.w.end(lanes.tracks[lane], t, name)
        self.in_service.clear()
        if k.m.tracer is self:
            k.m.tracer = None
        if self in k.notify.observers:
            k.notify.detach(self)
        if k.disk.trace is self:
            k.disk.trace = None
        if self.sample in k.metrics.sample_hooks:
            k.metrics.sample_hooks.remove(self.sample)
        # where the measured run began (after the runner's setup): `vfslab trace`, the
        # per-call records and the time series count time from here
        run = self.w.track("run", order=0)
        self.w.instant(run, k.metrics.t0, WORKLOAD_STARTS)
        self.w.flush()
        self.file.flush()

    def summary(self) -> dict[str, int]:
        return {"packets": self.w.packets, "thread_steps": self.steps,
                "context_switches": self.switches, "interrupts": self.interrupts,
                "disk_requests": self.requests, "syscalls": self.calls}


__all__ = ["Tracer"]
