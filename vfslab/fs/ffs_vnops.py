"""FFS's vnode operations (sys/ufs/ffs/ffs_vnops.c, netbsd-2-0 branch; read against its 1.40 of
2001, whose ffs_full_fsync and vector 2.0 keep): ffs_fsync, ffs_reclaim
and the operations vector `ffs_vnodeop_p`, which routes each VOP to its ufs_, ffs_ or genfs_
implementation as 2.0's ffs_vnodeop_entries does."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ffs_balloc import ffs_balloc
from vfslab.fs.ffs_inode import ffs_truncate, ffs_update, inode_pending, update_inode
from vfslab.fs.ufs_bmap import ufs_bmap
from vfslab.fs.ufs_inode import ufs_inactive, ufs_reclaim
from vfslab.fs.ufs_lookup import ufs_lookup
from vfslab.fs.ufs_readwrite import ffs_read, ffs_write
from vfslab.fs.ufs_vnops import (
    ufs_close,
    ufs_create,
    ufs_getattr,
    ufs_link,
    ufs_mkdir,
    ufs_open,
    ufs_readdir,
    ufs_readlink,
    ufs_remove,
    ufs_rename,
    ufs_rmdir,
    ufs_setattr,
    ufs_strategy,
    ufs_symlink,
)
from vfslab.kern.buf import B_DELWRI
from vfslab.kern.fcntl import EIO
from vfslab.kern.vnode_if import FSYNC_WAIT, vnodeops

if TYPE_CHECKING:
    from vfslab.fs.ffs_vfsops import ufsmount
    from vfslab.fs.inode import inode
    from vfslab.kern.buf import buf
    from vfslab.kern.vnode import vnode

GEN = Generator[Any, Any, int]


def ffs_fsync(vp: vnode, flags: int, start: int = 0, end: int = 0) -> GEN:
    """VOP_FSYNC (vnode locked): the pages (genfs_putpages, waiting with FSYNC_WAIT), then
    the vnode's dirty buffers (bawrite passes; with FSYNC_WAIT, until none is left), then
    the inode (with wait if asked, or if its block is a delayed write or a write in flight:
    not 2.0's, see ffs_inode.inode_pending)."""
    ip: inode | None = vp.v_data
    if ip is None:
        return 0
    k = ip.ump.k
    wait = bool(flags & FSYNC_WAIT)
    err: int = yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=wait)
    bio = k.bio
    p = k.proto
    for _ in range(4):
        s = p.buflist_lock(vp)
        dirty = list(vp.v_dirtyblkhd)
        p.buflist_unlock(vp, s)
        if not dirty:
            break
        for bp in dirty:
            if bp.b_vp is vp and bio.btrybusy(bp):
                if bp.b_flags & B_DELWRI:
                    bio.bawrite(bp)
                else:
                    bio.brelse(bp)
        if not wait:
            break
        yield from k.vfs.waitforoutput(vp, "ffsfsync")
    if ip.d.nlink >= 0 and (ip.dirty or wait and inode_pending(ip)):
        e = yield from update_inode(ip, wait)
        err = err or e
    if wait and bio.report_errors:
        # bio.write_error=report: a bawrite above (or earlier) that failed, or a failed
        # write of the block holding this inode; 2.0 has lost both
        err = err or bio.take_write_error(vp)
        failed = bio.block_error(ip.ump.devvp, ip.ump.iblock(ip.ino)[0])
        if failed > ip.err_seen:
            ip.err_seen = failed
            err = err or EIO
    return err


def ffs_reclaim(vp: vnode) -> GEN:
    """VOP_RECLAIM: ufs_reclaim, then the inode is freed (to its pool in 2.0)."""
    err: int = yield from ufs_reclaim(vp)
    return err


def vn_bwrite(bp: buf) -> GEN:
    """VOP_BWRITE: bwrite."""
    vp = bp.b_vp
    assert vp is not None
    err: int = yield from vp.v_data.ump.k.bio.bwrite(bp)
    return err


def ffs_vnodeop(ump: ufsmount) -> vnodeops:
    """The machine's ffs_vnodeop_p (the genfs entries are the machine's own)."""
    k = ump.k
    return vnodeops(
        "ffs",
        lookup=ufs_lookup, create=ufs_create, mkdir=ufs_mkdir, remove=ufs_remove,
        rmdir=ufs_rmdir, link=ufs_link, rename=ufs_rename, open=ufs_open, close=ufs_close,
        read=ffs_read, write=ffs_write, fsync=ffs_fsync, getattr=ufs_getattr,
        setattr=ufs_setattr, readdir=ufs_readdir, symlink=ufs_symlink,
        readlink=ufs_readlink, truncate=ffs_truncate,
        inactive=ufs_inactive,
        reclaim=ffs_reclaim, lock=k.vfs.genfs_lock, unlock=k.vfs.genfs_unlock,
        bmap=ufs_bmap, strategy=ufs_strategy, bwrite=vn_bwrite, balloc=ffs_balloc,
        getpages=k.genfs.genfs_getpages, putpages=k.genfs.genfs_putpages, update=ffs_update,
    )
