"""Completion of page-cache I/O (uvm/uvm_pager.c, netbsd-2-0 branch; 1.72.2.1 of 2006 is the
nearest stored revision): uvm_aio_biodone, the B_CALL callback biodone calls at IPL_BIO, only
queues the buffer for the aiodoned thread, which then does the work that needs the object lock
(v_interlock): unbusy the pages, free paged-out ones, and the second vwakeup of v_numoutput.
uvm_aio_biodone1 folds a cluster's child buffer into its master.

A failed page write, as 2.0: the pages are re-dirtied only for ENOMEM ("a transient failure");
for any other error "the data in the page is lost. bummer.": the pages stay clean, paged-out
ones are freed, and the error goes no further (`uvm.write_error=drop`, the default). The disk
model fails writes with EIO, so under 2.0 a failed asynchronous write is data lost and never
reported. `uvm.write_error=redirty` (not 2.0: Linux's errseq behaviour) re-dirties the pages and
keeps the error for the vnode's next fsync.

This is the helper-thread pattern the mail's option 3 extends to all of biodone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import B_AGE, B_ERROR, buf
from vfslab.kern.lock import simplelock
from vfslab.kern.uvm_page import PG_BUSY, PG_PAGEOUT, PG_RELEASED, PG_WANTED, vm_page
from vfslab.tunable import Tunable, declare_setting, setting

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

EIO = 5
ENOMEM = 12

WRITE_ERROR = declare_setting("uvm", Tunable(
    "write_error", str, "drop",
    "a failed asynchronous page write: drop (2.0's uvm_aio_aiodone: the pages stay clean, the "
    "data and the error are lost) or redirty (the pages are written again and the error is "
    "kept for the next fsync, as Linux's errseq)", choices=("drop", "redirty")))


class AioDone:
    """uvm.aio_done and the aiodoned thread."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m
        L = k.locks
        self.simple_lock = L.simple_lock
        self.simple_unlock = L.simple_unlock
        self.aiodoned_lock = simplelock("aiodoned_lock")
        self.aio_done: deque[buf] = deque()
        self.ident = object()         # &uvm.aiodoned
        self.nprocessed = 0
        self.write_errors = 0
        self.pages_dropped = 0        # pages whose failed write lost their data (drop)
        self.redirty: bool = setting(k.cfg.sysctl, "uvm.write_error") == "redirty"

    def start(self) -> None:
        self.m.spawn("aiodoned", self.uvm_aiodone_daemon())

    def uvm_aio_biodone(self, bp: buf) -> None:
        """The B_CALL callback of page-cache I/O, at IPL_BIO: queue it, wake aiodoned."""
        self.simple_lock(self.aiodoned_lock)
        self.aio_done.append(bp)
        self.m.wakeup(self.ident)
        self.simple_unlock(self.aiodoned_lock)

    def uvm_aio_biodone1(self, bp: buf) -> None:
        """The B_CALL callback of a cluster's child buffer, at IPL_BIO: its error and its
        bytes go to the master, which is done (biodone) when its last child is."""
        mbp: buf = bp.b_private
        if bp.b_flags & B_ERROR:
            mbp.b_flags |= B_ERROR
            mbp.b_error = bp.b_error
        mbp.b_resid -= bp.b_bcount
        bp.b_private = None
        if mbp.b_resid == 0:
            self.k.bio.biodone(mbp)

    def uvm_aiodone_daemon(self) -> Generator[Any, Any, None]:
        m = self.m
        L = self.k.locks
        while True:
            s = m.splbio()
            self.simple_lock(self.aiodoned_lock)
            if not self.aio_done:
                yield from L.ltsleep(self.ident, "aiodoned", 0, self.aiodoned_lock, False)
                m.splx(s)
                continue
            batch = list(self.aio_done)
            self.aio_done.clear()
            self.simple_unlock(self.aiodoned_lock)
            m.splx(s)
            for bp in batch:
                self.uvm_aio_aiodone(bp)
            uvm = self.k.uvm
            if uvm.nwaiting:
                uvm.nwaiting = 0
                m.wakeup(uvm.free_ident)
            if uvm.free < uvm.freemin:
                m.wakeup(uvm.pdwait_ident)

    def uvm_aio_aiodone(self, bp: buf) -> None:
        """Finish a page-cache write in thread context: pages unbusied (freed after a
        pageout or when released); a failed write's pages re-dirtied only for ENOMEM, or
        with `uvm.write_error=redirty` (the error then kept for the next fsync); otherwise
        their data is dropped (see the module text)."""
        k = self.k
        uvm = k.uvm
        p = k.proto
        pgs: list[vm_page] = bp.b_private
        vp = bp.b_vp
        assert vp is not None
        error = (bp.b_error or EIO) if bp.b_flags & B_ERROR else 0
        redirty = bool(error) and (error == ENOMEM or self.redirty)
        self.nprocessed += 1
        now = self.m.time()
        s = p.vi_lock(vp)
        uvm.uvm_lock_pageq()
        for pg in pgs:
            uvm.npageout -= 1
            if redirty:
                uvm.page_dirty(pg, now)       # the data is still only in memory
                if pg.flags & PG_PAGEOUT:
                    pg.flags &= ~PG_PAGEOUT
                    uvm.npdpageout -= 1
            flags = pg.flags
            if flags & PG_PAGEOUT:
                uvm.npdpageout -= 1
            if flags & PG_WANTED:
                self.m.wakeup(pg)
            if flags & (PG_RELEASED | PG_PAGEOUT):
                pg.flags = flags & ~(PG_BUSY | PG_WANTED | PG_PAGEOUT | PG_RELEASED)
                uvm.uvm_pagefree(pg)
            else:
                pg.flags = flags & ~(PG_BUSY | PG_WANTED | PG_PAGEOUT)
        uvm.uvm_unlock_pageq()
        if error:
            self.write_errors += 1
            if redirty and error != ENOMEM:
                k.ubc.latch_error(vp, error)
            elif not redirty:
                self.pages_dropped += len(pgs)
                for f in k.notify.data_dropped:
                    f(vp, [(pg.offset, pg.stamp) for pg in pgs], now)
        p.vi_unlock(vp, s)
        s = self.m.splbio()
        if bp.b_flags & B_AGE:
            k.vfs.vwakeup(bp)     # the second count: "one for biodone, one for aiodone"
        self.m.splx(s)
        bp.b_private = None
