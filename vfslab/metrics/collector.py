"""Collecting measurements during a run, cheaply: syscall latencies as they complete, and a time
series sampled at a fixed interval by an observer event that charges no emulated CPU time.
"""

from __future__ import annotations

import heapq
import os
import sys
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vfslab.kern.fcntl import ERRNO_NAMES
from vfslab.kern.notify import CallRecord, KernelObserver

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

NS = 1_000_000_000
SLOW_KEEP = 1000                  # calls kept in full per kind of call
SERIES = ("t_s", "dirty_pages", "dirty_bytes", "dirty_bufs", "pageout_pages", "oldest_dirty_s",
          "unlisted_dirty_pages", "oldest_unlisted_s", "unknown_dirty_pages", "oldest_unknown_s",
          "disk_write_bps", "disk_read_bps", "disk_queue", "throttled", "free_pages",
          "dirtied_bps")
FLOAT_SERIES = ("t_s", "oldest_dirty_s", "oldest_unlisted_s", "oldest_unknown_s",
                "disk_write_bps", "disk_read_bps", "dirtied_bps")


def _int64s() -> array[int]:
    return array("q")


def rss_bytes() -> int:
    """This process's resident set now (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Metrics(KernelObserver):
    """Per-run measurements. `syscall` is called by the syscall layer."""

    def __init__(self, k: Kernel, interval_ns: int = 100_000_000) -> None:
        self.k = k
        self.interval_ns = interval_ns
        # every latency, kept exactly (percentiles are exact) in 8 bytes each: an hour's soak
        # keeps a few million
        self.lat: dict[str, array[int]] = defaultdict(_int64s)
        # failed calls by call and errno name: {"write": {"ENOSPC": 64}}
        self.errors: dict[str, Counter[str]] = defaultdict(Counter)
        # the slowest calls of each kind, in full (syscall_record)
        self.slow: dict[str, list[tuple[int, int, CallRecord]]] = defaultdict(list)
        self._nrec = 0
        k.m.track_waits = True            # each call's longest sleep, for syscall_record
        # typed arrays, not lists of Python numbers: an hour at 10 samples a second is 36,000
        # samples a series
        self.series: dict[str, array[Any]] = {
            name: array("d" if name in FLOAT_SERIES else "q") for name in SERIES}
        self._last_w = 0
        self._last_r = 0
        self.max_dirty_age_ns = 0
        self.max_dirty_bytes = 0
        self.max_unlisted_pages = 0
        self.max_unlisted_age_ns = 0
        self.max_unknown_pages = 0
        self.max_unknown_age_ns = 0
        self._stopped = False
        self.t0 = 0
        self.disk0 = (0, 0, 0)
        self.dirtied0 = 0
        self.bufs_dirtied0 = 0
        # soak runs: the host process's memory every `memory_every_ns` of emulated time
        self.memory_every_ns = 0
        # (t_s, RSS bytes, Python blocks, blocks the emulated disk holds): the disk's content
        # is kept in memory and grows until every block has been written once, which is
        # growth a soak must tell apart from a leak
        self.memory: list[tuple[float, int, int, int]] = []
        self._next_mem = 0
        # called with the emulated ns since the start at each sample (a progress bar)
        self.on_sample: Any = None
        # called with the time (ns) after each sample is taken (a trace's counters)
        self.sample_hooks: list[Callable[[int], None]] = []

    # ---- syscall layer hooks ----------------------------------------------------------------
    def syscall_done(self, op: str, start: int, end: int, rv: int) -> None:
        self.lat[op].append(end - start)
        if rv < 0:
            self.errors[op][ERRNO_NAMES.get(-rv, f"errno {-rv}")] += 1

    def syscall_record(self, rec: CallRecord) -> None:
        """Keep the SLOW_KEEP slowest calls of each kind in full (a min-heap each): memory
        stays bounded on an hour's soak, and `vfslab slow` has what it shows."""
        heap = self.slow[rec.call]
        lat = rec.end - rec.start
        self._nrec += 1
        if len(heap) < SLOW_KEEP:
            heapq.heappush(heap, (lat, self._nrec, rec))
        elif lat > heap[0][0]:
            heapq.heapreplace(heap, (lat, self._nrec, rec))

    def slow_calls(self) -> list[CallRecord]:
        """The kept calls, slowest first (ties in the order they were made)."""
        out = [(-lat, n, rec) for h in self.slow.values() for lat, n, rec in h]
        out.sort()
        return [rec for _, _, rec in out]

    # ---- sampling ---------------------------------------------------------------------------
    def start(self) -> None:
        """Begin the measured run: forget setup's latencies, snapshot counters, sample."""
        k = self.k
        self.lat.clear()
        self.errors.clear()
        self.slow.clear()
        self.t0 = k.m.time()
        k.m.reset_accounting()
        self.disk0 = (k.disk.stats.bytes_read, k.disk.stats.bytes_written,
                      k.disk.stats.reads + k.disk.stats.writes)
        self._last_w = k.disk.stats.bytes_written
        self._last_r = k.disk.stats.bytes_read
        self.dirtied0 = k.uvm.stats.pagesdirtied + k.pmap.dirtied - k.pmap.relisted
        self.bufs_dirtied0 = k.bio.stats.bufs_dirtied
        self._last_d = self.dirtied0 + self.bufs_dirtied0
        k.m.at(max(k.m.now, self.t0) + self.interval_ns, self._sample)

    def stop(self) -> None:
        self._stopped = True

    def _sample(self, _: Any = None) -> None:
        if self._stopped:
            return
        k = self.k
        m = k.m
        now = m.now
        if self.on_sample is not None:
            self.on_sample(now - self.t0)
        uvm = k.uvm
        disk = k.disk
        s = self.series
        s["t_s"].append((now - self.t0) / NS)    # from the start of the measured run
        unknown = k.pmap.unknown
        nunknown = len(unknown)
        s["dirty_pages"].append(uvm.ndirty + nunknown)
        # data at risk whether or not the kernel knows it is dirty
        dirty_bytes = (uvm.ndirty + nunknown) * 4096 + k.bio.ndirty * 4096
        s["dirty_bytes"].append(dirty_bytes)
        s["dirty_bufs"].append(k.bio.ndirty)
        s["pageout_pages"].append(uvm.npageout)
        oldest = self.oldest_dirty_ns()
        age = (now - oldest) if oldest >= 0 else 0
        s["oldest_dirty_s"].append(age / NS)
        if age > self.max_dirty_age_ns:
            self.max_dirty_age_ns = age
        if dirty_bytes > self.max_dirty_bytes:
            self.max_dirty_bytes = dirty_bytes
        unlisted, since = self.unlisted_dirty()
        uage = (now - since) if since >= 0 else 0
        s["unlisted_dirty_pages"].append(unlisted)
        s["oldest_unlisted_s"].append(uage / NS)
        if unlisted > self.max_unlisted_pages:
            self.max_unlisted_pages = unlisted
        if uage > self.max_unlisted_age_ns:
            self.max_unlisted_age_ns = uage
        first = k.pmap.oldest_unknown_ns()
        kage = (now - first) if first >= 0 else 0
        s["unknown_dirty_pages"].append(nunknown)
        s["oldest_unknown_s"].append(kage / NS)
        if nunknown > self.max_unknown_pages:
            self.max_unknown_pages = nunknown
        if kage > self.max_unknown_age_ns:
            self.max_unknown_age_ns = kage
        w = disk.stats.bytes_written
        r = disk.stats.bytes_read
        dt = self.interval_ns / NS
        s["disk_write_bps"].append((w - self._last_w) / dt)
        s["disk_read_bps"].append((r - self._last_r) / dt)
        self._last_w = w
        self._last_r = r
        # bytes that went from clean to dirty, as mean_dirty_rate_bps counts them
        d = uvm.stats.pagesdirtied + k.pmap.dirtied - k.pmap.relisted + k.bio.stats.bufs_dirtied
        s["dirtied_bps"].append((d - self._last_d) * 4096 / dt)
        self._last_d = d
        s["disk_queue"].append(disk.queue_length())
        s["throttled"].append(k.nthrottled)
        s["free_pages"].append(uvm.free)
        if self.memory_every_ns and now >= self._next_mem:
            self.memory.append(((now - self.t0) / NS, rss_bytes(), sys.getallocatedblocks(),
                                len(disk.store)))
            self._next_mem = now + self.memory_every_ns
        for hook in self.sample_hooks:
            hook(now)
        m.at(now + self.interval_ns, self._sample)

    def oldest_dirty_ns(self) -> int:
        """The dirtying time of the oldest dirty page or buffer (-1 if nothing is dirty),
        pages modified through a mapping without the kernel knowing included."""
        k = self.k
        oldest = k.uvm.oldest_dirty_ns()
        t = k.pmap.oldest_unknown_ns()
        if t >= 0 and (oldest < 0 or t < oldest):
            oldest = t
        for slot in k.syncer.syncer_workitem_pending:
            for vp in slot:
                for bp in vp.v_dirtyblkhd:
                    t = bp.b_dirtied_at
                    if t >= 0 and (oldest < 0 or t < oldest):
                        oldest = t
                    break
        return oldest

    def unlisted_dirty(self) -> tuple[int, int]:
        """PR kern/24596's symptom: dirty pages on no list the 2004 syncer walks, because
        their vnode is in no slot of the syncer's worklist (the PR's problem 2), and when the
        oldest of them was dirtied (-1 if none). The wheel itself is read, not VONWORKLST: a
        vnode flagged but unlinked is just as unreachable. Pages modified through a mapping
        that the kernel counts clean (problem 3: kern/pmap.py's `unknown`) count here when
        their vnode is off the wheel too; on the wheel, the syncer's putpages finds them
        through pmap_clear_modify. `unknown_dirty_pages` counts them all: what a policy that
        walks dirty lists cannot see.

        Only the syncer walks the wheel: for a policy that finds dirty data another way (the
        trickle syncer walks the dirty objects themselves) this counts what the 2004 syncer
        would not have seen, not what that policy misses."""
        pending = self.k.syncer.syncer_workitem_pending
        count = 0
        oldest = -1
        for uobj in self.k.uvm.dirty_objects:
            vp = uobj.vp
            slot = vp.v_synclist
            if slot >= 0 and vp in pending[slot]:
                continue
            dq = uobj.dirtyq
            count += len(dq)
            t = next(iter(dq)).dirtied_at
            if oldest < 0 or t < oldest:
                oldest = t
        for pg, t in self.k.pmap.unknown.items():
            vp = pg.uobject.vp
            slot = vp.v_synclist
            if slot >= 0 and vp in pending[slot]:
                continue
            count += 1
            if oldest < 0 or t < oldest:
                oldest = t
        return count, oldest

    # ---- summaries --------------------------------------------------------------------------
    @staticmethod
    def percentiles(values: Sequence[int]) -> dict[str, float]:
        if not len(values):
            return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "mean_ms": 0.0}
        a = np.asarray(values, dtype=np.float64) / 1e6
        return {
            "count": int(a.size),
            "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max()),
            "mean_ms": float(a.mean()),
        }

    def latency_summary(self) -> dict[str, dict[str, float]]:
        return {op: self.percentiles(v) for op, v in sorted(self.lat.items())}
