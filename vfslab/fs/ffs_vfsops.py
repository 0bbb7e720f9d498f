"""Mounting FFS (sys/ufs/ffs/ffs_vfsops.c, netbsd-2-0 branch): ffs_mountroot/ffs_mountfs,
ffs_unmount, ffs_sync, ffs_vget, ffs_sbupdate, ffs_statfs, ffs_root, and struct ufsmount.

vfslab's FFS has one cylinder group and no fragments (docs/model.md): the superblock, the
two bitmaps (blocks, inodes) and the inode table are metadata buffers on the device vnode.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.inode import inode
from vfslab.fs.ufs_ihash import ufs_ihashins, ufs_ihashlookup, ufs_ihashrem
from vfslab.fs.ufs_layout import BSIZE, ROOTINO, SECTORS, Dinode, Superblock
from vfslab.kern.init_main import mount
from vfslab.kern.lock import LK_EXCLUSIVE, LK_INTERLOCK, LK_NOWAIT, LK_RETRY, simplelock
from vfslab.kern.vnode import VNON, vnode
from vfslab.kern.vnode_if import FSYNC_WAIT, VOP_FSYNC
from vfslab.tunable import Tunable, declare_setting, setting

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vnode_if import vnodeops

GEN = Generator[Any, Any, Any]
ENOENT = 2
EINVAL = 22
ENFILE = 23
FS_MAGIC = 0x19540119


class ufsmount:  # noqa: N801  (struct ufsmount, with struct fs as `sb`)
    """One mounted FFS: its device vnode, superblock, inode hash and allocation rotors."""

    def __init__(self, k: Kernel, devvp: vnode, nblocks: int) -> None:
        from vfslab.fs.ffs_vnops import ffs_vnodeop

        self.k = k
        self.m = k.m
        self.devvp = devvp
        self.nblocks = nblocks
        self.sb = Superblock()
        self.ihash: dict[int, vnode] = {}
        self.ihash_slock = simplelock("ufs_ihash_slock")      # 2.0's is global
        self.mp: mount | None = None
        self.sb_dirty = False              # fs_fmod
        self.rotor = 0                     # the block allocator's next preference
        self.irotor = ROOTINO + 1
        self.vnodeop: vnodeops = ffs_vnodeop(self)
        # inode -> a write error kept for the file's next fsync whose vnode was reclaimed
        # before one (ufs_reclaim; only under the settings that keep such errors)
        self.pending_errors: dict[int, int] = {}

    @property
    def async_(self) -> bool:
        return self.mp is not None and self.mp.async_

    def iblock(self, ino: int) -> tuple[int, int]:
        """(block, byte offset) of an inode in the inode table (ino_to_fsba)."""
        from vfslab.fs.ufs_layout import INODE_SIZE, INOPB

        return self.sb.itable_start + ino // INOPB, (ino % INOPB) * INODE_SIZE

    def meta_read(self, blk: int) -> Generator[Any, Any, tuple[int, Any]]:
        """bread of a metadata block on the device; its payload made an editable bytearray."""
        k = self.k
        err, bp = yield from k.bio.bread(self.devvp, blk * SECTORS, BSIZE)
        if not err and not isinstance(bp.b_data[0], bytearray):
            v = bp.b_data[0]
            bp.b_data[0] = bytearray(v if isinstance(v, (bytes, bytearray)) else BSIZE)
        return err, bp

    def meta_write(self, bp: Any, sync: bool) -> Generator[Any, Any, int]:
        """bwrite with wait, else bdwrite (a delayed write)."""
        if sync:
            err: int = yield from self.k.bio.bwrite(bp)
            return err
        self.k.bio.bdwrite(bp)
        return 0


def ffs_mountfs(k: Kernel, devvp: vnode, async_: bool
                ) -> Generator[Any, Any, tuple[int, mount | None]]:
    """Read and check the superblock, make the mount, mark the file system not clean."""
    ump = ufsmount(k, devvp, k.cfg.fs_blocks)
    err, bp = yield from k.bio.bread(devvp, 0, BSIZE)
    if err:
        k.bio.brelse(bp)
        return err, None
    try:
        sb = Superblock.unpack(bp.b_data[0])
    except (ValueError, struct.error, TypeError):
        k.bio.brelse(bp)
        return EINVAL, None
    k.bio.brelse(bp)
    if sb.magic != FS_MAGIC:
        return EINVAL, None
    ump.sb = sb
    ump.rotor = sb.data_start
    mp = mount(ump, async_, ffs_vfsops)
    ump.mp = mp
    devvp.v_specmountpoint = mp
    if mp not in k.mounts:
        k.mounts.append(mp)
    sb.clean = 0
    yield from ffs_sbupdate(ump, True)
    return 0, mp


def ffs_root(mp: mount) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """VFS_ROOT: the root directory's vnode, referenced and locked. (2.0's ufs_vinit also
    sets VROOT in v_flag, without v_interlock; vfslab recognises the root as rootvnode
    instead: docs/model.md.)"""
    return (yield from ffs_vget(mp.fs, ROOTINO))


def ffs_vget(ump: ufsmount, ino: int, nested: int = 0
             ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """VFS_VGET: the vnode of an inode, referenced and locked: from the inode hash (vget
    LK_EXCLUSIVE), or a new vnode, put in the hash locked before the inode is read, so that
    others asking for it wait on its lock while the read sleeps. `nested`: the lock's
    nesting annotation (VNL_CHILD from a lookup holding the directory), no 2.0 argument."""
    k = ump.k
    vfs = k.vfs
    while True:
        vp = ufs_ihashlookup(ump, ino)
        if vp is not None:
            err = yield from vfs.vget(vp, LK_EXCLUSIVE | nested)
            if err:
                continue                  # recycled while we slept: look again
            return 0, vp
        err, vp = yield from vfs.getnewvnode("ufs", ump.mp, ump.vnodeop)
        if vp is None:
            return err, None
        if ufs_ihashlookup(ump, ino) is not None:
            # someone beat us to it while getnewvnode slept: push ours back (ungetnewvnode)
            yield from vfs.vrele(vp)
            continue
        ip = inode(ino, Dinode(0, 0, 0, 0, 0), ump)
        ip.vp = vp
        vp.v_data = ip
        yield from ufs_ihashins(ump, ino, vp, nested)  # locks it (lockmgr, as 2.0)
        blk, off = ump.iblock(ino)
        err, bp = yield from ump.meta_read(blk)
        if err:
            k.bio.brelse(bp)
            ufs_ihashrem(ump, ino, vp)
            vp.v_data = None
            yield from vfs.vput(vp)
            return err, None
        d = Dinode.unpack_from(bp.b_data[0], off)
        k.bio.brelse(bp)
        ip.d = d
        vp.v_type = d.vtype()                         # ufs_vinit
        vp.v_size = d.size
        if ump.pending_errors:
            kept = ump.pending_errors.pop(ino, 0)
            if kept:
                k.ubc.latch_error(vp, kept)
        return 0, vp


def ffs_sbupdate(ump: ufsmount, wait: bool) -> Generator[Any, Any, int]:
    """Write the superblock (with wait, else asynchronously)."""
    bio = ump.k.bio
    bp = yield from bio.bget(ump.devvp, 0, BSIZE)
    bp.b_data[0] = bytearray(ump.sb.pack())
    ump.sb_dirty = False
    if wait:
        err: int = yield from bio.bwrite(bp)
        return err
    bio.bawrite(bp)
    return 0


LAZY_SYNC_VNODES = declare_setting("ffs", Tunable(
    "lazy_sync_vnodes", bool, False,
    "the syncer vnode's lazy ffs_sync fsyncs every vnode with pages, dirty buffers or a "
    "changed inode (ffs_vfsops.c 1.119, 2003); false (as early 2004): it leaves the vnodes to "
    "the wheel"))


def ffs_sync(mp: mount, wait: bool, lazy: bool = False) -> Generator[Any, Any, int]:
    """VFS_SYNC (ffs_sync, ffs_vfsops.c: 1.119 of 2003-08-07, the nearest stored revision,
    and the lazy case as the netbsd-2-0 branch's ext2fs_vfsops.c 1.66.2.1 has it). The
    mount's vnode list is walked under mntvnode_slock; each vnode's v_interlock is taken and
    a vnode with no changed inode, no dirty buffer and no page (uo_npages == 0), or of type
    VNON, is passed over; the others are vget LK_EXCLUSIVE|LK_NOWAIT|LK_INTERLOCK (busy
    ones skipped, a vnode being cleaned restarts the walk), VOP_FSYNC'd (FSYNC_WAIT with
    `wait`) and vput. A lazy sync (the syncer vnode's, MNT_LAZY) passes over every vnode:
    they have their own places on the wheel (the tech-kern reply to PR kern/24596: "the
    on-disk inode update would still be delayed for UFS if the vnode is not on the sync
    list"); `--set ffs.lazy_sync_vnodes=true` walks them as 1.119 did. Then, unless lazy,
    the device vnode is fsync'd under its lock; a changed superblock is written (waiting
    with `wait`: ffs_cgupdate)."""
    ump: ufsmount = mp.fs
    k = ump.k
    vfs = k.vfs
    L = k.locks
    p = k.proto
    err = 0
    skip_all = lazy and not setting(k.cfg.sysctl, "ffs.lazy_sync_vnodes")
    L.simple_lock(vfs.mntvnode_slock)
    restart = True
    while restart:
        restart = False
        for vp in vfs.mount_vnodes(mp):
            if vp.v_mount is not mp:
                restart = True                   # "no longer associated": start over
                break
            s = p.vi_lock(vp)
            ip = vp.v_data
            if skip_all or vp.v_type == VNON or ip is None or (
                    not ip.dirty and not p.sync_dirty_hint(vp) and vp.v_uobj.uo_npages == 0):
                p.vi_unlock(vp, s)
                continue
            L.simple_unlock(vfs.mntvnode_slock)
            e = yield from vfs.vget(vp, LK_EXCLUSIVE | LK_NOWAIT | LK_INTERLOCK, s)
            if e:
                L.simple_lock(vfs.mntvnode_slock)
                if e == ENOENT:
                    restart = True
                    break
                continue
            e = yield from VOP_FSYNC(vp, FSYNC_WAIT if wait else 0)
            err = err or e
            yield from vfs.vput(vp)
            L.simple_lock(vfs.mntvnode_slock)
    L.simple_unlock(vfs.mntvnode_slock)
    if not lazy:
        devvp = ump.devvp
        yield from vfs.vn_lock(devvp, LK_EXCLUSIVE | LK_RETRY)
        e = yield from VOP_FSYNC(devvp, FSYNC_WAIT if wait else 0)
        err = err or e
        yield from vfs.vn_unlock(devvp)
    if ump.sb_dirty:
        e = yield from ffs_sbupdate(ump, wait)
        err = err or e
    return err


def ffs_unmount(mp: mount, force: bool = False) -> Generator[Any, Any, int]:
    """VFS_UNMOUNT (ffs_unmount and ffs_flushfiles, ffs_vfsops.c 1.119): vflush every vnode
    (EBUSY if one is still in use, unless `force`), fsync the device vnode, mark the file
    system clean and write the superblock, invalidate the device's buffers. dounmount has
    already synced (VFS_SYNC with MNT_WAIT)."""
    ump: ufsmount = mp.fs
    k = ump.k
    vfs = k.vfs
    err = yield from vfs.vflush(mp, None, force)
    if err:
        return err
    devvp = ump.devvp
    yield from vfs.vn_lock(devvp, LK_EXCLUSIVE | LK_RETRY)
    err = yield from VOP_FSYNC(devvp, FSYNC_WAIT)
    yield from vfs.vn_unlock(devvp)
    if err:
        return err
    ump.sb.clean = 1
    yield from ffs_sbupdate(ump, True)
    yield from vfs.vinvalbuf(devvp, save=True)
    if mp in k.mounts:
        k.mounts.remove(mp)
    devvp.v_specmountpoint = None
    return 0


def ffs_statfs(mp: mount) -> dict[str, int]:
    sb = mp.fs.sb
    return {"blocks": sb.nblocks, "bfree": sb.free_blocks, "files": sb.ninodes,
            "ffree": sb.free_inodes}


class FfsVfsOps:
    """ffs_vfsops: the file-system type the kernel mounts by name ("ffs")."""

    name = "ffs"

    def mountroot(self, k: Kernel, devvp: vnode, async_: bool
                  ) -> Generator[Any, Any, tuple[int, mount | None]]:
        """ffs_mountroot: mount the root file system on the root device's vnode."""
        return (yield from ffs_mountfs(k, devvp, async_))

    def root(self, mp: mount) -> Generator[Any, Any, tuple[int, vnode | None]]:
        return (yield from ffs_root(mp))

    def sync(self, mp: mount, wait: bool, lazy: bool = False) -> Generator[Any, Any, int]:
        return (yield from ffs_sync(mp, wait, lazy))

    def unmount(self, mp: mount, force: bool = False) -> Generator[Any, Any, int]:
        return (yield from ffs_unmount(mp, force))

    def statfs(self, mp: mount) -> dict[str, int]:
        return ffs_statfs(mp)


ffs_vfsops = FfsVfsOps()
