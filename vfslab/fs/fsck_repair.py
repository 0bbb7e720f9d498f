"""fsck -y for vfslab's file system: repair an image the way FFS's fsck repairs one, and say
what was done, one line a repair.

The phases follow fsck_ffs:
1. an inode with a bad mode, a block out of range, or a block another inode also claims is
   cleared (FFS asks "CLEAR?" for every inode of a duplicate pair: both lose their data);
2. a directory entry naming a free (or just cleared) inode is removed; a wrong "." or ".."
   is rewritten; a second link to a directory is removed;
3/4. an unreferenced directory or non-empty file is reconnected to /lost+found as "#ino"
   (created if missing); an unreferenced empty file is cleared; link counts are set to the
   references counted;
5. the block and inode bitmaps are rebuilt from what is in use, the superblock's free counts
   are set and it is marked clean.

A damaged superblock is not repairable here: FFS would read an alternate superblock, which this
file system does not keep. Repairs run in passes until a check finds nothing (a repair of one
phase can expose work for another, as FFS's "RERUN FSCK" does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vfslab.fs.fsck import IFDIR, IFLNK, IFMT, IFREG, Scan, _blocks_of, scan_image
from vfslab.fs.ufs_layout import (
    BITS,
    BSIZE,
    DIRENT_SIZE,
    DIRENTS,
    INODE_SIZE,
    INOPB,
    NDADDR,
    ROOTINO,
    Dinode,
    Superblock,
    entry_slots,
    pack_dirent,
    read_block,
    scan_dirents,
    unpack_dirents,
    used_slots,
)

LOST_FOUND = "lost+found"
MAX_PASSES = 8


class Unrepairable(Exception):
    """The image cannot be repaired (its superblock is gone)."""


def read_dinode(store: dict[int, Any], sb: Superblock, ino: int) -> Dinode:
    blk = read_block(store, sb.itable_start + ino // INOPB)
    return Dinode.unpack_from(blk, (ino % INOPB) * INODE_SIZE)


def write_dinode(store: dict[int, Any], sb: Superblock, ino: int, d: Dinode) -> None:
    b = sb.itable_start + ino // INOPB
    buf = bytearray(read_block(store, b))
    d.pack_into(buf, (ino % INOPB) * INODE_SIZE)
    store[b] = bytes(buf)


def _clear_dirent(store: dict[int, Any], blk: int, slot: int, nslots: int = 0) -> None:
    """Clear the entry at `slot` and its continuation slots (or `nslots` slots)."""
    buf = bytearray(read_block(store, blk))
    n = nslots or entry_slots(buf, slot)
    buf[slot * DIRENT_SIZE:(slot + n) * DIRENT_SIZE] = bytes(n * DIRENT_SIZE)
    store[blk] = bytes(buf)


def _set_dirent(store: dict[int, Any], blk: int, slot: int, ino: int, name: str) -> None:
    buf = bytearray(read_block(store, blk))
    pack_dirent(buf, slot, ino, name)
    store[blk] = bytes(buf)


class Repairer:
    def __init__(self, store: dict[int, Any], image_blocks: int | None = None) -> None:
        self.store = store
        self.image_blocks = image_blocks     # the image's size: what the superblock must say
        self.repairs: list[str] = []
        self.before: list[str] = []          # what the first check found
        self.final: Scan | None = None       # the check of the repaired image
        self.progress: Any = None            # fsck.Progress for each pass's scan
        # inode -> the duplicate blocks it was cleared for (a crash report looks for the
        # failed bitmap write that let a block be allocated twice)
        self.dup_cleared: dict[int, set[int]] = {}

    def note(self, text: str) -> None:
        self.repairs.append(text)

    # ---- the passes -------------------------------------------------------------------------
    def run(self) -> list[str]:
        for npass in range(MAX_PASSES):
            sc = scan_image(self.store, self.image_blocks, self.progress)
            if npass == 0:
                self.before = list(sc.problems)
            if not sc.problems:
                self.final = sc
                return self.repairs
            if any(p.startswith("superblock: unreadable") or "bad magic" in p
                   or "impossible layout" in p for p in sc.problems):
                raise Unrepairable("; ".join(sc.problems[:3]))
            if npass == 0 and sc.sb is not None:
                for p in sc.problems:
                    if p.startswith("superblock: ") and "free" not in p:
                        self.note(f"{p}: rewritten from the block and inode counts")
            if ROOTINO not in sc.inodes or not sc.inodes[ROOTINO].isdir():
                self.realloc_root(sc)
                continue
            if self.phase1(sc):
                continue
            if self.phase2(sc):
                continue
            if self.phase34(sc):
                continue
            self.phase5(sc)
        self.final = scan_image(self.store, self.image_blocks)
        left = self.final.problems
        if left:
            raise Unrepairable(f"still inconsistent after {MAX_PASSES} passes: {left[0]}")
        return self.repairs

    def phase1(self, sc: Scan) -> bool:
        """Sizes set to what the block map holds; a block pointer out of range in the inode
        itself cleared; inodes with a bad mode, a bad block deeper in the map or a duplicate
        block cleared."""
        sb = sc.sb
        changed = False
        for ino, size in sc.sizes:
            d = read_dinode(self.store, sb, ino)
            self.note(f"inode {ino}: size {d.size} set to {size} (its blocks)")
            d.size = size
            write_dinode(self.store, sb, ino, d)
            changed = True
        inplace = set()
        for ino, b in sc.bad:
            d = read_dinode(self.store, sb, ino)
            fields = [i for i, x in enumerate(d.db) if x == b]
            if fields or b in (d.ib, d.dib):
                for i in fields:
                    d.db[i] = 0
                if d.ib == b:
                    d.ib = 0
                if d.dib == b:
                    d.dib = 0
                write_dinode(self.store, sb, ino, d)
                self.note(f"inode {ino}: block {b} out of range, pointer cleared")
                inplace.add((ino, b))
                changed = True
        if changed:
            return True
        why: dict[int, str] = {}
        for ino, d in sc.inodes.items():
            if d.mode & IFMT not in (IFDIR, IFREG, IFLNK):
                why[ino] = f"bad mode {d.mode:#o}"
            elif d.isdir() and ino != ROOTINO and not self._first_dir_block(sc, ino):
                # fsck_ffs pass2.c: ZERO LENGTH DIRECTORY -> REMOVE (found by the image fuzz:
                # a directory with no block can never get its '.')
                why[ino] = "zero length directory"
        for ino, b in sc.bad:
            if (ino, b) not in inplace:
                why.setdefault(ino, f"block {b} out of range")
        for b, ino, other in sc.dup:
            why.setdefault(ino, f"duplicate block {b} (also in inode {other})")
            why.setdefault(other, f"duplicate block {b} (also in inode {ino})")
            self.dup_cleared.setdefault(ino, set()).add(b)
            self.dup_cleared.setdefault(other, set()).add(b)
        why.pop(ROOTINO, None)
        for ino in sorted(why):
            write_dinode(self.store, sb, ino, Dinode())
            self.note(f"inode {ino}: cleared ({why[ino]})")
        return bool(why)

    def _first_dir_block(self, sc: Scan, dino: int) -> int:
        """The directory's first data block in range (0 if none)."""
        data, _ = _blocks_of(self.store, sc.sb, sc.inodes[dino])
        for b in data:
            if sc.sb.data_start <= b < sc.sb.nblocks:
                return b
        return 0

    def _dir_blocks(self, sc: Scan, dino: int) -> list[int]:
        """A directory's blocks that lie in the data area, in order."""
        d = sc.inodes[dino]
        data, _ = _blocks_of(self.store, sc.sb, d)
        return [b for b in (data[: max(0, d.size // BSIZE)] if d.size else data)
                if sc.sb.data_start <= b < sc.sb.nblocks]

    def _dir_slots(self, sc: Scan, dino: int) -> list[tuple[int, int, int, str]]:
        """(block, slot, ino, name) of a directory's entries, in order."""
        return [(b, slot, ino, name) for b in self._dir_blocks(sc, dino)
                for slot, ino, name in unpack_dirents(read_block(self.store, b))]

    def _clear_damage(self, sc: Scan, dino: int) -> bool:
        """Clear the slots of a directory's blocks that are no entry (fsck_ffs pass2 clears
        what it cannot read as one); True if any were."""
        cleared = False
        for b in self._dir_blocks(sc, dino):
            for slot, n, why in scan_dirents(read_block(self.store, b))[1]:
                _clear_dirent(self.store, b, slot, n)
                self.note(f"directory {dino}: block {b} slot {slot}: {why}, cleared")
                cleared = True
        return cleared

    def phase2(self, sc: Scan) -> bool:
        """Entries naming free inodes, wrong "." and "..", directories linked twice."""
        changed = False
        seen_dirs: set[int] = {ROOTINO}
        parent: dict[int, int] = {ROOTINO: ROOTINO}
        stack = [ROOTINO]
        while stack:
            dino = stack.pop()
            changed |= self._clear_damage(sc, dino)
            slots = self._dir_slots(sc, dino)
            has_dot = has_dotdot = False
            for b, slot, ino, name in slots:
                if name == ".":
                    has_dot = True
                    if ino != dino:
                        _set_dirent(self.store, b, slot, dino, ".")
                        self.note(f"directory {dino}: '.' pointed to {ino}, fixed")
                        changed = True
                    continue
                if name == "..":
                    has_dotdot = True
                    want = parent.get(dino, ROOTINO)
                    if ino != want:
                        _set_dirent(self.store, b, slot, want, "..")
                        self.note(f"directory {dino}: '..' pointed to {ino}, set to {want}")
                        changed = True
                    continue
                if ino not in sc.inodes:
                    _clear_dirent(self.store, b, slot)
                    self.note(f"directory {dino}: removed entry {name!r} (free inode {ino})")
                    changed = True
                    continue
                if sc.inodes[ino].isdir():
                    if ino in seen_dirs:
                        _clear_dirent(self.store, b, slot)
                        self.note(f"directory {dino}: removed entry {name!r} (second link "
                                  f"to directory {ino})")
                        changed = True
                        continue
                    seen_dirs.add(ino)
                    parent[ino] = dino
                    stack.append(ino)
            first = slots[0][0] if slots else self._first_dir_block(sc, dino)
            if first and (not has_dot or not has_dotdot):
                # fsck_ffs pass2.c: MISSING '.' / MISSING '..' -> FIX, also in a directory
                # block with no entry at all (found by the image fuzz: a zeroed directory
                # block left "no '.' entry" for every pass, and the image unrepairable)
                b = first
                used = used_slots(read_block(self.store, b))
                free = [s for s in range(DIRENTS) if s not in used]
                if not has_dot and free:
                    _set_dirent(self.store, b, free.pop(0), dino, ".")
                    self.note(f"directory {dino}: missing '.', added")
                    changed = True
                if not has_dotdot and free:
                    _set_dirent(self.store, b, free.pop(0), parent.get(dino, ROOTINO), "..")
                    self.note(f"directory {dino}: missing '..', added")
                    changed = True
        return changed

    def phase34(self, sc: Scan) -> bool:
        """Reconnect or clear unreferenced inodes; fix link counts."""
        sb = sc.sb
        changed = False
        orphans = sorted(ino for ino in sc.inodes
                         if ino != ROOTINO and ino not in sc.reachable)
        if orphans:
            lf = None
            for ino in orphans:
                d = sc.inodes[ino]
                if not d.isdir() and d.size == 0 and not any(d.db) and not d.ib \
                        and not d.dib:
                    write_dinode(self.store, sb, ino, Dinode())
                    self.note(f"inode {ino}: unreferenced empty file cleared")
                    changed = True
                    continue
                if lf is None:
                    lf = self._lost_found(sc)
                if lf is None or not self._enter(sc, lf, f"#{ino}", ino):
                    write_dinode(self.store, sb, ino, Dinode())
                    self.note(f"inode {ino}: unreferenced, no room in /{LOST_FOUND}: cleared")
                else:
                    if d.isdir():
                        for b, slot, _i, name in self._dir_slots(sc, ino):
                            if name == "..":
                                _set_dirent(self.store, b, slot, lf, "..")
                    self.note(f"inode {ino}: unreferenced {'directory' if d.isdir() else 'file'}"
                              f" ({d.size} bytes) reconnected to /{LOST_FOUND}/#{ino}")
                changed = True
            return changed
        for ino, want in sorted(sc.links.items()):
            d = read_dinode(self.store, sb, ino)
            self.note(f"inode {ino}: link count {d.nlink} set to {want}")
            d.nlink = want
            write_dinode(self.store, sb, ino, d)
            changed = True
        return changed

    def phase5(self, sc: Scan) -> None:
        """Rebuild the bitmaps from what is in use; fix the superblock's counts."""
        sb = sc.sb
        used = np.zeros(sb.bmap_blocks * BITS, dtype=bool)
        used[:sb.data_start] = True
        used[sb.nblocks:] = True
        if sc.owner:
            used[np.fromiter(sc.owner, dtype=np.int64)] = True
        iused = np.zeros(sb.imap_blocks * BITS, dtype=bool)
        iused[:ROOTINO + 1] = True
        iused[sb.ninodes:] = True
        if sc.inodes:
            iused[np.fromiter(sc.inodes, dtype=np.int64)] = True
        nfix = self._write_map(sb.bmap_start, sb.bmap_blocks, used)
        ifix = self._write_map(sb.imap_start, sb.imap_blocks, iused)
        if nfix:
            self.note(f"block bitmap: {nfix} bits corrected")
        if ifix:
            self.note(f"inode bitmap: {ifix} bits corrected")
        nfree = int((~used[:sb.nblocks]).sum())
        ifree = int((~iused[:sb.ninodes]).sum())
        if sb.free_blocks != nfree or sb.free_inodes != ifree:
            self.note(f"superblock: free counts {sb.free_blocks}/{sb.free_inodes} set to "
                      f"{nfree}/{ifree}")
        sb.free_blocks = nfree
        sb.free_inodes = ifree
        sb.clean = 1
        self.store[0] = sb.pack()

    def _write_map(self, start: int, nblocks: int, bits: np.ndarray) -> int:
        raw = np.packbits(bits, bitorder="little").tobytes()
        fixed = 0
        for i in range(nblocks):
            new = raw[i * BSIZE:(i + 1) * BSIZE]
            old = read_block(self.store, start + i)
            if new != old:
                a = np.unpackbits(np.frombuffer(old, dtype=np.uint8))
                b = np.unpackbits(np.frombuffer(new, dtype=np.uint8))
                fixed += int((a != b).sum())
                self.store[start + i] = new
        return fixed

    def realloc_root(self, sc: Scan) -> None:
        """fsck_ffs pass2.c: ROOT INODE UNALLOCATED -> ALLOCATE, ROOT INODE NOT DIRECTORY ->
        REALLOCATE: a new, empty root directory (allocdir(ROOTINO, ROOTINO, 0755)); what was
        in the tree is reconnected to lost+found in the next pass (found by the image fuzz:
        a root inode overwritten made the image unrepairable)."""
        was = "unallocated" if ROOTINO not in sc.inodes else "not a directory"
        for b, owner in list(sc.owner.items()):
            if owner == ROOTINO:
                del sc.owner[b]             # freeino: the old root's blocks
        blk = self._free_block(sc)
        if not blk:
            raise Unrepairable(f"root inode {was}, and no free block to allocate it")
        self._allocdir(sc, ROOTINO, ROOTINO, 0o755, blk)
        self.note(f"root inode {was}: reallocated, an empty directory")

    def _allocdir(self, sc: Scan, ino: int, parent: int, mode: int, blk: int) -> Dinode:
        """fsck_ffs's allocdir: directory `ino` in block `blk`, holding '.' and '..'."""
        sb = sc.sb
        d = Dinode(IFDIR | mode, 2, BSIZE, 0, (sb.generation + ino) & 0xFFFFFFFF)
        d.db[0] = blk
        buf = bytearray(BSIZE)
        pack_dirent(buf, 0, ino, ".")
        pack_dirent(buf, 1, parent, "..")
        self.store[blk] = bytes(buf)
        write_dinode(self.store, sb, ino, d)
        return d

    # ---- lost+found ---------------------------------------------------------------------------
    def _free_block(self, sc: Scan) -> int:
        sb = sc.sb
        for b in range(sb.data_start, sb.nblocks):
            if b not in sc.owner:
                sc.owner[b] = -1
                return b
        return 0

    def _lost_found(self, sc: Scan) -> int | None:
        for _b, _s, ino, name in self._dir_slots(sc, ROOTINO):
            if name == LOST_FOUND and ino in sc.inodes and sc.inodes[ino].isdir():
                return ino
        sb = sc.sb
        ino = next((i for i in range(ROOTINO + 1, sb.ninodes) if i not in sc.inodes), 0)
        blk = self._free_block(sc)
        if not ino or not blk:
            return None
        sc.inodes[ino] = self._allocdir(sc, ino, ROOTINO, 0o700, blk)
        if not self._enter(sc, ROOTINO, LOST_FOUND, ino):
            write_dinode(self.store, sb, ino, Dinode())
            del sc.inodes[ino]
            return None
        self.note(f"/{LOST_FOUND}: created (inode {ino})")
        return ino

    def _enter(self, sc: Scan, dino: int, name: str, ino: int) -> bool:
        """Add an entry to a directory, growing it by a block if it is full."""
        sb = sc.sb
        d = read_dinode(self.store, sb, dino)
        nblk = max(1, d.size // BSIZE)
        for lbn in range(min(nblk, NDADDR)):
            b = d.db[lbn]
            if not b:
                continue
            used = used_slots(read_block(self.store, b))
            free = [s for s in range(DIRENTS) if s not in used]
            if free:
                _set_dirent(self.store, b, free[0], ino, name)
                return True
        if nblk >= NDADDR:
            return False
        blk = self._free_block(sc)
        if not blk:
            return False
        buf = bytearray(BSIZE)
        pack_dirent(buf, 0, ino, name)
        self.store[blk] = bytes(buf)
        d.db[nblk] = blk
        d.size = (nblk + 1) * BSIZE
        write_dinode(self.store, sb, dino, d)
        sc.inodes[dino] = d
        return True


def repair_image(store: dict[int, Any], image_blocks: int | None = None) -> list[str]:
    """Repair `store` in place; the repairs made, one line each ([] for a clean image).
    Raises Unrepairable when the superblock or the root directory is gone."""
    return Repairer(store, image_blocks).run()
