"""The device vnode's operations (sys/miscfs/specfs/spec_vnops.c, NetBSD 2.0): the vector of
the vnode bdevvp makes for the root disk, on which FFS keeps its metadata buffers.

spec_strategy hands a buffer to the driver (bdevsw's strategy: the disk's queue); spec_bmap
maps a block to itself; spec_fsync writes the vnode's dirty buffers (vflushbuf), waiting
with FSYNC_WAIT. A device vnode has no lock: specdev.h's `#define spec_lock genfs_nolock`
and `spec_unlock genfs_nounlock` (1.18 of 1999 and 1.29.8.1 of 2006 alike, so 2.0's too), so
vn_lock of the device vnode (ffs_sync's, ffs_unmount's) takes nothing but hands back the
interlock (vfslab locked it with lockmgr until #15's audit found the acquisition 2.0 did
not make).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.vnode_if import FSYNC_WAIT, vnodeops

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vnode import vnode

SECTORS_PER_BLOCK = 8


def spec_vnodeop(k: Kernel) -> vnodeops:
    """The machine's spec_vnodeop_p."""
    vfs = k.vfs
    bio = k.bio

    def spec_strategy(vp: vnode, bp: buf) -> None:
        bio.strategy(bp)

    def spec_bmap(vp: vnode, lbn: int, maxrun: int = 0
                  ) -> Generator[Any, Any, tuple[int, vnode, int, int]]:
        yield from ()
        return 0, vp, lbn * SECTORS_PER_BLOCK, maxrun

    def spec_fsync(vp: vnode, flags: int, start: int = 0, end: int = 0
                   ) -> Generator[Any, Any, int]:
        err: int = yield from vfs.vflushbuf(vp, bool(flags & FSYNC_WAIT))
        return err

    def spec_inactive(vp: vnode) -> Generator[Any, Any, int]:
        # spec_inactive: VOP_UNLOCK(vp, 0), which is genfs_nounlock
        err: int = yield from vfs.genfs_nounlock(vp)
        return err

    def spec_bwrite(bp: buf) -> Generator[Any, Any, int]:
        err: int = yield from bio.bwrite(bp)
        return err

    return vnodeops("spec", strategy=spec_strategy, bmap=spec_bmap, fsync=spec_fsync,
                    lock=vfs.genfs_nolock, unlock=vfs.genfs_nounlock, inactive=spec_inactive,
                    reclaim=vfs._nullop, putpages=vfs._nullop, bwrite=spec_bwrite)
