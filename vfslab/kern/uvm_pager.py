"""Completion of page-cache I/O (uvm/uvm_pager.c, NetBSD 2.0): uvm_aio_biodone, the B_CALL
callback biodone calls at IPL_BIO, only queues the buffer for the aiodoned thread, which then
does the work that needs the object lock (v_interlock): unbusy the pages, free paged-out ones,
re-dirty pages whose write failed, and the second vwakeup of v_numoutput.

This is the helper-thread pattern the mail's option 3 extends to all of biodone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import B_ERROR, buf
from vfslab.kern.lock import simplelock
from vfslab.kern.uvm_page import PG_BUSY, PG_PAGEOUT, PG_RELEASED, PG_WANTED, vm_page

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

EIO = 5


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

    def start(self) -> None:
        self.m.spawn("aiodoned", self.uvm_aiodone_daemon())

    def uvm_aio_biodone(self, bp: buf) -> None:
        """The B_CALL callback of page-cache I/O, at IPL_BIO: queue it, wake aiodoned."""
        self.simple_lock(self.aiodoned_lock)
        self.aio_done.append(bp)
        self.m.wakeup(self.ident)
        self.simple_unlock(self.aiodoned_lock)

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
        pageout), re-dirtied on error with the error kept for the next fsync."""
        k = self.k
        uvm = k.uvm
        p = k.proto
        pgs: list[vm_page] = bp.b_private
        vp = bp.b_vp
        assert vp is not None
        error = bool(bp.b_flags & B_ERROR)
        self.nprocessed += 1
        now = self.m.time()
        s = p.vi_lock(vp)
        for pg in pgs:
            uvm.npageout -= 1
            if error:
                uvm.page_dirty(pg, now)       # the data is still only in memory
            flags = pg.flags
            if flags & PG_PAGEOUT:
                uvm.npdpageout -= 1
            if flags & PG_WANTED:
                self.m.wakeup(pg)
            if flags & PG_RELEASED or (flags & PG_PAGEOUT and not error):
                pg.flags = flags & ~(PG_BUSY | PG_WANTED | PG_PAGEOUT | PG_RELEASED)
                uvm.uvm_pagefree(pg)
            else:
                pg.flags = flags & ~(PG_BUSY | PG_WANTED | PG_PAGEOUT)
        if error:
            self.write_errors += 1
            k.ubc.latch_error(vp, bp.b_error or EIO)
        p.vi_unlock(vp, s)
        s = self.m.splbio()
        k.vfs.vwakeup(bp)         # the second count: "one for biodone, one for aiodone"
        self.m.splx(s)
        bp.b_private = None
