"""The unified buffer cache's copy path (uvm/uvm_bio.c, NetBSD 2.0): read(2) and write(2)
copy between the process and a vnode's pages through UBC windows.

A window is MAXPHYS-sized here (2.0 maps 8 KiB windows and faults page by page; one object lock
per window is the same protocol with fewer steps). Writes dirty pages and put the vnode on the
syncer worklist; reads fault missing pages in with genfs_getpages. No bytes are copied: a page
holds the version stamp of the last write that touched it, and the copy's CPU time is charged.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import MAXPHYS, PAGE_SHIFT, PAGE_SIZE
from vfslab.kern.uvm_page import PG_BUSY, PG_WANTED, vm_page
from vfslab.kern.vnode import vnode
from vfslab.kern.vnode_if import VOP_GETPAGES

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

EIO = 5
WINPAGES = MAXPHYS // PAGE_SIZE


class Ubc:
    """ubc_alloc/ubc_release as the read and write paths use them, and the write-error latch."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m
        self.errors: dict[vnode, int] = {}   # a failed async write, kept for the next fsync
        self.bytes_written = 0
        self.bytes_read = 0

    def latch_error(self, vp: vnode, err: int) -> None:
        self.errors[vp] = err

    def pop_error(self, vp: vnode) -> int:
        return self.errors.pop(vp, 0)

    def write(self, vp: vnode, off: int, n: int, stamp: int) -> Generator[Any, Any, int]:
        """Copy n bytes at `off` into the page cache: pages dirtied and stamped. The file
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
        while idx <= last:
            wend = min(last, idx + WINPAGES - 1)
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
                    uvm.uvm_pageactivate(pg)
                elif pg.flags & PG_BUSY:
                    pg.flags |= PG_WANTED
                    yield from p.vi_sleep(vp, pg, "ubcwr", relock=True, s=s)
                    now = m.time()
                    continue
                else:
                    uvm.uvm_pageactivate(pg)
                pg.stamp = stamp
                uvm.page_dirty(pg, now)
                idx += 1
            if fix:
                # genfs_getpages for a write, with PR kern/24596's fix: g_dirtygen++
                vp.g_dirtygen += 1
            p.vi_unlock(vp, s)
        k.notify.wrote(vp, stamp, first, last, dirtied, m.time())
        nbytes = n
        m.charge(costs.copy_per_kib * nbytes // 1024 + costs.page_lookup * (last - first + 1))
        self.bytes_written += nbytes
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
        s = p.vi_lock(vp)
        memq = uobj.memq
        while idx <= last:
            pg = memq.get(idx)
            if pg is not None:
                if pg.flags & PG_BUSY:
                    pg.flags |= PG_WANTED
                    yield from p.vi_sleep(vp, pg, "ubcrd", relock=True, s=s)
                    continue
                uvm.uvm_pageactivate(pg)
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
