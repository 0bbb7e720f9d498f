"""The on-disk format of vfslab's FFS-like file system, and newfs (mkfs).

4 KiB blocks (the page size) and one cylinder group: FFS of 2004 had cylinder groups and
fragments; this file system has neither, which changes allocation locality and nothing about
the buffer-cache and locking protocol vfslab studies.

    block 0                superblock
    bmap_start ...         block bitmap (one bit a block, 32768 a block)
    imap_start ...         inode bitmap
    itable_start ...       inode table, 32 inodes of 128 bytes a block
    data_start ...         data, directories and indirect blocks

Inode (128 bytes): mode u16, nlink u16, size u64, mtime u64, gen u32, 12 direct block numbers,
one single and one double indirect (u32 each; 1024 entries an indirect block).
Directory blocks: 32 slots of 128 bytes. An entry is ino u32, namelen u8 and its name's first
123 bytes in one slot; a longer name (FFS allows 255 bytes) runs on in the slots that follow,
each marked CONT (0xffffffff where an ino would be) and holding 124 more bytes, so a name of
124-247 bytes takes two slots and 248-255 three (FFS's records are variable-length instead:
docs/model.md). A CONT slot without its entry, or an entry whose name runs past the block or
into a slot that is not CONT, is damage fsck reports and clears (a torn write can leave it).
Everything metadata is real bytes, so fsck and crash tests read the image itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

BSIZE = 4096
SECTORS = 8                      # DEV_BSIZE sectors per block
MAGIC = 0x19540119               # FFS's magic number
SB_FMT = "<16I"
INODE_SIZE = 128
INOPB = BSIZE // INODE_SIZE      # inodes per block
NDADDR = 12
NINDIR = BSIZE // 4
# the largest file: 12 direct blocks, one indirect and one double indirect block of 4 KiB
# (no triple indirect): ufsmount's um_maxfilesize, ~4 GiB
MAXFILESIZE = (NDADDR + NINDIR + NINDIR * NINDIR) * BSIZE
INODE_FMT = "<HHQQI12III"        # mode nlink size mtime gen db[12] ib dib
DIRENT_SIZE = 128
DIRENTS = BSIZE // DIRENT_SIZE
HEAD_NAME = DIRENT_SIZE - 5      # name bytes in an entry's own slot
CONT_NAME = DIRENT_SIZE - 4      # name bytes in each continuation slot
CONT = 0xFFFFFFFF                # a continuation slot's mark, where an entry's ino would be
MAXNAMLEN = 255                  # FFS's (sys/ufs/ufs/dir.h); the name cache keeps up to 31
ROOTINO = 2
IFDIR = 0o040000
IFREG = 0o100000
IFLNK = 0o120000
IFMT = 0o170000
BITS = BSIZE * 8
ZERO_BLOCK = bytes(BSIZE)


@dataclass
class Superblock:
    magic: int = MAGIC
    version: int = 1
    nblocks: int = 0
    ninodes: int = 0
    bmap_start: int = 1
    bmap_blocks: int = 0
    imap_start: int = 0
    imap_blocks: int = 0
    itable_start: int = 0
    itable_blocks: int = 0
    data_start: int = 0
    free_blocks: int = 0
    free_inodes: int = 0
    clean: int = 1
    root_ino: int = ROOTINO
    generation: int = 0

    def pack(self) -> bytes:
        vals = [self.magic, self.version, self.nblocks, self.ninodes, self.bmap_start,
                self.bmap_blocks, self.imap_start, self.imap_blocks, self.itable_start,
                self.itable_blocks, self.data_start, self.free_blocks, self.free_inodes,
                self.clean, self.root_ino, self.generation]
        return struct.pack(SB_FMT, *vals).ljust(BSIZE, b"\0")

    @classmethod
    def unpack(cls, data: Any) -> Superblock:
        if not isinstance(data, (bytes, bytearray)) or len(data) < 64:
            raise ValueError("superblock is not a metadata block")
        return cls(*struct.unpack_from(SB_FMT, data))


@dataclass
class Dinode:
    mode: int = 0
    nlink: int = 0
    size: int = 0
    mtime: int = 0
    gen: int = 0
    db: list[int] = field(default_factory=lambda: [0] * NDADDR)
    ib: int = 0
    dib: int = 0

    def pack_into(self, buf: bytearray, off: int) -> None:
        struct.pack_into(INODE_FMT, buf, off, self.mode, self.nlink, self.size, self.mtime,
                         self.gen, *self.db, self.ib, self.dib)

    @classmethod
    def unpack_from(cls, buf: Any, off: int) -> Dinode:
        v = struct.unpack_from(INODE_FMT, buf, off)
        return cls(v[0], v[1], v[2], v[3], v[4], list(v[5:17]), v[17], v[18])

    def isdir(self) -> bool:
        return self.mode & IFMT == IFDIR

    def vtype(self) -> int:
        """ufs_vinit: the vnode type of this inode's mode (VDIR, VLNK or VREG)."""
        from vfslab.kern.vnode import VDIR, VLNK, VREG

        fmt = self.mode & IFMT
        return VDIR if fmt == IFDIR else VLNK if fmt == IFLNK else VREG


def layout(nblocks: int, ninodes: int) -> Superblock:
    ninodes = max(INOPB, (ninodes + INOPB - 1) // INOPB * INOPB)
    sb = Superblock(nblocks=nblocks, ninodes=ninodes)
    sb.bmap_blocks = (nblocks + BITS - 1) // BITS
    sb.imap_start = sb.bmap_start + sb.bmap_blocks
    sb.imap_blocks = (ninodes + BITS - 1) // BITS
    sb.itable_start = sb.imap_start + sb.imap_blocks
    sb.itable_blocks = ninodes // INOPB
    sb.data_start = sb.itable_start + sb.itable_blocks
    if sb.data_start + 8 > nblocks:
        raise ValueError(f"a file system of {nblocks} blocks cannot hold {ninodes} inodes")
    return sb


def set_bit(buf: bytearray, i: int, on: bool) -> None:
    if on:
        buf[i >> 3] |= 1 << (i & 7)
    else:
        buf[i >> 3] &= ~(1 << (i & 7)) & 0xFF


def get_bit(buf: Any, i: int) -> bool:
    return bool(buf[i >> 3] >> (i & 7) & 1)


def dirent_slots(namelen: int) -> int:
    """The slots an entry with a name of `namelen` bytes takes (module docstring)."""
    return 1 if namelen <= HEAD_NAME else 1 + -(-(namelen - HEAD_NAME) // CONT_NAME)


def pack_dirent(buf: bytearray, slot: int, ino: int, name: str) -> None:
    raw = name.encode()
    n = dirent_slots(len(raw))
    if len(raw) > MAXNAMLEN or slot + n > DIRENTS:
        raise ValueError(f"no room for a {len(raw)}-byte name at slot {slot}")
    off = slot * DIRENT_SIZE
    buf[off:off + DIRENT_SIZE] = (struct.pack("<IB", ino, len(raw))
                                  + raw[:HEAD_NAME].ljust(HEAD_NAME, b"\0"))
    for k in range(1, n):
        off += DIRENT_SIZE
        part = raw[HEAD_NAME + (k - 1) * CONT_NAME:HEAD_NAME + k * CONT_NAME]
        buf[off:off + DIRENT_SIZE] = struct.pack("<I", CONT) + part.ljust(CONT_NAME, b"\0")


def _slot_ino(buf: Any, slot: int) -> int:
    ino: int = struct.unpack_from("<I", buf, slot * DIRENT_SIZE)[0]
    return ino


_HEAD = struct.Struct("<IB")
_SLOT_OFFSETS = range(0, BSIZE, DIRENT_SIZE)


def scan_entries(buf: Any) -> tuple[list[tuple[int, int, str, int]], list[tuple[int, int, str]]]:
    """scan_dirents, with each entry's count of slots: [(slot, ino, name, slots)], damage."""
    heads = [_HEAD.unpack_from(buf, off) for off in _SLOT_OFFSETS]
    if all(ino != CONT and n <= HEAD_NAME for ino, n in heads):
        # short names only (every block but a long name's): one slot an entry
        return [(slot, ino, bytes(buf[slot * DIRENT_SIZE + 5:slot * DIRENT_SIZE + 5 + n])
                 .decode(errors="replace"), 1)
                for slot, (ino, n) in enumerate(heads) if ino], []
    entries: list[tuple[int, int, str, int]] = []
    damage: list[tuple[int, int, str]] = []
    slot = 0
    while slot < DIRENTS:
        ino, n = heads[slot]
        if ino == CONT:
            run = 1
            while slot + run < DIRENTS and heads[slot + run][0] == CONT:
                run += 1
            damage.append((slot, run, "a continuation slot without its entry"))
            slot += run
            continue
        if not ino:
            slot += 1
            continue
        need = dirent_slots(n)
        conts = 0
        while conts < need - 1 and slot + 1 + conts < DIRENTS \
                and heads[slot + 1 + conts][0] == CONT:
            conts += 1
        if conts < need - 1:
            damage.append((slot, 1 + conts, f"the entry for inode {ino}: its {n}-byte name "
                           f"runs past its {1 + conts} slot(s)"))
            slot += 1 + conts
            continue
        off = slot * DIRENT_SIZE
        raw = bytes(buf[off + 5:off + 5 + min(n, HEAD_NAME)])
        for k in range(1, need):
            o = (slot + k) * DIRENT_SIZE + 4
            raw += bytes(buf[o:o + CONT_NAME])
        entries.append((slot, ino, raw[:n].decode(errors="replace"), need))
        slot += need
    return entries, damage


def scan_dirents(buf: Any) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """([(slot, ino, name)] of the entries of a directory block, [(slot, slots, what is
    wrong)] of its damage: an entry whose name runs past the block or into a slot that is
    not CONT (its slot and the CONT slots after it), a run of CONT slots with no entry."""
    entries, damage = scan_entries(buf)
    return [(slot, ino, name) for slot, ino, name, _n in entries], damage


def unpack_dirents(buf: Any) -> list[tuple[int, int, str]]:
    """[(slot, ino, name)] of the entries of a directory block (damage left out: see
    scan_dirents)."""
    return scan_dirents(buf)[0]


def used_slots(buf: Any) -> set[int]:
    """The slots of a directory block that are not free: entries, their continuation slots,
    and damage (left for fsck, never overwritten)."""
    return slots_taken(*scan_entries(buf))


def slots_taken(entries: list[tuple[int, int, str, int]], damage: list[tuple[int, int, str]]
                ) -> set[int]:
    """used_slots of a block already scanned (scan_entries)."""
    used: set[int] = set()
    for slot, _ino, _name, n in entries:
        used.update(range(slot, slot + n))
    for slot, n, _why in damage:
        used.update(range(slot, slot + n))
    return used


def entry_slots(buf: Any, slot: int) -> int:
    """The slots the entry at `slot` spans: itself and the CONT slots right after it."""
    n = 1
    while slot + n < DIRENTS and _slot_ino(buf, slot + n) == CONT:
        n += 1
    return n


def mkfs(store: dict[int, Any], nblocks: int, ninodes: int) -> Superblock:
    """newfs: write an empty file system with a root directory straight into a disk store."""
    sb = layout(nblocks, ninodes)
    store.clear()
    bmaps = [bytearray(BSIZE) for _ in range(sb.bmap_blocks)]
    for b in range(sb.data_start + 1):          # metadata blocks and the root's block
        set_bit(bmaps[b // BITS], b % BITS, True)
    for b in range(nblocks, sb.bmap_blocks * BITS):   # past the end: never free
        set_bit(bmaps[b // BITS], b % BITS, True)
    imaps = [bytearray(BSIZE) for _ in range(sb.imap_blocks)]
    for i in range(ROOTINO + 1):                 # inodes 0 and 1 are reserved, as in FFS
        set_bit(imaps[i // BITS], i % BITS, True)
    for i in range(ninodes, sb.imap_blocks * BITS):
        set_bit(imaps[i // BITS], i % BITS, True)
    root_blk = sb.data_start
    itab = bytearray(BSIZE)
    root = Dinode(IFDIR | 0o755, 2, BSIZE, 0, 1)
    root.db[0] = root_blk
    root.pack_into(itab, (ROOTINO % INOPB) * INODE_SIZE)
    dirblk = bytearray(BSIZE)
    pack_dirent(dirblk, 0, ROOTINO, ".")
    pack_dirent(dirblk, 1, ROOTINO, "..")
    sb.free_blocks = nblocks - sb.data_start - 1
    sb.free_inodes = sb.ninodes - ROOTINO - 1
    store[0] = sb.pack()
    for i, bm in enumerate(bmaps):
        store[sb.bmap_start + i] = bytes(bm)
    for i, im in enumerate(imaps):
        store[sb.imap_start + i] = bytes(im)
    store[sb.itable_start + ROOTINO // INOPB] = bytes(itab)
    store[root_blk] = bytes(dirblk)
    return sb


def read_block(store: dict[int, Any], blk: int) -> bytes:
    """A metadata block of an image as bytes (zeroes if never written or not bytes)."""
    v = store.get(blk)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).ljust(BSIZE, b"\0")
    return ZERO_BLOCK
