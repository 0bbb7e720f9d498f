"""Allocating a file's blocks (sys/ufs/ffs/ffs_balloc.c, netbsd-2-0 branch): ffs_balloc over a
byte range, with the indirect blocks it needs.

As 2.0 without soft updates: a new indirect block is cleared and written with wait (bwrite:
"Write synchronously so that indirect blocks never point at garbage") before its parent (the
inode or the double-indirect block) points at it, and the pointers put in it or in an
existing one go out as a delayed write; with B_SYNC (`dirop`: ufs_direnter asks for it) the
updated pointer blocks are written with wait too, so that a directory's new block is
reachable on disk before entries are put in it. Under MNT_ASYNC everything is delayed. If
the write of a new indirect block fails, the allocation is undone (2.0's `fail:` label: the
parent is not changed, the blocks allocated are freed) and the error is returned: the
write(2) that needed the block gets EIO.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ffs_alloc import ffs_alloc, ffs_blkfree
from vfslab.fs.ufs_bmap import bmap_lbn, indir_ptrs
from vfslab.fs.ufs_layout import BSIZE, NDADDR, NINDIR, SECTORS

if TYPE_CHECKING:
    from vfslab.fs.inode import inode
    from vfslab.kern.vnode import vnode

ENOSPC = 28
CHUNK = 64 * 1024
CHUNK_BLOCKS = CHUNK // BSIZE
GEN = Generator[Any, Any, int]


def write_indir(ip: inode, ilbn: int, blk: int, ptrs: list[int], wait: bool) -> GEN:
    """Put `ptrs` into indirect block `ilbn` at disk block `blk` (getblk, b_blkno set as
    ffs_balloc sets nbp->b_blkno) and write it: with wait (bwrite's error returned), or
    delayed (0)."""
    vp = ip.vp
    assert vp is not None
    ump = ip.ump
    bp = yield from ump.k.bio.bget(vp, ilbn, BSIZE)
    bp.b_blkno = blk * SECTORS
    bp.b_data[0] = bytearray(struct.pack(f"<{NINDIR}I", *ptrs))
    ip.ind[ilbn] = ptrs
    err: int = yield from ump.meta_write(bp, wait)
    return err


def new_indir(ip: inode, ilbn: int, sync: bool) -> Generator[Any, Any, tuple[int, int]]:
    """ffs_balloc's allocation of a new indirect block (ffs_balloc.c, netbsd-2-0 branch,
    read in 1.45.8.2, whose indirect-block path is 4.4BSD's unchanged): ffs_alloc, getblk,
    clrbuf and bwrite, before anything points at it. (error, block); on an error the block
    is freed again, as at ffs_balloc's `fail:`, and its buffer's loss forgotten (nothing
    will read it)."""
    ump = ip.ump
    err, got = yield from ffs_alloc(ump, ump.rotor, 1)
    if err:
        return err, 0
    blk = got[0]
    err = yield from write_indir(ip, ilbn, blk, [0] * NINDIR, sync)
    if err:
        # found by the crash matrix: this error was dropped, the write(2) went on, and the
        # data's pointers went with the thrown-away buffer (late losses on steadywriter and
        # readwrite with 3% write faults, always the first pages under a new indirect
        # block, and fsync'd data lost on protocol)
        ip.ind.pop(ilbn, None)
        assert ip.vp is not None
        ump.k.bio.lost_indirect.discard((ip.vp, ilbn))
        yield from ffs_blkfree(ump, [blk])
        return err, 0
    return 0, blk


def ffs_balloc(vp: vnode, off: int, n: int, dirop: bool = False) -> GEN:
    """VOP_BALLOC: allocate the blocks of [off, off+n) that are holes, in runs contiguous on
    disk where the allocator can, each run's pointers updated in one pointer-block write.

    ffs_write calls it a 64 KiB chunk at a time. A longer range (the tree laid out before a
    run) is allocated where those writes would have put it: the first run in each pointer
    block's region stops at the end of its 64 KiB chunk, so that a new indirect block lands
    after that chunk's data, as the chunk's write would have allocated it; the rest of the
    region follows in one run, which is where first-fit from the block after would have
    put the chunks one by one (tests/test_setup_layout.py compares the two block by block)."""
    ip: inode = vp.v_data
    sync = not ip.ump.async_
    lbn = off // BSIZE
    last = (off + n - 1) // BSIZE
    if ip.maxlbn < 0:
        ip.maxlbn = yield from maxlbn(ip)
    region_seen = -1
    while lbn <= last:
        if lbn < ip.maxlbn and (yield from bmap_lbn(ip, lbn)) >= 0:
            lbn += 1
            continue
        # a run of holes within one pointer block (the inode's direct pointers or one
        # indirect block), so that one write updates all its pointers
        region_end = NDADDR if lbn < NDADDR else \
            NDADDR + ((lbn - NDADDR) // NINDIR + 1) * NINDIR
        if region_end != region_seen:
            region_seen = region_end
            region_end = min(region_end, (lbn // CHUNK_BLOCKS + 1) * CHUNK_BLOCKS)
        end = lbn + 1
        while end <= last and end < region_end and \
                (end >= ip.maxlbn or (yield from bmap_lbn(ip, end)) < 0):
            end += 1
        pref = ip.nextalloc or ip.ump.rotor
        err, blocks = yield from ffs_alloc(ip.ump, pref, end - lbn)
        if err:
            return err
        err = yield from set_ptrs(ip, lbn, blocks, sync, dirop)
        if err:
            # 2.0 allocates the data block after the indirect blocks, so a failure there
            # never held it; here it was taken first, and goes back
            yield from ffs_blkfree(ip.ump, blocks)
            return err
        lbn += len(blocks)
        ip.nextalloc = blocks[-1] + 1
        ip.dirty = True
        if lbn > ip.maxlbn:
            ip.maxlbn = lbn
    return 0


def maxlbn(ip: inode) -> Generator[Any, Any, int]:
    """One past the last mapped block (scanning from the size; a failed write can leave
    blocks just past it)."""
    lbn = (ip.d.size + BSIZE - 1) // BSIZE + CHUNK // BSIZE
    while lbn > 0 and (yield from bmap_lbn(ip, lbn - 1)) < 0:
        lbn -= 1
    return lbn


def set_ptrs(ip: inode, lbn: int, blocks: list[int], sync: bool, dirop: bool = False) -> GEN:
    """Point lbn, lbn+1, ... (all in one pointer block) at `blocks`: ffs_balloc's walk down
    the indirect blocks (ffs_balloc.c, netbsd-2-0 branch), allocating the missing ones
    (`new_indir`: written with wait before the parent points at them), then the parent's
    and the leaf's pointers as delayed writes (with wait under B_SYNC). 2.0 ignores that
    synchronous write's error (`bwrite(bp)`, its result dropped) and hands the caller the new
    block's buffer with its disk address already set, so a directory entry goes to a block
    the disk's pointers do not reach; vfslab returns the error and the caller frees the
    data blocks, because its callers map the block through the pointers, which went with
    the failed buffer (ufs_strategy cannot read them again without sleeping: found by the
    crash matrix when the error was ignored as in 2.0). An error from a new
    indirect block's write leaves the parents as they were (the double-indirect block, if
    this call allocated it, freed and the inode's pointer cleared: unwindidx 0)."""
    d = ip.d
    ump = ip.ump
    if lbn < NDADDR:
        for i, b in enumerate(blocks):
            d.db[lbn + i] = b
        return 0
    if lbn < NDADDR + NINDIR:
        if not d.ib:
            err, blk = yield from new_indir(ip, -1, sync)
            if err:
                return err
            d.ib = blk
        ptrs = list((yield from indir_ptrs(ip, -1, d.ib)))
        base = lbn - NDADDR
        ptrs[base:base + len(blocks)] = blocks
        return (yield from write_indir(ip, -1, d.ib, ptrs, sync and dirop))
    i = lbn - NDADDR - NINDIR
    if i + len(blocks) > NINDIR * NINDIR:
        return ENOSPC
    new_dib = False
    if not d.dib:
        err, blk = yield from new_indir(ip, -2, sync)
        if err:
            return err
        d.dib = blk
        new_dib = True
    top = list((yield from indir_ptrs(ip, -2, d.dib)))
    j = i // NINDIR
    mid = top[j]
    if not mid:
        err, mid = yield from new_indir(ip, -3 - j, sync)
        if err:
            if new_dib:
                ip.ind.pop(-2, None)
                yield from ffs_blkfree(ump, [d.dib])
                d.dib = 0
            return err
        top[j] = mid
        yield from write_indir(ip, -2, d.dib, top, sync and dirop)
    ptrs = list((yield from indir_ptrs(ip, -3 - j, mid)))
    base = i % NINDIR
    ptrs[base:base + len(blocks)] = blocks
    return (yield from write_indir(ip, -3 - j, mid, ptrs, sync and dirop))
