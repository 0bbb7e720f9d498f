"""read(2) and write(2) (sys/kern/sys_generic.c, NetBSD 2.0): sys_read, sys_pread, sys_write
and sys_pwrite, through dofileread and dofilewrite, to the file's fo_read/fo_write (for a
vnode, vn_read and vn_write: the offset is read and updated there, under the vnode lock).

Results follow the raw-syscall convention the workload readers use: the count, or a negative
errno. A transfer that moved bytes before failing returns the count (dofilewrite's
"partial transfer" rule).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.fcntl import EBADF, EINVAL, EISDIR
from vfslab.kern.vfs_vnops import FOF_UPDATE_OFFSET, vn_read, vn_write
from vfslab.kern.vnode import VDIR

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.kern_descrip import file, filedesc

GEN = Generator[Any, Any, int]
SSIZE_MAX = (1 << 63) - 1


def dofileread(k: Kernel, fp: file, n: int, offset: int, flags: int) -> GEN:
    if n < 0 or n > SSIZE_MAX:
        return -EINVAL
    if fp.f_vp.v_type == VDIR:
        return -EISDIR
    err, got = yield from vn_read(k, fp, offset, n, flags)
    if err and not got:
        return -err
    return got


def dofilewrite(k: Kernel, fp: file, n: int, offset: int, flags: int) -> GEN:
    if n < 0 or n > SSIZE_MAX:
        return -EINVAL
    err, done = yield from vn_write(k, fp, offset, n, flags)
    if err and not done:
        return -err
    return done


def sys_read(k: Kernel, fdp: filedesc, fd: int, n: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None or not fp.readable():
        return -EBADF
    return (yield from dofileread(k, fp, n, 0, FOF_UPDATE_OFFSET))


def sys_pread(k: Kernel, fdp: filedesc, fd: int, n: int, offset: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None or not fp.readable():
        return -EBADF
    if offset < 0:
        return -EINVAL
    return (yield from dofileread(k, fp, n, offset, 0))


def sys_write(k: Kernel, fdp: filedesc, fd: int, n: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None or not fp.writable():
        return -EBADF
    return (yield from dofilewrite(k, fp, n, 0, FOF_UPDATE_OFFSET))


def sys_pwrite(k: Kernel, fdp: filedesc, fd: int, n: int, offset: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None or not fp.writable():
        return -EBADF
    if offset < 0:
        return -EINVAL
    return (yield from dofilewrite(k, fp, n, offset, 0))
