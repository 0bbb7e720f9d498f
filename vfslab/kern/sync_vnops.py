"""The file-system syncer vnode (sys/miscfs/syncfs/sync_vnops.c, NetBSD 2.0; the same in its
1.2 of 1999 but for vfs_deallocate_syncvnode, declared in syncfs.h 1.5 of 2001).

Each writable mount that is not MNT_ASYNC has one vnode with no file behind it (sys_mount,
vfs_syscalls.c: `if ((mp->mnt_flag & (MNT_RDONLY | MNT_ASYNC)) == 0) vfs_allocate_syncvnode`),
kept on the syncer's wheel: when sched_sync reaches it, its VOP_FSYNC (sync_fsync) puts it
syncdelay seconds ahead again and runs VFS_SYNC(mp, MNT_LAZY) with the mount busy. For FFS
that writes the superblock if it changed (ffs_sync: the lazy sync leaves the vnodes to their
own places on the wheel, and the device vnode too). Its lock operations are genfs_nolock and
genfs_nounlock (syncfs.h): the syncer never waits for it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.lock import LK_NOWAIT
from vfslab.kern.vnode import VNON, vnode
from vfslab.kern.vnode_if import FSYNC_LAZY, vnodeops

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel, mount


class SyncVnops:
    """sync_vnodeop_entries: fsync, inactive, reclaim; lock, unlock and putpages do nothing."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        vfs = k.vfs
        self.vnodeop = vnodeops("sync", fsync=self.sync_fsync, inactive=self.sync_inactive,
                                reclaim=self.sync_reclaim, lock=vfs.genfs_nolock,
                                unlock=vfs.genfs_nounlock, putpages=vfs._nullop)
        # vfs_allocate_syncvnode's statics: scatter the mounts' syncer vnodes over the wheel
        self.start = 0
        self.incr = 0
        self.next = 0

    def vfs_allocate_syncvnode(self, mp: mount) -> Generator[Any, Any, int]:
        """Create the mount's syncer vnode and put it on the wheel, scattered so that
        several mounts' lazy syncs go off at different seconds."""
        k = self.k
        syncer = k.syncer
        err, vp = yield from k.vfs.getnewvnode("vfs", mp, self.vnodeop)
        if vp is None:
            mp.mnt_syncer = None
            return err
        vp.v_writecount = 1
        vp.v_type = VNON
        self.next += self.incr
        if self.next == 0 or self.next > syncer.syncer_maxdelay:
            self.start //= 2
            self.incr //= 2
            if self.start == 0:
                self.start = syncer.syncer_maxdelay // 2
                self.incr = syncer.syncer_maxdelay
            self.next = self.start
        syncdelay = syncer.syncdelay
        syncer.vn_syncer_add_to_worklist(vp, self.next % syncdelay if syncdelay > 0 else 0)
        mp.mnt_syncer = vp
        return 0

    def vfs_deallocate_syncvnode(self, mp: mount) -> Generator[Any, Any, None]:
        """Drop the syncer vnode (dounmount): vrele, whose VOP_INACTIVE cleans it out."""
        vp = mp.mnt_syncer
        mp.mnt_syncer = None
        if vp is not None:
            yield from self.k.vfs.vrele(vp)

    def sync_fsync(self, vp: vnode, flags: int, start: int = 0, end: int = 0
                   ) -> Generator[Any, Any, int]:
        """Only for a lazy sync: move to the back of the wheel, then, if the mount can be
        made busy without waiting (mountlist_slock handed to vfs_busy), VFS_SYNC(MNT_LAZY)
        with MNT_ASYNC cleared for its duration."""
        if not flags & FSYNC_LAZY:
            return 0
        k = self.k
        vfs = k.vfs
        mp = vp.v_mount
        k.syncer.vn_syncer_add_to_worklist(vp, k.syncer.syncdelay)
        if mp is None:
            return 0
        vfs.L.simple_lock(vfs.mountlist_slock)
        if (yield from vfs.vfs_busy(mp, LK_NOWAIT, vfs.mountlist_slock)) == 0:
            asyncflag = mp.async_
            mp.async_ = False
            yield from mp.mnt_op.sync(mp, False, lazy=True)
            mp.async_ = asyncflag
            yield from vfs.vfs_unbusy(mp)
        return 0

    def sync_inactive(self, vp: vnode) -> Generator[Any, Any, int]:
        """The syncer vnode's last reference went: unlock it, and vgone it if unused."""
        vfs = self.k.vfs
        yield from vfs.vn_unlock(vp)
        p = self.k.proto
        s = p.vi_lock(vp)
        if vp.v_usecount == 0:
            yield from vfs.vgonel(vp, s)
        else:
            p.vi_unlock(vp, s)
        return 0

    def sync_reclaim(self, vp: vnode) -> Generator[Any, Any, int]:
        """Off the wheel, at splbio (the worklist's protection); the mount forgets it."""
        if vp.v_mount is not None and vp.v_mount.mnt_syncer is vp:
            vp.v_mount.mnt_syncer = None
        self.k.syncer.vn_syncer_remove_from_worklist(vp)
        return 0
        yield
