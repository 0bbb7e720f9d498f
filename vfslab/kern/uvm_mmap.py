"""Stores through a shared writable mapping, and msync (uvm/uvm_mmap.c, uvm_fault.c of
NetBSD 2.0), as the workloads use them.

A store to a mapped page faults it in writable (uvm_fault -> VOP_GETPAGES, which allocates
the backing blocks through the file system's write path) and dirties it: modelled as
VOP_WRITE with IO_MMAP under the vnode lock (the pages are dirtied, the file does not grow).
msync(MS_SYNC) is VOP_PUTPAGES(PGO_CLEANIT | PGO_SYNCIO) over the range.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.fcntl import EBADF, EINVAL
from vfslab.kern.kern_subr import UIO_WRITE, uio
from vfslab.kern.lock import LK_EXCLUSIVE
from vfslab.kern.vnode_if import IO_MMAP, PGO_CLEANIT, PGO_SYNCIO, VOP_PUTPAGES, VOP_WRITE

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.kern_descrip import filedesc

GEN = Generator[Any, Any, int]


def sys_mmap_write(k: Kernel, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
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
    yield from k.vfs.vn_lock(vp, LK_EXCLUSIVE)
    u = uio(off, n, UIO_WRITE)
    err = yield from VOP_WRITE(vp, u, IO_MMAP)
    yield from k.vfs.vn_unlock(vp)
    done = n - u.uio_resid
    return done if done or not err else -err


def sys_msync(k: Kernel, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None:
        return -EBADF
    err: int = yield from VOP_PUTPAGES(fp.f_vp, off, off + length, PGO_CLEANIT | PGO_SYNCIO)
    return -err if err else 0
