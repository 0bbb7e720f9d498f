"""Vnode operations of the file layer (sys/kern/vfs_vnops.c, netbsd-2-0 branch): vn_open,
vn_close, vn_read, vn_write and vn_lock, between the system calls and the VOP layer.

vn_read and vn_write take the vnode lock (LK_SHARED for reads, LK_EXCLUSIVE for writes) and,
under it, read the file's offset into the uio and write it back after VOP_READ/VOP_WRITE: two
writers of one open file get distinct offsets, and an O_APPEND write takes the size under the
lock (ffs_write sets uio_offset = i_size when IO_APPEND), so two appenders never write at the
same offset.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.fcntl import (
    O_ACCMODE,
    O_APPEND,
    O_CREAT,
    O_DIRECT,
    O_DIRECTORY,
    O_DSYNC,
    O_EXCL,
    O_RDONLY,
    O_SYNC,
    O_TRUNC,
)
from vfslab.kern.kern_subr import UIO_READ, UIO_WRITE, uio
from vfslab.kern.lock import LK_EXCLUSIVE, LK_RETRY, LK_SHARED
from vfslab.kern.vfs_lookup import CREATE, FOLLOW, LOCKLEAF, LOCKPARENT, LOOKUP, NDINIT, namei
from vfslab.kern.vnode import VDIR, VREG
from vfslab.kern.vnode_if import (
    IO_APPEND,
    IO_DIRECT,
    IO_DSYNC,
    IO_SYNC,
    IO_UNIT,
    VOP_CLOSE,
    VOP_CREATE,
    VOP_OPEN,
    VOP_READ,
    VOP_SETATTR,
    VOP_WRITE,
)

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.kern_descrip import file
    from vfslab.kern.vnode import vnode

EEXIST = 17
ENOTDIR = 20
EISDIR = 21

FOF_UPDATE_OFFSET = 0x01


def vn_open(k: Kernel, path: str, fmode: int, cmode: int, cwd: vnode | None
            ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """Look up (and with O_CREAT create) a file and open it: the vnode is returned
    referenced and locked (sys_open unlocks it). O_DIRECTORY (a later NetBSD's) is honoured
    for the Linux programs vfslab replays."""
    vfs = k.vfs
    if fmode & O_CREAT:
        nd = NDINIT(CREATE, LOCKPARENT | LOCKLEAF | FOLLOW, path, cwd)
        err = yield from namei(k, nd)
        if err:
            return err, None
        dvp = nd.ni_dvp
        assert dvp is not None
        if nd.ni_vp is None:
            err, vp = yield from VOP_CREATE(dvp, nd.ni_cnd, cmode)     # vputs dvp
            if err:
                return err, None
            assert vp is not None
            fmode &= ~O_TRUNC
        else:
            vp = nd.ni_vp
            yield from vfs.vput_parent(dvp, vp)
            if fmode & O_EXCL:
                yield from vfs.vput(vp)
                return EEXIST, None
            fmode &= ~O_CREAT
    else:
        nd = NDINIT(LOOKUP, LOCKLEAF | FOLLOW, path, cwd)
        err = yield from namei(k, nd)
        if err:
            return err, None
        vp = nd.ni_vp
        assert vp is not None
    writing = fmode & O_ACCMODE != O_RDONLY
    if not fmode & O_CREAT and (writing or fmode & O_TRUNC) and vp.v_type == VDIR:
        yield from vfs.vput(vp)
        return EISDIR, None
    if fmode & O_DIRECTORY and vp.v_type != VDIR:
        yield from vfs.vput(vp)
        return ENOTDIR, None
    if fmode & O_TRUNC and writing and vp.v_type == VREG:
        err = yield from VOP_SETATTR(vp, {"size": 0})
        if err:
            yield from vfs.vput(vp)
            return err, None
    err = yield from VOP_OPEN(vp, fmode)
    if err:
        yield from vfs.vput(vp)
        return err, None
    if writing:
        vp.v_writecount += 1
    return 0, vp


def vn_close(k: Kernel, vp: vnode, flags: int) -> Generator[Any, Any, int]:
    """The last close of an open file: VOP_CLOSE with the vnode locked, then vput."""
    if flags & O_ACCMODE != O_RDONLY:
        vp.v_writecount -= 1
    yield from vn_lock(k, vp, LK_EXCLUSIVE | LK_RETRY)
    err: int = yield from VOP_CLOSE(vp, flags)
    yield from k.vfs.vput(vp)
    return err


def vn_read(k: Kernel, fp: file, offset: int, resid: int, flags: int
            ) -> Generator[Any, Any, tuple[int, int]]:
    """(error, bytes read). With FOF_UPDATE_OFFSET the file's offset is read and advanced
    under the vnode lock; otherwise `offset` is used (pread)."""
    vp = fp.f_vp
    ioflag = IO_DIRECT if fp.f_flag & O_DIRECT else 0
    yield from vn_lock(k, vp, LK_SHARED | LK_RETRY)
    u = uio(fp.f_offset if flags & FOF_UPDATE_OFFSET else offset, resid, UIO_READ)
    err: int = yield from VOP_READ(vp, u, ioflag)
    n = resid - u.uio_resid
    if flags & FOF_UPDATE_OFFSET:
        fp.f_offset += n
    yield from k.vfs.vn_unlock(vp)
    return err, n


def vn_write(k: Kernel, fp: file, offset: int, resid: int, flags: int
             ) -> Generator[Any, Any, tuple[int, int]]:
    """(error, bytes written). The vnode is locked exclusively around VOP_WRITE; the offset
    is taken under the lock, and an O_APPEND write's end becomes the file's offset."""
    vp = fp.f_vp
    ioflag = IO_UNIT
    f = fp.f_flag
    if vp.v_type == VREG and f & O_APPEND:
        ioflag |= IO_APPEND
    if f & O_SYNC:
        ioflag |= IO_SYNC
    elif f & O_DSYNC:
        ioflag |= IO_DSYNC
    if f & O_DIRECT:
        ioflag |= IO_DIRECT
    yield from vn_lock(k, vp, LK_EXCLUSIVE | LK_RETRY)
    u = uio(fp.f_offset if flags & FOF_UPDATE_OFFSET else offset, resid, UIO_WRITE)
    err: int = yield from VOP_WRITE(vp, u, ioflag)
    n = resid - u.uio_resid
    if flags & FOF_UPDATE_OFFSET:
        if ioflag & IO_APPEND:
            fp.f_offset = u.uio_offset
        else:
            fp.f_offset += n
    yield from k.vfs.vn_unlock(vp)
    return err, n


def vn_lock(k: Kernel, vp: vnode, flags: int) -> Generator[Any, Any, int]:
    """Lock a vnode: vn_lock of vfs_subr.py (VXLOCK checked under v_interlock, which is
    handed to the lock manager with LK_INTERLOCK)."""
    err: int = yield from k.vfs.vn_lock(vp, flags)
    return err
