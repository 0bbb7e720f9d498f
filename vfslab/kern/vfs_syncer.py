"""The syncer of 2004 (sched_sync, vn_syncer_add_to_worklist, speedup_syncer:
sys/miscfs/syncfs/sync_subr.c of NetBSD 2.0, the same here as its 1.8 of 2001).

A wheel of `syncer_last = SYNCER_MAXDELAY + 2` (34) slots, one a second. A vnode that gets
dirty is put `delay` seconds ahead (filedelay 30, dirdelay 15, metadelay 10: NetBSD's, not
FreeBSD's 29 and 28), the delay clamped to `syncer_maxdelay - 2`, and flagged VONWORKLST.
Each second sched_sync takes the vnodes of the current slot under `syncer_lock` (a lockmgr
lock that freezes the syncer), locks each with vn_lock(LK_EXCLUSIVE|LK_NOWAIT) (skipping it
when busy), runs VOP_FSYNC(FSYNC_LAZY) on the whole file, and puts it back syncdelay seconds
ahead if it is still first in the slot; then it sleeps on &rushjob for a second (hz ticks)
unless a pass took longer or speedup_syncer asked it to hurry.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.guards import declare_guards
from vfslab.kern.lock import LK_EXCLUSIVE, LK_NOWAIT, LK_RELEASE, lock
from vfslab.kern.vnode import vnode
from vfslab.kern.vnode_if import FSYNC_LAZY, VOP_FSYNC

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

SYNCER_MAXDELAY = 32


class SyncerStats:
    __slots__ = ("passes", "vnodes_synced", "vnodes_busy", "requeued")

    def __init__(self) -> None:
        self.passes = 0
        self.vnodes_synced = 0
        self.vnodes_busy = 0
        self.requeued = 0


@declare_guards("syncer", {"syncer_workitem_pending": "splbio"},
                containers=("syncer_workitem_pending",))
class Syncer:
    """The syncer worklist wheel, and the sched_sync thread that services it."""

    __slots__ = ("k", "m", "syncer_maxdelay", "syncer_last", "syncdelay", "filedelay",
                 "dirdelay", "metadelay", "syncer_workitem_pending", "syncer_delayno", "rushjob",
                 "stats", "running", "syncer_lock", "rush_ident", "__weakref__")

    def __init__(self, k: Kernel, syncdelay: int = 30, filedelay: int = 30, dirdelay: int = 15,
                 metadelay: int = 10) -> None:
        self.k = k
        self.m = k.m
        self.syncer_maxdelay = SYNCER_MAXDELAY
        self.syncer_last = SYNCER_MAXDELAY + 2
        self.syncer_lock = lock("synclk", "syncer_lock")   # lockinit(&syncer_lock, ..., "synclk")
        self.rush_ident = object()                            # &rushjob
        self.syncdelay = syncdelay
        self.filedelay = filedelay
        self.dirdelay = dirdelay
        self.metadelay = metadelay
        # syncer_workitem_pending[]: LIST heads, here insertion-ordered dicts (vnode -> None)
        self.syncer_workitem_pending: list[dict[vnode, None]] = [
            {} for _ in range(self.syncer_last)]
        self.syncer_delayno = 0
        self.rushjob = 0
        self.stats = SyncerStats()
        self.running = False

    def vn_syncer_add_to_worklist(self, vp: vnode, delay: int) -> None:
        """Put a vnode `delay` seconds ahead on the wheel (removing it from where it was)."""
        p = self.k.proto
        s = p.synclist_lock()
        self.add_locked(vp, delay)
        p.synclist_unlock(s)

    def add_if_absent(self, vp: vnode, delay: int) -> None:
        """Queue a vnode that just got dirty, unless it is already on the worklist."""
        p = self.k.proto
        s = p.synclist_lock()
        if not p.on_worklist(vp):
            self.add_locked(vp, delay)
        p.synclist_unlock(s)

    def add_locked(self, vp: vnode, delay: int) -> None:
        p = self.k.proto
        was_on = vp.v_synclist >= 0
        if p.on_worklist(vp) and vp.v_synclist >= 0:
            del self.syncer_workitem_pending[vp.v_synclist][vp]
        if delay > self.syncer_maxdelay - 2:
            delay = self.syncer_maxdelay - 2
        slot = (self.syncer_delayno + delay) % self.syncer_last
        self.syncer_workitem_pending[slot][vp] = None
        vp.v_synclist = slot
        p.set_onworklist(vp, True)
        if vp.v_dirtied_at < 0:
            vp.v_dirtied_at = self.m.time()
        if not was_on:
            for f in self.k.notify.worklist_changed:
                f(vp, True, self.m.time())

    def unlink(self, vp: vnode) -> None:
        """LIST_REMOVE(vp, v_synclist): the caller holds the worklist's protection."""
        slot = vp.v_synclist
        if slot >= 0:
            self.syncer_workitem_pending[slot].pop(vp, None)
            vp.v_synclist = -1
            vp.v_dirtied_at = -1
            for f in self.k.notify.worklist_changed:
                f(vp, False, self.m.time())

    def vn_syncer_remove_from_worklist(self, vp: vnode) -> None:
        p = self.k.proto
        s = p.synclist_lock()
        if p.on_worklist(vp):
            p.set_onworklist(vp, False)
            self.unlink(vp)
        p.synclist_unlock(s)

    def speedup_syncer(self) -> bool:
        """Make the syncer catch up (called when memory is short): never more than half its
        turn ahead."""
        if self.rushjob >= self.syncdelay // 2:
            return False
        self.rushjob += 1
        self.m.wakeup(self.rush_ident)
        return True

    def worklist_len(self) -> int:
        return sum(len(s) for s in self.syncer_workitem_pending)

    def start(self) -> None:
        self.running = True
        self.m.spawn("ioflush", self.sched_sync())

    def sched_sync(self) -> Generator[Any, Any, None]:
        """The syncer thread (NetBSD's "ioflush")."""
        k = self.k
        m = self.m
        p = k.proto
        vfs = k.vfs
        NS = 1_000_000_000
        while True:
            t0 = m.time()
            starttime = t0 // NS
            self.stats.passes += 1
            s = p.synclist_lock()
            slot = self.syncer_delayno
            slp = self.syncer_workitem_pending[slot]
            self.syncer_delayno += 1
            if self.syncer_delayno >= self.syncer_last:
                self.syncer_delayno = 0
            p.synclist_unlock(s)
            yield from k.locks.lockmgr(self.syncer_lock, LK_EXCLUSIVE)
            while True:
                s = p.synclist_lock()
                vp = next(iter(slp), None)
                p.synclist_unlock(s)
                if vp is None:
                    break
                if (yield from vfs.vn_lock(vp, LK_EXCLUSIVE | LK_NOWAIT)) == 0:
                    yield from VOP_FSYNC(vp, FSYNC_LAZY)
                    self.stats.vnodes_synced += 1
                    yield from vfs.vn_unlock(vp)
                else:
                    self.stats.vnodes_busy += 1
                clean = False
                if p.syncer_prunes:
                    bs = p.buflist_lock(vp)
                    clean = not vp.v_dirtyblkhd and not vp.v_uobj.dirtyq
                    p.buflist_unlock(vp, bs)
                s = p.synclist_lock()
                if next(iter(slp), None) is vp:
                    if clean:
                        p.set_onworklist(vp, False)
                        self.unlink(vp)
                        p.synclist_unlock(s)
                    else:
                        self.stats.requeued += 1
                        p.synclist_unlock(s)
                        self.vn_syncer_add_to_worklist(vp, self.syncdelay)
                else:
                    p.synclist_unlock(s)
            yield from k.locks.lockmgr(self.syncer_lock, LK_RELEASE)
            for f in k.notify.writeback_pass:      # for traces: not 2.0's
                f("ioflush", f"slot {slot}", t0, m.time())
            if self.rushjob > 0:
                self.rushjob -= 1
                continue
            if m.time() // NS == starttime:
                yield from m.tsleep(self.rush_ident, "syncer", m.tick_ns * m.hz)
