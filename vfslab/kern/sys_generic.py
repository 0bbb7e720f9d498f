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
from vfslab.kern.kern_descrip import FILE_UNUSE, FILE_USE, fd_getfile, fd_release_unused
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


def _getfile(k: Kernel, fdp: filedesc, fd: int, write: bool) -> file | None:
    """fd_getfile, the FREAD/FWRITE check (f_slock released on refusal), FILE_USE."""
    fp = fd_getfile(k, fdp, fd)
    if fp is None:
        return None
    if not (fp.writable() if write else fp.readable()):
        fd_release_unused(k, fp)
        return None
    FILE_USE(k, fp)
    return fp


def sys_read(k: Kernel, fdp: filedesc, fd: int, n: int) -> GEN:
    """sys_read: the file in use (fd_getfile, FILE_USE) for dofileread, which unuses it."""
    fp = _getfile(k, fdp, fd, False)
    if fp is None:
        return -EBADF
    rv = yield from dofileread(k, fp, n, 0, FOF_UPDATE_OFFSET)
    FILE_UNUSE(k, fp)
    return rv


def sys_pread(k: Kernel, fdp: filedesc, fd: int, n: int, offset: int) -> GEN:
    fp = _getfile(k, fdp, fd, False)
    if fp is None:
        return -EBADF
    rv = -EINVAL if offset < 0 else (yield from dofileread(k, fp, n, offset, 0))
    FILE_UNUSE(k, fp)
    return rv


def sys_write(k: Kernel, fdp: filedesc, fd: int, n: int) -> GEN:
    fp = _getfile(k, fdp, fd, True)
    if fp is None:
        return -EBADF
    rv = yield from dofilewrite(k, fp, n, 0, FOF_UPDATE_OFFSET)
    FILE_UNUSE(k, fp)
    return rv


def sys_pwrite(k: Kernel, fdp: filedesc, fd: int, n: int, offset: int) -> GEN:
    fp = _getfile(k, fdp, fd, True)
    if fp is None:
        return -EBADF
    rv = -EINVAL if offset < 0 else (yield from dofilewrite(k, fp, n, offset, 0))
    FILE_UNUSE(k, fp)
    return rv
