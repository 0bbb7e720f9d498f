"""Page-cache I/O of a vnode (sys/miscfs/genfs/genfs_vnops.c, netbsd-2-0 branch): VOP_PUTPAGES
walks the object's pages and writes clusters of dirty ones through GOP_WRITE (a master buffer
and a child per disk extent; B_CALL with uvm_aio_biodone when asynchronous); VOP_GETPAGES reads
missing pages synchronously.

Pages are marked clean and busy before their write starts (as genfs does), so a write to a page
under I/O waits for it. What a failed write does to its pages is uvm_aio_aiodone's
(kern/uvm_pager.py, `uvm.write_error`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import (
    B_AGE,
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
from vfslab.kern.lock import LK_RELEASE, LK_SHARED
from vfslab.kern.pmap import VM_PROT_NONE, VM_PROT_READ
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
from vfslab.tunable import Tunable, declare_setting, setting

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

EIO = 5
MAXPAGES = MAXPHYS // PAGE_SIZE
_NOEND = 1 << 62
_WALK_STOP = PG_BUSY | PG_RELEASED | PG_PAGEOUT   # a page the walk must look at
# uvm_page.h: how much dearer a hash lookup is than a step along memq (putpages' by_list)
UVM_PAGE_HASH_PENALTY = 4

PR24596_FIX = declare_setting("genfs", Tunable(
    "pr24596_fix", bool, False,
    "genfs_putpages with NetBSD's later fix for PR kern/24596 (a passed-over busy page "
    "makes the range unclean, a dirty generation keeps a vnode dirtied meanwhile on the "
    "worklist, cleaned pages are write-protected); false: the 2004 code"))


@dataclass(slots=True)
class GenfsStats:
    putpages: int = 0
    clusters: int = 0
    child_bufs: int = 0
    pages_written: int = 0
    getpages: int = 0
    pages_read: int = 0
    hole_pages_skipped: int = 0     # dirty pages gop_write found over a hole (not written)


class Genfs:
    """genfs_putpages / genfs_getpages for every vnode of the machine."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m
        self.stats = GenfsStats()
        self.pr24596_fix: bool = setting(k.cfg.sysctl, "genfs.pr24596_fix")

    # ---- writing pages ----------------------------------------------------------------------
    def putpages(self, vp: vnode, off: int, end: int, clean: bool = True, free: bool = False,
                 sync: bool = False, pageout: bool = False, pages: list[vm_page] | None = None
                 ) -> Generator[Any, Any, int]:
        """VOP_PUTPAGES over [off, end) (end 0: to the end of the object): genfs_putpages
        (sys/miscfs/genfs/genfs_vnops.c as of the netbsd-2-0 branch; no 2004 revision is in
        the record, 1.101 of 2005-07 is the nearest stored, and is followed here less its
        PR kern/24596 fix, which `genfs.pr24596_fix` puts back). `clean`: PGO_CLEANIT,
        `free`: PGO_FREE, `sync`: PGO_SYNCIO, `pageout`: the page daemon's call (freed pages
        become PG_PAGEOUT; a busy page ends the call, as PGO_BUSYFAIL would). `pages` is the
        policy API's batch instead (see `_putpages_batch`). Returns 0 or an errno.

        The walk, with v_interlock (the object lock) held and dropped only to sleep or to
        write: `wasclean` is v_numoutput == 0 when it starts. Pages are visited in memq
        order (pages allocated after the start are not visited) when the object has at most
        four times as many pages as the range, else offset by offset. A busy page is waited
        for ("genput"), for an asynchronous flush too, and looked at again; PG_RELEASED and
        PG_PAGEOUT pages (being freed, being paged out) are passed over. A dirty page is
        marked clean and busy and becomes the heart of a cluster: up to 8 dirty pages before
        it and up to 16 in all, found by offset even outside the range, each marked clean and
        busy; GOP_WRITE writes the cluster (one cluster in flight for a synchronous flush).
        At the end, a flush of the whole object that met no page to clean with no output
        pending when it began, and with no dirty buffer, takes the vnode off the syncer
        worklist; a synchronous flush that was not clean waits for v_numoutput ("genput2").

        The 2004 code's three faults (PR kern/24596) follow from this walk: a passed-over
        PG_PAGEOUT page does not make the range unclean, so an fsync may return before it is
        written; pages dirtied while the walk sleeps, at offsets it has passed, are left on
        no list when the vnode leaves the worklist; and cleaned pages are not write-protected.
        With `genfs.pr24596_fix` (NetBSD's later code): the passed-over page makes the range
        unclean, a dirty generation taken at the start must be unchanged for the vnode to
        leave the worklist, and cleaned pages are write-protected while that hope lasts."""
        if pages is not None:
            err: int = yield from self._putpages_batch(vp, pages, sync)
            return err
        k = self.k
        uvm = k.uvm
        p = k.proto
        uobj = vp.v_uobj
        self.stats.putpages += 1
        s = p.vi_lock(vp)
        memq = uobj.memq
        if not memq:
            # uo_npages == 0: off the worklist at splbio (no dirty buffers), and return
            p.maybe_leave_worklist_locked(k.vfs, vp)
            p.vi_unlock(vp, s)
            # a write error latched for the next fsync (uvm.write_error=redirty) outlives
            # the pages it failed on
            return k.ubc.pop_error(vp) if sync else 0
        fix = self.pr24596_fix
        pmap = k.pmap
        protect = k.write_faults
        wasclean = p.putpages_wasclean(k.vfs, vp)
        lo = off >> PAGE_SHIFT
        hi = ((end + PAGE_SIZE - 1) >> PAGE_SHIFT) if end else _NOEND
        whole = off == 0 and end == 0
        dirtygen = vp.g_dirtygen
        by_list = len(memq) <= (hi - lo) * UVM_PAGE_HASH_PENALTY
        # by list: the pages present now, in memq order (TAILQ_INSERT_TAIL: a page
        # allocated later is behind the end marker); `i` is the marker's place
        order = list(memq.values()) if by_list else []
        i = 0
        cur = lo
        freeflag = PG_PAGEOUT if pageout else PG_RELEASED
        error = 0
        written = 0
        while True:
            if by_list:
                if not free and not (protect or fix and wasclean and whole and
                                     vp.g_dirtygen == dirtygen):
                    # the walk's steps for a page with nothing to do (clean, not busy, not
                    # being freed or paged out, nothing to protect) are no-ops: pass such
                    # pages in one loop (host time only: an fsync of a file with 16,000
                    # cached pages visited each through the whole walk, found profiling the
                    # two-CPU stress tests)
                    n_order = len(order)
                    while i < n_order:
                        q = order[i]
                        f = q.flags
                        if f & _WALK_STOP or clean and (q.pmap_mod or not f & PG_CLEAN):
                            break
                        i += 1
                if i >= len(order):
                    break
                pg = order[i]
                if memq.get(pg.offset) is not pg:
                    i += 1                    # freed while we slept
                    continue
                if not lo <= pg.offset < hi or pg.flags & (PG_RELEASED | PG_PAGEOUT):
                    if fix and pg.flags & (PG_RELEASED | PG_PAGEOUT):
                        wasclean = False
                    i += 1
                    continue
            else:
                if cur >= hi:
                    break
                got = memq.get(cur)
                if got is None or got.flags & (PG_RELEASED | PG_PAGEOUT):
                    if fix and got is not None:
                        wasclean = False
                    cur += 1
                    continue
                pg = got
            if pg.flags & PG_BUSY:
                if pageout:
                    break                     # the page daemon does not wait (PGO_BUSYFAIL)
                pg.flags |= PG_WANTED
                yield from p.vi_sleep(vp, pg, "genput", relock=True, s=s)
                continue                      # look at the same place again
            needs_clean = False
            if free:
                pmap.pmap_page_protect(pg, VM_PROT_NONE)
            elif clean and (protect or fix and wasclean and whole and
                            vp.g_dirtygen == dirtygen):
                # "if we still have some hope to pull this vnode off from the syncer
                # queue, write-protect the page" (the fix): a later store faults. A policy
                # with write_faults has every cleaned page write-protected (not 2.0)
                pmap.pmap_page_protect(pg, VM_PROT_READ)
            if clean:
                needs_clean = (pg.pmap_mod and pmap.pmap_clear_modify(pg)) or \
                    not pg.flags & PG_CLEAN
                uvm.page_clean(pg)
            if needs_clean:
                wasclean = False
                pg.flags |= PG_BUSY
                cl, nback = self._cluster(uobj, pg, pageout, protect)
            else:
                cl, nback = [pg], 0
            if free:
                uvm.uvm_lock_pageq()
                for tpg in cl:
                    if not lo <= tpg.offset < hi:
                        continue
                    if tpg.flags & PG_BUSY:
                        tpg.flags |= freeflag
                    else:
                        uvm.uvm_pagefree(tpg)     # not busy: npages is 1, nothing to write
                uvm.uvm_unlock_pageq()
            if needs_clean:
                if by_list:
                    # the cluster's pages that follow in the list are passed with it
                    j = i
                    for tpg in cl:
                        if j + 1 < len(order) and order[j + 1] is tpg:
                            j += 1
                    i = j + 1
                else:
                    cur = pg.offset + len(cl) - nback
                n = len(cl)
                written += n
                uvm.npageout += n
                if pageout:
                    uvm.npdpageout += n
                self.stats.pages_written += n
                p.vi_unlock(vp, s)
                err = yield from self.gop_write(vp, cl, sync)
                s = p.vi_lock(vp)
                if err:
                    error = err
                    break
                continue
            if by_list:
                i += 1
            else:
                cur += 1
        if clean and wasclean and whole and (not fix or vp.g_dirtygen == dirtygen):
            p.putpages_leave_worklist(k.vfs, vp)
        if not wasclean and sync:
            s = yield from p.putpages_wait_output(k.vfs, vp, s)
        if free:
            p.maybe_leave_worklist_locked(k.vfs, vp)     # with the object lock, as 2.0
        p.vi_unlock(vp, s)
        if sync:
            latched = k.ubc.pop_error(vp)
            if latched and not error:
                error = latched
        return error

    def _cluster(self, uobj: Any, pg: vm_page, pageout: bool, protect: bool
                 ) -> tuple[list[vm_page], int]:
        """The cluster around the dirty page `pg` (already clean and busy): uvn_findpages
        with UFP_NOWAIT|UFP_NOALLOC|UFP_DIRTYONLY, backward for up to half of MAXPHYS, then
        forward to fill it; each stops at a missing, busy or clean page (clean: PG_CLEAN and
        the pmap's modified bit clear, which the test clears). The pages found are marked
        clean and busy, and write-protected first if `protect` (a policy with write_faults;
        2.0 protects none of them, not even with the fix). Returns the cluster in offset
        order and how many precede `pg`."""
        memq = uobj.memq
        back = self._findpages(memq, pg.offset - 1, -1, min(MAXPAGES >> 1, pg.offset),
                               pageout, protect)
        back.reverse()
        fwd = self._findpages(memq, pg.offset + 1, 1, MAXPAGES - len(back) - 1, pageout,
                              protect)
        if pageout:
            pg.flags |= PG_PAGEOUT
        return back + [pg] + fwd, len(back)

    def _findpages(self, memq: dict[int, vm_page], start: int, step: int, limit: int,
                   pageout: bool, protect: bool) -> list[vm_page]:
        """uvn_findpages(UFP_NOWAIT|UFP_NOALLOC|UFP_DIRTYONLY) from page `start` in
        direction `step`, at most `limit` pages: each dirty one is taken (busy, clean); the
        run stops at a missing, busy or clean page."""
        uvm = self.k.uvm
        pmap = self.k.pmap
        out: list[vm_page] = []
        o = start
        while len(out) < limit:
            q = memq.get(o)
            if q is None or q.flags & PG_BUSY:
                break
            if q.pmap_mod:
                pmap.pmap_clear_modify(q)
            elif q.flags & PG_CLEAN:
                break
            q.flags |= PG_BUSY | (PG_PAGEOUT if pageout else 0)
            if protect:
                pmap.pmap_page_protect(q, VM_PROT_READ)
            uvm.page_clean(q)
            out.append(q)
            o += step
        return out

    def _putpages_batch(self, vp: vnode, pages: list[vm_page], sync: bool
                        ) -> Generator[Any, Any, int]:
        """The policy API's page batch (not 2.0: the trickle syncer's own entry point):
        write those of `pages` that are dirty and not busy, in runs of consecutive pages of
        up to MAXPHYS, through GOP_WRITE; busy pages are passed over (someone is writing
        them), and the walk does not sleep. For a policy with `write_faults` each page is
        write-protected before it is cleaned, so that a later store faults and puts it back
        on the dirty list the policy walks (Linux's page_mkclean does the same)."""
        k = self.k
        uvm = k.uvm
        p = k.proto
        self.stats.putpages += 1
        s = p.vi_lock(vp)
        clusters: list[list[vm_page]] = []
        run: list[vm_page] = []
        pmap = k.pmap
        protect = k.write_faults
        for pg in pages:
            if pg.flags & PG_BUSY or pg.uobject.memq.get(pg.offset) is not pg:
                continue
            if protect:
                pmap.pmap_page_protect(pg, VM_PROT_READ)
            if not pmap.pmap_clear_modify(pg) and pg.flags & PG_CLEAN:
                continue
            if run and (pg.offset != run[-1].offset + 1 or len(run) >= MAXPAGES):
                clusters.append(run)
                run = []
            pg.flags |= PG_BUSY
            uvm.page_clean(pg)
            run.append(pg)
        if run:
            clusters.append(run)
        n = sum(len(c) for c in clusters)
        uvm.npageout += n
        self.stats.pages_written += n
        p.vi_unlock(vp, s)
        error = 0
        for cl in clusters:
            err = yield from self.gop_write(vp, cl, sync)
            if err and not error:
                error = err
        return error

    def gop_write(self, vp: vnode, pgs: list[vm_page], sync: bool
                  ) -> Generator[Any, Any, int]:
        """genfs_gop_write (genfs_vnops.c, netbsd-2-0 branch; 1.101 nearest stored): one
        master buf for the cluster (v_numoutput += 2: one for biodone, one for aiodone;
        B_AGE; B_CALL|B_ASYNC with uvm_aio_biodone when asynchronous) and, unless the
        cluster is one extent on disk, a child buf per extent (VOP_BMAP's run; V_INCR_NUMOUTPUT
        each, B_CALL with uvm_aio_biodone1, which folds it into the master). A page over a
        hole is skipped (`skipbytes`: its data is not written, and the master is done with
        what was), as 2.0 does; it happens when an indirect block's write failed and brelse
        threw its pointers away. Synchronous: biowait on the master, then uvm_aio_aiodone in
        this thread. Returns 0 or EIO."""
        k = self.k
        m = self.m
        p = k.proto
        mbp = buf()
        mbp.b_flags = B_BUSY | B_PAGEIO | B_AGE | (0 if sync else (B_ASYNC | B_CALL))
        mbp.b_iodone = k.aiodone.uvm_aio_biodone
        mbp.b_vp = vp
        mbp.b_lblkno = pgs[0].offset
        mbp.b_bcount = mbp.b_bufsize = mbp.b_resid = len(pgs) * PAGE_SIZE
        mbp.b_data = [pg.stamp for pg in pgs]
        mbp.b_private = pgs
        s = m.splbio()
        p.numoutput_add(k.vfs, vp, 2)
        m.splx(s)
        self.stats.clusters += 1
        n = len(pgs)
        start = 0
        skip = 0
        error = 0
        while start < n:
            err, devvp, daddr, run = yield from VOP_BMAP(vp, pgs[start].offset, n - start - 1)
            if err:
                error = err                    # VOP_BMAP failed: skip the rest, as 2.0
                skip += (n - start) * PAGE_SIZE
                break
            if daddr < 0 or devvp is None:
                skip += PAGE_SIZE              # a hole: skipbytes += iobytes; continue
                self.stats.hole_pages_skipped += 1
                start += 1
                continue
            j = start + 1 + min(run, n - start - 1)
            if start == 0 and j == n:
                bp = mbp                       # really one I/O: no second buf
                bp.b_blkno = daddr
            else:
                bp = buf()
                s = m.splbio()
                p.numoutput_add(k.vfs, vp, 1)  # V_INCR_NUMOUTPUT
                m.splx(s)
                bp.b_flags = B_BUSY | B_PAGEIO | B_CALL | (mbp.b_flags & B_ASYNC)
                bp.b_iodone = k.aiodone.uvm_aio_biodone1
                bp.b_private = mbp
                bp.b_vp = vp
                bp.b_lblkno = pgs[start].offset
                bp.b_blkno = daddr
                bp.b_bcount = bp.b_bufsize = (j - start) * PAGE_SIZE
                bp.b_data = mbp.b_data[start:j]
                self.stats.child_bufs += 1
            VOP_STRATEGY(devvp, bp)
            start = j
        if skip:
            s = m.splbio()
            if error:
                mbp.b_flags |= B_ERROR
                mbp.b_error = error
            mbp.b_resid -= skip
            if mbp.b_resid == 0:
                k.bio.biodone(mbp)
            m.splx(s)
        if not sync:
            return 0
        err = yield from k.bio.biowait(mbp)
        k.aiodone.uvm_aio_aiodone(mbp)
        return EIO if err else 0

    def genfs_putpages(self, vp: vnode, off: int, end: int, flags: int
                       ) -> Generator[Any, Any, int]:
        """VOP_PUTPAGES as a file system's vector calls it (PGO_CLEANIT, PGO_SYNCIO,
        PGO_FREE)."""
        err: int = yield from self.putpages(vp, off, end, clean=bool(flags & PGO_CLEANIT),
                                            free=bool(flags & PGO_FREE),
                                            sync=bool(flags & PGO_SYNCIO))
        return err

    # ---- reading pages ----------------------------------------------------------------------
    def genfs_getpages(self, vp: vnode, pgs: list[vm_page]) -> Generator[Any, Any, int]:
        """Read busy, not-yet-valid pages (genfs_getpages, genfs_vnops.c 1.101 nearest
        stored): holes read as zeroes. The node's g_glock is held shared from the first
        VOP_BMAP until the reads are done (exclusive in 2.0 when the fault may allocate
        blocks, `blockalloc`; no vfslab caller does: the write path allocates first, and
        ubc_fault passes PGO_NOBLOCKALLOC), so that GOP_ALLOC cannot change the block map
        under the reads. Returns 0 or EIO; on error the pages are freed."""
        k = self.k
        L = k.locks
        self.stats.getpages += 1
        yield from L.lockmgr(vp.g_glock, LK_SHARED)
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
        yield from L.lockmgr(vp.g_glock, LK_RELEASE)
        p = k.proto
        uvm = k.uvm
        s = p.vi_lock(vp)
        uvm.uvm_lock_pageq()
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
        uvm.uvm_unlock_pageq()
        p.vi_unlock(vp, s)
        return error

    def truncate_pages(self, vp: vnode, newsize: int) -> None:
        """Drop the pages past a new end of file (uvm_vnp_setsize + putpages(PGO_FREE))."""
        k = self.k
        p = k.proto
        uvm = k.uvm
        first = (newsize + PAGE_SIZE - 1) >> PAGE_SHIFT
        s = p.vi_lock(vp)
        uvm.uvm_lock_pageq()
        for pg in [pg for pg in vp.v_uobj.memq.values() if pg.offset >= first]:
            if pg.flags & PG_BUSY:
                pg.flags |= PG_RELEASED
            else:
                uvm.uvm_pagefree(pg)
        uvm.uvm_unlock_pageq()
        p.vi_unlock(vp, s)


def _offset(pg: vm_page) -> int:
    return pg.offset


# re-exported for callers that check completion status
__all__ = ["B_ERROR", "Genfs"]
