"""The unified buffer cache's copy path (uvm/uvm_bio.c, netbsd-2-0 branch; 1.15.2.5 of 2002 is
the nearest stored revision): read(2) and write(2) copy between the process and a vnode's pages
through UBC windows.

The window cache is 2.0's: UBC_NWINS (1024) windows of 1 << UBC_WINSHIFT (8 KiB) bytes
(sys/param.h), reused least recently released first; ubc_release leaves a window's mappings in
place (UMAP_MAPPING_CACHED), and ubc_fault maps the pages it faults in for reading and writing
(prot READ|WRITE where the cache is not virtually tagged). So a copy into a page that a still
cached window maps is a store through a writable mapping: it sets the page's modified bit in the
pmap (kern/pmap.py) and nothing else, no fault, no getpages, no worklist. Only a fault (a page
not mapped in its window: new, evicted, freed, or write-protected since) goes through
genfs_getpages for writing, which dirties the page in the kernel's accounting and puts the
vnode on the syncer worklist (and, with `genfs.pr24596_fix`, bumps the dirty generation).

A policy that finds dirty pages from the kernel's dirty lists (`WritebackPolicy.write_faults`)
has read faults map pages read-only, as NetBSD later did for such objects
(UVM_OBJ_NEEDS_WRITEFAULT), so that every first store after a read or a clean faults.

The copy loop takes the object lock once per 64 KiB (2.0 faults page by page; the same
protocol with fewer steps); the window cache is kept at 8 KiB. ubc_alloc and ubc_release take
the UBC object's own lock (`ubc_object.uobj.vmobjlock`, 1.15.2.5: no splbio, no other spin
lock held) to look a window up and to put it back on the inactive queue; vfslab takes it once
at each end of a 64 KiB step, outside v_interlock as 2.0 does (ubc_fault takes the vnode's
object lock only after ubc_alloc has dropped the UBC's). No bytes are copied: a page holds
the version stamp of the last write that touched it, and the copy's CPU time is charged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import MAXPHYS, PAGE_SHIFT, PAGE_SIZE
from vfslab.kern.lock import simplelock
from vfslab.kern.uvm_page import PG_BUSY, PG_WANTED, vm_page
from vfslab.kern.vnode import vnode
from vfslab.kern.vnode_if import VOP_GETPAGES

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

EIO = 5
WINPAGES = MAXPHYS // PAGE_SIZE
UBC_WINSHIFT = 13                 # sys/param.h: 8 KiB windows
UBC_NWINS = 1024
_WIN_PAGE_SHIFT = UBC_WINSHIFT - PAGE_SHIFT

# a cached window's mappings: page index -> (the page, its prot_gen then, writable)
Window = dict[int, tuple[vm_page, int, bool]]


class Ubc:
    """ubc_alloc/ubc_release as the read and write paths use them, and the write-error latch."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m
        self.errors: dict[vnode, int] = {}   # a failed async write, kept for the next fsync
        self.bytes_written = 0
        self.bytes_read = 0
        # ubc_object's windows by (object, window index), least recently released first
        self.windows: OrderedDict[tuple[Any, int], Window] = OrderedDict()
        self.nwins = UBC_NWINS
        self.hits = 0                 # stores through a cached window's mapping
        self.faults = 0               # write faults (genfs_getpages for writing)
        # ubc_object.uobj.vmobjlock: the window hash and inactive queues
        self.ubc_lock = simplelock("ubc_object.vmobjlock")

    def ubc_alloc(self) -> None:
        """ubc_alloc's locking (uvm_bio.c 1.15.2.5): the window looked up and taken off the
        inactive queue under the UBC object's lock, dropped before the copy faults."""
        L = self.k.locks
        L.simple_lock(self.ubc_lock)
        L.simple_unlock(self.ubc_lock)

    def ubc_release(self) -> None:
        """ubc_release's locking (uvm_bio.c 1.15.2.5): the window's reference dropped and the
        window put back on the inactive queue, its mappings cached, under the same lock."""
        L = self.k.locks
        L.simple_lock(self.ubc_lock)
        L.simple_unlock(self.ubc_lock)

    def _window(self, uobj: Any, idx: int) -> Window:
        """ubc_alloc's lookup of the window holding page `idx`: a hit keeps its mappings,
        a miss takes the least recently released window (its mappings removed)."""
        key = (uobj, idx >> _WIN_PAGE_SHIFT)
        win = self.windows.get(key)
        if win is not None:
            self.windows.move_to_end(key)
            return win
        if len(self.windows) >= self.nwins:
            self.windows.popitem(last=False)      # pmap_remove of the reused window
        win = {}
        self.windows[key] = win
        return win

    def latch_error(self, vp: vnode, err: int) -> None:
        self.errors[vp] = err

    def pop_error(self, vp: vnode) -> int:
        return self.errors.pop(vp, 0)

    def write(self, vp: vnode, off: int, n: int, stamp: int, fault: bool = False
              ) -> Generator[Any, Any, int]:
        """Copy n bytes at `off` into the page cache: pages stamped, and dirtied through a
        fault or through a cached window's mapping (see the module text); `fault`: every
        page takes the fault (a process's first store through its own mapping). The file
        system has allocated the blocks. Returns 0 or an errno."""
        if n <= 0:
            return 0
        k = self.k
        m = self.m
        uvm = k.uvm
        p = k.proto
        uobj = vp.v_uobj
        costs = m.costs
        first = off >> PAGE_SHIFT
        last = (off + n - 1) >> PAGE_SHIFT
        size = vp.v_size
        idx = first
        dirtied = m.time()
        fix = k.genfs.pr24596_fix
        pmap = k.pmap
        faulted = False
        win_idx = -1                      # the window looked up last (ubc_alloc's umap)
        win: Window = {}
        while idx <= last:
            wend = min(last, idx + WINPAGES - 1)
            self.ubc_alloc()
            s = p.vi_lock(vp)
            memq = uobj.memq
            now = m.time()
            while idx <= wend:
                pg = memq.get(idx)
                if pg is None:
                    pg = uvm.uvm_pagealloc(uobj, idx)
                    if pg is None:
                        p.vi_unlock(vp, s)
                        yield from uvm.uvm_wait("ubcwr")
                        s = p.vi_lock(vp)
                        now = m.time()
                        continue
                    pstart = idx << PAGE_SHIFT
                    partial = off > pstart or off + n < pstart + PAGE_SIZE
                    if partial and pstart < size:
                        # the rest of the page holds file data: read it first
                        p.vi_unlock(vp, s)
                        err = yield from VOP_GETPAGES(vp, [pg])
                        if err:
                            return err
                        s = p.vi_lock(vp)
                        now = m.time()
                        continue
                    pg.flags &= ~(PG_BUSY | 0x0040)   # valid: fully overwritten or past EOF
                    uvm.uvm_lock_pageq()
                    uvm.uvm_pageactivate(pg)
                    uvm.uvm_unlock_pageq()
                elif pg.flags & PG_BUSY:
                    pg.flags |= PG_WANTED
                    yield from p.vi_sleep(vp, pg, "ubcwr", relock=True, s=s)
                    now = m.time()
                    continue
                else:
                    uvm.uvm_lock_pageq()
                    uvm.uvm_pageactivate(pg)
                    uvm.uvm_unlock_pageq()
                pg.stamp = stamp
                if fault:
                    # the process's own fault (uvm_fault): dirty, and the worklist below
                    faulted = True
                    uvm.page_dirty(pg, now)
                    idx += 1
                    continue
                if idx >> _WIN_PAGE_SHIFT != win_idx:
                    win_idx = idx >> _WIN_PAGE_SHIFT
                    win = self._window(uobj, idx)
                ent = win.get(idx)
                if ent is not None and ent[0] is pg and ent[1] == pg.prot_gen and ent[2]:
                    # a store through the cached window's mapping: the modified bit only
                    self.hits += 1
                    pmap.store(pg, now)
                else:
                    # ubc_fault -> genfs_getpages for writing: dirty, and the worklist below
                    faulted = True
                    uvm.page_dirty(pg, now)
                    win[idx] = (pg, pg.prot_gen, True)
                idx += 1
            if fix and faulted:
                # genfs_getpages for a write, with PR kern/24596's fix: g_dirtygen++
                vp.g_dirtygen += 1
            p.vi_unlock(vp, s)
            self.ubc_release()
        k.notify.wrote(vp, stamp, first, last, dirtied, m.time())
        nbytes = n
        m.charge(costs.copy_per_kib * nbytes // 1024 + costs.page_lookup * (last - first + 1))
        self.bytes_written += nbytes
        if faulted:
            self.faults += 1
            k.syncer.add_if_absent(vp, k.syncer.filedelay)
        for throttle in k.notify.write_throttle:
            yield from throttle(vp, last - first + 1)
        return 0

    def read(self, vp: vnode, off: int, n: int) -> Generator[Any, Any, tuple[int, int]]:
        """Copy out up to n bytes at `off`; missing pages are read from disk. Returns
        (0 or an errno, the count: short at EOF)."""
        size = vp.v_size
        if off >= size or n <= 0:
            return 0, 0
        if off + n > size:
            n = size - off
        k = self.k
        m = self.m
        uvm = k.uvm
        p = k.proto
        uobj = vp.v_uobj
        first = off >> PAGE_SHIFT
        last = (off + n - 1) >> PAGE_SHIFT
        idx = first
        rw = not k.write_faults
        win_idx = -1
        win: Window = {}
        self.ubc_alloc()
        s = p.vi_lock(vp)
        memq = uobj.memq
        while idx <= last:
            pg = memq.get(idx)
            if pg is not None:
                if pg.flags & PG_BUSY:
                    pg.flags |= PG_WANTED
                    yield from p.vi_sleep(vp, pg, "ubcrd", relock=True, s=s)
                    continue
                uvm.uvm_lock_pageq()
                uvm.uvm_pageactivate(pg)
                uvm.uvm_unlock_pageq()
                if idx >> _WIN_PAGE_SHIFT != win_idx:
                    win_idx = idx >> _WIN_PAGE_SHIFT
                    win = self._window(uobj, idx)
                ent = win.get(idx)
                if ent is None or ent[0] is not pg or ent[1] != pg.prot_gen:
                    # ubc_fault for reading: mapped writable too (2.0), unless the policy
                    # needs write faults
                    win[idx] = (pg, pg.prot_gen, rw)
                idx += 1
                continue
            # a miss: allocate the run of missing pages (up to a window) and read them
            run: list[vm_page] = []
            j = idx
            while j <= last and len(run) < WINPAGES and j not in memq:
                pg = uvm.uvm_pagealloc(uobj, j)
                if pg is None:
                    break
                run.append(pg)
                j += 1
            if not run:
                p.vi_unlock(vp, s)
                yield from uvm.uvm_wait("ubcrd")
                s = p.vi_lock(vp)
                continue
            p.vi_unlock(vp, s)
            err = yield from VOP_GETPAGES(vp, run)
            if err:
                return err, 0
            s = p.vi_lock(vp)
        p.vi_unlock(vp, s)
        self.ubc_release()
        m.charge(m.costs.copy_per_kib * n // 1024 + m.costs.page_lookup * (last - first + 1))
        self.bytes_read += n
        return 0, n

    def stamps(self, vp: vnode, off: int, n: int) -> Generator[Any, Any, list[int]]:
        """The version stamps of the pages covering [off, off+n) (for tests and checkers)."""
        err, got = yield from self.read(vp, off, n)
        if err:
            return []
        first = off >> PAGE_SHIFT
        last = (off + max(got, 1) - 1) >> PAGE_SHIFT
        p = self.k.proto
        s = p.vi_lock(vp)
        memq = vp.v_uobj.memq
        out = [memq[i].stamp if i in memq else 0 for i in range(first, last + 1)]
        p.vi_unlock(vp, s)
        return out
