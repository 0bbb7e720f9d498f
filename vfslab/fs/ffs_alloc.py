"""Block and inode allocation (sys/ufs/ffs/ffs_alloc.c, netbsd-2-0 branch): ffs_alloc (with
ffs_blkpref's "after the previous block"), ffs_valloc, ffs_blkfree and ffs_vfree, on vfslab's
single cylinder group: the block and inode bitmaps are metadata buffers on the device vnode,
updated with delayed writes (bdwrite)."""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.inode import inode
from vfslab.fs.ufs_layout import BITS, Dinode, get_bit, set_bit

if TYPE_CHECKING:
    from vfslab.fs.ffs_vfsops import ufsmount

ENOSPC = 28


def ffs_alloc(ump: ufsmount, pref: int, want: int) -> Generator[Any, Any, tuple[int, list[int]]]:
    """Allocate up to `want` blocks, contiguous from the first free block at or after
    `pref` (searching to the end of the file system, then from its first data block up to
    `pref`, as ffs_hashalloc goes round the cylinder groups); at least one or ENOSPC. A run
    stays within one bitmap block. The bitmap is searched a byte at a time in C (a pattern
    for "not all ones") and bounded by the file system's size, not the bitmap block's."""
    sb = ump.sb
    if sb.free_blocks <= 0:
        return ENOSPC, []
    if not sb.data_start <= pref < sb.nblocks:
        pref = ump.rotor
    bio = ump.k.bio
    got: list[int] = []
    for lo, hi in ((pref, sb.nblocks), (sb.data_start, pref)):
        b = lo
        while b < hi and not got:
            mb = b // BITS
            err, bp = yield from ump.meta_read(sb.bmap_start + mb)
            if err:
                bio.brelse(bp)
                return err, got
            data = bp.b_data[0]
            base = mb * BITS
            end = min(hi, base + BITS) - base
            i = _find_clear(data, b - base, end)
            if i >= 0:
                while len(got) < want and i < end and not get_bit(data, i):
                    set_bit(data, i, True)
                    got.append(base + i)
                    i += 1
                yield from ump.meta_write(bp, False)
            else:
                bio.brelse(bp)
            b = base + BITS
        if got:
            break
    if not got:
        return ENOSPC, []
    sb.free_blocks -= len(got)
    ump.sb_dirty = True
    # the rotor wraps at the end of the disk: past it, the bitmap block after the last
    # one is the inode bitmap (found by a one-hour crash test: blocks past the end)
    ump.rotor = got[-1] + 1 if got[-1] + 1 < sb.nblocks else sb.data_start
    return 0, got


def ffs_blkfree(ump: ufsmount, blocks: list[int]) -> Generator[Any, Any, int]:
    """Free blocks in the bitmap (delayed writes)."""
    sb = ump.sb
    bio = ump.k.bio
    by_map: dict[int, list[int]] = {}
    for b in blocks:
        if sb.data_start <= b < sb.nblocks:
            by_map.setdefault(b // BITS, []).append(b % BITS)
    for mb, bits in sorted(by_map.items()):
        err, bp = yield from ump.meta_read(sb.bmap_start + mb)
        if err:
            bio.brelse(bp)
            return err
        for i in bits:
            set_bit(bp.b_data[0], i, False)
        yield from ump.meta_write(bp, False)
        sb.free_blocks += len(bits)
    ump.sb_dirty = True
    return 0


def ffs_valloc(ump: ufsmount, mode: int) -> Generator[Any, Any, tuple[int, inode | None]]:
    """A free inode from the inode bitmap (from the rotor), zeroed, of type `mode`."""
    sb = ump.sb
    bio = ump.k.bio
    if sb.free_inodes <= 0:
        return ENOSPC, None
    for tries in range(2):
        start = ump.irotor if tries == 0 else 0
        for mb in range(start // BITS, sb.imap_blocks):
            err, bp = yield from ump.meta_read(sb.imap_start + mb)
            if err:
                bio.brelse(bp)
                return err, None
            data = bp.b_data[0]
            lo = start % BITS if mb == start // BITS else 0
            i = _find_clear(data, lo, BITS)
            if i >= 0:
                ino = mb * BITS + i
                set_bit(data, i, True)
                yield from ump.meta_write(bp, False)
                sb.free_inodes -= 1
                ump.sb_dirty = True
                ump.irotor = ino + 1
                d = Dinode(mode, 0, 0, ump.m.time(), sb.generation + ino)
                return 0, inode(ino, d, ump)
            bio.brelse(bp)
    return ENOSPC, None


def ffs_vfree(ump: ufsmount, ino: int) -> Generator[Any, Any, int]:
    """Free an inode in the inode bitmap (a delayed write)."""
    sb = ump.sb
    err, bp = yield from ump.meta_read(sb.imap_start + ino // BITS)
    if err:
        ump.k.bio.brelse(bp)
        return err
    set_bit(bp.b_data[0], ino % BITS, False)
    yield from ump.meta_write(bp, False)
    sb.free_inodes += 1
    ump.sb_dirty = True
    return 0


_NOT_FULL = re.compile(rb"[^\xff]")


def _find_clear(data: Any, lo: int, hi: int) -> int:
    """The first clear bit in [lo, hi) of a bitmap block, or -1: the bytes that are not
    all ones are found by a compiled pattern, the bit within one by testing its eight."""
    if lo >= hi:
        return -1
    byte = lo >> 3
    end = (hi + 7) >> 3
    while byte < end:
        m = _NOT_FULL.search(data, byte, end)
        if m is None:
            return -1
        byte = m.start()
        v = data[byte]
        for bit in range(8):
            i = byte * 8 + bit
            if lo <= i < hi and not v >> bit & 1:
                return i
        byte += 1
    return -1
