"""The last release of an inode (sys/ufs/ufs/ufs_inode.c, netbsd-2-0 branch): ufs_inactive and
ufs_reclaim."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ffs_alloc import ffs_vfree
from vfslab.fs.ffs_inode import truncate_inode, update_inode
from vfslab.fs.ufs_ihash import ufs_ihashrem

if TYPE_CHECKING:
    from vfslab.fs.inode import inode
    from vfslab.kern.vnode import vnode

GEN = Generator[Any, Any, int]


def ufs_inactive(vp: vnode) -> GEN:
    """VOP_INACTIVE (vnode locked; unlocks it): an unlinked inode is truncated, freed in the
    bitmap (VOP_VFREE) and written with mode 0, then recycled at once (vrecycle); a changed
    one goes into its (delayed) inode block."""
    ip: inode | None = vp.v_data
    if ip is None:
        return (yield from vp.v_op.vop_unlock(vp, 0))
    ump = ip.ump
    vfs = ump.k.vfs
    freed = False
    if ip.d.mode != 0 and ip.d.nlink <= 0:
        if ip.d.size != 0 or ip.d.ib or ip.d.dib or any(ip.d.db):
            yield from truncate_inode(ip, 0)
        ip.d.mode = 0
        ip.dirty = True
        yield from ffs_vfree(ump, ip.ino)
        freed = True
    if ip.dirty and ip.d.nlink >= 0:
        yield from update_inode(ip, False)
    if freed:
        ip.d.nlink = -1          # freed: never write it again
    yield from vfs.vn_unlock(vp)
    if freed:
        yield from vfs.vrecycle(vp)
    return 0


def ufs_reclaim(vp: vnode) -> GEN:
    """VOP_RECLAIM: the vnode leaves the inode hash and drops its inode. A write error kept
    for the file's next fsync (Kernel.keeps_write_errors: settings that are not 2.0) is
    kept with the file system for the inode's next vnode (ffs_vget), not left on this vnode
    for the next file it serves."""
    ip: inode | None = vp.v_data
    if ip is not None:
        ump = ip.ump
        k = ump.k
        err = k.ubc.pop_error(vp) or k.bio.take_write_error(vp)
        if err and ip.d.nlink > 0:
            ump.pending_errors[ip.ino] = err
        ufs_ihashrem(ump, ip.ino, vp)
        k.namecache.cache_purge(vp)
    vp.v_data = None
    yield from ()
    return 0
