"""The in-core inode (sys/ufs/ufs/inode.h, NetBSD 2.0): the on-disk dinode plus what the
kernel keeps with it while its vnode lives."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vfslab.fs.ffs_vfsops import ufsmount
    from vfslab.fs.ufs_layout import Dinode
    from vfslab.kern.vnode import vnode


class inode:  # noqa: N801  (struct inode)
    """`d` is the dinode; `dirty` stands for IN_CHANGE|IN_UPDATE|IN_MODIFIED; `ind` caches
    the decoded pointers of indirect blocks (a buffer-cache hit, charged as one); `diroff`
    is i_diroff, where the last lookup in this directory found its name."""


    __slots__ = ("ino", "d", "vp", "dirty", "ind", "nextalloc", "maxlbn", "ump", "diroff",
                 "lookup_slot", "renaming", "err_seen")

    def __init__(self, ino: int, d: Dinode, ump: ufsmount) -> None:
        self.ino = ino
        self.d = d
        self.vp: vnode | None = None
        self.dirty = False
        self.ind: dict[int, list[int]] = {}         # indirect lbn -> decoded pointers
        self.nextalloc = 0
        self.maxlbn = -1          # one past the highest mapped block, -1: not known yet
        self.ump = ump
        self.diroff = 0
        # the slot the last CREATE/DELETE/RENAME lookup found, for the VOP that follows
        # with the directory locked (i_offset); None: at the end of the directory
        self.lookup_slot: tuple[int, int] | None = None
        self.renaming = False     # IN_RENAME
        # bio.write_error=report: the last failure of its inode block this inode's fsync
        # has reported (an errseq sample, as Linux's file->f_wb_err)
        self.err_seen = 0

    def __repr__(self) -> str:
        return f"<inode {self.ino} nlink={self.d.nlink} size={self.d.size}>"


def VTOI(vp: vnode) -> inode:  # noqa: N802
    ip: inode = vp.v_data
    return ip
