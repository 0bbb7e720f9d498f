"""Path name lookup (sys/kern/vfs_lookup.c, netbsd-2-0 branch): namei, lookup and relookup.

namei starts at the root for an absolute path and at the process's current directory
otherwise, with a reference on it. lookup locks the starting directory (LK_EXCLUSIVE) and
walks the components: for each, VOP_LOOKUP gets the directory locked and returns the child
locked, unlocking the directory itself unless it must keep it (LOCKPARENT at the last
component: PDIRUNLOCK says which), so each step holds the parent until the child is locked
(lock coupling); then lookup vputs (or vreles) the parent and goes on with the child. At the
end it keeps the parent only if asked (LOCKPARENT: locked; WANTPARENT: referenced) and the
leaf locked only with LOCKLEAF.

Symbolic links are followed as namei's loop follows them, but inside lookup's walk: the
link, locked, is read with VOP_READLINK and vput, and the walk goes on with the target's
components (then the rest of the path) from the directory that holds the link or from the
root; more than MAXSYMLINKS links is ELOOP.

Departures: no mount points are crossed (one file system), no VOP_ACCESS (one user, root); the
symbolic-link loop is lookup's rather than namei's (the same steps, one function).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.lock import LK_EXCLUSIVE, LK_RETRY
from vfslab.kern.vnode import VDIR, VLNK
from vfslab.kern.vnode_if import EJUSTRETURN, VOP_LOOKUP, VOP_READLINK

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vnode import vnode

ENOENT = 2
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ELOOP = 62
ENAMETOOLONG = 63
MAXSYMLINKS = 32          # sys/param.h
NAME_MAX = 255            # 2.0's MAXNAMLEN, FFS's too (a file system may allow fewer)
PATH_MAX = 1024

# cn_nameiop
LOOKUP = 0
CREATE = 1
DELETE = 2
RENAME = 3

# cn_flags (sys/namei.h)
LOCKLEAF = 0x0004
LOCKPARENT = 0x0008
WANTPARENT = 0x0010
NOCACHE = 0x0020
FOLLOW = 0x0040
NOFOLLOW = 0x0000
MODMASK = 0x00fc
SAVENAME = 0x0800
SAVESTART = 0x1000
ISDOTDOT = 0x2000
MAKEENTRY = 0x4000
ISLASTCN = 0x8000
REQUIREDIR = 0x80000
PDIRUNLOCK = 0x100000


class componentname:  # noqa: N801  (struct componentname)
    __slots__ = ("cn_nameiop", "cn_flags", "cn_nameptr", "cn_namelen")

    def __init__(self, nameiop: int, flags: int, name: str = "") -> None:
        self.cn_nameiop = nameiop
        self.cn_flags = flags
        self.cn_nameptr = name
        self.cn_namelen = len(name.encode())

    def __repr__(self) -> str:
        return f"<cn {self.cn_nameptr!r} op={self.cn_nameiop} flags={self.cn_flags:#x}>"


class nameidata:  # noqa: N801  (struct nameidata)
    __slots__ = ("ni_dirp", "ni_cnd", "ni_vp", "ni_dvp", "ni_startdir", "ni_cwd",
                 "_components")

    def __init__(self, nameiop: int, flags: int, path: str, cwd: vnode | None = None) -> None:
        self.ni_dirp = path
        self.ni_cnd = componentname(nameiop, flags)
        self.ni_vp: vnode | None = None
        self.ni_dvp: vnode | None = None
        self.ni_startdir: vnode | None = None
        self.ni_cwd = cwd                  # the process's cwdi_cdir (None: the root)
        self._components: list[str] = []


def NDINIT(nameiop: int, flags: int, path: str, cwd: vnode | None = None  # noqa: N802
           ) -> nameidata:
    return nameidata(nameiop, flags, path, cwd)


def namei(k: Kernel, ndp: nameidata) -> Generator[Any, Any, int]:
    """Convert a path name into a vnode (and, if asked, its parent): see the module text."""
    path = ndp.ni_dirp
    if not path:
        return ENOENT
    if len(path.encode()) >= PATH_MAX:
        return ENAMETOOLONG
    root = k.rootvnode
    if root is None:
        return ENOENT
    dp = root if path.startswith("/") or ndp.ni_cwd is None else ndp.ni_cwd
    k.vfs.vref(dp)
    ndp.ni_startdir = dp
    # a trailing slash asks for a directory
    if path.endswith("/") and path.strip("/"):
        ndp.ni_cnd.cn_flags |= REQUIREDIR
    ndp._components = [c for c in path.split("/") if c]
    err: int = yield from lookup(k, ndp)
    return err


def lookup(k: Kernel, ndp: nameidata) -> Generator[Any, Any, int]:
    cnp = ndp.ni_cnd
    vfs = k.vfs
    m = k.m
    wantparent = cnp.cn_flags & (LOCKPARENT | WANTPARENT)
    docache = not cnp.cn_flags & NOCACHE
    if cnp.cn_nameiop == DELETE or (wantparent and cnp.cn_nameiop not in (CREATE, LOOKUP)):
        docache = False
    ndp.ni_dvp = None
    dp = ndp.ni_startdir
    assert dp is not None
    ndp.ni_startdir = None
    yield from vfs.vn_lock(dp, LK_EXCLUSIVE | LK_RETRY)
    comps = ndp._components
    if not comps:
        # the path is "/": a lookup of the directory itself, which cannot be created,
        # removed or renamed
        if wantparent or cnp.cn_nameiop != LOOKUP:
            yield from vfs.vput(dp)
            return EISDIR if cnp.cn_nameiop != DELETE else EINVAL
        ndp.ni_vp = dp
        cnp.cn_flags |= ISLASTCN
        if not cnp.cn_flags & LOCKLEAF:
            yield from vfs.vn_unlock(dp)
        return 0
    i = 0
    nlinks = 0
    while True:
        name = comps[i]
        cnp.cn_nameptr = name
        cnp.cn_namelen = len(name.encode())
        if cnp.cn_namelen > NAME_MAX:
            yield from vfs.vput(dp)
            return ENAMETOOLONG
        last = i == len(comps) - 1
        cnp.cn_flags &= ~(ISLASTCN | ISDOTDOT | MAKEENTRY | PDIRUNLOCK)
        if last:
            cnp.cn_flags |= ISLASTCN
        if docache or not last:
            cnp.cn_flags |= MAKEENTRY
        if name == "..":
            cnp.cn_flags |= ISDOTDOT
            if dp is k.rootvnode:           # ".." of the root is the root
                if not last:
                    i += 1
                    continue
                ndp.ni_dvp = dp
                ndp.ni_vp = dp
                vfs.vref(dp)
                return (yield from _terminal(k, ndp, dp, wantparent))
        m.charge(m.costs.fs_op)
        ndp.ni_dvp = dp
        ndp.ni_vp = None
        err, vp = yield from VOP_LOOKUP(dp, cnp)
        if err:
            if err != EJUSTRETURN:
                if not cnp.cn_flags & PDIRUNLOCK:
                    yield from vfs.vput(dp)
                else:
                    yield from vfs.vrele(dp)
                ndp.ni_dvp = None
                return err
            # not found, and the caller may create it here (CREATE or RENAME at the last
            # component): the parent stays (locked if LOCKPARENT)
            ndp.ni_vp = None
            return 0
        assert vp is not None
        ndp.ni_vp = vp
        if vp.v_type == VLNK and (not last or cnp.cn_flags & FOLLOW):
            # a symbolic link to follow (namei's loop): its target, then what followed it,
            # from the root or from the directory that holds it; at most MAXSYMLINKS
            nlinks += 1
            err, target = (ELOOP, "") if nlinks > MAXSYMLINKS else \
                (yield from VOP_READLINK(vp))
            yield from vfs.vput(vp)
            ndp.ni_vp = None
            if not err and not target:
                err = ENOENT
            if err:
                if cnp.cn_flags & PDIRUNLOCK:
                    yield from vfs.vrele(dp)
                else:
                    yield from vfs.vput(dp)
                ndp.ni_dvp = None
                return err
            if cnp.cn_flags & PDIRUNLOCK:
                yield from vfs.vn_lock(dp, LK_EXCLUSIVE | LK_RETRY)
                cnp.cn_flags &= ~PDIRUNLOCK
            if target.startswith("/"):
                yield from vfs.vput(dp)
                dp = k.rootvnode
                assert dp is not None
                vfs.vref(dp)
                yield from vfs.vn_lock(dp, LK_EXCLUSIVE | LK_RETRY)
            comps = [c for c in target.split("/") if c] + comps[i + 1:]
            ndp.ni_dvp = None
            if not comps:                   # a link to "/": the root itself
                comps = ["."]
            i = 0
            continue
        if not last:
            if vp.v_type != VDIR:
                yield from _drop_parent(k, ndp, cnp)
                yield from vfs.vput(vp)
                return ENOTDIR
            yield from _drop_parent(k, ndp, cnp)
            # lock coupling: the child, locked under its directory (VNL_CHILD), is the
            # directory of the next step now that its own is released
            k.locks.lock_set_subclass(vp.v_lock, 0)
            dp = vp
            i += 1
            continue
        if cnp.cn_flags & REQUIREDIR and vp.v_type != VDIR:
            yield from _drop_parent(k, ndp, cnp)
            yield from vfs.vput(vp)
            return ENOTDIR
        return (yield from _terminal(k, ndp, vp, wantparent))


def _drop_parent(k: Kernel, ndp: nameidata, cnp: componentname) -> Generator[Any, Any, None]:
    """Release the directory a step was taken from: vrele if it is the vnode found (".") or
    VOP_LOOKUP unlocked it, else vput."""
    dvp = ndp.ni_dvp
    assert dvp is not None
    if dvp is ndp.ni_vp or cnp.cn_flags & PDIRUNLOCK:
        yield from k.vfs.vrele(dvp)
    else:
        yield from k.vfs.vput(dvp)
    ndp.ni_dvp = None


def _terminal(k: Kernel, ndp: nameidata, vp: vnode, wantparent: int
              ) -> Generator[Any, Any, int]:
    cnp = ndp.ni_cnd
    if not wantparent and ndp.ni_dvp is not None:
        yield from _drop_parent(k, ndp, cnp)
    elif wantparent and not cnp.cn_flags & LOCKPARENT and ndp.ni_dvp is not None \
            and not cnp.cn_flags & PDIRUNLOCK and ndp.ni_dvp is not vp:
        yield from k.vfs.vn_unlock(ndp.ni_dvp)        # WANTPARENT: referenced, not locked
        cnp.cn_flags |= PDIRUNLOCK
    if not cnp.cn_flags & LOCKPARENT or cnp.cn_flags & PDIRUNLOCK:
        # no directory above it held any more: a plain vnode lock for the caller
        k.locks.lock_set_subclass(vp.v_lock, 0)
    if not cnp.cn_flags & LOCKLEAF:
        yield from k.vfs.vn_unlock(vp)
    return 0


def relookup(k: Kernel, dvp: vnode, cnp: componentname
             ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    """Look up the last component again in a directory the caller holds locked and
    referenced (ufs_rename re-finding its source): VOP_LOOKUP with ISLASTCN; the vnode
    comes back locked if LOCKLEAF (and dvp stays locked with LOCKPARENT)."""
    cnp.cn_flags |= ISLASTCN
    cnp.cn_flags &= ~(ISDOTDOT | PDIRUNLOCK)
    err, vp = yield from VOP_LOOKUP(dvp, cnp)
    if err:
        return (0 if err == EJUSTRETURN else err), None
    assert vp is not None
    if not cnp.cn_flags & LOCKLEAF and vp is not dvp:
        yield from k.vfs.vn_unlock(vp)
    return 0, vp
