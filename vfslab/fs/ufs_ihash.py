"""The inode hash (sys/ufs/ufs/ufs_ihash.c; 2.0's revision is not in the index: read in 1.11.8.1
of 2001 and 1.23.16.2 of 2007, which bracket it and agree on what is modelled here, apart from
2007's mutexes for 2001's simple_locks, which 2.0 still had): inode number -> vnode, per
mount, under ufs_ihash_slock. Inserting locks the vnode first ("lock the inode, then put it
on the appropriate hash list": lockmgr on v_lock directly, not vn_lock), so a second lookup
of the inode blocks in vget until its disk inode is read."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.lock import LK_EXCLUSIVE

if TYPE_CHECKING:
    from vfslab.fs.ffs_vfsops import ufsmount
    from vfslab.kern.vnode import vnode


def ufs_ihashlookup(ump: ufsmount, ino: int) -> vnode | None:
    L = ump.k.locks
    L.simple_lock(ump.ihash_slock)
    vp = ump.ihash.get(ino)
    L.simple_unlock(ump.ihash_slock)
    return vp


def ufs_ihashins(ump: ufsmount, ino: int, vp: vnode, nested: int = 0
                 ) -> Generator[Any, Any, None]:
    """Lock the new vnode and enter it in the hash (ufs_ihash.c 1.11.8.1 and 1.23.16.2:
    lockmgr(&vp->v_lock, LK_EXCLUSIVE), then the insert under ufs_ihash_slock). `nested` is
    the lock's nesting annotation (VNL_CHILD when its directory is held), for the validator
    only."""
    L = ump.k.locks
    p = ump.k.proto
    s = p.vnlock_enter(vp)
    yield from L.lockmgr(vp.v_lock, LK_EXCLUSIVE | nested)
    p.vnlock_exit(vp, s)
    L.simple_lock(ump.ihash_slock)
    ump.ihash[ino] = vp
    L.simple_unlock(ump.ihash_slock)


def ufs_ihashrem(ump: ufsmount, ino: int, vp: vnode) -> None:
    L = ump.k.locks
    L.simple_lock(ump.ihash_slock)
    if ump.ihash.get(ino) is vp:
        del ump.ihash[ino]
    L.simple_unlock(ump.ihash_slock)
