"""The trickle syncer the mail proposes: dirty pages and buffers flushed a little at a time,
several times a second, over a window keyed on when each became dirty.

Pages: each vnode object keeps its dirty pages in dirtying order (uvm_page: `dirtyq`); the
daemon keeps the dirty objects in a heap keyed by their oldest dirty page (revalidated lazily
when popped), so a wake-up looks only at what it writes, never at the dirty pages that are not
due: its cost does not grow with the backlog. Buffers: a heap of the same kind keyed by when
each became dirty, fed by the buffer cache's hooks. Once a file's pages are written (by the
daemon, ffs_write's write-behind or an fsync) its inode is updated and the inode block dated
back to the oldest page written (bbackdate): the data is reachable on disk only with the block
pointers, so the block is due when the data is. The inode updates are a second thread's
(trickle_upd), so that a wake-up never sleeps: an inode block already being written makes
VOP_UPDATE wait for it, behind the disk's queue.

Each wake-up (every 1/hz seconds) writes
  - everything whose age will pass the window before the next wake-up, and
  - with `pace=deadline` (the default), enough of the oldest to keep the write rate as low and
    steady as the deadlines allow: the slowest rate that, kept up, would still write everything
    dirty now by its deadline (its age reaching the window less two periods). That is Yao,
    Demers and Shenker's critical intensity (FOCS 1995), max over horizons h of (what is due
    within h) / h, recomputed at each wake-up as their online "Optimal Available" rule does.
    A burst dirtied at once is spread over the window; a rising load raises the rate before
    the burst comes due, not when it does. The unit of work is a page or a buffer; a 64 KiB
    extent of a file's pages is written in one I/O, due when its first page was dirtied (its
    later neighbours go with it), a buffer when it was dirtied or dated back to;
  - what is due includes what will join it (`project=true`, the default): an extent's work is
    not known when its deadline is, since the pages stored next to its first go with it. Each
    dirty extent is counted with the pages expected to join it before it is due: the rate at
    which pages were dirtied next to already-dirty ones in a later period than the extent's
    first (not a write's own next page) over the last window, shared equally among the dirty
    extents (at most a full extent). It costs a counter per page dirtied and nothing per
    extent at a wake-up. Without it (`project=false`, the rule before) a mapper's burst fixes
    many extents' deadlines in its first second and fills them afterwards, and the rate rises
    as they come due: pr24596's peak second is 1.44 times the dirtying rate without it, 1.22
    with it (README). The price: extents go a little younger, so more of them are dirtied and
    written again (5% more bytes there, read p99 25.5 ms against 22.2);
  - with `pace=share` (the rule vfslab had before), a share of the backlog, backlog * period /
    window, which ignores when the backlog is due: the oldest pages drift to their deadline
    and go together with the neighbours dirtied since;
  - with `pace=keepup`, the deadline pace, and never less than the units dirtied per period
    over the last window: the rate the workload has been dirtying at, which any writeback must
    sustain. Keeping up writes the backlog as it comes, so bursts meet an empty queue. The
    cost: pages written sooner are rewritten more, in more requests, which reads wait behind.
    `keepup=F` (0 to 1) takes that fraction of the recent rate as the floor;
  - with `pace=none`, nothing more,
clustering each chosen page with its dirty neighbours in the same 64 KiB extent into one I/O.
A pace is a rate, fractions of a unit per wake-up included: what a wake-up could not write of
it (a part of a page) carries to the next, never more than one unit. (Rounding each wake-up's
share up, as before, added up to one page a wake-up, a floor of hz pages a second whatever
the load.) Wake-ups 20 times a second, not 10: each writes half as much at once, and a read
that arrives behind a wake-up's batch waits for half as many writes (pr24596: read p99
25.5 ms against 36.2 at 10 and 24.9 at 50; `vfslab compare pr24596 --policies trickle
--vary trickle.hz=10,20,50`).
The deadline pace keeps the load by deadline in bins of one period, updated as pages and
buffers are dirtied and cleaned (page_dirtied, page_cleaned, buf_dirtied, buf_cleaned): a
wake-up reads the bins, one per period that something still dirty was dirtied in (the window
times hz, about 100, when the daemon keeps up), never the pages.
It takes no vnode lock (v_lock): pages go through VOP_PUTPAGES, which takes the object's
interlock; buffers are claimed with their busy flag (btrybusy) and written with bawrite.

Pages dirtied through a mapping: a dirty list cannot show a store that takes no fault (the
question the PR's tech-kern reply put to this design). The policy declares `write_faults`, so
the kernel maps pages read-only until they are written and write-protects every page it cleans
(the daemon's own batches included): each first store after a clean faults and puts the page on
its object's dirty list, where the heap finds it. The cost is a fault, and a fresh dirtying, per
first store after each clean, which on rewrites within the window is most stores. Without it
(as 2.0's kernel was), such pages would be seen only by a whole-file putpages or the page
daemon; `genfs.pr24596_fix` does not change that for this policy, whose batches never take a
vnode off the worklist.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import B_DELWRI, MAXPHYS, PAGE_SHIFT, buf
from vfslab.kern.uvm_page import PG_BUSY, PG_CLEAN, vm_page
from vfslab.kern.vnode import uvm_object, vnode
from vfslab.policy.base import Tunable, WritebackPolicy

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

NS = 1_000_000_000
CLUSTER = MAXPHYS >> PAGE_SHIFT


class TricklePolicy(WritebackPolicy):
    name = "trickle"
    write_faults = True           # it walks dirty lists: every store must reach them
    TUNABLES = (
        Tunable("window", float, 5.0, "seconds within which dirty data reaches the disk",
                unit="s", positive=True, max=3600),
        Tunable("hz", float, 20.0, "wake-ups per second", unit="1/s", positive=True, max=1000),
        Tunable("pace", str, "deadline", "beyond what is due: deadline (the slowest rate that "
                "meets every deadline), keepup (that, and at least the recent dirtying rate), "
                "share (backlog/window) or none",
                choices=("deadline", "keepup", "share", "none")),
        Tunable("project", bool, True, "pace=deadline and keepup: count in each dirty extent "
                "the pages expected to join it before it is due (the recent rate of pages "
                "dirtied next to dirty ones, shared among the dirty extents)"),
        Tunable("keepup", float, 1.0, "pace=keepup: the floor, as a fraction of the units "
                "dirtied per period over the last window", min=0.0, max=1.0),
    )

    def __init__(self, k: Kernel, options: dict[str, Any]) -> None:
        super().__init__(k, options)
        self.heap: list[tuple[int, int, uvm_object]] = []
        self.seq = 0
        # (dirtied at, seq, buffer); an entry whose key no longer matches the buffer's
        # b_dirtied_at (written, re-dirtied, dated back) is dropped when it surfaces
        self.bufs: list[tuple[int, int, buf]] = []
        self.wakeups = 0
        self.pages_written = 0
        self.bufs_written = 0
        self.examined = 0            # objects and buffers looked at (cost per wake-up)
        # the load by deadline: units (a 64 KiB extent of a file's pages, a buffer) binned by
        # the wake-up period in which each became dirty; value: pages and buffers in them
        self.period = int(NS / self.opts["hz"])
        self.load: dict[int, int] = {}
        self.extents: dict[tuple[uvm_object, int], list[int]] = {}   # -> [bin, pages]
        self.ext_load: dict[int, int] = {}       # bin -> dirty extents first dirtied in it
        self.bufbin: dict[buf, int] = {}
        nperiods = max(1, int(self.opts["window"] * self.opts["hz"]))
        # project=true: pages dirtied next to an already-dirty one, in this period and in
        # each of the last window's
        self.joins_now = 0
        self.joins: deque[int] = deque(maxlen=nperiods)
        # the part of the pace a wake-up could not write (under a unit), for the next
        self.credit = 0.0
        # pace=keepup: units dirtied in this period, and in each of the last window's
        self.dirtied_now = 0
        self.recent: deque[int] = deque(maxlen=nperiods)
        # vnodes whose pages were written, by anyone -> the oldest of those pages' dirtying
        # times: their inodes, for the updater thread (trickle_upd)
        self.to_update: dict[vnode, int] = {}
        self.update_chan = object()          # what the updater sleeps on

    def window_s(self) -> float:
        return float(self.opts["window"])

    def period_s(self) -> float:
        return 1.0 / float(self.opts["hz"])

    def start(self) -> None:
        self.m.spawn("trickled", self.trickled())
        self.m.spawn("trickle_upd", self.updater())

    # ---- events (called with locks held: no sleeping, no locks) ------------------------------
    def object_dirtied(self, uobj: uvm_object, now: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (now, self.seq, uobj))

    def page_dirtied(self, pg: vm_page, now: int) -> None:
        self.dirtied_now += 1
        key = (pg.uobject, pg.offset // CLUSTER)
        ext = self.extents.get(key)
        b = now // self.period
        if ext is None:
            ext = self.extents[key] = [b, 0]
            self.ext_load[b] = self.ext_load.get(b, 0) + 1
        elif ext[0] != b:
            # a late join (not the same write's or burst's next page): work the extent's
            # deadline did not know of when it was fixed
            self.joins_now += 1
        ext[1] += 1
        self.load[ext[0]] = self.load.get(ext[0], 0) + 1

    def page_cleaned(self, pg: vm_page) -> None:
        key = (pg.uobject, pg.offset // CLUSTER)
        ext = self.extents[key]
        # whoever wrote the page (this daemon, ffs_write's write-behind, an fsync), its data
        # is reachable on disk only once the inode is: the inode is the updater's to write,
        # dated back to when the page was dirtied (found by the crash tests: on stream,
        # write-behind wrote every page and no inode ever reached the disk, 525 MB lost a
        # crash). Not to the extent's first dirtying: an extent kept dirty by a slow writer
        # lives on past its first pages, and its date made inode blocks look 5.4 s old on
        # pr24596 (found by the compare table).
        vp = pg.uobject.vp
        since = pg.dirtied_at
        if vp is not None and since >= 0:
            pend = self.to_update
            pend[vp] = min(since, pend.get(vp, since))
        ext[1] -= 1
        b = ext[0]
        if not ext[1]:
            del self.extents[key]
            n = self.ext_load[b] - 1
            if n:
                self.ext_load[b] = n
            else:
                del self.ext_load[b]
        self._unload(b)

    def buf_dirtied(self, bp: buf) -> None:
        self.seq += 1
        heapq.heappush(self.bufs, (bp.b_dirtied_at, self.seq, bp))
        old = self.bufbin.get(bp)
        if old is not None:
            self._unload(old)            # dated back: the same dirtying
        else:
            self.dirtied_now += 1
        b = self.bufbin[bp] = bp.b_dirtied_at // self.period
        self.load[b] = self.load.get(b, 0) + 1

    def buf_cleaned(self, bp: buf) -> None:
        b = self.bufbin.pop(bp, None)
        if b is not None:
            self._unload(b)

    def _unload(self, b: int) -> None:
        n = self.load[b] - 1
        if n:
            self.load[b] = n
        else:
            del self.load[b]

    def pace(self, due: int) -> float:
        """Units to write this wake-up under `pace=deadline`: the critical intensity of the
        load (module docstring) times the period, with `project` the pages expected to join
        the dirty extents before they are due. `due`: the oldest dirtying time that is not
        yet due (a unit dirtied at t is due when due >= t)."""
        period = self.period
        joins = _per_period(self.joins, self.joins_now)
        self.joins_now = 0
        per_ext = 0.0
        if self.opts["project"] and self.extents:
            per_ext = joins / len(self.extents)            # per extent per period
        ext_load = self.ext_load
        cum = 0.0
        need = 0.0
        for b in sorted(self.load):
            # the bin's last unit (dirtied just before (b+1)*period) is due in h; what is
            # due by the next wake-up must go now
            h = max((b + 1) * period - due, period)
            n = self.load[b]
            cum += n
            e = ext_load.get(b, 0)
            if per_ext and e:
                # what joins the bin's extents until they go, at most filling them (the
                # bin's buffers counted as pages in them: a bound, never below nothing)
                cum += min(e * per_ext * h / period, max(0, e * CLUSTER - n))
            need = max(need, cum * period / h)
        return need

    def keepup(self) -> float:
        """Units to write this wake-up under `pace=keepup`: those dirtied per period over the
        last window (this period's included), times `keepup`."""
        dirtied = _per_period(self.recent, self.dirtied_now)
        self.dirtied_now = 0
        return dirtied * float(self.opts["keepup"])

    def owe(self, need: float, backlog: bool) -> int:
        """The whole units of a pace of `need` units this wake-up: the pace and what the
        last wake-ups owed under a unit (at most a unit more than the pace: a wake-up that
        found nothing it could write does not bank it)."""
        self.credit = min(self.credit + need, need + 1.0) if backlog else 0.0
        return int(self.credit)

    def paid(self, written: int) -> None:
        """A wake-up wrote `written` units: what it owes is less by them. More than it owed
        (a whole extent, what was due) is not carried as a debt: the load, and so the next
        pace, is already less by it."""
        self.credit = max(0.0, self.credit - written)

    # ---- the daemon ---------------------------------------------------------------------------
    def trickled(self) -> Generator[Any, Any, None]:
        m = self.m
        period = int(NS / self.opts["hz"])
        while True:
            yield from m.tsleep(self, "trickle", period)
            start = m.time()
            yield from self.wakeup(period)
            self.pass_done("wake-up", start)

    def wakeup(self, period: int) -> Generator[Any, Any, None]:
        """One pass: write what is due, and what the pace asks for beyond it."""
        k = self.k
        m = self.m
        self.wakeups += 1
        now = m.time()
        window = int(self.opts["window"] * NS)
        due = now - window + 2 * period          # will be too old before the next pass
        uvm = k.uvm
        backlog = uvm.ndirty + k.bio.ndirty
        pace = self.opts["pace"]
        need = 0.0
        if pace in ("deadline", "keepup"):
            need = self.pace(due)
            if pace == "keepup":
                need = max(need, self.keepup())
        elif pace == "share":
            need = backlog * period / window
        quota = self.owe(need, backlog > 0)
        # pages, oldest objects first
        heap = self.heap
        written = 0
        while heap:
            t, _, uobj = heap[0]
            dq = uobj.dirtyq
            self.examined += 1
            if not dq:
                heapq.heappop(heap)
                continue
            head = next(iter(dq))
            if head.dirtied_at != t:             # stale key: re-file under the true oldest
                heapq.heapreplace(heap, (head.dirtied_at, self.seq, uobj))
                self.seq += 1
                continue
            if t > due and written >= quota:
                break
            heapq.heappop(heap)
            vp = uobj.vp
            s = k.proto.vi_lock(vp)
            batch = self._batch(uobj, due, max(quota - written, 1))
            k.proto.vi_unlock(vp, s)
            if batch:
                yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=False, pages=batch)
                written += len(batch)
                self.pages_written += len(batch)
            if uobj.dirtyq:
                h = next(iter(uobj.dirtyq))
                self.seq += 1
                heapq.heappush(heap, (h.dirtied_at, self.seq, uobj))
        # the inodes of what was written (page_cleaned listed them, this pass's and others'):
        # their blocks become dirty buffers as old as the oldest data they make reachable.
        # Another thread does it, so that a wake-up never sleeps on an inode block in flight
        # (found by the crash tests: on mmapwriter, wake-ups slept up to 0.77 s in getblk
        # behind an inode block queued on the disk, and pages came due meanwhile: written
        # 5.29 s after they were dirtied, over the bound)
        if self.to_update:
            m.wakeup(self.update_chan)
        # buffers, oldest first (chosen before writing: writing changes the queue)
        bio = k.bio
        bufs = self.bufs
        chosen: list[tuple[int, int, buf]] = []
        n = written
        while bufs:
            t, _, bp = bufs[0]
            self.examined += 1
            if not bp.b_flags & B_DELWRI or bp.b_dirtied_at != t:
                heapq.heappop(bufs)              # stale: written, re-dirtied or dated back
                continue
            if n >= quota and t > due:
                break
            chosen.append(heapq.heappop(bufs))
            n += 1
        for entry in chosen:
            bp = entry[2]
            if not bio.btrybusy(bp):
                heapq.heappush(bufs, entry)      # busy elsewhere: still ours to write
                continue
            if not bp.b_flags & B_DELWRI:
                bio.brelse(bp)
                continue
            bio.bawrite(bp)
            written += 1
            self.bufs_written += 1
        self.paid(written)

    def updater(self) -> Generator[Any, Any, None]:
        """The inode updates the wake-ups ask for (VOP_UPDATE, each inode block dated back to
        the oldest data it makes reachable), oldest first; the next wake-up's buffer pass
        writes the blocks, due at once."""
        pend = self.to_update
        while True:
            while not pend:
                yield from self.m.tsleep(self.update_chan, "trickupd", 0)
            vp = min(pend, key=pend.__getitem__)
            oldest = pend.pop(vp)
            yield from self.update_inode(vp, oldest)

    def _batch(self, uobj: uvm_object, due: int, want: int) -> list[vm_page]:
        """The object's oldest dirty pages (the due ones, and at least `want`), each with its
        dirty neighbours in the same 64 KiB extent."""
        chosen: dict[vm_page, None] = {}
        memq = uobj.memq
        for pg in uobj.dirtyq:
            if pg.dirtied_at > due and len(chosen) >= want:
                break
            if pg in chosen or pg.flags & PG_BUSY:
                continue
            base = (pg.offset // CLUSTER) * CLUSTER
            for off in range(base, base + CLUSTER):
                q = memq.get(off)
                if q is not None and not q.flags & (PG_CLEAN | PG_BUSY):
                    chosen[q] = None
        return sorted(chosen, key=_off)


def _per_period(window: deque[int], now: int) -> float:
    """This period's count added to the window's: their mean per period."""
    window.append(now)
    return sum(window) / len(window)


def _off(pg: vm_page) -> int:
    return pg.offset
