"""The inode hash (sys/ufs/ufs/ufs_ihash.c, NetBSD 2.0): inode number -> vnode, per mount."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vfslab.fs.ffs_vfsops import ufsmount
    from vfslab.kern.vnode import vnode


def ufs_ihashlookup(ump: ufsmount, ino: int) -> vnode | None:
    return ump.ihash.get(ino)


def ufs_ihashins(ump: ufsmount, ino: int, vp: vnode) -> None:
    ump.ihash[ino] = vp


def ufs_ihashrem(ump: ufsmount, ino: int, vp: vnode) -> None:
    if ump.ihash.get(ino) is vp:
        del ump.ihash[ino]
