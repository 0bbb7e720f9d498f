"""Stores through a shared writable mapping, and msync (uvm/uvm_mmap.c, uvm_fault.c of
NetBSD 2.0), as the workloads use them.

A store to a page the mapping already maps writable is the MMU's: the page's modified bit is
set (kern/pmap.py) and the kernel is not told, no lock is taken. A store to a page it does not
map (never touched, freed since, or write-protected by pmap_page_protect) faults: uvm_fault ->
VOP_GETPAGES for writing, which allocates the backing blocks, dirties the page in the kernel's
accounting and puts the vnode on the syncer worklist; the page is then mapped writable. The
fault is modelled as VOP_WRITE with IO_MMAP under the vnode lock (2.0's uvm_fault takes only
the object lock; vfslab reaches the block allocator through the write path), so it is the
fault, not the store, that waits for a vnode lock an fsync holds.
msync(MS_SYNC) is VOP_PUTPAGES(PGO_CLEANIT | PGO_SYNCIO) over the range.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import PAGE_SHIFT
from vfslab.kern.fcntl import EBADF, EINVAL
from vfslab.kern.kern_subr import UIO_WRITE, uio
from vfslab.kern.lock import LK_EXCLUSIVE, LK_RETRY
from vfslab.kern.vnode_if import IO_MMAP, PGO_CLEANIT, PGO_SYNCIO, VOP_PUTPAGES, VOP_WRITE

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.kern_descrip import filedesc

GEN = Generator[Any, Any, int]


def sys_mmap_write(k: Kernel, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
    """Stores to [off, off + length) of the file mapped through descriptor `fd` (within its
    size): each page stored through the mapping if it maps the page writable, else by a
    fault. Returns the bytes stored or -errno."""
    fp = fdp.fd_ofiles.get(fd)
    if fp is None or not fp.writable():
        return -EBADF
    vp = fp.f_vp
    if off < 0 or length < 0:
        return -EINVAL
    size = vp.v_size
    if off >= size:
        return 0
    n = min(length, size - off)
    maps = fp.f_pmap
    first = off >> PAGE_SHIFT
    last = (off + n - 1) >> PAGE_SHIFT
    pmap = k.pmap
    now = k.m.time()
    stamp = k.next_stamp(getattr(vp.v_data, "ino", 0))
    faults: list[tuple[int, int]] = []           # runs of pages that fault
    run_start = -1
    stored = -1
    for idx in range(first, last + 1):
        ent = maps.get(idx)
        if ent is not None and ent[0].prot_gen == ent[1]:
            pg = ent[0]
            pg.stamp = stamp
            pmap.store(pg, now)
            if stored < 0:
                stored = idx
            if run_start >= 0:
                faults.append((run_start, idx - 1))
                run_start = -1
            continue
        if stored >= 0:
            k.notify.wrote(vp, stamp, stored, idx - 1, now, now)
            stored = -1
        if run_start < 0:
            run_start = idx
    if stored >= 0:
        k.notify.wrote(vp, stamp, stored, last, now, now)
    if run_start >= 0:
        faults.append((run_start, last))
    if stored >= 0 or len(faults) < last - first + 1:
        k.m.charge(k.m.costs.page_lookup * (last - first + 1))
    done = n
    for a, b in faults:
        lo = max(off, a << PAGE_SHIFT)
        hi = min(off + n, (b + 1) << PAGE_SHIFT)
        yield from k.vfs.vn_lock(vp, LK_EXCLUSIVE | LK_RETRY)
        u = uio(lo, hi - lo, UIO_WRITE)
        err = yield from VOP_WRITE(vp, u, IO_MMAP)
        yield from k.vfs.vn_unlock(vp)
        if err:
            done = lo - off + (hi - lo - u.uio_resid)
            return done if done else -err
        # the faulted pages are now mapped writable
        p = k.proto
        s = p.vi_lock(vp)
        memq = vp.v_uobj.memq
        for idx in range(a, b + 1):
            pg = memq.get(idx)
            if pg is not None:
                maps[idx] = (pg, pg.prot_gen)
        p.vi_unlock(vp, s)
    return done


def sys_msync(k: Kernel, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None:
        return -EBADF
    err: int = yield from VOP_PUTPAGES(fp.f_vp, off, off + length, PGO_CLEANIT | PGO_SYNCIO)
    return -err if err else 0
