"""The FFS-like file system: vnode operations (ffs_vnops/ufs_vnops), allocation (ffs_alloc,
ffs_balloc), block mapping (ufs_bmap), inodes (ffs_update, ffs_truncate), directories
(ufs_lookup) and the mount (ffs_vfsops), with the habits of FFS in 2004 without soft updates:

- file data goes through the page cache (UBC); metadata through the buffer cache: bitmaps,
  inode blocks and the superblock on the device vnode, directory blocks on the directory's
  vnode, indirect blocks on the file's vnode at negative logical block numbers;
- directory operations are synchronous and ordered (the inode written before the entry that
  names it, the entry removed before the inode is freed) unless mounted MNT_ASYNC, where the
  buffer cache turns them into delayed writes;
- bitmap, indirect-block and inode updates from writes are delayed writes (bdwrite), flushed by
  the syncer (metadelay for the device vnode) or by fsync, whose passes use bawrite: the
  asynchronous metadata writes the mail says biodone releases with brelse.

Decoded indirect-block pointers and directory entries are kept with the in-core inode while its
vnode lives (a name cache, as NetBSD has; the indirect cache stands for a buffer-cache hit and
is charged as one).
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ufs_layout import (
    BITS,
    BSIZE,
    DIRENT_SIZE,
    DIRENTS,
    IFDIR,
    IFREG,
    INODE_SIZE,
    INOPB,
    MAXNAMLEN,
    NDADDR,
    NINDIR,
    ROOTINO,
    SECTORS,
    Dinode,
    Superblock,
    get_bit,
    pack_dirent,
    set_bit,
    unpack_dirents,
)
from vfslab.kern.buf import B_DELWRI, B_INVAL, buf
from vfslab.kern.fcntl import (
    EEXIST,
    EINVAL,
    EISDIR,
    ENAMETOOLONG,
    ENOENT,
    ENOSPC,
    ENOTDIR,
    ENOTEMPTY,
    O_ACCMODE,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_RDONLY,
    O_TRUNC,
)
from vfslab.kern.init_main import mount
from vfslab.kern.lock import LK_EXCLUSIVE
from vfslab.kern.vnode import VBLK, VDIR, VREG, vnode

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

GEN = Generator[Any, Any, Any]
IO_APPEND = 0x1
IO_SYNC = 0x2
IO_DSYNC = 0x4
IO_MMAP = 0x8
IO_DIRECT = 0x10
CHUNK = 64 * 1024


class inode:  # noqa: N801  (struct inode)
    """The in-core inode: the on-disk fields plus what the kernel keeps with them."""

    __slots__ = ("ino", "d", "vp", "dirty", "ind", "names", "free_slots", "nextalloc",
                 "maxlbn")

    def __init__(self, ino: int, d: Dinode) -> None:
        self.ino = ino
        self.d = d
        self.vp: vnode | None = None
        self.dirty = False
        self.ind: dict[int, list[int]] = {}         # indirect lbn -> decoded pointers
        self.names: dict[str, tuple[int, int, int]] | None = None  # name -> (ino, lbn, slot)
        self.free_slots: list[tuple[int, int]] = []
        self.nextalloc = 0
        self.maxlbn = -1          # one past the highest mapped block, -1: not known yet


def _split(path: str) -> list[str] | None:
    if not path.startswith("/"):
        return None
    return [p for p in path.split("/") if p and p != "."]


class FFS:
    """One mounted file system on a device vnode."""

    IO_APPEND = IO_APPEND
    IO_SYNC = IO_SYNC
    IO_DSYNC = IO_DSYNC
    IO_MMAP = IO_MMAP
    IO_DIRECT = IO_DIRECT

    def __init__(self, k: Kernel, devvp: vnode, nblocks: int) -> None:
        self.k = k
        self.m = k.m
        self.devvp = devvp
        self.nblocks = nblocks
        self.sb = Superblock()
        self.ihash: dict[int, vnode] = {}
        self.mp: mount | None = None
        self.rootvp: vnode | None = None
        self.sb_dirty = False
        self.rotor = 0
        self.irotor = ROOTINO + 1

    # ---- mount --------------------------------------------------------------------------
    def mount(self, async_: bool) -> GEN:
        k = self.k
        err, bp = yield from k.bio.bread(self.devvp, 0, BSIZE)
        if err:
            k.bio.brelse(bp)
            return err
        try:
            sb = Superblock.unpack(bp.b_data[0])
        except (ValueError, struct.error):
            k.bio.brelse(bp)
            return EINVAL
        k.bio.brelse(bp)
        if sb.magic != 0x19540119:
            return EINVAL
        self.sb = sb
        self.rotor = sb.data_start
        mp = mount(self, async_)
        self.mp = mp
        self.devvp.v_specmountpoint = mp
        if mp not in k.mounts:
            k.mounts.append(mp)
        err, vp = yield from self.vget_ino(ROOTINO)
        if err:
            return err
        self.rootvp = vp
        sb.clean = 0
        yield from self.sbupdate(wait=True)
        return 0

    def unmount(self) -> GEN:
        k = self.k
        yield from self.sync(wait=True, lazy=False)
        if self.rootvp is not None:
            yield from k.vfs.vrele(self.rootvp)
            self.rootvp = None
        for vp in list(self.ihash.values()):
            s = k.proto.vi_lock(vp)
            if vp.v_usecount or vp.v_data is None:
                k.proto.vi_unlock(vp, s)
                continue
            yield from k.vfs.vgonel(vp, s)
        yield from k.vfs.vflushbuf(self.devvp, True)
        self.sb.clean = 1
        yield from self.sbupdate(wait=True)
        yield from k.vfs.vinvalbuf(self.devvp, save=True)
        if self.mp in k.mounts:
            k.mounts.remove(self.mp)
        self.devvp.v_specmountpoint = None
        return 0

    def sbupdate(self, wait: bool) -> GEN:
        bio = self.k.bio
        bp = yield from bio.bget(self.devvp, 0, BSIZE)
        bp.b_data[0] = bytearray(self.sb.pack())
        self.sb_dirty = False
        if wait:
            err = yield from bio.bwrite(bp)
            return err
        bio.bawrite(bp)
        return 0

    def sync(self, wait: bool, lazy: bool) -> GEN:
        """VFS_SYNC: fsync every vnode of the mount with dirty data, then the device."""
        k = self.k
        err = 0
        p = k.proto
        for vp in list(self.ihash.values()):
            if vp.v_data is None:
                continue
            s = p.buflist_lock(vp)
            dirty_bufs = bool(vp.v_dirtyblkhd)
            p.buflist_unlock(vp, s)
            if vp.v_uobj.dirtyq or dirty_bufs or vp.v_data.dirty:
                e = yield from self.fsync(vp, wait=wait, dataonly=False, lazy=lazy)
                err = err or e
        if self.sb_dirty:
            yield from self.sbupdate(wait=False)
        e = yield from k.vfs.vflushbuf(self.devvp, wait)
        return err or e

    def statfs(self) -> dict[str, int]:
        return {"blocks": self.sb.nblocks, "bfree": self.sb.free_blocks,
                "files": self.sb.ninodes, "ffree": self.sb.free_inodes}

    # ---- metadata buffers on the device -------------------------------------------------
    def meta_read(self, blk: int) -> Generator[Any, Any, tuple[int, buf]]:
        k = self.k
        err, bp = yield from k.bio.bread(self.devvp, blk * SECTORS, BSIZE)
        if not err and not isinstance(bp.b_data[0], bytearray):
            v = bp.b_data[0]
            bp.b_data[0] = bytearray(v if isinstance(v, (bytes, bytearray)) else BSIZE)
        return err, bp

    def meta_write(self, bp: buf, sync: bool) -> GEN:
        if sync:
            err = yield from self.k.bio.bwrite(bp)
            return err
        self.k.bio.bdwrite(bp)
        return 0

    # ---- inodes -------------------------------------------------------------------------
    def iblock(self, ino: int) -> tuple[int, int]:
        return self.sb.itable_start + ino // INOPB, (ino % INOPB) * INODE_SIZE

    def vget_ino(self, ino: int) -> Generator[Any, Any, tuple[int, vnode | None]]:
        """VFS_VGET: the vnode of an inode, from the inode hash or read from disk."""
        k = self.k
        while True:
            vp = self.ihash.get(ino)
            if vp is not None:
                err = yield from k.vfs.vget(vp, 0)
                if err:
                    continue
                return 0, vp
            blk, off = self.iblock(ino)
            err, bp = yield from self.meta_read(blk)
            if err:
                k.bio.brelse(bp)
                return err, None
            d = Dinode.unpack_from(bp.b_data[0], off)
            k.bio.brelse(bp)
            if ino in self.ihash:          # raced with another reader while we slept
                continue
            vp = yield from k.vfs.getnewvnode("ufs", self.mp)
            if ino in self.ihash:
                yield from k.vfs.vrele(vp)
                continue
            ip = inode(ino, d)
            ip.vp = vp
            vp.v_data = ip
            vp.v_type = VDIR if d.isdir() else VREG
            vp.v_size = d.size
            self.ihash[ino] = vp
            return 0, vp

    def update(self, ip: inode, wait: bool) -> GEN:
        """ffs_update: write the inode into its block (bwrite with wait, else bdwrite)."""
        if ip.d.nlink < 0:
            raise self.k.vfs.panic(f"ffs_update: inode {ip.ino} was freed")
        blk, off = self.iblock(ip.ino)
        err, bp = yield from self.meta_read(blk)
        if err or ip.d.nlink < 0:
            # freed while bread slept: a writeback policy updates inodes without the vnode
            # lock, and an unlink's inactive may have freed this one (and ialloc reused the
            # number) meanwhile; writing it now would overwrite the slot (crash property tests)
            self.k.bio.brelse(bp)
            return err
        ip.d.pack_into(bp.b_data[0], off)
        ip.dirty = False
        err = yield from self.meta_write(bp, wait)
        return err

    def ialloc(self, mode: int) -> Generator[Any, Any, tuple[int, inode | None]]:
        """ffs_valloc: a free inode from the inode bitmap (rotor), zeroed."""
        sb = self.sb
        if sb.free_inodes <= 0:
            return ENOSPC, None
        for tries in range(2):
            start = self.irotor if tries == 0 else 0
            for mb in range(start // BITS, sb.imap_blocks):
                err, bp = yield from self.meta_read(sb.imap_start + mb)
                if err:
                    self.k.bio.brelse(bp)
                    return err, None
                data = bp.b_data[0]
                lo = start % BITS if mb == start // BITS else 0
                i = _find_clear(data, lo, BITS)
                if i >= 0:
                    ino = mb * BITS + i
                    set_bit(data, i, True)
                    yield from self.meta_write(bp, False)
                    sb.free_inodes -= 1
                    self.sb_dirty = True
                    self.irotor = ino + 1
                    d = Dinode(mode, 0, 0, self.m.time(), sb.generation + ino)
                    return 0, inode(ino, d)
                self.k.bio.brelse(bp)
        return ENOSPC, None

    def ifree(self, ino: int) -> GEN:
        sb = self.sb
        err, bp = yield from self.meta_read(sb.imap_start + ino // BITS)
        if err:
            self.k.bio.brelse(bp)
            return err
        set_bit(bp.b_data[0], ino % BITS, False)
        yield from self.meta_write(bp, False)
        sb.free_inodes += 1
        self.sb_dirty = True
        return 0

    # ---- blocks -------------------------------------------------------------------------
    def balloc_run(self, pref: int, want: int) -> Generator[Any, Any, tuple[int, list[int]]]:
        """Allocate up to `want` blocks, contiguous from `pref` when free (ffs_alloc with
        ffs_blkpref's idea of "after the previous block"); at least one or ENOSPC."""
        sb = self.sb
        if sb.free_blocks <= 0:
            return ENOSPC, []
        if not sb.data_start <= pref < sb.nblocks:
            pref = self.rotor
        got: list[int] = []
        b = pref
        scanned = 0
        while len(got) < want and scanned < sb.nblocks:
            mb = b // BITS
            err, bp = yield from self.meta_read(sb.bmap_start + mb)
            if err:
                self.k.bio.brelse(bp)
                return err, got
            data = bp.b_data[0]
            changed = False
            i = b % BITS
            while i < BITS and len(got) < want:
                if not get_bit(data, i):
                    if got and mb * BITS + i != got[-1] + 1:
                        break          # keep runs contiguous: stop at the first gap
                    set_bit(data, i, True)
                    got.append(mb * BITS + i)
                    changed = True
                elif got:
                    break
                i += 1
            scanned += i - b % BITS
            if changed:
                yield from self.meta_write(bp, False)
            else:
                self.k.bio.brelse(bp)
            if got:
                break
            b = (mb + 1) * BITS
            if b >= sb.nblocks:
                b = sb.data_start
        if not got:
            return ENOSPC, []
        sb.free_blocks -= len(got)
        self.sb_dirty = True
        # the rotor wraps at the end of the disk: past it, the bitmap block after the last
        # one is the inode bitmap (found by a one-hour crash test: blocks past the end)
        self.rotor = got[-1] + 1 if got[-1] + 1 < sb.nblocks else sb.data_start
        return 0, got

    def bfree(self, blocks: list[int]) -> GEN:
        sb = self.sb
        by_map: dict[int, list[int]] = {}
        for b in blocks:
            if sb.data_start <= b < sb.nblocks:
                by_map.setdefault(b // BITS, []).append(b % BITS)
        for mb, bits in sorted(by_map.items()):
            err, bp = yield from self.meta_read(sb.bmap_start + mb)
            if err:
                self.k.bio.brelse(bp)
                return err
            for i in bits:
                set_bit(bp.b_data[0], i, False)
            yield from self.meta_write(bp, False)
            sb.free_blocks += len(bits)
        self.sb_dirty = True
        return 0

    # ---- block map (ufs_bmap) and indirect blocks ------------------------------------------
    def _ind_ptrs(self, ip: inode, ilbn: int, blk: int) -> Generator[Any, Any, list[int]]:
        """The pointers of an indirect block (cached while the vnode lives)."""
        ptrs = ip.ind.get(ilbn)
        self.m.charge(self.m.costs.buf_lookup)
        if ptrs is not None:
            return ptrs
        vp = ip.vp
        assert vp is not None
        err, bp = yield from self.k.bio.bread(vp, ilbn, BSIZE, daddr=blk * SECTORS)
        if err:
            self.k.bio.brelse(bp)
            return [0] * NINDIR
        raw = bp.b_data[0]
        if not isinstance(raw, (bytes, bytearray)):
            raw = bytes(BSIZE)
        ptrs = list(struct.unpack_from(f"<{NINDIR}I", raw))
        self.k.bio.brelse(bp)
        ip.ind[ilbn] = ptrs
        return ptrs

    def bmap(self, vp: vnode, lbn: int) -> Generator[Any, Any, int]:
        """VOP_BMAP: the disk sector of a logical block, -1 for a hole."""
        ip: inode = vp.v_data
        d = ip.d
        if lbn < NDADDR:
            b = d.db[lbn]
        elif lbn < NDADDR + NINDIR:
            if not d.ib:
                return -1
            b = (yield from self._ind_ptrs(ip, -1, d.ib))[lbn - NDADDR]
        else:
            i = lbn - NDADDR - NINDIR
            if not d.dib or i >= NINDIR * NINDIR:
                return -1
            top = yield from self._ind_ptrs(ip, -2, d.dib)
            mid = top[i // NINDIR]
            if not mid:
                return -1
            b = (yield from self._ind_ptrs(ip, -3 - i // NINDIR, mid))[i % NINDIR]
        return b * SECTORS if b else -1

    def bmap_run(self, vp: vnode, lbn: int, n: int) -> Generator[Any, Any, list[int]]:
        """VOP_BMAP of n consecutive blocks (the sectors, -1 for holes), reading each pointer
        block once: what ufs_bmaparray's run length gives genfs."""
        ip: inode = vp.v_data
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
                    ptrs = yield from self._ind_ptrs(ip, -1, d.ib)
                    out.extend(b * SECTORS if b else -1
                               for b in ptrs[lbn - NDADDR:stop - NDADDR])
                lbn = stop
                continue
            i = lbn - NDADDR - NINDIR
            j = i // NINDIR
            stop = min(end, NDADDR + NINDIR + (j + 1) * NINDIR)
            mid = 0
            if d.dib and j < NINDIR:
                mid = (yield from self._ind_ptrs(ip, -2, d.dib))[j]
            if not mid:
                out.extend([-1] * (stop - lbn))
            else:
                ptrs = yield from self._ind_ptrs(ip, -3 - j, mid)
                lo = i % NINDIR
                out.extend(b * SECTORS if b else -1 for b in ptrs[lo:lo + stop - lbn])
            lbn = stop
        return out

    def _write_ind(self, ip: inode, ilbn: int, blk: int, ptrs: list[int], new: bool,
                   sync: bool) -> GEN:
        vp = ip.vp
        assert vp is not None
        bio = self.k.bio
        bp = yield from bio.bget(vp, ilbn, BSIZE, daddr=blk * SECTORS)
        bp.b_data[0] = bytearray(struct.pack(f"<{NINDIR}I", *ptrs))
        ip.ind[ilbn] = ptrs
        yield from self.meta_write(bp, sync and new)
        return 0

    def balloc_range(self, vp: vnode, off: int, n: int, dirop: bool = False) -> GEN:
        """ffs_balloc over [off, off+n): data blocks and the indirect blocks they need.
        `dirop` (B_SYNC, as ufs_direnter asks): the updated pointer blocks are written with
        wait too, not only new ones, so a directory's new block is reachable on disk before
        entries are put in it."""
        ip: inode = vp.v_data
        sync = not (vp.v_mount is not None and vp.v_mount.async_)
        lbn = off // BSIZE
        last = (off + n - 1) // BSIZE
        if ip.maxlbn < 0:
            ip.maxlbn = yield from self._maxlbn(ip)
        while lbn <= last:
            if lbn < ip.maxlbn and (yield from self.bmap(vp, lbn)) >= 0:
                lbn += 1
                continue
            # a run of holes within one pointer block (the inode's direct pointers or one
            # indirect block), so that one write updates all its pointers
            region_end = NDADDR if lbn < NDADDR else \
                NDADDR + ((lbn - NDADDR) // NINDIR + 1) * NINDIR
            end = lbn + 1
            while end <= last and end < region_end and \
                    (end >= ip.maxlbn or (yield from self.bmap(vp, end)) < 0):
                end += 1
            pref = ip.nextalloc or self.rotor
            err, blocks = yield from self.balloc_run(pref, end - lbn)
            if err:
                return err
            err = yield from self._set_ptrs(ip, lbn, blocks, sync, dirop)
            if err:
                return err
            lbn += len(blocks)
            ip.nextalloc = blocks[-1] + 1
            ip.dirty = True
            if lbn > ip.maxlbn:
                ip.maxlbn = lbn
        return 0

    def _maxlbn(self, ip: inode) -> Generator[Any, Any, int]:
        """One past the last mapped block (scanning from the size; a failed write can leave
        blocks just past it)."""
        vp = ip.vp
        assert vp is not None
        lbn = (ip.d.size + BSIZE - 1) // BSIZE + CHUNK // BSIZE
        while lbn > 0 and (yield from self.bmap(vp, lbn - 1)) < 0:
            lbn -= 1
        return lbn

    def _set_ptrs(self, ip: inode, lbn: int, blocks: list[int], sync: bool,
                  dirop: bool = False) -> GEN:
        """Point lbn, lbn+1, ... (all in one pointer block) at `blocks`."""
        d = ip.d
        if lbn < NDADDR:
            for i, b in enumerate(blocks):
                d.db[lbn + i] = b
            return 0
        if lbn < NDADDR + NINDIR:
            new = False
            if not d.ib:
                err, got = yield from self.balloc_run(self.rotor, 1)
                if err:
                    return err
                d.ib = got[0]
                ip.ind[-1] = [0] * NINDIR
                new = True
            ptrs = list((yield from self._ind_ptrs(ip, -1, d.ib)))
            base = lbn - NDADDR
            ptrs[base:base + len(blocks)] = blocks
            return (yield from self._write_ind(ip, -1, d.ib, ptrs, new or dirop, sync))
        i = lbn - NDADDR - NINDIR
        if i + len(blocks) > NINDIR * NINDIR:
            return ENOSPC
        if not d.dib:
            err, got = yield from self.balloc_run(self.rotor, 1)
            if err:
                return err
            d.dib = got[0]
            ip.ind[-2] = [0] * NINDIR
            yield from self._write_ind(ip, -2, d.dib, [0] * NINDIR, True, sync)
        top = list((yield from self._ind_ptrs(ip, -2, d.dib)))
        j = i // NINDIR
        mid = top[j]
        new = False
        if not mid:
            err, got = yield from self.balloc_run(self.rotor, 1)
            if err:
                return err
            mid = got[0]
            top[j] = mid
            ip.ind[-3 - j] = [0] * NINDIR
            yield from self._write_ind(ip, -2, d.dib, top, dirop, sync)
            new = True
        ptrs = list((yield from self._ind_ptrs(ip, -3 - j, mid)))
        base = i % NINDIR
        ptrs[base:base + len(blocks)] = blocks
        return (yield from self._write_ind(ip, -3 - j, mid, ptrs, new or dirop, sync))

    # ---- data ---------------------------------------------------------------------------
    def read(self, vp: vnode, off: int, n: int, ioflag: int = 0) -> GEN:
        k = self.k
        yield from k.vfs.vn_lock(vp, 0x01)       # LK_SHARED
        got = yield from k.ubc.read(vp, off, n)
        if ioflag & IO_DIRECT and got > 0:
            yield from k.genfs.putpages(vp, off, off + got, clean=False, free=True)
        yield from k.vfs.vn_unlock(vp)
        return got

    def write(self, vp: vnode, off: int, n: int, ioflag: int) -> GEN:
        """ffs_write with UBC: allocate, copy into the page cache, update the inode."""
        k = self.k
        ip: inode = vp.v_data
        if n == 0:
            return 0
        yield from k.vfs.vn_lock(vp, LK_EXCLUSIVE)
        done = 0
        err = 0
        while done < n:
            pos = off + done
            chunk = min(n - done, CHUNK - pos % CHUNK)
            err = yield from self.balloc_range(vp, pos, chunk)
            if err:
                break
            e = yield from k.ubc.write(vp, pos, chunk, k.next_stamp(ip.ino))
            if e:
                err = -e
                break
            done += chunk
            if pos + chunk > vp.v_size and not ioflag & IO_MMAP:
                vp.v_size = pos + chunk
                ip.d.size = vp.v_size
        if done:
            ip.d.mtime = self.m.time()
            ip.dirty = True
            if ioflag & IO_DIRECT:
                # O_DIRECT (NetBSD 5's, modelled by its effect): the data goes to the disk
                # before the call returns, and does not stay in the page cache
                e = yield from k.genfs.putpages(vp, off, off + done, clean=True, free=True,
                                                sync=True)
                err = err or e
            if ioflag & (IO_SYNC | IO_DSYNC):
                mark = k.notify.writes
                e = yield from self.fsync(vp, wait=True, dataonly=bool(ioflag & IO_DSYNC),
                                          locked=True)
                if not e:
                    k.notify.synced(vp, mark, self.m.time(), off >> 12, (off + done - 1) >> 12)
                err = err or e
            # else: as ffs_write, only IN_CHANGE|IN_UPDATE: the inode goes out with the next
            # fsync, sync or inactive
        yield from k.vfs.vn_unlock(vp)
        if done:
            return done
        return -err if err else 0

    def update_vnode(self, vp: vnode) -> GEN:
        """VOP_UPDATE without wait: a changed inode goes into its (delayed) inode block."""
        ip: inode | None = vp.v_data
        if ip is not None and ip.dirty and ip.d.nlink >= 0:
            yield from self.update(ip, False)
        return 0

    def getattr(self, vp: vnode) -> int:
        return vp.v_size

    def fsync(self, vp: vnode, wait: bool, dataonly: bool = False, lazy: bool = False,
              locked: bool = False) -> GEN:
        """ffs_fsync: pages, then the vnode's dirty buffers (bawrite passes; with wait, until
        none is left), then the inode. For the device vnode: vflushbuf (spec_fsync)."""
        k = self.k
        if vp.v_type == VBLK:
            return (yield from k.vfs.vflushbuf(vp, wait))
        ip: inode | None = vp.v_data
        if ip is None:
            return 0
        err = yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=wait)
        bio = k.bio
        p = k.proto
        for _ in range(4):
            s = p.buflist_lock(vp)
            dirty = list(vp.v_dirtyblkhd)
            p.buflist_unlock(vp, s)
            if not dirty:
                break
            for bp in dirty:
                if bp.b_vp is vp and bio.btrybusy(bp):
                    if bp.b_flags & B_DELWRI:
                        bio.bawrite(bp)
                    else:
                        bio.brelse(bp)
            if not wait:
                break
            yield from k.vfs.waitforoutput(vp, "ffsfsync")
        if ip.d.nlink >= 0 and (ip.dirty or wait and self._inode_delayed(ip)):
            e = yield from self.update(ip, wait)
            err = err or e
        return err

    def inode_buf(self, vp: vnode) -> buf | None:
        """The cached buffer of a vnode's inode block, if any."""
        ip: inode | None = vp.v_data
        return None if ip is None else self._inode_bp(ip)

    def _inode_bp(self, ip: inode) -> buf | None:
        return self.k.bio.incore(self.devvp, self.iblock(ip.ino)[0] * SECTORS)

    def _inode_delayed(self, ip: inode) -> bool:
        """Is the inode's block a delayed write (an earlier update without wait, by the
        syncer, a policy or inactive)? Then fsync must write it, or the size and block
        pointers it promised stay in memory (found by the crash tests)."""
        bp = self._inode_bp(ip)
        return bp is not None and bool(bp.b_flags & B_DELWRI)

    def truncate(self, vp: vnode, length: int) -> GEN:
        """ffs_truncate: drop pages and blocks past `length` (or grow, leaving a hole)."""
        k = self.k
        ip: inode = vp.v_data
        if vp.v_type == VDIR:
            return EISDIR
        if length < 0:
            return EINVAL
        yield from k.vfs.vn_lock(vp, LK_EXCLUSIVE)
        err = yield from self._truncate(ip, length)
        yield from k.vfs.vn_unlock(vp)
        return err

    def _truncate(self, ip: inode, length: int) -> GEN:
        k = self.k
        vp = ip.vp
        assert vp is not None
        d = ip.d
        if length >= d.size:
            d.size = vp.v_size = length
            ip.dirty = True
            return (yield from self.update(ip, False))
        # ffs_indirtrunc and ffs_truncate write synchronously (unless MNT_ASYNC): the pointers
        # to freed blocks must be gone from the disk before the blocks can be reused
        tsync = not (self.mp is not None and self.mp.async_)
        k.genfs.truncate_pages(vp, length)
        keep = (length + BSIZE - 1) // BSIZE
        for f in k.notify.truncated:
            f(ip.ino, keep, self.m.time())
        freed: list[int] = []
        for lbn in range(keep, NDADDR):
            if d.db[lbn]:
                freed.append(d.db[lbn])
                d.db[lbn] = 0
        if d.ib:
            ptrs = list((yield from self._ind_ptrs(ip, -1, d.ib)))
            lo = max(0, keep - NDADDR)
            changed = False
            for i in range(lo, NINDIR):
                if ptrs[i]:
                    freed.append(ptrs[i])
                    ptrs[i] = 0
                    changed = True
            if lo == 0:
                yield from self._drop_ind(ip, -1, d.ib)
                freed.append(d.ib)
                d.ib = 0
            elif changed:
                yield from self._write_ind(ip, -1, d.ib, ptrs, True, tsync)
        if d.dib:
            top = list((yield from self._ind_ptrs(ip, -2, d.dib)))
            base = NDADDR + NINDIR
            for j in range(NINDIR):
                mid = top[j]
                if not mid:
                    continue
                lo = max(0, keep - base - j * NINDIR)
                if lo >= NINDIR:
                    continue
                ptrs = list((yield from self._ind_ptrs(ip, -3 - j, mid)))
                for i in range(lo, NINDIR):
                    if ptrs[i]:
                        freed.append(ptrs[i])
                        ptrs[i] = 0
                if lo == 0:
                    yield from self._drop_ind(ip, -3 - j, mid)
                    freed.append(mid)
                    top[j] = 0
                else:
                    yield from self._write_ind(ip, -3 - j, mid, ptrs, True, tsync)
            if keep <= base:
                yield from self._drop_ind(ip, -2, d.dib)
                freed.append(d.dib)
                d.dib = 0
            else:
                yield from self._write_ind(ip, -2, d.dib, top, True, tsync)
        d.size = vp.v_size = length
        ip.nextalloc = 0
        ip.maxlbn = keep
        ip.dirty = True
        yield from self._vtruncbuf(vp, keep)
        err = yield from self.update(ip, tsync)
        if freed:
            yield from self.bfree(freed)
        return err

    def _vtruncbuf(self, vp: vnode, keep: int) -> GEN:
        """vtruncbuf: invalidate the data buffers (directory blocks) past the new end."""
        k = self.k
        p = k.proto
        while True:
            s = p.buflist_lock(vp)
            victims = [bp for bp in (*vp.v_cleanblkhd, *vp.v_dirtyblkhd)
                       if bp.b_lblkno >= keep]
            p.buflist_unlock(vp, s)
            if not victims:
                return 0
            for bp in victims:
                if not (yield from k.bio.bbusy(bp, "vtruncbuf")):
                    break
                if bp.b_vp is vp:
                    k.bio.set_flags_inval(bp)
                k.bio.brelse(bp)

    def _drop_ind(self, ip: inode, ilbn: int, blk: int) -> GEN:
        """Invalidate a freed indirect block's buffer (vtruncbuf)."""
        k = self.k
        vp = ip.vp
        assert vp is not None
        ip.ind.pop(ilbn, None)
        bp = yield from k.bio.bget(vp, ilbn, BSIZE, daddr=blk * SECTORS)
        bp.b_flags |= B_INVAL
        k.bio.brelse(bp)
        return 0

    # ---- directories (ufs_lookup) -------------------------------------------------------
    def _dir_names(self, dp: inode
                   ) -> Generator[Any, Any, tuple[int, dict[str, tuple[int, int, int]]]]:
        """(error, the directory's names): every block of the directory is read once and the
        names kept with the in-core inode (the name cache). A block that cannot be read is
        EIO and nothing is cached: a partial list would turn the unread names into ENOENT now
        and into duplicate entries at the next create."""
        if dp.names is not None:
            return 0, dp.names
        names: dict[str, tuple[int, int, int]] = {}
        free: list[tuple[int, int]] = []
        vp = dp.vp
        assert vp is not None
        for lbn in range(dp.d.size // BSIZE):
            daddr = yield from self.bmap(vp, lbn)
            if daddr < 0:
                continue
            err, bp = yield from self.k.bio.bread(vp, lbn, BSIZE, daddr=daddr)
            if err:
                self.k.bio.brelse(bp)
                return err, {}
            raw = bp.b_data[0]
            if not isinstance(raw, (bytes, bytearray)):
                raw = bytes(BSIZE)
            used = set()
            for slot, ino, name in unpack_dirents(raw):
                names[name] = (ino, lbn, slot)
                used.add(slot)
            free.extend((lbn, s) for s in range(DIRENTS) if s not in used)
            self.k.bio.brelse(bp)
        dp.names = names
        dp.free_slots = free
        return 0, names

    def _dir_block(self, dp: inode, lbn: int) -> Generator[Any, Any, tuple[int, buf | None]]:
        vp = dp.vp
        assert vp is not None
        daddr = yield from self.bmap(vp, lbn)
        err, bp = yield from self.k.bio.bread(vp, lbn, BSIZE, daddr=daddr)
        if err:
            self.k.bio.brelse(bp)
            return err, None
        if not isinstance(bp.b_data[0], bytearray):
            v = bp.b_data[0]
            bp.b_data[0] = bytearray(v if isinstance(v, (bytes, bytearray)) else BSIZE)
        return 0, bp

    def direnter(self, dp: inode, name: str, ino: int, update_dir: bool = True) -> GEN:
        """ufs_direnter: put an entry in a free slot, growing the directory by a block if
        needed; the block is written synchronously (FFS without soft updates), then the
        directory's inode if it changed (not for a new directory's "." and "..": mkdir
        writes its inode once both are on disk, as ufs_mkdir's template block)."""
        vp = dp.vp
        assert vp is not None
        err, names = yield from self._dir_names(dp)
        if err:
            return err
        sync = not (vp.v_mount is not None and vp.v_mount.async_)
        if not dp.free_slots:
            lbn = dp.d.size // BSIZE
            err = yield from self.balloc_range(vp, lbn * BSIZE, BSIZE, dirop=True)
            if err:
                return err
            daddr = yield from self.bmap(vp, lbn)
            bp = yield from self.k.bio.bget(vp, lbn, BSIZE, daddr=daddr)
            bp.b_data[0] = bytearray(BSIZE)
            dp.d.size += BSIZE
            vp.v_size = dp.d.size
            dp.dirty = True
            dp.free_slots = [(lbn, s) for s in range(DIRENTS)]
            self.k.bio.bdwrite(bp)
        lbn, slot = dp.free_slots.pop(0)
        err, dbp = yield from self._dir_block(dp, lbn)
        if err or dbp is None:
            return err or ENOENT
        bp = dbp
        pack_dirent(bp.b_data[0], slot, ino, name)
        names[name] = (ino, lbn, slot)
        err = yield from self.meta_write(bp, sync)
        if err:
            # the failed block was invalidated by brelse: the disk's copy, without the entry,
            # is what a later lookup reads, so the name cache must forget it too
            self._dir_write_failed(dp, name, None, (lbn, slot))
            return err
        if dp.dirty and update_dir:
            yield from self.update(dp, sync)
        return err

    def _dir_write_failed(self, dp: inode, name: str, old: tuple[int, int, int] | None,
                          slot: tuple[int, int] | None) -> None:
        """A synchronous directory write failed: make the cached names what the disk holds
        (the entry `name` as `old`, or absent), and take a slot back out of or into the free
        list."""
        if dp.names is None:
            return
        if old is None:
            dp.names.pop(name, None)
            if slot is not None:
                dp.free_slots.insert(0, slot)
        else:
            dp.names[name] = old
            if slot is not None and slot in dp.free_slots:
                dp.free_slots.remove(slot)

    def dirremove(self, dp: inode, name: str) -> GEN:
        vp = dp.vp
        assert vp is not None
        err, names = yield from self._dir_names(dp)
        if err:
            return err
        ino, lbn, slot = names.pop(name)
        err, bp = yield from self._dir_block(dp, lbn)
        if err or bp is None:
            return err or ENOENT
        bp.b_data[0][slot * DIRENT_SIZE:(slot + 1) * DIRENT_SIZE] = bytes(DIRENT_SIZE)
        dp.free_slots.append((lbn, slot))
        sync = not (vp.v_mount is not None and vp.v_mount.async_)
        err = yield from self.meta_write(bp, sync)
        if err:
            self._dir_write_failed(dp, name, (ino, lbn, slot), (lbn, slot))
        return err

    def dirrewrite(self, dp: inode, name: str, ino: int) -> GEN:
        err, names = yield from self._dir_names(dp)
        if err:
            return err
        was = names[name]
        _, lbn, slot = was
        err, bp = yield from self._dir_block(dp, lbn)
        if err or bp is None:
            return err or ENOENT
        pack_dirent(bp.b_data[0], slot, ino, name)
        names[name] = (ino, lbn, slot)
        vp = dp.vp
        assert vp is not None
        sync = not (vp.v_mount is not None and vp.v_mount.async_)
        err = yield from self.meta_write(bp, sync)
        if err:
            self._dir_write_failed(dp, name, was, None)
        return err

    # ---- namei ----------------------------------------------------------------------------
    def _walk(self, parts: list[str]) -> Generator[Any, Any, tuple[int, vnode | None]]:
        """Look up a list of components from the root: a referenced vnode."""
        k = self.k
        assert self.rootvp is not None
        vp = self.rootvp
        k.vfs.vref(vp)
        for name in parts:
            if len(name.encode()) > MAXNAMLEN:
                yield from k.vfs.vrele(vp)
                return ENAMETOOLONG, None
            if vp.v_type != VDIR:
                yield from k.vfs.vrele(vp)
                return ENOTDIR, None
            self.m.charge(self.m.costs.fs_op)
            err, names = yield from self._dir_names(vp.v_data)
            ent = names.get(name)
            if ent is None:
                yield from k.vfs.vrele(vp)
                return err or ENOENT, None
            err, nvp = yield from self.vget_ino(ent[0])
            yield from k.vfs.vrele(vp)
            if err or nvp is None:
                return err or ENOENT, None
            vp = nvp
        return 0, vp

    def lookup_path(self, path: str) -> Generator[Any, Any, tuple[int, vnode | None]]:
        parts = _split(path)
        if parts is None:
            return ENOENT, None
        return (yield from self._walk(parts))

    def _parent(self, path: str) -> Generator[Any, Any, tuple[int, vnode | None, str]]:
        parts = _split(path)
        if not parts:
            return EINVAL if parts is not None else ENOENT, None, ""
        name = parts[-1]
        if len(name.encode()) > MAXNAMLEN:
            return ENAMETOOLONG, None, ""
        err, dvp = yield from self._walk(parts[:-1])
        if err or dvp is None:
            return err, None, ""
        if dvp.v_type != VDIR:
            yield from self.k.vfs.vrele(dvp)
            return ENOTDIR, None, ""
        return 0, dvp, name

    def _make(self, dvp: vnode, name: str, mode: int
              ) -> Generator[Any, Any, tuple[int, vnode | None]]:
        """ufs_makeinode: allocate, write the inode synchronously, then the entry."""
        k = self.k
        dp: inode = dvp.v_data
        err, ip = yield from self.ialloc(mode)
        if err or ip is None:
            return err, None
        ip.d.nlink = 1
        vp = yield from k.vfs.getnewvnode("ufs", self.mp)
        ip.vp = vp
        vp.v_data = ip
        vp.v_type = VDIR if mode & IFDIR else VREG
        vp.v_size = 0
        self.ihash[ip.ino] = vp
        sync = not (self.mp is not None and self.mp.async_)
        if mode & IFDIR:
            ip.names = {}
            ip.free_slots = []
            ip.d.nlink = 2
            err = yield from self.direnter(ip, ".", ip.ino, update_dir=False)
            if not err:
                err = yield from self.direnter(ip, "..", dp.ino, update_dir=False)
            dp.d.nlink += 1
            dp.dirty = True
        yield from self.update(ip, sync)
        if not err:
            err = yield from self.direnter(dp, name, ip.ino)
        if err:
            ip.d.nlink = 0
            yield from k.vfs.vrele(vp)
            return err, None
        return 0, vp

    def open_path(self, path: str, flags: int, mode: int
                  ) -> Generator[Any, Any, tuple[int, vnode | None]]:
        k = self.k
        err, dvp, name = yield from self._parent(path)
        if err or dvp is None:
            if err == EINVAL:          # "/": the root itself
                err, rvp = yield from self.lookup_path("/")
                if not err and rvp is not None and flags & O_ACCMODE != O_RDONLY:
                    yield from k.vfs.vrele(rvp)
                    return EISDIR, None
                return err, rvp
            return err, None
        yield from k.vfs.vn_lock(dvp, LK_EXCLUSIVE)
        err, names = yield from self._dir_names(dvp.v_data)
        ent = names.get(name)
        vp = None
        if err:
            pass
        elif ent is None:
            if not flags & O_CREAT:
                err = ENOENT
            else:
                err, vp = yield from self._make(dvp, name, IFREG | (mode & 0o7777))
        elif flags & O_CREAT and flags & O_EXCL:
            err = EEXIST
        else:
            err, vp = yield from self.vget_ino(ent[0])
        yield from k.vfs.vn_unlock(dvp)
        yield from k.vfs.vrele(dvp)
        if err or vp is None:
            return err or ENOENT, None
        if vp.v_type == VDIR and flags & O_ACCMODE != O_RDONLY:
            yield from k.vfs.vrele(vp)
            return EISDIR, None
        if flags & O_DIRECTORY and vp.v_type != VDIR:
            yield from k.vfs.vrele(vp)
            return ENOTDIR, None
        if flags & O_TRUNC and vp.v_type == VREG and flags & O_ACCMODE != O_RDONLY \
                and vp.v_size:
            err = yield from self.truncate(vp, 0)
            if err:
                yield from k.vfs.vrele(vp)
                return err, None
        return 0, vp

    def mkdir(self, path: str, mode: int) -> GEN:
        k = self.k
        err, dvp, name = yield from self._parent(path)
        if err or dvp is None:
            return EEXIST if err == EINVAL else err
        yield from k.vfs.vn_lock(dvp, LK_EXCLUSIVE)
        err, names = yield from self._dir_names(dvp.v_data)
        if err:
            pass
        elif name in names:
            err = EEXIST
        else:
            err, vp = yield from self._make(dvp, name, IFDIR | (mode & 0o7777))
            if vp is not None:
                yield from k.vfs.vrele(vp)
        yield from k.vfs.vn_unlock(dvp)
        yield from k.vfs.vrele(dvp)
        return err

    def _remove(self, path: str, want_dir: bool) -> GEN:
        k = self.k
        err, dvp, name = yield from self._parent(path)
        if err or dvp is None:
            return (EISDIR if not want_dir else EINVAL) if err == EINVAL else err
        if name in (".", ".."):
            yield from k.vfs.vrele(dvp)
            return EINVAL
        yield from k.vfs.vn_lock(dvp, LK_EXCLUSIVE)
        dp: inode = dvp.v_data
        err, names = yield from self._dir_names(dp)
        ent = names.get(name)
        vp = None
        if err:
            pass
        elif ent is None:
            err = ENOENT
        else:
            err, vp = yield from self.vget_ino(ent[0])
        if not err and vp is not None:
            ip: inode = vp.v_data
            if want_dir and vp.v_type != VDIR:
                err = ENOTDIR
            elif not want_dir and vp.v_type == VDIR:
                err = EISDIR
            elif want_dir:
                err, sub = yield from self._dir_names(ip)
                if not err and any(n not in (".", "..") for n in sub):
                    err = ENOTEMPTY
            if not err:
                err = yield from self.dirremove(dp, name)
                if not err:
                    ip.d.nlink = 0 if want_dir else ip.d.nlink - 1
                    ip.dirty = True
                    self._unlinked(ip)
                    if want_dir:
                        dp.d.nlink -= 1
                        dp.dirty = True
                        yield from self.update(dp, False)
                    yield from self.update(ip, False)
        if vp is not None:
            yield from k.vfs.vrele(vp)
        yield from k.vfs.vn_unlock(dvp)
        yield from k.vfs.vrele(dvp)
        return err

    def unlink(self, path: str) -> GEN:
        return (yield from self._remove(path, False))

    def rmdir(self, path: str) -> GEN:
        return (yield from self._remove(path, True))

    def rename(self, old: str, new: str) -> GEN:
        k = self.k
        err, fdvp, fname = yield from self._parent(old)
        if err or fdvp is None:
            return err
        err, tdvp, tname = yield from self._parent(new)
        if err or tdvp is None:
            yield from k.vfs.vrele(fdvp)
            return err
        fdp: inode = fdvp.v_data
        tdp: inode = tdvp.v_data
        # both directories locked, in inode order: two renames in opposite directions
        # (/a -> /d/c and /d/c -> /a) otherwise each hold one lock and wait for the other
        # (found by the crash property tests; 2.0's ufs_rename juggled the locks instead)
        first, second = (fdvp, tdvp) if fdp.ino <= tdp.ino else (tdvp, fdvp)
        yield from k.vfs.vn_lock(first, LK_EXCLUSIVE)
        if second is not first:
            yield from k.vfs.vn_lock(second, LK_EXCLUSIVE)
        err, fnames = yield from self._dir_names(fdp)
        tnames: dict[str, tuple[int, int, int]] = {}
        if not err:
            err, tnames = yield from self._dir_names(tdp)
        ent = fnames.get(fname)
        if err:
            pass
        elif ent is None or fname in (".", ".."):
            err = ENOENT if ent is None else EINVAL
        else:
            err, svp = yield from self.vget_ino(ent[0])
            if not err and svp is not None:
                sip: inode = svp.v_data
                tent = tnames.get(tname)
                same = tent is not None and tent[0] == ent[0]
                if not same:
                    # ufs_rename: the link count covers the new name before it is entered
                    # (written with wait), so a failure or a crash half way leaves at least
                    # as many links counted as there are names, never fewer
                    sip.d.nlink += 1
                    sip.dirty = True
                    yield from self.update(sip, not (self.mp is not None and self.mp.async_))
                if same:
                    pass                             # rename onto itself
                elif tent is not None:
                    err, tvp = yield from self.vget_ino(tent[0])
                    if not err and tvp is not None:
                        if tvp.v_type == VDIR and svp.v_type != VDIR:
                            err = EISDIR
                        elif tvp.v_type != VDIR and svp.v_type == VDIR:
                            err = ENOTDIR
                        elif tvp.v_type == VDIR:
                            err, sub = yield from self._dir_names(tvp.v_data)
                            if not err and any(n not in (".", "..") for n in sub):
                                err = ENOTEMPTY
                        if not err:
                            err = yield from self.dirrewrite(tdp, tname, ent[0])
                        if not err:
                            tip: inode = tvp.v_data
                            tip.d.nlink = 0 if tvp.v_type == VDIR else tip.d.nlink - 1
                            tip.dirty = True
                            self._unlinked(tip)
                            yield from self.update(tip, False)
                        yield from k.vfs.vrele(tvp)
                else:
                    err = yield from self.direnter(tdp, tname, ent[0])
                if not same:
                    entered = not err
                    if entered:
                        err = yield from self.dirremove(fdp, fname)
                    if not entered or not err:
                        sip.d.nlink -= 1             # one name again (or the entry failed)
                        sip.dirty = True
                    # else: two names, two links: consistent, and the error is returned
                    if not err and svp.v_type == VDIR and fdp is not tdp:
                        yield from self.dirrewrite(sip, "..", tdp.ino)
                        fdp.d.nlink -= 1
                        tdp.d.nlink += 1
                        fdp.dirty = tdp.dirty = True
                        yield from self.update(fdp, False)
                        yield from self.update(tdp, False)
                yield from k.vfs.vrele(svp)
        if tdvp is not fdvp:
            yield from k.vfs.vn_unlock(tdvp)
        yield from k.vfs.vn_unlock(fdvp)
        yield from k.vfs.vrele(tdvp)
        yield from k.vfs.vrele(fdvp)
        return err

    def _unlinked(self, ip: inode) -> None:
        """Its last name is gone: what was promised about its data no longer holds."""
        if ip.d.nlink <= 0:
            for f in self.k.notify.unlinked:
                f(ip.ino, self.m.time())

    # ---- vnode life cycle ------------------------------------------------------------------
    def inactive(self, vp: vnode) -> GEN:
        """VOP_INACTIVE (vnode locked): free an unlinked inode, or write back a dirty one."""
        ip: inode | None = vp.v_data
        if ip is None:
            return 0
        if ip.d.nlink <= 0:
            yield from self._truncate(ip, 0)
            if ip.d.isdir():
                pass
            ip.d.mode = 0
            yield from self.update(ip, False)
            yield from self.ifree(ip.ino)
            ip.d.nlink = -1          # freed: never write it again
            self.ihash.pop(ip.ino, None)
        elif ip.dirty:
            yield from self.update(ip, False)
        return 0

    def reclaim(self, vp: vnode) -> None:
        ip: inode | None = vp.v_data
        if ip is not None and self.ihash.get(ip.ino) is vp:
            del self.ihash[ip.ino]
        vp.v_data = None


class FfsVfsOps:
    """ffs_vfsops: the file-system type the kernel mounts by name ("ffs")."""

    name = "ffs"

    def mountroot(self, k: Kernel, devvp: vnode, async_: bool
                  ) -> Generator[Any, Any, tuple[int, FFS | None]]:
        """ffs_mountroot: mount the root file system on the root device's vnode."""
        fs = FFS(k, devvp, k.cfg.fs_blocks)
        err: int = yield from fs.mount(async_)
        return (err, None) if err else (0, fs)


ffs_vfsops = FfsVfsOps()


def _find_clear(data: Any, lo: int, hi: int) -> int:
    """The first clear bit in [lo, hi) of a bitmap block, or -1."""
    byte = lo >> 3
    end = (hi + 7) >> 3
    full = 0xFF
    while byte < end:
        v = data[byte]
        if v != full:
            for bit in range(8):
                i = byte * 8 + bit
                if lo <= i < hi and not v >> bit & 1:
                    return i
        byte += 1
    return -1


__all__ = ["FFS", "ffs_vfsops", "IO_APPEND", "IO_DSYNC", "IO_MMAP", "IO_SYNC", "inode"]
