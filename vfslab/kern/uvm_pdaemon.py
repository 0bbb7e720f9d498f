"""The page daemon (uvm/uvm_pdaemon.c, NetBSD 2.0; 1.39 of 2001 is the nearest stored revision
before it): when free memory falls below freemin it balances the active and inactive queues,
frees clean inactive pages and starts asynchronous pageouts of dirty ones (aiodoned frees them
once written), until freetarg pages are free.

2.0 scans with a clock; this one scans the inactive queue from its oldest end, which is the same
order for pages that are not re-referenced. For a vnode page 2.0's uvmpd_scan_inactive calls
the pager (`pgo_put(PGO_CLEANIT|PGO_FREE)` over the page), whose genfs_putpages removes the
page's mappings and asks pmap_clear_modify before freeing it; vfslab makes those two steps here
(pmap_page_protect(VM_PROT_NONE), pmap_is_modified) and frees a clean page itself, and pages a
dirty one out with its cluster.
"""

from __future__ import annotations

from collections.abc import Generator
from itertools import islice
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import MAXPHYS, PAGE_SHIFT
from vfslab.kern.pmap import VM_PROT_NONE
from vfslab.kern.uvm_page import PG_BUSY, PG_CLEAN

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

CLUSTER = MAXPHYS >> PAGE_SHIFT


class PageDaemon:
    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m
        self.scans = 0
        self.freed = 0
        self.pageouts = 0

    def start(self) -> None:
        self.m.spawn("pagedaemon", self.uvm_pageout())

    def uvm_pageout(self) -> Generator[Any, Any, None]:
        uvm = self.k.uvm
        m = self.m
        while True:
            if uvm.free >= uvm.freemin and not uvm.nwaiting:
                yield from m.tsleep(uvm.pagedaemon_ident, "pgdaemon")
                continue
            progress = yield from self.uvmpd_scan()
            if uvm.nwaiting and uvm.free > uvm.reserve_kernel:
                uvm.nwaiting = 0
                m.wakeup(uvm.free_ident)
            if not progress:
                # nothing more to start: wait for pageouts to finish (aiodoned wakes us)
                yield from m.tsleep(uvm.pdwait_ident, "pgdwait", m.tick_ns * 10)

    def uvmpd_scan(self) -> Generator[Any, Any, bool]:
        """One pass: refill the inactive queue, then free or page out from its head."""
        k = self.k
        uvm = k.uvm
        p = k.proto
        self.scans += 1
        # uvm_pageout holds the page queues across the scan (uvm_lock_pageq), dropping
        # them to start a pageout; the objects' locks are only tried (simple_lock_try)
        uvm.uvm_lock_pageq()
        # balance: keep a third of the pages inactive
        target = (len(uvm.active) + len(uvm.inactive)) // 3
        while len(uvm.inactive) < target and uvm.active:
            pg = next(iter(uvm.active))
            uvm.uvm_pagedeactivate(pg)
        progress = False
        # pages already being paged out will be freed by aiodoned: count them as done
        need = uvm.freetarg - uvm.free - uvm.npdpageout
        if need <= 0:
            uvm.uvm_unlock_pageq()
            return False
        inactive = uvm.inactive
        # the clock hand: look at a bounded batch from the head; a page it passes over
        # (busy under I/O) goes to the tail, as the hand moving past it
        batch = list(islice(inactive, need + 2 * CLUSTER))
        busy = 0
        for pg in batch:
            if need <= 0:
                break
            if not (pg.pqflags & 0x2):
                continue
            if pg.flags & PG_BUSY:
                inactive.move_to_end(pg)
                busy += 1
                if busy >= 4 * CLUSTER:
                    break       # mostly under I/O: wait for it rather than spin the hand
                continue
            vp = pg.uobject.vp
            s = p.vi_trylock(vp)
            if s is None:
                continue
            if pg.flags & PG_BUSY or not (pg.pqflags & 0x2):
                p.vi_unlock(vp, s)
                continue
            # uvmpd_scan_inactive: no mapping may dirty it behind our back, and a page the
            # kernel thought clean may have been modified through one
            k.pmap.pmap_page_protect(pg, VM_PROT_NONE)
            if pg.flags & PG_CLEAN and k.pmap.pmap_is_modified(pg):
                uvm.page_dirty(pg, self.m.time())
            if pg.flags & PG_CLEAN:
                uvm.uvm_pagefree(pg)
                self.freed += 1
                need -= 1
                progress = True
                p.vi_unlock(vp, s)
                continue
            p.vi_unlock(vp, s)
            off = (pg.offset // CLUSTER) * CLUSTER
            uvm.uvm_unlock_pageq()
            yield from k.genfs.putpages(vp, off << PAGE_SHIFT, (off + CLUSTER) << PAGE_SHIFT,
                                        clean=True, pageout=True)
            uvm.uvm_lock_pageq()
            self.pageouts += 1
            need -= CLUSTER
            progress = True
        uvm.uvm_unlock_pageq()
        return progress
