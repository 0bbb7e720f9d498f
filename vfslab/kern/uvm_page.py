"""Physical pages of the page cache (uvm/uvm_page.c, NetBSD 2.0): allocation and freeing,
lookup, the active and inactive queues, dirty state, and waiting for free memory.

Each vnode's uvm_object keeps its pages in `memq` (index -> page: the TAILQ and the page hash in
one) and its dirty pages in `dirtyq`, in the order they were dirtied; `dirty_objects` lists the
objects with dirty pages in the order they first became dirty. These two orders are the "object
page queues" the mail wants the trickle syncer to walk.

Memory is a resource: `npages` page frames in all. Writers sleep in uvm_wait() when none is
free, and the page daemon (uvm_pdaemon.py) cleans and frees pages to wake them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfslab.kern.lock import simplelock
from vfslab.kern.vnode import uvm_object
from vfslab.sim.ipl import IPL_VM

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

# pg->flags (uvm/uvm_page.h)
PG_BUSY = 0x0001
PG_WANTED = 0x0002
PG_TABLED = 0x0004
PG_CLEAN = 0x0008
PG_PAGEOUT = 0x0010
PG_RELEASED = 0x0020
PG_FAKE = 0x0040      # contents not yet valid (being read)
PG_RDONLY = 0x0080

# pg->pqflags
PQ_FREE = 0x0001
PQ_INACTIVE = 0x0002
PQ_ACTIVE = 0x0004


class vm_page:  # noqa: N801  (struct vm_page)
    """One page of a vnode's object: its identity, state and the data version it holds."""

    __slots__ = ("uobject", "offset", "flags", "pqflags", "stamp", "dirtied_at", "pmap_mod",
                 "prot_gen", "__weakref__")

    def __init__(self, uobject: uvm_object, offset: int) -> None:
        self.uobject = uobject
        self.offset = offset          # page index within the object
        self.flags = PG_BUSY | PG_CLEAN | PG_FAKE | PG_TABLED
        self.pqflags = 0
        self.stamp = 0                # version stamp of the data (0: zeroes)
        self.dirtied_at = -1          # when it went from clean to dirty
        self.pmap_mod = False         # the pmap's modified bit (kern/pmap.py)
        self.prot_gen = 0             # bumped by pmap_page_protect: older mappings fault

    def __repr__(self) -> str:
        return f"<vm_page vp={self.uobject.vp.v_id} off={self.offset} flags={self.flags:#x}>"


@dataclass(slots=True)
class UvmStats:
    pagealloc: int = 0
    pagefree: int = 0
    waits: int = 0
    pagesdirtied: int = 0
    pagescleaned: int = 0


class Uvm:
    """The page allocator, the paging queues and uvmexp's counters of one machine."""

    def __init__(self, k: Kernel, npages: int) -> None:
        self.k = k
        self.m = k.m
        self.npages = npages
        self.free = npages
        # uvmexp.freemin / freetarg as 2.0 computes them (uvmpd_tune): 1/20 of memory,
        # at least 16 pages; target 4/3 of that.
        self.freemin = max(16, npages // 20)
        self.freetarg = self.freemin * 4 // 3
        self.reserve_kernel = max(4, self.freemin // 4)
        self.active: OrderedDict[vm_page, None] = OrderedDict()
        self.inactive: OrderedDict[vm_page, None] = OrderedDict()
        self.ndirty = 0                 # dirty pages (not PG_CLEAN)
        self.npageout = 0               # pages busy being written
        self.npdpageout = 0             # of which paged out by the page daemon (freed after)
        self.dirty_objects: dict[uvm_object, None] = {}
        self.free_ident = object()      # &uvmexp.free
        self.pagedaemon_ident = object()  # &uvm.pagedaemon
        self.pdwait_ident = object()      # the page daemon waiting for its pageouts
        self.stats = UvmStats()
        self.nwaiting = 0
        self.notify = k.notify
        # uvm.pageqlock (the active and inactive queues: uvm_lock_pageq) and uvm.fpageqlock
        # (the free queues, taken at splvm: uvm_lock_fpageq), uvm_page.h of 2.0
        self.pageqlock = simplelock("uvm.pageqlock")
        self.fpageqlock = simplelock("uvm.fpageqlock")
        self.L = k.locks
        self._pageq_s = -1              # the spl the page queues' holder came from

    def uvm_lock_pageq(self) -> None:
        """uvm_lock_pageq: how the lock is taken is the protocol's decision (2.0: the bare
        simple lock). The saved spl lives with the lock: only its holder writes it."""
        s = self.k.proto.pageq_lock(self.pageqlock)
        self._pageq_s = s

    def uvm_unlock_pageq(self) -> None:
        s = self._pageq_s
        self.k.proto.pageq_unlock(self.pageqlock, s)

    # ---- allocation -------------------------------------------------------------------------
    def uvm_pagealloc(self, uobj: uvm_object, off: int) -> vm_page | None:
        """A new busy, not yet valid page at `off` of `uobj`, or None when memory is short
        (the caller sleeps in uvm_wait). The object's lock is held by the caller."""
        if self.free <= self.reserve_kernel:
            self.kick_pagedaemon()
            return None
        m = self.m
        s = m.splraise(IPL_VM)                  # uvm_lock_fpageq
        self.L.simple_lock(self.fpageqlock)
        self.free -= 1
        self.L.simple_unlock(self.fpageqlock)
        m.splx(s)
        self.stats.pagealloc += 1
        pg = vm_page(uobj, off)
        uobj.memq[off] = pg
        uobj.uo_npages += 1
        if self.free < self.freemin:
            self.kick_pagedaemon()
        return pg

    def uvm_pagefree(self, pg: vm_page) -> None:
        """Free a page (the object's lock and the page queues' held, as 2.0 asks): off its
        object, its queue and its dirty list, onto the free queue under uvm.fpageqlock at
        splvm."""
        uobj = pg.uobject
        if not (pg.flags & PG_CLEAN):
            self.page_clean(pg)
        self.k.pmap.page_freed(pg)
        if pg.flags & PG_TABLED:
            del uobj.memq[pg.offset]
            uobj.uo_npages -= 1
            pg.flags &= ~PG_TABLED
        pq = pg.pqflags
        if pq & PQ_ACTIVE:
            del self.active[pg]
        elif pq & PQ_INACTIVE:
            del self.inactive[pg]
        pg.pqflags = PQ_FREE
        m = self.m
        s = m.splraise(IPL_VM)
        self.L.simple_lock(self.fpageqlock)
        self.free += 1
        self.L.simple_unlock(self.fpageqlock)
        m.splx(s)
        self.stats.pagefree += 1
        if pg.flags & PG_WANTED:
            self.m.wakeup(pg)
        if self.nwaiting:
            self.nwaiting = 0
            self.m.wakeup(self.free_ident)

    def uvm_pagelookup(self, uobj: uvm_object, off: int) -> vm_page | None:
        return uobj.memq.get(off)

    def kick_pagedaemon(self) -> None:
        self.m.wakeup(self.pagedaemon_ident)

    def uvm_wait(self, wmesg: str) -> Generator[Any, Any, None]:
        """Sleep until the page daemon frees memory."""
        self.stats.waits += 1
        self.nwaiting += 1
        self.kick_pagedaemon()
        yield from self.m.tsleep(self.free_ident, wmesg, self.m.tick_ns * 25)

    # ---- queues -----------------------------------------------------------------------------
    def uvm_pageactivate(self, pg: vm_page) -> None:
        pq = pg.pqflags
        if pq & PQ_ACTIVE:
            self.active.move_to_end(pg)
            return
        if pq & PQ_INACTIVE:
            del self.inactive[pg]
        self.active[pg] = None
        pg.pqflags = PQ_ACTIVE

    def uvm_pagedeactivate(self, pg: vm_page) -> None:
        pq = pg.pqflags
        if pq & PQ_INACTIVE:
            return
        if pq & PQ_ACTIVE:
            del self.active[pg]
        self.inactive[pg] = None
        pg.pqflags = PQ_INACTIVE

    # ---- dirty state ------------------------------------------------------------------------
    def page_dirty(self, pg: vm_page, now: int) -> None:
        """The page's contents changed (pmap_set_modify + !PG_CLEAN)."""
        if pg.flags & PG_CLEAN:
            pg.flags &= ~PG_CLEAN
            if pg.pmap_mod:
                # known now; it was at risk since the store that set the modified bit
                now = min(now, self.k.pmap.unknown.get(pg, now))
                self.k.pmap.known(pg)
            pg.dirtied_at = now
            uobj = pg.uobject
            dq = uobj.dirtyq
            if not dq:
                self.dirty_objects[uobj] = None
                for f in self.notify.object_dirtied:
                    f(uobj, now)
            dq[pg] = None
            self.ndirty += 1
            self.stats.pagesdirtied += 1
            for g in self.notify.page_dirtied:
                g(pg, now)

    def page_clean(self, pg: vm_page) -> None:
        """The page is being written (or was discarded): it leaves the dirty lists."""
        if not (pg.flags & PG_CLEAN):
            pg.flags |= PG_CLEAN
            uobj = pg.uobject
            dq = uobj.dirtyq
            del dq[pg]
            if not dq:
                del self.dirty_objects[uobj]
            self.ndirty -= 1
            self.stats.pagescleaned += 1
            # observers still see when the page was dirtied: what its write makes safe
            for f in self.notify.page_cleaned:
                f(pg)
            pg.dirtied_at = -1

    def oldest_dirty_ns(self) -> int:
        """When the oldest dirty page was dirtied (-1 if none): the data most at risk."""
        oldest = -1
        for uobj in self.dirty_objects:
            pg = next(iter(uobj.dirtyq))
            if oldest < 0 or pg.dirtied_at < oldest:
                oldest = pg.dirtied_at
        return oldest
