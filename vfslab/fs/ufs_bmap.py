"""Block mapping (sys/ufs/ufs/ufs_bmap.c, netbsd-2-0 branch): ufs_bmap and ufs_bmaparray, from a
file's logical blocks to disk addresses through the inode's direct pointers, one indirect and
one double-indirect block.

Indirect blocks are buffers of the file's vnode at negative logical block numbers (-1 the
single indirect, -2 the double, -3-j the j-th block under it), read as ufs_bmaparray reads
them: getblk, and on a miss b_blkno set to the block's address and VOP_STRATEGY. Their
decoded pointers are kept with the in-core inode while the vnode lives (charged as the
buffer-cache hit they stand for).
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ufs_layout import BSIZE, NDADDR, NINDIR, SECTORS
from vfslab.kern.buf import B_DELWRI, B_DONE, B_READ
from vfslab.kern.vnode_if import VOP_STRATEGY

if TYPE_CHECKING:
    from vfslab.fs.inode import inode
    from vfslab.kern.buf import buf
    from vfslab.kern.vnode import vnode


def ufs_getindir(ip: inode, ilbn: int, blk: int) -> Generator[Any, Any, tuple[int, buf]]:
    """The buffer of indirect block `ilbn` at disk block `blk`, read if not cached
    (ufs_bmaparray's getblk / VOP_STRATEGY / biowait)."""
    vp = ip.vp
    assert vp is not None
    bio = ip.ump.k.bio
    bp = yield from bio.bget(vp, ilbn, BSIZE)
    if bp.b_flags & (B_DONE | B_DELWRI):
        return 0, bp
    bp.b_blkno = blk * SECTORS
    bp.b_flags |= B_READ
    VOP_STRATEGY(vp, bp)
    err = yield from bio.biowait(bp)
    return err, bp


def indir_ptrs(ip: inode, ilbn: int, blk: int) -> Generator[Any, Any, list[int]]:
    """The pointers of an indirect block (cached while the vnode lives, and while the
    buffer's contents are what the disk will have: a buffer whose write failed was thrown
    away with them, and the disk's copy is read again, as 2.0's bmap would)."""
    ptrs = ip.ind.get(ilbn)
    m = ip.ump.m
    m.charge(m.costs.buf_lookup)
    bio = ip.ump.k.bio
    if bio.lost_indirect and ip.vp is not None and (ip.vp, ilbn) in bio.lost_indirect:
        bio.lost_indirect.discard((ip.vp, ilbn))
        ip.ind.pop(ilbn, None)
        ptrs = None
    if ptrs is not None:
        return ptrs
    err, bp = yield from ufs_getindir(ip, ilbn, blk)
    if err:
        bio.brelse(bp)
        return [0] * NINDIR
    raw = bp.b_data[0]
    if not isinstance(raw, (bytes, bytearray)):
        raw = bytes(BSIZE)
    ptrs = list(struct.unpack_from(f"<{NINDIR}I", raw))
    bio.brelse(bp)
    ip.ind[ilbn] = ptrs
    return ptrs


def bmap_lbn(ip: inode, lbn: int) -> Generator[Any, Any, int]:
    """The disk sector of a logical block, -1 for a hole."""
    d = ip.d
    if lbn < NDADDR:
        b = d.db[lbn] if lbn >= 0 else 0
    elif lbn < NDADDR + NINDIR:
        if not d.ib:
            return -1
        b = (yield from indir_ptrs(ip, -1, d.ib))[lbn - NDADDR]
    else:
        i = lbn - NDADDR - NINDIR
        if not d.dib or i >= NINDIR * NINDIR:
            return -1
        top = yield from indir_ptrs(ip, -2, d.dib)
        mid = top[i // NINDIR]
        if not mid:
            return -1
        b = (yield from indir_ptrs(ip, -3 - i // NINDIR, mid))[i % NINDIR]
    return b * SECTORS if b else -1


def bmap_run(ip: inode, lbn: int, n: int) -> Generator[Any, Any, list[int]]:
    """The sectors of n consecutive blocks from lbn (-1 for holes), reading each pointer
    block once."""
    d = ip.d
    out: list[int] = []
    end = lbn + n
    while lbn < end:
        if lbn < NDADDR:
            b = d.db[lbn]
            out.append(b * SECTORS if b else -1)
            lbn += 1
            continue
        if lbn < NDADDR + NINDIR:
            stop = min(end, NDADDR + NINDIR)
            if not d.ib:
                out.extend([-1] * (stop - lbn))
            else:
                ptrs = yield from indir_ptrs(ip, -1, d.ib)
                out.extend(b * SECTORS if b else -1 for b in ptrs[lbn - NDADDR:stop - NDADDR])
            lbn = stop
            continue
        i = lbn - NDADDR - NINDIR
        j = i // NINDIR
        stop = min(end, NDADDR + NINDIR + (j + 1) * NINDIR)
        mid = 0
        if d.dib and j < NINDIR:
            mid = (yield from indir_ptrs(ip, -2, d.dib))[j]
        if not mid:
            out.extend([-1] * (stop - lbn))
        else:
            ptrs = yield from indir_ptrs(ip, -3 - j, mid)
            lo = i % NINDIR
            out.extend(b * SECTORS if b else -1 for b in ptrs[lo:lo + stop - lbn])
        lbn = stop
    return out


def ufs_bmap(vp: vnode, lbn: int, maxrun: int = 0
             ) -> Generator[Any, Any, tuple[int, vnode | None, int, int]]:
    """VOP_BMAP: (0, the device vnode, the sector of lbn or -1, how many of the next
    `maxrun` blocks follow it contiguously on disk: ufs_bmaparray's runp)."""
    ip: inode = vp.v_data
    devvp = ip.ump.devvp
    if maxrun <= 0:
        return 0, devvp, (yield from bmap_lbn(ip, lbn)), 0
    addrs = yield from bmap_run(ip, lbn, maxrun + 1)
    first = addrs[0]
    run = 0
    if first >= 0:
        while run < maxrun and addrs[run + 1] == first + (run + 1) * SECTORS:
            run += 1
    return 0, devvp, first, run
