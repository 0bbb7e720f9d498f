"""Inode updates and truncation (sys/ufs/ffs/ffs_inode.c, netbsd-2-0 branch): ffs_update and
ffs_truncate (with ffs_indirtrunc's pointer clearing)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ffs_alloc import ffs_blkfree
from vfslab.fs.ffs_balloc import write_indir
from vfslab.fs.ufs_bmap import indir_ptrs
from vfslab.fs.ufs_layout import BSIZE, NDADDR, NINDIR, SECTORS
from vfslab.kern.buf import B_BUSY, B_DELWRI, B_DONE, B_INVAL, B_READ
from vfslab.kern.vnode_if import UPDATE_WAIT

if TYPE_CHECKING:
    from vfslab.fs.inode import inode
    from vfslab.kern.buf import buf
    from vfslab.kern.vnode import vnode

EINVAL = 22
EISDIR = 21
GEN = Generator[Any, Any, int]


def ffs_update(vp: vnode, flags: int, since: int = -1) -> GEN:
    """VOP_UPDATE: a changed inode goes into its block (bwrite with UPDATE_WAIT, else
    bdwrite); an unchanged one only with UPDATE_WAIT. `since`: the delayed inode block now
    carries pointers to data dirtied then, and is dated back to it (bbackdate)."""
    ip: inode | None = vp.v_data
    if ip is None or ip.d.nlink < 0:
        return 0
    wait = bool(flags & UPDATE_WAIT)
    err = 0
    if ip.dirty or wait:
        err = yield from update_inode(ip, wait)
    if since >= 0 and not wait:
        bp = inode_buf(ip)
        if bp is not None:
            ip.ump.k.bio.bbackdate(bp, since)
    return err


def update_inode(ip: inode, wait: bool) -> GEN:
    """ffs_update's body on an in-core inode: always writes it."""
    ump = ip.ump
    k = ump.k
    if ip.d.nlink < 0:
        raise k.vfs.panic(f"ffs_update: inode {ip.ino} was freed")
    blk, off = ump.iblock(ip.ino)
    err, bp = yield from ump.meta_read(blk)
    if err or ip.d.nlink < 0:
        # freed while bread slept: a writeback policy updates inodes without the vnode
        # lock, and an unlink's inactive may have freed this one (and ffs_valloc reused the
        # number) meanwhile; writing it now would overwrite the slot (crash property tests)
        k.bio.brelse(bp)
        return err
    ip.d.pack_into(bp.b_data[0], off)
    ip.dirty = False
    err = yield from ump.meta_write(bp, wait)
    if err and k.bio.redirty_errors:
        # bio.write_error=redirty (not 2.0, whose ffs_update clears IN_MODIFIED before its
        # bwrite and never sets it again): a synchronous write of the block failed and brelse
        # threw it away, so the inode stays modified in memory for the next update to write
        # (found by the crash matrix with every fix: fsync's rewrite of a block whose write
        # had failed in flight failed too, and the file's size never reached the disk)
        ip.dirty = True
    return err


def inode_buf(ip: inode) -> buf | None:
    """The cached buffer of an inode's block, if any."""
    ump = ip.ump
    return ump.k.bio.incore(ump.devvp, ump.iblock(ip.ino)[0] * SECTORS)


def inode_pending(ip: inode) -> bool:
    """Is the inode's block not yet on disk: a delayed write (an earlier update without wait,
    by the syncer, a policy or inactive), or an asynchronous write still in flight? Then
    fsync must write it, or wait for it and write it again, or the size and block pointers
    it promised may never reach the disk (found by the crash tests: the delayed case first;
    then the in-flight one, when trickle's updater had queued the block a moment before an
    fsync, whose write failed after the fsync had returned 0). Not 2.0: its ffs_update
    returns at once for an inode not IN_MODIFIED, so its fsync after a lazy update left the
    block as it was (docs/model.md, Departures)."""
    bp = inode_buf(ip)
    if bp is None:
        return False
    f = bp.b_flags
    return bool(f & B_DELWRI or f & B_BUSY and not f & (B_DONE | B_READ))


def ffs_truncate(vp: vnode, length: int, flags: int = 0) -> GEN:
    """VOP_TRUNCATE (vnode locked): drop pages and blocks past `length`, or grow leaving a
    hole. The pointers to freed blocks leave the disk (written with wait unless MNT_ASYNC,
    as ffs_indirtrunc and ffs_truncate do) before the blocks are freed for reuse."""
    ip: inode = vp.v_data
    if length < 0:
        return EINVAL
    return (yield from truncate_inode(ip, length))


def truncate_inode(ip: inode, length: int) -> GEN:
    ump = ip.ump
    k = ump.k
    vp = ip.vp
    assert vp is not None
    d = ip.d
    if length >= d.size:
        d.size = vp.v_size = length
        ip.dirty = True
        return (yield from update_inode(ip, False))
    tsync = not ump.async_
    k.genfs.truncate_pages(vp, length)
    keep = (length + BSIZE - 1) // BSIZE
    for f in k.notify.truncated:
        f(ip.ino, keep, ump.m.time())
    freed: list[int] = []
    for lbn in range(keep, NDADDR):
        if d.db[lbn]:
            freed.append(d.db[lbn])
            d.db[lbn] = 0
    if d.ib:
        ptrs = list((yield from indir_ptrs(ip, -1, d.ib)))
        lo = max(0, keep - NDADDR)
        changed = False
        for i in range(lo, NINDIR):
            if ptrs[i]:
                freed.append(ptrs[i])
                ptrs[i] = 0
                changed = True
        if lo == 0:
            yield from drop_indir(ip, -1)
            freed.append(d.ib)
            d.ib = 0
        elif changed:
            yield from write_indir(ip, -1, d.ib, ptrs, tsync)
    if d.dib:
        top = list((yield from indir_ptrs(ip, -2, d.dib)))
        base = NDADDR + NINDIR
        for j in range(NINDIR):
            mid = top[j]
            if not mid:
                continue
            lo = max(0, keep - base - j * NINDIR)
            if lo >= NINDIR:
                continue
            ptrs = list((yield from indir_ptrs(ip, -3 - j, mid)))
            for i in range(lo, NINDIR):
                if ptrs[i]:
                    freed.append(ptrs[i])
                    ptrs[i] = 0
            if lo == 0:
                yield from drop_indir(ip, -3 - j)
                freed.append(mid)
                top[j] = 0
            else:
                yield from write_indir(ip, -3 - j, mid, ptrs, tsync)
        if keep <= base:
            yield from drop_indir(ip, -2)
            freed.append(d.dib)
            d.dib = 0
        else:
            yield from write_indir(ip, -2, d.dib, top, tsync)
    d.size = vp.v_size = length
    ip.nextalloc = 0
    ip.maxlbn = keep
    ip.dirty = True
    yield from k.vfs.vtruncbuf(vp, keep)
    err = yield from update_inode(ip, tsync)
    if freed:
        yield from ffs_blkfree(ump, freed)
    return err


def drop_indir(ip: inode, ilbn: int) -> GEN:
    """Invalidate a freed indirect block's buffer."""
    k = ip.ump.k
    vp = ip.vp
    assert vp is not None
    ip.ind.pop(ilbn, None)
    bp = yield from k.bio.bget(vp, ilbn, BSIZE)
    bp.b_flags |= B_INVAL
    k.bio.brelse(bp)
    return 0
