"""Locking protocols: the places where the mail's designs differ, in one object per design.

The storage stack is written once. Where NetBSD 2.0 and the fixes the mail weighs differ (how
v_interlock is taken, what guards the fields biodone touches, where biodone's work runs), the
stack calls a method of its protocol. `netbsd-2.0` is the code as it was, violations included.
The fixes live in `vfslab.kern.protocols`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.guards import kassert
from vfslab.kern.vnode import VBWAIT, VONWORKLST, vnode

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.lock import simplelock
    from vfslab.kern.vfs_bio import BufCache
    from vfslab.kern.vfs_subr import VfsSubr


def numoutput_ident(vp: vnode) -> object:
    """The wait channel of &vp->v_numoutput."""
    return (vp, "v_numoutput")


class Protocol:
    """netbsd-2.0: the v_interlock/splbio protocol of NetBSD 2.0, as the mail describes it."""

    name = "netbsd-2.0"
    description = "NetBSD 2.0 as it was: biodone's work at IPL_BIO, v_interlock taken at IPL_NONE"
    # Guard-table changes of this protocol: {struct: {field: guard text}} (see check/guards.py)
    guard_overrides: dict[str, dict[str, str]] = {}

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m
        L = k.locks
        self.simple_lock = L.simple_lock
        self.simple_unlock = L.simple_unlock
        self.simple_lock_try = L.simple_lock_try
        self.ltsleep = L.ltsleep

    def start(self) -> None:
        """Start the protocol's own threads, if any (after the kernel is wired)."""

    def vnode_state(self, vp: vnode) -> object | None:
        """The protocol's own state for a new vnode, kept in vp.v_proto (its locks, its
        flags). A class decorated with @declare_guards gets its fields checked; a guard on a
        vnode field may name a lock in it as if it were the vnode's (the validator looks in
        v_proto too)."""
        return None

    def worklist_consistent(self, vp: vnode, on_wheel: bool) -> bool:
        """DIAGNOSTIC: does the protocol's idea of worklist membership match the wheel?"""
        return self.on_worklist(vp) == on_wheel

    def global_locks(self) -> dict[str, Any]:
        return {}

    # ---- v_interlock ------------------------------------------------------------------------
    def vi_lock(self, vp: vnode) -> int:
        self.simple_lock(vp.v_interlock)
        return -1

    def vi_unlock(self, vp: vnode, s: int) -> None:
        self.simple_unlock(vp.v_interlock)

    def vi_trylock(self, vp: vnode) -> int | None:
        return -1 if self.simple_lock_try(vp.v_interlock) else None

    def vi_sleep(self, vp: vnode, ident: object, wmesg: str, relock: bool = True,
                 s: int = -1) -> Generator[Any, Any, int]:
        """ltsleep releasing v_interlock (PNORELOCK when relock is False)."""
        rv: int = yield from self.ltsleep(ident, wmesg, 0, vp.v_interlock, relock)
        return rv

    def vnlock_enter(self, vp: vnode) -> int:
        """Around lockmgr on a vnode's lock (genfs_lock, genfs_unlock, ufs_ihashins): the
        spl its lk_interlock is taken at. 2.0: none (-1)."""
        return -1

    def vnlock_exit(self, vp: vnode, s: int) -> None:
        """After that lockmgr call."""

    def vi_handoff_done(self, vp: vnode, s: int) -> None:
        """v_interlock taken with vi_lock was handed to lockmgr (LK_INTERLOCK), which has
        released it: undo the rest of what vi_lock did (2.0: nothing)."""

    # ---- vnode free list --------------------------------------------------------------------
    def freelist_lock(self) -> int:
        self.simple_lock(self.k.vfs.vnode_free_list_slock)
        return -1

    def freelist_unlock(self, s: int) -> None:
        self.simple_unlock(self.k.vfs.vnode_free_list_slock)

    # ---- the vnode's buffer lists (v_dirtyblkhd, v_cleanblkhd): splbio alone in 2.0 ----------
    def pageq_lock(self, lk: simplelock) -> int:
        """uvm_lock_pageq (uvm_page.h, 2.0): simple_lock(&uvm.pageqlock), at the caller's
        spl. Returns what pageq_unlock restores (-1: nothing)."""
        self.simple_lock(lk)
        return -1

    def pageq_unlock(self, lk: simplelock, s: int) -> None:
        self.simple_unlock(lk)

    def sync_dirty_hint(self, vp: vnode) -> bool:
        """ffs_sync's `LIST_EMPTY(&vp->v_dirtyblkhd)` test, made with v_interlock held and
        the mount's vnode list locked: 2.0 reads the list there without splbio (a hint: a
        buffer dirtied just after waits for its vnode's turn on the wheel)."""
        return bool(vp.v_dirtyblkhd)

    def buflist_lock(self, vp: vnode) -> int:
        return self.m.splbio()

    def buflist_unlock(self, vp: vnode, s: int) -> None:
        self.m.splx(s)

    # ---- the syncer worklist (syncer_workitem_pending, v_synclist): splbio alone in 2.0 -----
    def synclist_lock(self) -> int:
        return self.m.splbio()

    def synclist_unlock(self, s: int) -> None:
        self.m.splx(s)

    def on_worklist(self, vp: vnode) -> bool:
        return bool(vp.v_flag & VONWORKLST)

    def set_onworklist(self, vp: vnode, on: bool) -> None:
        """VONWORKLST lives in v_flag; 2.0 sets it at splbio without v_interlock."""
        if on:
            vp.v_flag |= VONWORKLST
        else:
            vp.v_flag &= ~VONWORKLST

    def maybe_leave_worklist(self, vfs: VfsSubr, vp: vnode) -> None:
        """brelvp/reassignbuf: a vnode with no pages and no dirty buffers leaves the worklist.
        Reads v_uobj.memq and v_flag: at splbio, without v_interlock (the mail)."""
        if not vp.v_uobj.memq and self.on_worklist(vp) and not vp.v_dirtyblkhd:
            self.set_onworklist(vp, False)
            self.k.syncer.unlink(vp)

    def maybe_leave_worklist_locked(self, vfs: VfsSubr, vp: vnode) -> None:
        """The same, taking the worklist's protection first (genfs_putpages after freeing)."""
        s = self.buflist_lock(vp)
        self.maybe_leave_worklist(vfs, vp)
        self.buflist_unlock(vp, s)

    def vclean_worklist(self, vfs: VfsSubr, vp: vnode) -> None:
        """vclean after its vinvalbuf: 2.0 asserts the vnode is off the syncer worklist
        (KASSERT((vp->v_flag & VONWORKLST) == 0)): the flush and the buffers' release took
        it off (genfs_putpages, brelvp, reassignbuf)."""
        with kassert():
            on = self.on_worklist(vp)
        if on:
            raise vfs.panic(f"vclean: vnode {vp.v_id} still on the syncer worklist "
                            "(KASSERT VONWORKLST == 0)")

    def putpages_wasclean(self, vfs: VfsSubr, vp: vnode) -> bool:
        """genfs_putpages' `wasclean = (vp->v_numoutput == 0)`, read with v_interlock held:
        2.0 reads it at splbio under global_v_numoutput_slock."""
        s = self.m.splbio()
        lk = vfs.global_v_numoutput_slock
        self.simple_lock(lk)
        idle = vp.v_numoutput == 0
        self.simple_unlock(lk)
        self.m.splx(s)
        return idle

    def putpages_leave_worklist(self, vfs: VfsSubr, vp: vnode) -> None:
        """genfs_putpages' end (v_interlock held): a flush of the whole file that was clean
        (nothing to write, no output pending when it began) with no dirty buffers takes the
        vnode off the worklist, at splbio. Pages dirtied while putpages slept are then on no
        list the syncer walks: PR kern/24596's problem 2."""
        s = self.synclist_lock()
        if self.on_worklist(vp) and not vp.v_dirtyblkhd:
            self.set_onworklist(vp, False)
            self.k.syncer.unlink(vp)
        self.synclist_unlock(s)

    def putpages_wait_output(self, vfs: VfsSubr, vp: vnode, s: int
                             ) -> Generator[Any, Any, int]:
        """genfs_putpages' end for a synchronous flush that was not clean ("genput2",
        genfs_vnops.c as of the netbsd-2-0 branch; the 2005 revision 1.101 is the nearest
        stored): with v_interlock held, at splbio, `while (v_numoutput != 0) { v_flag |=
        VBWAIT; sleep on &v_numoutput releasing v_interlock, for at most hz ticks }`.

        VBWAIT is set under v_interlock here and cleared by vwakeup under
        global_v_numoutput_slock in biodone, and v_numoutput is read without that lock: the
        second writer of VBWAIT the mail's protocol races with; the one-second timeout is
        2.0's own "try to recover from missed wakeups". Returns the spl cookie of v_interlock
        (it stays held)."""
        m = self.m
        x = m.splbio()
        timo = m.tick_ns * m.hz
        while vp.v_numoutput != 0:
            vp.v_flag |= VBWAIT
            yield from self.ltsleep(numoutput_ident(vp), "genput2", timo, vp.v_interlock, True)
        m.splx(x)
        return s

    # ---- v_numoutput ------------------------------------------------------------------------
    def numoutput_add(self, vfs: VfsSubr, vp: vnode, n: int) -> None:
        """V_INCR_NUMOUTPUT (called at splbio): the global lock hack of 2.0."""
        lk = vfs.global_v_numoutput_slock
        self.simple_lock(lk)
        vp.v_numoutput += n
        self.simple_unlock(lk)

    def vwakeup(self, vfs: VfsSubr, vp: vnode) -> None:
        lk = vfs.global_v_numoutput_slock
        self.simple_lock(lk)
        vp.v_numoutput -= 1
        if vp.v_numoutput < 0:
            self.simple_unlock(lk)
            raise vfs.panic(f"vwakeup: neg numoutput, vp {vp.v_id}")
        if vp.v_flag & VBWAIT and vp.v_numoutput <= 0:
            vp.v_flag &= ~VBWAIT
            self.m.wakeup(numoutput_ident(vp))
        self.simple_unlock(lk)

    def wait_numoutput(self, vfs: VfsSubr, vp: vnode, wmesg: str) -> Generator[Any, Any, None]:
        """while (vp->v_numoutput) { vp->v_flag |= VBWAIT; ltsleep(...) } at splbio."""
        m = self.m
        lk = vfs.global_v_numoutput_slock
        s = m.splbio()
        self.simple_lock(lk)
        while vp.v_numoutput > 0:
            vp.v_flag |= VBWAIT
            yield from self.ltsleep(numoutput_ident(vp), wmesg, 0, lk, True)
        self.simple_unlock(lk)
        m.splx(s)

    # ---- holds (v_holdcnt: v_interlock in 2.0) --------------------------------------------------
    def hold_lock(self, vp: vnode) -> int:
        return self.vi_lock(vp)

    def hold_unlock(self, vp: vnode, s: int) -> None:
        self.vi_unlock(vp, s)

    # holdrele moves an unused vnode from the hold list to the free list (2.0)
    hold_moves_lists = True

    def holdcnt(self, vp: vnode) -> int:
        """v_holdcnt, read by a caller that holds v_interlock."""
        return vp.v_holdcnt

    def holdrele_from_brelvp(self, vfs: VfsSubr, vp: vnode) -> None:
        vfs.holdrele(vp)

    # ---- the syncer -------------------------------------------------------------------------
    # 2.0 leaves a synced vnode on the worklist (brelvp drops it once it has no pages); the
    # fixes that keep biodone off v_uobj.memq let the syncer drop clean vnodes instead.
    syncer_prunes = False

    # ---- biodone ----------------------------------------------------------------------------
    def biodone(self, bio: BufCache, bp: buf) -> None:
        """biodone(9) runs its whole body where it is called: in the disk interrupt."""
        bio.biodone_work(bp)
