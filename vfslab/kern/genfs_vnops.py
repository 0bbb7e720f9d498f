"""Page-cache I/O of a vnode (sys/miscfs/genfs/genfs_vnops.c, NetBSD 2.0): VOP_PUTPAGES
clusters dirty pages into buffers (B_CALL with uvm_aio_biodone when asynchronous), VOP_GETPAGES
reads missing pages synchronously.

Pages are marked clean and busy before their write starts (as genfs does), so a write to a page
under I/O waits for it; aiodoned re-dirties the pages of a failed write.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import (
    B_ASYNC,
    B_BUSY,
    B_CALL,
    B_ERROR,
    B_PAGEIO,
    B_READ,
    MAXPHYS,
    PAGE_SHIFT,
    PAGE_SIZE,
    buf,
)
from vfslab.kern.uvm_page import (
    PG_BUSY,
    PG_CLEAN,
    PG_FAKE,
    PG_PAGEOUT,
    PG_RELEASED,
    PG_WANTED,
    vm_page,
)
from vfslab.kern.vnode import vnode
from vfslab.kern.vnode_if import PGO_CLEANIT, PGO_FREE, PGO_SYNCIO, VOP_BMAP, VOP_STRATEGY

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

EIO = 5
MAXPAGES = MAXPHYS // PAGE_SIZE
_NOEND = 1 << 62


@dataclass(slots=True)
class GenfsStats:
    putpages: int = 0
    clusters: int = 0
    pages_written: int = 0
    getpages: int = 0
    pages_read: int = 0


class Genfs:
    """genfs_putpages / genfs_getpages for every vnode of the machine."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m
        self.stats = GenfsStats()

    # ---- writing pages ----------------------------------------------------------------------
    def putpages(self, vp: vnode, off: int, end: int, clean: bool = True, free: bool = False,
                 sync: bool = False, pageout: bool = False, pages: list[vm_page] | None = None
                 ) -> Generator[Any, Any, int]:
        """VOP_PUTPAGES over [off, end) (end 0: to the end): write dirty pages when `clean`,
        free pages when `free` (discarding dirty ones if not `clean`), wait when `sync`;
        `pageout` pages are freed by aiodoned once written. `pages` restricts the write to
        those dirty pages (the trickle syncer's batch). Returns 0 or EIO.

        The worklist removals are 2.0's (genfs_vnops.c, netbsd-2-0 branch; PR kern/24596):
        with no pages the vnode leaves the worklist at once; a flush of the whole file that
        wrote nothing, found no output pending when it began and met no dirty buffer takes
        it off at the end, whatever was dirtied while it slept."""
        k = self.k
        m = self.m
        uvm = k.uvm
        p = k.proto
        uobj = vp.v_uobj
        self.stats.putpages += 1
        lo = off >> PAGE_SHIFT
        hi = ((end + PAGE_SIZE - 1) >> PAGE_SHIFT) if end else _NOEND
        error = 0
        s = p.vi_lock(vp)
        if not uobj.memq:
            # uo_npages == 0: off the worklist at splbio (no dirty buffers), and return
            p.maybe_leave_worklist_locked(k.vfs, vp)
            p.vi_unlock(vp, s)
            # a write error latched for the next fsync outlives the pages it failed on
            return k.ubc.pop_error(vp) if sync else 0
        clusters: list[list[vm_page]] = []
        busy: list[vm_page] = []
        # a flush of the whole file may end with the vnode off the worklist: only if it had
        # nothing to write and no output was pending when it began (2.0's wasclean)
        whole = clean and pages is None and not pageout and off == 0 and end == 0
        wasclean = whole and p.putpages_wasclean(k.vfs, vp)
        if clean:
            if pages is None:
                dq = uobj.dirtyq
                if hi - lo < len(dq):
                    memq = uobj.memq
                    cand = [pg for pg in map(memq.get, range(lo, hi))
                            if pg is not None and pg in dq]
                else:
                    cand = [pg for pg in dq if lo <= pg.offset < hi]
                    if len(cand) > 1:
                        cand.sort(key=_offset)
            else:
                cand = [pg for pg in pages if not (pg.flags & PG_CLEAN)]
            run: list[vm_page] = []
            for pg in cand:
                if pg.flags & PG_BUSY:
                    busy.append(pg)
                    continue
                if run and (pg.offset != run[-1].offset + 1 or len(run) >= MAXPAGES):
                    clusters.append(run)
                    run = []
                pg.flags |= PG_BUSY
                if pageout:
                    pg.flags |= PG_PAGEOUT
                uvm.page_clean(pg)
                run.append(pg)
            if run:
                clusters.append(run)
            if sync and pages is None:
                # 2.0's genfs_putpages walks every page of the range and waits on each busy
                # one: a clean page under an asynchronous write is not durable until that
                # write completes (and fails back to dirty if it does not)
                mine = {id(pg) for c in clusters for pg in c}
                mine.update(id(pg) for pg in busy)
                memq = uobj.memq
                inrange: Iterable[vm_page | None] = (
                    map(memq.get, range(lo, hi)) if hi - lo < len(memq) else memq.values())
                for bpg in inrange:
                    if bpg is not None and bpg.flags & PG_BUSY and id(bpg) not in mine \
                            and lo <= bpg.offset < hi:
                        busy.append(bpg)
            n = sum(len(c) for c in clusters)
            if n:
                wasclean = False
            uvm.npageout += n
            if pageout:
                uvm.npdpageout += n
            self.stats.pages_written += n
        p.vi_unlock(vp, s)
        bufs: list[buf] = []
        for cl in clusters:
            yield from self._write_cluster(vp, cl, sync, bufs)
        if sync:
            bio = k.bio
            aio = k.aiodone
            for bp in bufs:
                err = yield from bio.biowait(bp)
                if err:
                    error = EIO
                aio.uvm_aio_aiodone(bp)
            for pg in busy:
                yield from self.wait_unbusy(vp, pg)
                if not (pg.flags & PG_CLEAN):
                    # 2.0 looks the page up again after the wait and finds it dirty; pages
                    # dirtied meanwhile at offsets its cursor has passed it does not see
                    wasclean = False
            latched = k.ubc.pop_error(vp)
            if latched and not error:
                error = latched
        if wasclean:
            s = p.vi_lock(vp)
            p.putpages_leave_worklist(k.vfs, vp)
            p.vi_unlock(vp, s)
        if free:
            s = p.vi_lock(vp)
            victims = [pg for pg in uobj.memq.values() if lo <= pg.offset < hi]
            for pg in victims:
                if pg.flags & PG_BUSY:
                    if not clean:
                        pg.flags |= PG_RELEASED
                    continue
                if not (pg.flags & PG_CLEAN) and clean:
                    continue              # re-dirtied by a failed write: keep it
                uvm.uvm_pagefree(pg)
            p.maybe_leave_worklist_locked(k.vfs, vp)     # with the object lock, as 2.0
            p.vi_unlock(vp, s)
        del m
        return error

    def _write_cluster(self, vp: vnode, cl: list[vm_page], sync: bool, out: list[buf]
                       ) -> Generator[Any, Any, None]:
        """Map a run of busy pages to disk extents (VOP_BMAP and its run length) and start
        one write per extent on the device vnode (genfs_gop_write)."""
        k = self.k
        m = self.m
        start = 0
        n = len(cl)
        while start < n:
            err, devvp, daddr, run = yield from VOP_BMAP(vp, cl[start].offset, n - start - 1)
            if err or daddr < 0 or devvp is None:
                raise k.vfs.panic(f"genfs_putpages: no block for page {cl[start]!r}")
            j = start + 1 + min(run, n - start - 1)
            pgs = cl[start:j]
            bp = buf()
            bp.b_flags = B_BUSY | B_PAGEIO | (0 if sync else (B_ASYNC | B_CALL))
            bp.b_iodone = None if sync else k.aiodone.uvm_aio_biodone
            bp.b_vp = vp
            bp.b_lblkno = pgs[0].offset
            bp.b_blkno = daddr
            bp.b_bcount = bp.b_bufsize = len(pgs) * PAGE_SIZE
            bp.b_data = [pg.stamp for pg in pgs]
            bp.b_private = pgs
            s = m.splbio()
            k.proto.numoutput_add(k.vfs, vp, 2)      # one for biodone, one for aiodone
            m.splx(s)
            self.stats.clusters += 1
            VOP_STRATEGY(devvp, bp)
            out.append(bp)
            start = j

    def genfs_putpages(self, vp: vnode, off: int, end: int, flags: int
                       ) -> Generator[Any, Any, int]:
        """VOP_PUTPAGES as a file system's vector calls it (PGO_CLEANIT, PGO_SYNCIO,
        PGO_FREE)."""
        err: int = yield from self.putpages(vp, off, end, clean=bool(flags & PGO_CLEANIT),
                                            free=bool(flags & PGO_FREE),
                                            sync=bool(flags & PGO_SYNCIO))
        return err

    def wait_unbusy(self, vp: vnode, pg: vm_page) -> Generator[Any, Any, None]:
        p = self.k.proto
        s = p.vi_lock(vp)
        while pg.flags & PG_BUSY:
            pg.flags |= PG_WANTED
            yield from p.vi_sleep(vp, pg, "genput", relock=True, s=s)
        p.vi_unlock(vp, s)

    # ---- reading pages ----------------------------------------------------------------------
    def genfs_getpages(self, vp: vnode, pgs: list[vm_page]) -> Generator[Any, Any, int]:
        """Read busy, not-yet-valid pages (genfs_getpages): holes read as zeroes. Returns 0 or
        EIO; on error the pages are freed."""
        k = self.k
        self.stats.getpages += 1
        bufs: list[tuple[buf, list[vm_page]]] = []
        n = len(pgs)
        i = 0
        while i < n:
            # pages of a run are consecutive in the file (the callers' runs are)
            err, devvp, daddr, nrun = yield from VOP_BMAP(vp, pgs[i].offset, n - i - 1)
            if err or daddr < 0 or devvp is None:
                pgs[i].stamp = 0               # a hole reads as zeroes
                i += 1
                continue
            j = i + 1 + min(nrun, n - i - 1)
            bp = buf()
            bp.b_flags = B_BUSY | B_READ | B_PAGEIO
            bp.b_vp = vp
            bp.b_lblkno = pgs[i].offset
            bp.b_blkno = daddr
            bp.b_bcount = bp.b_bufsize = (j - i) * PAGE_SIZE
            bp.b_data = [None] * (j - i)
            VOP_STRATEGY(devvp, bp)
            bufs.append((bp, pgs[i:j]))
            self.stats.pages_read += j - i
            i = j
        error = 0
        for bp, run in bufs:
            err = yield from k.bio.biowait(bp)
            if err:
                error = EIO
                continue
            for pg, stamp in zip(run, bp.b_data, strict=True):
                pg.stamp = stamp if isinstance(stamp, int) else 0
        p = k.proto
        uvm = k.uvm
        s = p.vi_lock(vp)
        for pg in pgs:
            flags = pg.flags
            if flags & PG_WANTED:
                self.m.wakeup(pg)
            if error:
                pg.flags = flags & ~(PG_BUSY | PG_WANTED)
                uvm.uvm_pagefree(pg)
            else:
                pg.flags = flags & ~(PG_BUSY | PG_WANTED | PG_FAKE)
                uvm.uvm_pageactivate(pg)
        p.vi_unlock(vp, s)
        return error

    def truncate_pages(self, vp: vnode, newsize: int) -> None:
        """Drop the pages past a new end of file (uvm_vnp_setsize + putpages(PGO_FREE))."""
        k = self.k
        p = k.proto
        uvm = k.uvm
        first = (newsize + PAGE_SIZE - 1) >> PAGE_SHIFT
        s = p.vi_lock(vp)
        for pg in [pg for pg in vp.v_uobj.memq.values() if pg.offset >= first]:
            if pg.flags & PG_BUSY:
                pg.flags |= PG_RELEASED
            else:
                uvm.uvm_pagefree(pg)
        p.vi_unlock(vp, s)


def _offset(pg: vm_page) -> int:
    return pg.offset


# re-exported for callers that check completion status
__all__ = ["B_ERROR", "Genfs"]
