"""DIAGNOSTIC: the storage stack's invariants, checked as it runs (`--invariants`).

Checked after every 32nd system call and every 250 ms of emulated time (a full check walks
every buffer and page, so it is not run after every call); the first broken invariant stops
the run with a panic that names it and the call chain that found it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import B_BUSY, B_DELWRI, B_VFLUSH
from vfslab.kern.uvm_page import PG_CLEAN
from vfslab.kern.vnode import ON_FREE_LIST, ON_HOLD_LIST, VONWORKLST
from vfslab.sim.panic import Panic
from vfslab.sim.stack import call_chain

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

EVERY_CALLS = 32
EVERY_NS = 250_000_000


class InvariantError(Panic):
    kind = "invariant"


class Invariants:
    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.calls = 0
        self.checks = 0
        k.m.at(k.m.now + EVERY_NS, self._tick)

    def _tick(self, _: Any = None) -> None:
        self.check()
        self.k.m.at(self.k.m.now + EVERY_NS, self._tick)

    def after_syscall(self) -> None:
        self.calls += 1
        if self.calls % EVERY_CALLS == 0:
            self.check()

    def fail(self, what: str) -> None:
        m = self.k.m
        raise InvariantError(f"invariant broken: {what}", "DIAGNOSTIC check",
                             [call_chain(4)], m.now)

    def check(self) -> None:
        """Run every check outside any emulated context, so the validator does not see the
        checker's own reads as kernel accesses."""
        m = self.k.m
        cur = m.cur
        m.cur = None
        try:
            self._check()
        finally:
            m.cur = cur

    def _check(self) -> None:
        self.checks += 1
        k = self.k
        bio = k.bio
        fail = self.fail
        # buffers: queues, hash, vnode lists
        seen: dict[int, int] = {}
        for qi, q in enumerate(bio.bufqueues):
            for bp in q:
                if id(bp) in seen:
                    fail(f"{bp!r} on free queues {seen[id(bp)]} and {qi}")
                seen[id(bp)] = qi
                if bp.b_qindex != qi:
                    fail(f"{bp!r} on queue {qi} but b_qindex {bp.b_qindex}")
                if bp.b_flags & B_BUSY and not bp.b_flags & B_VFLUSH:
                    fail(f"{bp!r} busy (without B_VFLUSH) yet on free queue {qi}")
        ndelwri = 0
        held: dict[int, int] = {}
        for key, bp in bio.bufhash.items():
            if bp.b_hashkey != key:
                fail(f"{bp!r} hashed under {key} but b_hashkey {bp.b_hashkey}")
            if not bp.b_flags & B_BUSY and id(bp) not in seen:
                fail(f"{bp!r} neither busy nor on a free queue")
            if bp.b_flags & B_DELWRI:
                ndelwri += 1
            vp = bp.b_vp
            if vp is not None:
                held[id(vp)] = held.get(id(vp), 0) + 1
                on = bp.b_onvnlist
                if on == 2 and bp not in vp.v_dirtyblkhd or on == 1 and bp not in vp.v_cleanblkhd:
                    fail(f"{bp!r} b_onvnlist={on} but not on that list of vnode {vp.v_id}")
                if not bp.b_flags & B_BUSY and bool(bp.b_flags & B_DELWRI) != (on == 2):
                    fail(f"{bp!r} B_DELWRI does not match its vnode list")
        if ndelwri != bio.ndirty:
            fail(f"{ndelwri} B_DELWRI buffers but the count says {bio.ndirty}")
        # vnodes
        for vp in k.vfs.all_vnodes:
            if vp.v_usecount < 0 or vp.v_holdcnt < 0 or vp.v_numoutput < 0:
                fail(f"vnode {vp.v_id}: negative count (use {vp.v_usecount}, hold "
                     f"{vp.v_holdcnt}, numoutput {vp.v_numoutput})")
            for bp in vp.v_dirtyblkhd:
                if bp.b_vp is not vp or bp.b_onvnlist != 2:
                    fail(f"vnode {vp.v_id}: {bp!r} on its dirty list does not point back")
            for bp in vp.v_cleanblkhd:
                if bp.b_vp is not vp or bp.b_onvnlist != 1:
                    fail(f"vnode {vp.v_id}: {bp!r} on its clean list does not point back")
            nbufs = len(vp.v_dirtyblkhd) + len(vp.v_cleanblkhd)
            if vp.v_holdcnt < nbufs:
                fail(f"vnode {vp.v_id}: holdcnt {vp.v_holdcnt} < {nbufs} buffers")
            fl = vp.v_freelist
            if fl == ON_FREE_LIST and (vp.v_usecount or vp not in k.vfs.vnode_free_list):
                fail(f"vnode {vp.v_id} on the free list with usecount {vp.v_usecount}")
            if fl == ON_HOLD_LIST and vp not in k.vfs.vnode_hold_list:
                fail(f"vnode {vp.v_id} marked on the hold list but not there")
            on_wheel = vp.v_synclist >= 0 and vp in k.syncer.syncer_workitem_pending[vp.v_synclist]
            if not k.proto.worklist_consistent(vp, on_wheel):
                fail(f"vnode {vp.v_id}: on the worklist by the protocol "
                     f"({k.proto.on_worklist(vp)}, VONWORKLST={bool(vp.v_flag & VONWORKLST)}) "
                     f"but on the syncer wheel: {on_wheel}")
            uobj = vp.v_uobj
            if uobj.uo_npages != len(uobj.memq):
                fail(f"vnode {vp.v_id}: uo_npages {uobj.uo_npages} != {len(uobj.memq)} pages")
            for off, pg in uobj.memq.items():
                if pg.offset != off or pg.uobject is not uobj:
                    fail(f"page {pg!r} tabled at {off} of vnode {vp.v_id}")
                if bool(pg.flags & PG_CLEAN) == (pg in uobj.dirtyq):
                    fail(f"page {pg!r}: PG_CLEAN does not match the dirty queue")
            for pg in uobj.dirtyq:
                if pg.uobject is not uobj or uobj.memq.get(pg.offset) is not pg:
                    fail(f"dirty page {pg!r} not resident in its object")
        # pages
        uvm = k.uvm
        resident = sum(v.v_uobj.uo_npages for v in k.vfs.all_vnodes)
        if resident + uvm.free != uvm.npages:
            fail(f"{resident} resident + {uvm.free} free pages != {uvm.npages}")
        ndirty = sum(len(o.dirtyq) for o in uvm.dirty_objects)
        if ndirty != uvm.ndirty:
            fail(f"{ndirty} pages on dirty queues but ndirty says {uvm.ndirty}")
        for o in uvm.dirty_objects:
            if not o.dirtyq:
                fail(f"clean object of vnode {o.vp.v_id} on the dirty-object list")
