"""The three ways out the mail weighs, each a Protocol over the same storage stack.

- splbio-always (option 1): every taker of v_interlock (and of vnode_free_list_slock, which
  holdrele takes under it) raises to splbio first. v_interlock becomes interrupt-safe, so the
  fields biodone touches can simply be guarded by it: v_numoutput and VBWAIT under
  v_interlock (the global_v_numoutput_slock hack goes), the buffer lists under v_interlock, the
  syncer worklist under a lock of its own.
- split-interlock (option 2): a second per-vnode lock, v_bio_interlock, always taken at
  splbio, guards what biodone must touch: v_numoutput and VBWAIT (moved to v_bioflag), the
  buffer lists and v_holdcnt; v_interlock keeps the rest and is never taken at interrupt level.
  biodone's brelvp no longer looks at the page list or moves vnodes between the free and hold
  lists: the syncer drops clean vnodes from its worklist, and getnewvnode takes unheld vnodes
  from the hold list.
- biodoned (option 3, what NetBSD later did with a soft interrupt): the disk interrupt only
  queues the buffer; a kernel thread runs biodone's body, free to take v_interlock. With it
  v_dirtyblkhd and v_cleanblkhd move under v_interlock, v_numoutput and VBWAIT too, and the
  syncer worklist gets its own lock, as the mail proposes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.guards import declare_guards
from vfslab.kern.lock import simplelock
from vfslab.kern.protocol import Protocol, numoutput_ident
from vfslab.kern.vnode import VBWAIT, vnode

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vfs_bio import BufCache
    from vfslab.kern.vfs_subr import VfsSubr

# The worklist lock all three fixes add ("a new interlock to protect
# syncer_workitem_pending/v_synclist"); VONWORKLST is then read off v_synclist itself.
_SYNCER_GUARDS = {
    "vnode": {"v_synclist": "syncer_data_lock+splbio"},
    "syncer": {"syncer_workitem_pending": "syncer_data_lock+splbio"},
}


class WorklistLock(Protocol):
    """The syncer worklist under syncer_data_lock, membership read from v_synclist: the
    mail's "new interlock to protect syncer_workitem_pending/v_synclist", which each fix
    adds. Subclass it for a variant that changes only that (docs/extending.md)."""

    syncer_prunes = True

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.syncer_data_lock = simplelock("syncer_data_lock")

    def global_locks(self) -> dict[str, Any]:
        return {"syncer_data_lock": self.syncer_data_lock}

    def synclist_lock(self) -> int:
        s = self.m.splbio()
        self.simple_lock(self.syncer_data_lock)
        return s

    def synclist_unlock(self, s: int) -> None:
        self.simple_unlock(self.syncer_data_lock)
        self.m.splx(s)

    def on_worklist(self, vp: vnode) -> bool:
        return vp.v_synclist >= 0

    def set_onworklist(self, vp: vnode, on: bool) -> None:
        """Membership is the v_synclist link itself; nothing else to set."""

    def maybe_leave_worklist(self, vfs: VfsSubr, vp: vnode) -> None:
        """Not from biodone's paths: the syncer drops clean vnodes (syncer_prunes)."""

    def maybe_leave_worklist_locked(self, vfs: VfsSubr, vp: vnode) -> None:
        """Likewise."""

    def vclean_worklist(self, vfs: VfsSubr, vp: vnode) -> None:
        """Only the syncer prunes clean vnodes here, so a vnode being reclaimed may still be
        on its worklist: take it off, under the worklist's lock, before its lock is drained
        for good (found by the drained vnode lock: the syncer locked a reclaimed vnode)."""
        vfs.k.syncer.vn_syncer_remove_from_worklist(vp)

    def putpages_wasclean(self, vfs: VfsSubr, vp: vnode) -> bool:
        """v_numoutput is under v_interlock here, which putpages holds."""
        return vp.v_numoutput == 0

    def putpages_leave_worklist(self, vfs: VfsSubr, vp: vnode) -> None:
        """Likewise: only the syncer takes vnodes off its worklist."""


    def putpages_wait_output(self, vfs: VfsSubr, vp: vnode, s: int
                             ) -> Generator[Any, Any, int]:
        """Each fix waits for the vnode's output with its own v_numoutput protection
        (wait_numoutput), v_interlock released around it: no second writer of VBWAIT, so no
        timeout is needed."""
        self.vi_unlock(vp, s)
        yield from self.wait_numoutput(vfs, vp, "genput2")
        return self.vi_lock(vp)


class SplbioAlways(WorklistLock):
    name = "splbio-always"
    description = "option 1: every v_interlock taker raises to splbio first"
    guard_overrides = {
        "vnode": {
            "v_flag": "v_interlock+splbio",
            "v_usecount": "v_interlock+splbio",
            "v_holdcnt": "v_interlock+splbio",
            "v_numoutput": "v_interlock+splbio",
            "v_dirtyblkhd": "v_interlock+splbio",
            "v_cleanblkhd": "v_interlock+splbio",
            "v_freelist": "vnode_free_list_slock+splbio",
            **_SYNCER_GUARDS["vnode"],
        },
        "uvm_object": {"memq": "vmobjlock+splbio", "uo_npages": "vmobjlock+splbio"},
        "syncer": _SYNCER_GUARDS["syncer"],
    }

    def vi_lock(self, vp: vnode) -> int:
        s = self.m.splbio()
        self.simple_lock(vp.v_interlock)
        return s

    def vi_unlock(self, vp: vnode, s: int) -> None:
        self.simple_unlock(vp.v_interlock)
        self.m.splx(s)

    def vi_trylock(self, vp: vnode) -> int | None:
        s = self.m.splbio()
        if self.simple_lock_try(vp.v_interlock):
            return s
        self.m.splx(s)
        return None

    def vi_sleep(self, vp: vnode, ident: object, wmesg: str, relock: bool = True,
                 s: int = -1) -> Generator[Any, Any, int]:
        rv: int = yield from self.ltsleep(ident, wmesg, 0, vp.v_interlock, relock)
        if not relock and s >= 0:
            self.m.splx(s)
        return rv

    def vi_handoff_done(self, vp: vnode, s: int) -> None:
        self.m.splx(s)

    def vnlock_enter(self, vp: vnode) -> int:
        """vn_lock hands v_interlock to lockmgr, which takes the vnode lock's lk_interlock
        with it held: under this option that interlock too must be taken at splbio
        everywhere, or b_interlock -> v_interlock -> lk_interlock reaches a lock taken with
        interrupts enabled (found by the validator once the LK_INTERLOCK hand-off was
        modelled)."""
        return self.m.splbio()

    def vnlock_exit(self, vp: vnode, s: int) -> None:
        self.m.splx(s)

    def pageq_lock(self, lk: simplelock) -> int:
        """The page queues are locked with v_interlock held (genfs_getpages, aiodone, UBC):
        under this protocol that is at splbio, so they must be at splbio everywhere, the
        page daemon's scan included (found by the stress loop on `mixed`, the scenario with
        memory pressure)."""
        s = self.m.splbio()
        self.simple_lock(lk)
        return s

    def pageq_unlock(self, lk: simplelock, s: int) -> None:
        self.simple_unlock(lk)
        self.m.splx(s)

    def freelist_lock(self) -> int:
        s = self.m.splbio()
        self.simple_lock(self.k.vfs.vnode_free_list_slock)
        return s

    def freelist_unlock(self, s: int) -> None:
        self.simple_unlock(self.k.vfs.vnode_free_list_slock)
        self.m.splx(s)

    def buflist_lock(self, vp: vnode) -> int:
        return self.vi_lock(vp)

    def buflist_unlock(self, vp: vnode, s: int) -> None:
        self.vi_unlock(vp, s)

    def numoutput_add(self, vfs: VfsSubr, vp: vnode, n: int) -> None:
        s = self.vi_lock(vp)
        vp.v_numoutput += n
        self.vi_unlock(vp, s)

    def vwakeup(self, vfs: VfsSubr, vp: vnode) -> None:
        s = self.vi_lock(vp)
        vp.v_numoutput -= 1
        if vp.v_numoutput < 0:
            self.vi_unlock(vp, s)
            raise vfs.panic(f"vwakeup: neg numoutput, vp {vp.v_id}")
        if vp.v_flag & VBWAIT and vp.v_numoutput <= 0:
            vp.v_flag &= ~VBWAIT
            self.m.wakeup(numoutput_ident(vp))
        self.vi_unlock(vp, s)

    def wait_numoutput(self, vfs: VfsSubr, vp: vnode, wmesg: str) -> Generator[Any, Any, None]:
        s = self.vi_lock(vp)
        while vp.v_numoutput > 0:
            vp.v_flag |= VBWAIT
            yield from self.ltsleep(numoutput_ident(vp), wmesg, 0, vp.v_interlock, True)
        self.vi_unlock(vp, s)


@declare_guards("vnode_bio", {"v_bioflag": "v_bio_interlock+splbio"})
class VnodeBio:
    """split-interlock's per-vnode state (vp.v_proto): the interrupt-side interlock and the
    flags moved under it."""

    __slots__ = ("v_bio_interlock", "v_bioflag", "__weakref__")

    def __init__(self) -> None:
        self.v_bio_interlock = simplelock("v_bio_interlock")
        self.v_bioflag = 0


class SplitInterlock(WorklistLock):
    name = "split-interlock"
    description = "option 2: v_bio_interlock (always at splbio) for what biodone touches"
    hold_moves_lists = False
    guard_overrides = {
        "vnode": {
            "v_numoutput": "v_bio_interlock+splbio",
            "v_dirtyblkhd": "v_bio_interlock+splbio",
            "v_cleanblkhd": "v_bio_interlock+splbio",
            "v_holdcnt": "v_bio_interlock+splbio",
            **_SYNCER_GUARDS["vnode"],
        },
        "syncer": _SYNCER_GUARDS["syncer"],
    }

    def vnode_state(self, vp: vnode) -> VnodeBio:
        return VnodeBio()

    def _bio_lock(self, vp: vnode) -> int:
        s = self.m.splbio()
        self.simple_lock(vp.v_proto.v_bio_interlock)
        return s

    def _bio_unlock(self, vp: vnode, s: int) -> None:
        self.simple_unlock(vp.v_proto.v_bio_interlock)
        self.m.splx(s)

    def sync_dirty_hint(self, vp: vnode) -> bool:
        """v_interlock, which ffs_sync holds, no longer guards the buffer lists: read them
        under v_bio_interlock (found by the stress loop: ffs_sync read v_dirtyblkhd bare).
        The other fixes guard the lists with v_interlock itself."""
        s = self._bio_lock(vp)
        dirty = bool(vp.v_dirtyblkhd)
        self._bio_unlock(vp, s)
        return dirty

    def buflist_lock(self, vp: vnode) -> int:
        return self._bio_lock(vp)

    def buflist_unlock(self, vp: vnode, s: int) -> None:
        self._bio_unlock(vp, s)

    def hold_lock(self, vp: vnode) -> int:
        return self._bio_lock(vp)

    def hold_unlock(self, vp: vnode, s: int) -> None:
        self._bio_unlock(vp, s)

    def holdcnt(self, vp: vnode) -> int:
        s = self._bio_lock(vp)
        n = vp.v_holdcnt
        self._bio_unlock(vp, s)
        return n

    def putpages_wasclean(self, vfs: VfsSubr, vp: vnode) -> bool:
        s = self._bio_lock(vp)
        idle = vp.v_numoutput == 0
        self._bio_unlock(vp, s)
        return idle

    def numoutput_add(self, vfs: VfsSubr, vp: vnode, n: int) -> None:
        s = self._bio_lock(vp)
        vp.v_numoutput += n
        self._bio_unlock(vp, s)

    def vwakeup(self, vfs: VfsSubr, vp: vnode) -> None:
        s = self._bio_lock(vp)
        vp.v_numoutput -= 1
        if vp.v_numoutput < 0:
            self._bio_unlock(vp, s)
            raise vfs.panic(f"vwakeup: neg numoutput, vp {vp.v_id}")
        st: VnodeBio = vp.v_proto
        if st.v_bioflag & VBWAIT and vp.v_numoutput <= 0:
            st.v_bioflag &= ~VBWAIT
            self.m.wakeup(numoutput_ident(vp))
        self._bio_unlock(vp, s)

    def wait_numoutput(self, vfs: VfsSubr, vp: vnode, wmesg: str) -> Generator[Any, Any, None]:
        s = self._bio_lock(vp)
        st: VnodeBio = vp.v_proto
        while vp.v_numoutput > 0:
            st.v_bioflag |= VBWAIT
            yield from self.ltsleep(numoutput_ident(vp), wmesg, 0, st.v_bio_interlock, True)
        self._bio_unlock(vp, s)


class Biodoned(WorklistLock):
    name = "biodoned"
    description = "option 3: biodone's work in a kernel thread, free to take v_interlock"
    guard_overrides = {
        "vnode": {
            "v_numoutput": "v_interlock",
            "v_dirtyblkhd": "v_interlock",
            "v_cleanblkhd": "v_interlock",
            **_SYNCER_GUARDS["vnode"],
        },
        "syncer": _SYNCER_GUARDS["syncer"],
    }

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.biodone_lock = simplelock("biodone_lock")
        self.queue: deque[buf] = deque()
        self.ident = object()
        self.handled = 0

    def global_locks(self) -> dict[str, Any]:
        return {**super().global_locks(), "biodone_lock": self.biodone_lock}

    def start(self) -> None:
        self.m.spawn("biodoned", self.biodoned())

    def buflist_lock(self, vp: vnode) -> int:
        self.simple_lock(vp.v_interlock)
        return -1

    def buflist_unlock(self, vp: vnode, s: int) -> None:
        self.simple_unlock(vp.v_interlock)

    def numoutput_add(self, vfs: VfsSubr, vp: vnode, n: int) -> None:
        self.simple_lock(vp.v_interlock)
        vp.v_numoutput += n
        self.simple_unlock(vp.v_interlock)

    def vwakeup(self, vfs: VfsSubr, vp: vnode) -> None:
        self.simple_lock(vp.v_interlock)
        vp.v_numoutput -= 1
        if vp.v_numoutput < 0:
            self.simple_unlock(vp.v_interlock)
            raise vfs.panic(f"vwakeup: neg numoutput, vp {vp.v_id}")
        if vp.v_flag & VBWAIT and vp.v_numoutput <= 0:
            vp.v_flag &= ~VBWAIT
            self.m.wakeup(numoutput_ident(vp))
        self.simple_unlock(vp.v_interlock)

    def wait_numoutput(self, vfs: VfsSubr, vp: vnode, wmesg: str) -> Generator[Any, Any, None]:
        self.simple_lock(vp.v_interlock)
        while vp.v_numoutput > 0:
            vp.v_flag |= VBWAIT
            yield from self.ltsleep(numoutput_ident(vp), wmesg, 0, vp.v_interlock, True)
        self.simple_unlock(vp.v_interlock)

    def biodone(self, bio: BufCache, bp: buf) -> None:
        """In the interrupt: queue the buffer for biodoned, nothing else. At splbio: biodone
        is also called from thread context, by a driver's strategy that refuses a request at
        once (wdstrategy's `bad:` label, at the caller's spl), and the interrupt must not
        come in while the queue's lock is held (found by the validator on `protocol`, once a
        bitmap write lost to a disk error had made a block pointer point past the disk)."""
        s = self.m.splbio()
        self.simple_lock(self.biodone_lock)
        self.queue.append(bp)
        self.m.wakeup(self.ident)
        self.simple_unlock(self.biodone_lock)
        self.m.splx(s)

    def biodoned(self) -> Generator[Any, Any, None]:
        """The helper thread: biodone's 2.0 body for each queued buffer, in thread context."""
        m = self.m
        bio = self.k.bio
        while True:
            s = m.splbio()
            self.simple_lock(self.biodone_lock)
            if not self.queue:
                yield from self.ltsleep(self.ident, "biodoned", 0, self.biodone_lock, False)
                m.splx(s)
                continue
            batch = list(self.queue)
            self.queue.clear()
            self.simple_unlock(self.biodone_lock)
            m.splx(s)
            for bp in batch:
                self.handled += 1
                bio.biodone_work(bp)
