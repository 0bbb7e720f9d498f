"""Directories (sys/ufs/ufs/ufs_lookup.c, netbsd-2-0 branch): ufs_lookup, ufs_direnter,
ufs_dirremove, ufs_dirrewrite, ufs_dirempty, ufs_blkatoff.

ufs_lookup asks the name cache first (cache_lookup); on a miss it scans the directory's
blocks through the buffer cache (a block not cached is read from disk), from the block where
the last lookup found its name (i_diroff, two passes) for LOOKUP and from the start
otherwise, comparing entry after entry (charged `cost.dirent_scan` each) and, for CREATE and
RENAME at the last component, noting the first free slot. It returns the child locked
(ffs_vget), unlocking the directory unless LOCKPARENT at the last component (PDIRUNLOCK), and
for ".." it unlocks the directory before locking its parent. A found name is entered in the
cache (MAKEENTRY), and so is a name not found unless it is about to be created. The slot a
DELETE, RENAME or CREATE lookup found is kept in the directory's in-core inode (i_offset in
2.0) for the VOP that follows with the directory still locked.

vfslab's directory entries are fixed-size slots of 128 bytes, a name past 123 bytes running on
into the next one or two (up to FFS's 255: ufs_layout, docs/model.md).
The entries of a block are decoded once while its buffer holds the same contents
(`b_dirindex`): an emulator speed-up; the emulated time charged is that of the scan.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ffs_vfsops import ffs_vget
from vfslab.fs.ufs_layout import (
    BSIZE,
    DIRENT_SIZE,
    DIRENTS,
    MAXNAMLEN,
    dirent_slots,
    entry_slots,
    pack_dirent,
    scan_entries,
    slots_taken,
)
from vfslab.kern.lock import LK_EXCLUSIVE, LK_RETRY
from vfslab.kern.vfs_lookup import (
    CREATE,
    DELETE,
    ISDOTDOT,
    ISLASTCN,
    LOCKPARENT,
    LOOKUP,
    MAKEENTRY,
    PDIRUNLOCK,
    RENAME,
    SAVENAME,
    WANTPARENT,
)
from vfslab.kern.vnode import VDIR, VNL_CHILD
from vfslab.kern.vnode_if import EJUSTRETURN

if TYPE_CHECKING:
    from vfslab.fs.inode import inode
    from vfslab.kern.buf import buf
    from vfslab.kern.vfs_lookup import componentname
    from vfslab.kern.vnode import vnode

ENOENT = 2
ENOTDIR = 20
EISDIR = 21
ENAMETOOLONG = 63
GEN = Generator[Any, Any, int]


class DirBlock:
    """The decoded entries of one directory block: name -> (slot, ino), the free slots (in
    order; an entry with a long name takes several: ufs_layout)."""

    __slots__ = ("data", "names", "free")

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.names: dict[str, tuple[int, int]] = {}
        entries, damage = scan_entries(data)
        for slot, ino, name, _n in entries:
            self.names[name] = (slot, ino)
        used = slots_taken(entries, damage)
        self.free = [s for s in range(DIRENTS) if s not in used]

    def fit(self, nslots: int) -> int | None:
        """The first free slot with `nslots` free slots from it, or None."""
        free = self.free
        for i, s in enumerate(free):
            if i + nslots <= len(free) and free[i + nslots - 1] == s + nslots - 1:
                return s
        return None

    def take(self, slot: int, nslots: int) -> None:
        for s in range(slot, slot + nslots):
            if s in self.free:
                self.free.remove(s)

    def give(self, slot: int, nslots: int) -> None:
        self.free.extend(range(slot, slot + nslots))
        self.free.sort()


def dirblock(bp: buf) -> DirBlock:
    """The decoded entries of a directory block's buffer (decoded again if its contents
    changed under it: a read from disk replaces b_data)."""
    idx: DirBlock | None = bp.b_dirindex
    data = bp.b_data[0]
    if idx is None or idx.data is not data:
        idx = DirBlock(data)
        bp.b_dirindex = idx
    return idx


def ufs_blkatoff(vp: vnode, lbn: int) -> Generator[Any, Any, tuple[int, buf]]:
    """VOP_BLKATOFF (ffs_blkatoff): bread of a directory block, as an editable bytearray.
    On error the buffer is released here."""
    from vfslab.fs.ufs_bmap import bmap_lbn

    bio = vp.v_data.ump.k.bio
    if bio.incore(vp, lbn) is None:
        # map it first: 2.0's ufs_strategy may sleep in VOP_BMAP reading an indirect block,
        # vfslab's strategy routines do not, so the pointers are read (and cached) here
        yield from bmap_lbn(vp.v_data, lbn)
    err, bp = yield from bio.bread(vp, lbn, BSIZE)
    if err:
        bio.brelse(bp)
        return err, bp
    raw = bp.b_data[0]
    if not isinstance(raw, bytearray):
        bp.b_data[0] = bytearray(raw if isinstance(raw, (bytes, bytearray)) else BSIZE)
    return 0, bp


def ufs_lookup(vdp: vnode, cnp: componentname) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """VOP_LOOKUP: see the module text."""
    dp: inode = vdp.v_data
    ump = dp.ump
    k = ump.k
    vfs = k.vfs
    m = k.m
    flags = cnp.cn_flags
    lockparent = flags & LOCKPARENT
    wantparent = flags & (LOCKPARENT | WANTPARENT)
    nameiop = cnp.cn_nameiop
    if vdp.v_type != VDIR:
        return ENOTDIR, None
    cnp.cn_flags &= ~PDIRUNLOCK
    name = cnp.cn_nameptr
    if cnp.cn_namelen > MAXNAMLEN:
        return ENAMETOOLONG, None
    err, vp = yield from k.namecache.cache_lookup(vdp, cnp)
    if err >= 0:
        return err, vp
    last = bool(flags & ISLASTCN)
    want_slot = nameiop in (CREATE, RENAME) and last
    nblocks = dp.d.size // BSIZE
    start = 0
    if nameiop == LOOKUP and 0 < dp.diroff < dp.d.size:
        start = dp.diroff // BSIZE
    order = list(range(start, nblocks)) + list(range(0, start))
    found: tuple[int, int, int] | None = None          # (lbn, slot, ino)
    free: tuple[int, int] | None = None
    scanned = 0
    for lbn in order:
        err, bp = yield from ufs_blkatoff(vdp, lbn)
        if err:
            return err, None
        blk = dirblock(bp)
        ent = blk.names.get(name)
        if ent is not None:
            scanned += ent[0] + 1
            found = (lbn, ent[0], ent[1])
            k.bio.brelse(bp)
            break
        scanned += DIRENTS
        if want_slot and free is None and blk.free:
            s = blk.fit(dirent_slots(cnp.cn_namelen))
            if s is not None:
                free = (lbn, s)
        k.bio.brelse(bp)
    m.charge(m.costs.dirent_scan * scanned)
    if found is None:
        if want_slot and dp.d.nlink > 0:
            dp_slot(dp, free)
            cnp.cn_flags |= SAVENAME
            if not lockparent:
                yield from vfs.vn_unlock(vdp)
                cnp.cn_flags |= PDIRUNLOCK
            return EJUSTRETURN, None
        if cnp.cn_flags & MAKEENTRY and nameiop != CREATE:
            k.namecache.cache_enter(vdp, None, cnp)
        return ENOENT, None
    lbn, slot, ino = found
    if nameiop == LOOKUP:
        dp.diroff = lbn * BSIZE
    if nameiop == DELETE and last:
        dp_slot(dp, (lbn, slot))
        if ino == dp.ino:
            vfs.vref(vdp)
            return 0, vdp
        err, tdp = yield from ffs_vget(ump, ino, VNL_CHILD)
        if err:
            return err, None
        if not lockparent:
            yield from vfs.vn_unlock(vdp)
            cnp.cn_flags |= PDIRUNLOCK
        return 0, tdp
    if nameiop == RENAME and wantparent and last:
        if ino == dp.ino:
            return EISDIR, None
        dp_slot(dp, (lbn, slot))
        err, tdp = yield from ffs_vget(ump, ino, VNL_CHILD)
        if err:
            return err, None
        cnp.cn_flags |= SAVENAME
        if not lockparent:
            yield from vfs.vn_unlock(vdp)
            cnp.cn_flags |= PDIRUNLOCK
        return 0, tdp
    if flags & ISDOTDOT:
        yield from vfs.vn_unlock(vdp)          # never hold a child while locking its parent
        cnp.cn_flags |= PDIRUNLOCK
        err, tdp = yield from ffs_vget(ump, ino)
        if err:
            yield from vfs.vn_lock(vdp, LK_EXCLUSIVE | LK_RETRY)
            cnp.cn_flags &= ~PDIRUNLOCK
            return err, None
        if lockparent and last:
            # the directory we came from, under its parent ".." now held
            yield from vfs.vn_lock(vdp, LK_EXCLUSIVE | LK_RETRY | VNL_CHILD)
            cnp.cn_flags &= ~PDIRUNLOCK
        vp = tdp
    elif ino == dp.ino:
        vfs.vref(vdp)
        vp = vdp
    else:
        err, vp = yield from ffs_vget(ump, ino, VNL_CHILD)
        if err:
            return err, None
        if not lockparent or not last:
            yield from vfs.vn_unlock(vdp)
            cnp.cn_flags |= PDIRUNLOCK
    if cnp.cn_flags & MAKEENTRY:
        k.namecache.cache_enter(vdp, vp, cnp)
    return 0, vp


def dp_slot(dp: inode, slot: tuple[int, int] | None) -> None:
    """Remember the slot the lookup found (dp->i_offset): None means "at the end"."""
    dp.lookup_slot = slot


def ufs_direnter(dvp: vnode, ino: int, name: str, update_dir: bool = True) -> GEN:
    """Put an entry in the slot the CREATE/RENAME lookup found, or grow the directory by a
    block (ffs_balloc with B_SYNC); the block is written with wait (FFS without soft
    updates; delayed under MNT_ASYNC), then the directory's inode if it changed."""
    from vfslab.fs.ffs_balloc import ffs_balloc
    from vfslab.fs.ffs_inode import update_inode

    dp: inode = dvp.v_data
    ump = dp.ump
    bio = ump.k.bio
    sync = not ump.async_
    slot = dp.lookup_slot
    dp.lookup_slot = None
    if slot is None:
        lbn = dp.d.size // BSIZE
        err = yield from ffs_balloc(dvp, lbn * BSIZE, BSIZE, dirop=True)
        if err:
            return err
        bp = yield from bio.bget(dvp, lbn, BSIZE)
        bp.b_data[0] = bytearray(BSIZE)
        dp.d.size += BSIZE
        dvp.v_size = dp.d.size
        dp.dirty = True
        bio.bdwrite(bp)
        slot = (lbn, 0)
    lbn, s = slot
    err, bp = yield from ufs_blkatoff(dvp, lbn)
    if err:
        return err
    blk = dirblock(bp)
    pack_dirent(bp.b_data[0], s, ino, name)
    blk.names[name] = (s, ino)
    blk.take(s, dirent_slots(len(name.encode())))
    err = yield from ump.meta_write(bp, sync)
    if err:
        # brelse invalidated the failed block: the disk's copy, without the entry, is what
        # a later lookup reads
        return err
    if dp.dirty and update_dir:
        yield from update_inode(dp, sync)
    return 0


def ufs_dirremove(dvp: vnode, name: str) -> GEN:
    """Clear the entry the DELETE/RENAME lookup found; the block is written with wait."""
    dp: inode = dvp.v_data
    ump = dp.ump
    slot = dp.lookup_slot
    dp.lookup_slot = None
    if slot is None:
        return ENOENT
    lbn, s = slot
    err, bp = yield from ufs_blkatoff(dvp, lbn)
    if err:
        return err
    blk = dirblock(bp)
    if blk.names.get(name, (-1, 0))[0] != s:
        ump.k.bio.brelse(bp)
        return ENOENT
    n = entry_slots(bp.b_data[0], s)
    bp.b_data[0][s * DIRENT_SIZE:(s + n) * DIRENT_SIZE] = bytes(n * DIRENT_SIZE)
    del blk.names[name]
    blk.give(s, n)
    return (yield from ump.meta_write(bp, not ump.async_))


def ufs_dirrewrite(dvp: vnode, name: str, newino: int) -> GEN:
    """Point an existing entry (the one the lookup found, or `name`'s) at another inode; the
    block is written with wait."""
    dp: inode = dvp.v_data
    ump = dp.ump
    slot = dp.lookup_slot
    dp.lookup_slot = None
    err, where = yield from _find(dvp, name) if slot is None else _ret(slot)
    if err or where is None:
        return err or ENOENT
    lbn, s = where
    err, bp = yield from ufs_blkatoff(dvp, lbn)
    if err:
        return err
    pack_dirent(bp.b_data[0], s, newino, name)
    dirblock(bp).names[name] = (s, newino)
    return (yield from ump.meta_write(bp, not ump.async_))


def _ret(slot: tuple[int, int]) -> Generator[Any, Any, tuple[int, tuple[int, int] | None]]:
    yield from ()
    return 0, slot


def _find(dvp: vnode, name: str) -> Generator[Any, Any, tuple[int, tuple[int, int] | None]]:
    """The (block, slot) of `name` in a directory, scanning it (the ".." of ufs_rename and
    ufs_checkpath, which 2.0 reads from the first block's template)."""
    dp: inode = dvp.v_data
    m = dp.ump.m
    scanned = 0
    for lbn in range(dp.d.size // BSIZE):
        err, bp = yield from ufs_blkatoff(dvp, lbn)
        if err:
            return err, None
        ent = dirblock(bp).names.get(name)
        dp.ump.k.bio.brelse(bp)
        if ent is not None:
            m.charge(m.costs.dirent_scan * (scanned + ent[0] + 1))
            return 0, (lbn, ent[0])
        scanned += DIRENTS
    m.charge(m.costs.dirent_scan * scanned)
    return 0, None


def ufs_dotdot(dvp: vnode) -> Generator[Any, Any, tuple[int, int]]:
    """(error, the inode number in the directory's ".." entry)."""
    err, where = yield from _find(dvp, "..")
    if err or where is None:
        return err or ENOENT, 0
    lbn, s = where
    err, bp = yield from ufs_blkatoff(dvp, lbn)
    if err:
        return err, 0
    ino = dirblock(bp).names[".."][1]
    dvp.v_data.ump.k.bio.brelse(bp)
    return 0, ino


def ufs_dirempty(dvp: vnode) -> Generator[Any, Any, tuple[int, bool]]:
    """(error, whether the directory holds nothing but "." and "..")."""
    dp: inode = dvp.v_data
    m = dp.ump.m
    for lbn in range(dp.d.size // BSIZE):
        err, bp = yield from ufs_blkatoff(dvp, lbn)
        if err:
            return err, False
        names = dirblock(bp).names
        dp.ump.k.bio.brelse(bp)
        m.charge(m.costs.dirent_scan * DIRENTS)
        if any(n not in (".", "..") for n in names):
            return 0, False
    return 0, True
