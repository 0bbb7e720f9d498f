"""The UFS vnode operations (sys/ufs/ufs/ufs_vnops.c, netbsd-2-0 branch): ufs_create and
ufs_makeinode, ufs_remove, ufs_link, ufs_rename, ufs_mkdir, ufs_rmdir, ufs_open, ufs_close,
ufs_getattr, ufs_setattr, ufs_strategy, and ufs_checkpath.

The ordering of FFS without soft updates: a new inode is written (with wait) before the
entry that names it; a link count covers a new name before the name is entered; an entry is
removed before the inode it names is freed (at inactive). Under MNT_ASYNC the waits become
delayed writes. The vnode locks are vnode_if.src's: each operation vputs what it was given.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ffs_alloc import ffs_valloc, ffs_vfree
from vfslab.fs.ffs_balloc import ffs_balloc
from vfslab.fs.ffs_inode import update_inode
from vfslab.fs.ufs_ihash import ufs_ihashins
from vfslab.fs.ufs_layout import BSIZE, IFDIR, IFLNK, IFREG, ROOTINO, pack_dirent
from vfslab.fs.ufs_lookup import (
    ufs_dirempty,
    ufs_direnter,
    ufs_dirremove,
    ufs_dirrewrite,
    ufs_dotdot,
)
from vfslab.kern.buf import B_ERROR
from vfslab.kern.lock import LK_EXCLUSIVE, LK_RETRY
from vfslab.kern.vfs_lookup import DELETE, ISDOTDOT, LOCKLEAF, LOCKPARENT, MODMASK, relookup
from vfslab.kern.vnode import VDIR, VLNK, VNL_CHILD, VNL_RENAME, VNON
from vfslab.kern.vnode_if import VOP_REMOVE, VOP_STRATEGY, VOP_TRUNCATE

if TYPE_CHECKING:
    from vfslab.fs.ffs_vfsops import ufsmount
    from vfslab.fs.inode import inode
    from vfslab.kern.buf import buf
    from vfslab.kern.vfs_lookup import componentname
    from vfslab.kern.vnode import vnode

EPERM = 1
ENOENT = 2
EEXIST = 17
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ENFILE = 23
EMLINK = 31
ENAMETOOLONG = 63
ENOTEMPTY = 66
LINK_MAX = 32767
GEN = Generator[Any, Any, int]


def _ump(vp: vnode) -> ufsmount:
    ump: ufsmount = vp.v_data.ump
    return ump


def ffs_vnew(ump: ufsmount, ip: inode) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """(0, a vnode) for a newly allocated inode, in the inode hash and locked (what
    ffs_valloc's VFS_VGET returns), or getnewvnode's errno with the inode freed again (as
    ffs_valloc does when VFS_VGET fails)."""
    vfs = ump.k.vfs
    err, vp = yield from vfs.getnewvnode("ufs", ump.mp, ump.vnodeop)
    if vp is None:
        yield from ffs_vfree(ump, ip.ino)
        return err, None
    ip.vp = vp
    vp.v_data = ip
    vp.v_type = ip.d.vtype()
    vp.v_size = 0
    yield from ufs_ihashins(ump, ip.ino, vp, VNL_CHILD)   # locks it, under its directory
    return 0, vp


def _unlinked(ip: inode) -> None:
    """Its last name is gone: what was promised about its data no longer holds."""
    if ip.d.nlink <= 0:
        for f in ip.ump.k.notify.unlinked:
            f(ip.ino, ip.ump.m.time())


def _valloc_vnode(dvp: vnode, mode: int, nlink: int
                  ) -> Generator[Any, Any, tuple[int, inode | None, vnode | None]]:
    """VOP_VALLOC as ufs_makeinode and ufs_mkdir begin: an inode of `mode` with `nlink`
    links and its vnode, locked. On failure dvp is vput (both callers' contract)."""
    ump = _ump(dvp)
    err, ip = yield from ffs_valloc(ump, mode)
    tvp = None
    if not err and ip is not None:
        ip.d.nlink = nlink
        ip.dirty = True
        err, tvp = yield from ffs_vnew(ump, ip)
    if err or tvp is None:
        dvp.v_data.lookup_slot = None
        yield from ump.k.vfs.vput(dvp)
        return err or ENFILE, None, None
    return 0, ip, tvp


def ufs_makeinode(mode: int, dvp: vnode, cnp: componentname
                  ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """Allocate an inode, write it (with wait), enter its name; vput dvp. The new vnode is
    returned locked."""
    ump = _ump(dvp)
    vfs = ump.k.vfs
    err, ip, tvp = yield from _valloc_vnode(dvp, mode, 1)
    if err or ip is None or tvp is None:
        return err, None
    err = yield from update_inode(ip, not ump.async_)
    if not err:
        err = yield from ufs_direnter(dvp, ip.ino, cnp.cn_nameptr)
    if err:
        # the inode or the entry could not be written: deallocate (at inactive)
        ip.d.nlink = 0
        ip.dirty = True
        tvp.v_type = VNON
        dvp.v_data.lookup_slot = None
        yield from vfs.vput(tvp)
        yield from vfs.vput(dvp)
        return err, None
    yield from vfs.vput(dvp)
    return 0, tvp


def ufs_create(dvp: vnode, cnp: componentname, mode: int
               ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    return (yield from ufs_makeinode(IFREG | (mode & 0o7777), dvp, cnp))


def ufs_symlink(dvp: vnode, cnp: componentname, target: str) -> GEN:
    """VOP_SYMLINK (ufs_vnops.c): ufs_makeinode(IFLNK | 0777), then the target written into
    the link's first block (written synchronously unless MNT_ASYNC, as ufs_makeinode writes
    the inode). vputs dvp. Simplified: 2.0 keeps a target shorter than 60 bytes in the inode
    (a fast symlink) and writes a longer one through VOP_WRITE; vfslab's file data are
    version stamps, so the target is a metadata block of bytes here."""
    ump = _ump(dvp)
    k = ump.k
    raw = target.encode("latin-1", "replace")
    if not raw or len(raw) > BSIZE - 1:
        yield from k.vfs.vput(dvp)
        return ENAMETOOLONG if raw else ENOENT
    err, tvp = yield from ufs_makeinode(IFLNK | 0o777, dvp, cnp)
    if err or tvp is None:
        return err
    ip: inode = tvp.v_data
    err = yield from ffs_balloc(tvp, 0, len(raw), dirop=True)
    if not err:
        bp = yield from k.bio.bget(tvp, 0, BSIZE)
        bp.b_data[0] = bytearray(raw.ljust(BSIZE, b"\0"))
        ip.d.size = tvp.v_size = len(raw)
        ip.dirty = True
        if ump.async_:
            k.bio.bdwrite(bp)
        else:
            err = yield from k.bio.bwrite(bp)
        if not err:
            err = yield from update_inode(ip, not ump.async_)
    yield from k.vfs.vput(tvp)
    return err


def ufs_readlink(vp: vnode) -> Generator[Any, Any, tuple[int, str]]:
    """VOP_READLINK: the target, read from the link's block through the buffer cache."""
    from vfslab.fs.ufs_lookup import ufs_blkatoff

    if vp.v_type != VLNK:
        return EINVAL, ""
    err, bp = yield from ufs_blkatoff(vp, 0)
    if err:
        return err, ""
    raw = bytes(bp.b_data[0][:vp.v_size])
    vp.v_data.ump.k.bio.brelse(bp)
    return 0, raw.decode("latin-1")


def ufs_mkdir(dvp: vnode, cnp: componentname, mode: int
              ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """Allocate the inode; bump the parent's link count and write the parent's inode; write
    the new directory's first block ("." and ".." from the template) and its inode; only
    then enter its name in the parent. vputs dvp."""
    ump = _ump(dvp)
    k = ump.k
    vfs = k.vfs
    dp: inode = dvp.v_data
    sync = not ump.async_
    if dp.d.nlink >= LINK_MAX:
        dp.lookup_slot = None
        yield from vfs.vput(dvp)
        return EMLINK, None
    slot = dp.lookup_slot                    # the parent's slot, kept across what follows
    err, ip, tvp = yield from _valloc_vnode(dvp, IFDIR | (mode & 0o7777), 2)
    if err or ip is None or tvp is None:
        return err, None
    dp.d.nlink += 1
    dp.dirty = True
    err = yield from update_inode(dp, sync)
    if not err:
        err = yield from ffs_balloc(tvp, 0, BSIZE, dirop=True)
    if not err:
        bp = yield from k.bio.bget(tvp, 0, BSIZE)
        blk = bytearray(BSIZE)
        pack_dirent(blk, 0, ip.ino, ".")
        pack_dirent(blk, 1, dp.ino, "..")
        bp.b_data[0] = blk
        ip.d.size = tvp.v_size = BSIZE
        err = yield from k.bio.bwrite(bp)            # VOP_BWRITE (bdwrite under MNT_ASYNC)
    if not err:
        err = yield from update_inode(ip, sync)
    if not err:
        dp.lookup_slot = slot
        err = yield from ufs_direnter(dvp, ip.ino, cnp.cn_nameptr)
    if err:
        dp.d.nlink -= 1
        dp.dirty = True
        ip.d.nlink = 0
        ip.dirty = True
        dp.lookup_slot = None
        yield from vfs.vput(tvp)
        yield from vfs.vput(dvp)
        return err, None
    yield from vfs.vput(dvp)
    return 0, tvp


def ufs_remove(dvp: vnode, vp: vnode, cnp: componentname) -> GEN:
    """Remove a name of a non-directory (EPERM for a directory, as 2.0); the inode's link
    count drops and it is freed at its last release (ufs_inactive). vputs both."""
    vfs = _ump(dvp).k.vfs
    ip: inode = vp.v_data
    if vp.v_type == VDIR:
        err = EPERM
    else:
        err = yield from ufs_dirremove(dvp, cnp.cn_nameptr)
        if not err:
            ip.d.nlink -= 1
            ip.dirty = True
            _unlinked(ip)
    yield from vfs.vput_parent(vp, dvp)       # vp is dvp for "."
    yield from vfs.vput(dvp)
    return err


def ufs_link(dvp: vnode, vp: vnode, cnp: componentname) -> GEN:
    """A new name for an existing file: its link count goes up and its inode is written
    before the entry; vputs dvp (vp stays referenced, unlocked)."""
    ump = _ump(dvp)
    vfs = ump.k.vfs
    if vp.v_type == VDIR:
        dvp.v_data.lookup_slot = None
        yield from vfs.vput(dvp)
        return EPERM
    if dvp is not vp:
        yield from vfs.vn_lock(vp, LK_EXCLUSIVE | LK_RETRY | VNL_CHILD)
    ip: inode = vp.v_data
    if ip.d.nlink >= LINK_MAX:
        err = EMLINK
    else:
        ip.d.nlink += 1
        ip.dirty = True
        err = yield from update_inode(ip, not ump.async_)
        if not err:
            err = yield from ufs_direnter(dvp, ip.ino, cnp.cn_nameptr)
        if err:
            ip.d.nlink -= 1
            ip.dirty = True
    dvp.v_data.lookup_slot = None
    if dvp is not vp:
        yield from vfs.vn_unlock(vp)
    yield from vfs.vput(dvp)
    return err


def ufs_rmdir(dvp: vnode, vp: vnode, cnp: componentname) -> GEN:
    """Remove an empty directory: its entry first (so a crash leaves it for lost+found),
    then the link counts, then its blocks (VOP_TRUNCATE, with wait). vputs both."""
    ump = _ump(dvp)
    k = ump.k
    vfs = k.vfs
    ip: inode = vp.v_data
    dp: inode = dvp.v_data
    if dp is ip:
        yield from vfs.vrele(dvp)
        yield from vfs.vput(vp)
        return EINVAL
    err = 0
    if ip.renaming:
        err = EINVAL
    else:
        e, empty = yield from ufs_dirempty(vp)
        if e:
            err = e
        elif ip.d.nlink != 2 or not empty:
            err = ENOTEMPTY
    if not err:
        err = yield from ufs_dirremove(dvp, cnp.cn_nameptr)
    if not err:
        k.namecache.cache_purge(dvp)
        dp.d.nlink -= 1
        dp.dirty = True
        ip.d.nlink = 0
        ip.dirty = True
        _unlinked(ip)
        err = yield from VOP_TRUNCATE(vp, 0, 0)
        k.namecache.cache_purge(vp)
    dp.lookup_slot = None
    yield from vfs.vput(dvp)
    yield from vfs.vput(vp)
    return err


def ufs_checkpath(source: inode, tdvp: vnode) -> GEN:
    """Is the source directory an ancestor of the target directory? Walks ".." up from the
    target (locked on entry, always vput), one directory locked at a time: EINVAL if so."""
    from vfslab.fs.ffs_vfsops import ffs_vget

    ump = source.ump
    vfs = ump.k.vfs
    vp: vnode | None = tdvp
    err = 0
    if tdvp.v_data.ino == source.ino:
        err = EEXIST
    elif tdvp.v_data.ino != ROOTINO:
        while vp is not None:
            if vp.v_type != VDIR:
                err = ENOTDIR
                break
            err, up = yield from ufs_dotdot(vp)
            if err:
                break
            if up == source.ino:
                err = EINVAL
                break
            if up == ROOTINO:
                break
            yield from vfs.vput(vp)
            vp = None
            err, vp = yield from ffs_vget(ump, up)
            if err:
                vp = None
                break
    if vp is not None:
        yield from vfs.vput(vp)
    return err


def ufs_rename(fdvp: vnode, fvp: vnode, fcnp: componentname, tdvp: vnode,
               tvp: vnode | None, tcnp: componentname) -> GEN:
    """rename in 2.0's order: the source locked alone, its link count raised and written;
    the target entry made or rewritten under the target directory's lock; then the source
    looked up again under its directory's lock and its entry removed (for a directory that
    changes parent, its ".." rewritten and the link counts moved). fdvp and fvp come
    referenced, tdvp and tvp locked; all four are released."""
    ump = _ump(fdvp)
    k = ump.k
    vfs = k.vfs
    sync = not ump.async_

    def release_target() -> Generator[Any, Any, None]:
        yield from vfs.vput_parent(tdvp, tvp)
        if tvp is not None:
            yield from vfs.vput(tvp)

    if tvp is not None and fvp is tvp:
        # two names of one file: 2.0 removes the source name
        if fvp.v_type == VDIR:
            yield from release_target()
            yield from vfs.vrele(fdvp)
            yield from vfs.vrele(fvp)
            return EINVAL
        yield from release_target()
        yield from vfs.vrele(fvp)
        fcnp.cn_flags = (fcnp.cn_flags & ~MODMASK) | LOCKPARENT | LOCKLEAF
        fcnp.cn_nameiop = DELETE
        yield from vfs.vn_lock(fdvp, LK_EXCLUSIVE | LK_RETRY)
        err, svp = yield from relookup(k, fdvp, fcnp)
        if err or svp is None:
            yield from vfs.vput(fdvp)
            return err
        return (yield from VOP_REMOVE(fdvp, svp, fcnp))
    yield from vfs.vn_lock(fvp, LK_EXCLUSIVE | LK_RETRY | VNL_RENAME)
    ip: inode = fvp.v_data
    dp: inode = fdvp.v_data
    doingdirectory = fvp.v_type == VDIR
    if doingdirectory:
        if fcnp.cn_nameptr == "." or dp is ip or fcnp.cn_flags & ISDOTDOT or \
                tcnp.cn_flags & ISDOTDOT or ip.renaming:
            yield from vfs.vn_unlock(fvp)
            yield from release_target()
            yield from vfs.vrele(fdvp)
            yield from vfs.vrele(fvp)
            return EINVAL
        ip.renaming = True
    oldparent = dp.ino
    if ip.d.nlink >= LINK_MAX:
        err = EMLINK
    else:
        # the link count covers the new name before it is entered (written with wait), so
        # a failure or a crash half way leaves at least as many links as names
        ip.d.nlink += 1
        ip.dirty = True
        err = yield from update_inode(ip, sync)
    yield from vfs.vn_unlock(fvp)
    if err:
        ip.renaming = False
        yield from release_target()
        yield from vfs.vrele(fdvp)
        yield from vfs.vrele(fvp)
        return err
    tdp: inode = tdvp.v_data
    newparent = tdp.ino if tdp.ino != oldparent else 0
    if doingdirectory and newparent:
        # is the source an ancestor of the target? (the target's locks are given up)
        if tvp is not None:
            yield from vfs.vput(tvp)
        vfs.vref(tdvp)                      # SAVESTART: kept for the relookup
        err = yield from ufs_checkpath(ip, tdvp)
        if not err:
            yield from vfs.vn_lock(tdvp, LK_EXCLUSIVE | LK_RETRY)
            tcnp.cn_flags = (tcnp.cn_flags & ~MODMASK) | LOCKPARENT | LOCKLEAF
            err, tvp = yield from relookup(k, tdvp, tcnp)
            if err:
                yield from vfs.vput(tdvp)
        else:
            yield from vfs.vrele(tdvp)
        if err:
            return (yield from _rename_bad(ip, fdvp, fvp, err))
    xp: inode | None = tvp.v_data if tvp is not None else None
    if xp is None:
        if doingdirectory and newparent:
            tdp.d.nlink += 1
            tdp.dirty = True
            err = yield from update_inode(tdp, sync)
        if not err:
            err = yield from ufs_direnter(tdvp, ip.ino, tcnp.cn_nameptr)
            if err and doingdirectory and newparent:
                tdp.d.nlink -= 1
                tdp.dirty = True
        yield from vfs.vput(tdvp)
    else:
        assert tvp is not None
        if xp.d.isdir():
            e, empty = yield from ufs_dirempty(tvp)
            if e:
                err = e
            elif not empty or xp.d.nlink > 2:
                err = ENOTEMPTY
            elif not doingdirectory:
                err = ENOTDIR
        elif doingdirectory:
            err = EISDIR
        if not err:
            err = yield from ufs_dirrewrite(tdvp, tcnp.cn_nameptr, ip.ino)
        if not err:
            if doingdirectory and not newparent:
                tdp.d.nlink -= 1
                tdp.dirty = True
            xp.d.nlink = 0 if xp.d.isdir() else xp.d.nlink - 1
            xp.dirty = True
            _unlinked(xp)
            if xp.d.isdir():
                yield from VOP_TRUNCATE(tvp, 0, 0)
            k.namecache.cache_purge(tvp)
        tdp.lookup_slot = None
        yield from vfs.vput(tdvp)
        yield from vfs.vput(tvp)
    if err:
        return (yield from _rename_bad(ip, fdvp, fvp, err))
    # remove the source: look it up again, under its directory's lock
    fcnp.cn_flags = (fcnp.cn_flags & ~MODMASK) | LOCKPARENT | LOCKLEAF
    fcnp.cn_nameiop = DELETE
    yield from vfs.vn_lock(fdvp, LK_EXCLUSIVE | LK_RETRY)
    err, svp = yield from relookup(k, fdvp, fcnp)
    if err or svp is None:
        # the source went away while unlocked: its new name stands, with its link
        ip.renaming = False
        yield from vfs.vput(fdvp)
        yield from vfs.vrele(fvp)
        return err
    if svp.v_data is ip:
        if doingdirectory and newparent:
            dp.d.nlink -= 1
            dp.dirty = True
            e = yield from ufs_dirrewrite(svp, "..", newparent)
            err = err or e
        e = yield from ufs_dirremove(fdvp, fcnp.cn_nameptr)
        err = err or e
        if not e:
            ip.d.nlink -= 1                 # one name again
            ip.dirty = True
        if doingdirectory:
            k.namecache.cache_purge(fvp)
    else:
        dp.lookup_slot = None
    ip.renaming = False
    yield from vfs.vput_parent(svp, fdvp)
    yield from vfs.vput(fdvp)
    yield from vfs.vrele(fvp)
    return err


def _rename_bad(ip: inode, fdvp: vnode, fvp: vnode, err: int) -> GEN:
    """Undo the link count raised for the new name, release the source."""
    vfs = ip.ump.k.vfs
    yield from vfs.vn_lock(fvp, LK_EXCLUSIVE | LK_RETRY)
    ip.d.nlink -= 1
    ip.dirty = True
    ip.renaming = False
    yield from vfs.vput(fvp)
    yield from vfs.vrele(fdvp)
    return err


def ufs_open(vp: vnode, mode: int) -> GEN:
    yield from ()
    return 0


def ufs_close(vp: vnode, fflag: int) -> GEN:
    yield from ()
    return 0


def ufs_getattr(vp: vnode) -> Generator[Any, Any, tuple[int, dict[str, int]]]:
    ip: inode = vp.v_data
    yield from ()
    return 0, {"size": vp.v_size, "nlink": ip.d.nlink, "ino": ip.ino, "mode": ip.d.mode,
               "mtime": ip.d.mtime}


def ufs_setattr(vp: vnode, vattr: dict[str, int]) -> GEN:
    """A new size is VOP_TRUNCATE (EISDIR for a directory); a time or permission bits are
    stored in the inode; an owner (vfslab's dinode has none) still changes the inode
    (IN_CHANGE), so it is written as ufs_chown's would be."""
    ip: inode = vp.v_data
    err = 0
    if "size" in vattr:
        if vp.v_type == VDIR:
            return EISDIR
        err = yield from VOP_TRUNCATE(vp, vattr["size"], 0)
    if err:
        return err
    if "mtime" in vattr:
        ip.d.mtime = vattr["mtime"]
        ip.dirty = True
    if "mode" in vattr:
        ip.d.mode = (ip.d.mode & ~0o7777) | (vattr["mode"] & 0o7777)
        ip.dirty = True
    if "uid" in vattr or "gid" in vattr:
        ip.dirty = True
    return err


DIRBLKSIZ = 512          # sys/ufs/ufs/dir.h: a directory entry never crosses one


def ufs_readdir(vp: vnode, offset: int, n: int) -> Generator[Any, Any, tuple[int, int]]:
    """VOP_READDIR (vp locked), as 2.0's ufs_readdir (sys/ufs/ufs/ufs_vnops.c, netbsd-2-0
    branch): the count is cut so that the read ends on a DIRBLKSIZ boundary ("Make sure we
    don't return partial entries"), EINVAL if nothing is left of it, then VOP_READ of the
    directory from `offset`: every block up to the count or the end of the directory, through
    the buffer cache (2.0's ffs_read reads a directory with breadn, not UBC). Returns the
    bytes read; the entries are vfslab's slots, so a Linux program's getdents returns a
    different count for the same names. Found by replaying python: a directory of more than
    one block read a block a call, so the log's second getdents (its end) came back with
    data."""
    from vfslab.fs.ufs_lookup import ufs_blkatoff

    if vp.v_type != VDIR:
        return ENOTDIR, 0
    count = n - ((offset + n) & (DIRBLKSIZ - 1))
    if count <= 0:
        return EINVAL, 0
    end = min(offset + count, vp.v_size)
    if offset >= end:
        return 0, 0
    bio = vp.v_data.ump.k.bio
    for lbn in range(offset // BSIZE, (end - 1) // BSIZE + 1):
        err, bp = yield from ufs_blkatoff(vp, lbn)
        if err:
            return err, 0
        bio.brelse(bp)
    return 0, end - offset


def ufs_strategy(vp: vnode, bp: buf) -> None:
    """Map a file's or directory's buffer to the disk (VOP_BMAP, when b_blkno is still the
    logical block) and hand it to the device vnode; a hole is zeroes, with no I/O."""
    ip: inode = vp.v_data
    ump = ip.ump
    if bp.b_blkno == bp.b_lblkno:
        gen = _bmap_now(vp, bp.b_lblkno)
        try:
            next(gen)
        except StopIteration as stop:
            bp.b_blkno = stop.value
        else:
            # ufs_strategy cannot sleep: the pointers must be cached (they are: ffs_balloc
            # or the read that found the block read them)
            raise ump.k.vfs.panic(f"ufs_strategy: bmap of lbn {bp.b_lblkno} would sleep")
        if bp.b_blkno == -1:
            bp.b_data = [None] * len(bp.b_data)
    if bp.b_blkno < 0:
        ump.k.bio.biodone(bp)
        return
    VOP_STRATEGY(ump.devvp, bp)


def _bmap_now(vp: vnode, lbn: int) -> Generator[Any, Any, int]:
    from vfslab.fs.ufs_bmap import bmap_lbn

    return (yield from bmap_lbn(vp.v_data, lbn))


__all__ = ["B_ERROR", "ufs_checkpath", "ufs_close", "ufs_create", "ufs_getattr", "ufs_link",
           "ufs_makeinode", "ufs_mkdir", "ufs_open", "ufs_remove", "ufs_rename", "ufs_rmdir",
           "ufs_setattr", "ufs_strategy"]
