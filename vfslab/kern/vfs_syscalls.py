"""File system calls (sys/kern/vfs_syscalls.c, netbsd-2-0 branch): open, the calls on path
names (namei and the VOP layer, with 2.0's lock protocol: LOCKPARENT|LOCKLEAF for remove,
WANTPARENT for a rename's source, ...) and the calls on open vnodes (fsync, ftruncate, lseek).

`Syscalls` is the machine's system-call table; the read/write calls are in sys_generic.py,
the descriptor calls in kern_descrip.py, mmap's in uvm_mmap.py. Each returns >= 0 on success
or a negative errno (the raw-syscall convention the workload readers use); inside the kernel
errors are positive, as in C.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern import kern_descrip, sys_generic, uvm_mmap
from vfslab.kern.fcntl import (
    EBADF,
    EBUSY,
    EINVAL,
    EISDIR,
    EMFILE,
    ENOTDIR,
    O_WRONLY,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
)
from vfslab.kern.kern_descrip import FILE_UNUSE, FILE_USE, cwdinfo, fd_getfile, file, filedesc
from vfslab.kern.lock import LK_EXCLUSIVE, LK_NOWAIT, LK_RETRY
from vfslab.kern.vfs_lookup import (
    CREATE,
    DELETE,
    FOLLOW,
    LOCKLEAF,
    LOCKPARENT,
    LOOKUP,
    NDINIT,
    NOCACHE,
    RENAME,
    WANTPARENT,
    namei,
    nameidata,
)
from vfslab.kern.vfs_vnops import vn_open
from vfslab.kern.vnode import VDIR, VLNK
from vfslab.kern.vnode_if import (
    FSYNC_DATAONLY,
    FSYNC_WAIT,
    VOP_FSYNC,
    VOP_LINK,
    VOP_MKDIR,
    VOP_READDIR,
    VOP_READLINK,
    VOP_REMOVE,
    VOP_RENAME,
    VOP_RMDIR,
    VOP_SETATTR,
    VOP_SYMLINK,
)

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vnode import vnode

NOFILE = kern_descrip.NOFILE
GEN = Generator[Any, Any, int]
EEXIST = 17


class Syscalls:
    """The system calls of one machine. `fdp` is the caller's descriptor table, `cwd` its
    current directory (cwdinfo)."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m

    # ---- open and descriptors -----------------------------------------------------------------
    def sys_open(self, fdp: filedesc, path: str, flags: int, mode: int = 0o644,
                 cwd: cwdinfo | None = None) -> GEN:
        self.m.charge(self.m.costs.fs_op)      # the call's inode work (cost.fs_op)
        k = self.k
        fd = fdp.fdalloc()
        if fd < 0:
            return -EMFILE
        err, vp = yield from vn_open(k, path, flags, mode, _cdir(cwd))
        if err:
            return -err
        assert vp is not None
        yield from k.vfs.vn_unlock(vp)
        fd = fdp.fdalloc()
        fdp.fd_ofiles[fd] = file(vp, flags, path)
        return fd

    def sys_close(self, fdp: filedesc, fd: int) -> GEN:
        return (yield from kern_descrip.sys_close(self.k, fdp, fd))

    def sys_dup(self, fdp: filedesc, fd: int) -> GEN:
        return (yield from kern_descrip.sys_dup(self.k, fdp, fd))

    def sys_dup2(self, fdp: filedesc, fd: int, nfd: int) -> GEN:
        return (yield from kern_descrip.sys_dup2(self.k, fdp, fd, nfd))

    def sys_fstat(self, fdp: filedesc, fd: int) -> GEN:
        return (yield from kern_descrip.sys_fstat(self.k, fdp, fd))

    # ---- data -------------------------------------------------------------------------------
    def sys_read(self, fdp: filedesc, fd: int, n: int, off: int = -1) -> GEN:
        if off < 0:
            return (yield from sys_generic.sys_read(self.k, fdp, fd, n))
        return (yield from sys_generic.sys_pread(self.k, fdp, fd, n, off))

    def sys_write(self, fdp: filedesc, fd: int, n: int, off: int = -1) -> GEN:
        if off < 0:
            return (yield from sys_generic.sys_write(self.k, fdp, fd, n))
        return (yield from sys_generic.sys_pwrite(self.k, fdp, fd, n, off))

    def _getvnode(self, fdp: filedesc, fd: int) -> file | None:
        """getvnode (vfs_syscalls.c, 2.0): fd_getfile and FILE_USE; the caller FILE_UNUSEs."""
        fp = fd_getfile(self.k, fdp, fd)
        if fp is not None:
            FILE_USE(self.k, fp)
        return fp

    def sys_lseek(self, fdp: filedesc, fd: int, off: int, whence: int) -> GEN:
        fp = self._getvnode(fdp, fd)
        if fp is None:
            return -EBADF
        new = -1
        if whence == SEEK_SET:
            new = off
        elif whence == SEEK_CUR:
            new = fp.f_offset + off
        elif whence == SEEK_END:
            new = fp.f_vp.v_size + off
        if new >= 0:
            fp.f_offset = new
        FILE_UNUSE(self.k, fp)
        yield from ()
        return new if new >= 0 else -EINVAL

    def sys_fsync(self, fdp: filedesc, fd: int, dataonly: bool = False) -> GEN:
        """sys_fsync / sys_fdatasync: VOP_FSYNC(FSYNC_WAIT) under the vnode lock, so that a
        write(2) in progress (its O_SYNC inode update above all) finishes first."""
        fp = self._getvnode(fdp, fd)
        if fp is None:
            return -EBADF
        vp = fp.f_vp
        vfs = self.k.vfs
        yield from vfs.vn_lock(vp, LK_EXCLUSIVE | LK_RETRY)
        err: int = yield from VOP_FSYNC(vp, FSYNC_WAIT | (FSYNC_DATAONLY if dataonly else 0))
        yield from vfs.vn_unlock(vp)
        FILE_UNUSE(self.k, fp)
        return -err if err else 0

    def sys_sync(self) -> GEN:
        """VFS_SYNC(MNT_NOWAIT) of every mount that can be made busy without waiting
        (sys_sync, vfs_syscalls.c, 2.0: vfs_busy(LK_NOWAIT) with mountlist_slock handed
        over, the mount list walked backwards)."""
        vfs = self.k.vfs
        for mp in reversed(list(self.k.mounts)):
            vfs.L.simple_lock(vfs.mountlist_slock)
            if (yield from vfs.vfs_busy(mp, LK_NOWAIT, vfs.mountlist_slock)):
                continue
            yield from mp.mnt_op.sync(mp, False)
            yield from vfs.vfs_unbusy(mp)
        return 0

    def sys_ftruncate(self, fdp: filedesc, fd: int, length: int) -> GEN:
        fp = self._getvnode(fdp, fd)
        if fp is None:
            return -EBADF
        rv = -EINVAL if not fp.writable() or length < 0 else \
            (yield from self._setsize(fp.f_vp, length))
        FILE_UNUSE(self.k, fp)
        return rv

    def _setsize(self, vp: vnode, length: int) -> GEN:
        vfs = self.k.vfs
        yield from vfs.vn_lock(vp, LK_EXCLUSIVE | LK_RETRY)
        err: int = EISDIR if vp.v_type == VDIR else \
            (yield from VOP_SETATTR(vp, {"size": length}))
        yield from vfs.vn_unlock(vp)
        return -err if err else 0

    def sys_getdents(self, fdp: filedesc, fd: int, n: int) -> GEN:
        """sys_getdents (vn_readdir): VOP_READDIR from the file's offset under the vnode
        lock, the offset advanced by what it returned; 0 at the end."""
        fp = self._getvnode(fdp, fd)
        if fp is None:
            return -EBADF
        if not fp.readable():
            FILE_UNUSE(self.k, fp)
            return -EBADF
        vfs = self.k.vfs
        vp = fp.f_vp
        yield from vfs.vn_lock(vp, LK_EXCLUSIVE | LK_RETRY)
        err, got = yield from VOP_READDIR(vp, fp.f_offset, n)
        if not err:
            fp.f_offset += got
        yield from vfs.vn_unlock(vp)
        FILE_UNUSE(self.k, fp)
        return -err if err else got

    def _lookup_locked(self, path: str, cwd: cwdinfo | None, follow: bool
                       ) -> Generator[Any, Any, tuple[int, vnode]]:
        """namei(LOOKUP, LOCKLEAF), following a last symbolic link if `follow` (FOLLOW):
        the vnode comes back referenced and locked (the caller vputs it)."""
        nd = NDINIT(LOOKUP, LOCKLEAF | (FOLLOW if follow else 0), path, _cdir(cwd))
        err: int = yield from namei(self.k, nd)
        vp = nd.ni_vp
        assert err or vp is not None
        return err, vp  # type: ignore[return-value]

    def sys_setattr(self, path: str, attrs: dict[str, int], cwd: cwdinfo | None = None,
                    follow: bool = True) -> GEN:
        """sys_utimes, sys_chmod, sys_chown: namei(LOOKUP, LOCKLEAF | FOLLOW), VOP_SETATTR,
        vput; `follow` False: sys_lutimes, sys_lchmod, sys_lchown, the same without FOLLOW
        (vfs_syscalls.c of the netbsd-2-0 branch has all six)."""
        self.m.charge(self.m.costs.fs_op)
        k = self.k
        err, vp = yield from self._lookup_locked(path, cwd, follow)
        if err:
            return -err
        err = yield from VOP_SETATTR(vp, attrs)
        yield from k.vfs.vput(vp)
        return -err if err else 0

    def sys_fsetattr(self, fdp: filedesc, fd: int, attrs: dict[str, int]) -> GEN:
        """sys_futimes, sys_fchmod, sys_fchown: VOP_SETATTR under the vnode lock."""
        fp = self._getvnode(fdp, fd)
        if fp is None:
            return -EBADF
        vfs = self.k.vfs
        yield from vfs.vn_lock(fp.f_vp, LK_EXCLUSIVE | LK_RETRY)
        err = yield from VOP_SETATTR(fp.f_vp, attrs)
        yield from vfs.vn_unlock(fp.f_vp)
        FILE_UNUSE(self.k, fp)
        return -err if err else 0

    def sys_fallocate(self, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
        """posix_fallocate (a later call than 2.0): the file grows to cover the range, as a
        hole; blocks are allocated when written."""
        fp = fdp.fd_ofiles.get(fd)
        if fp is None or not fp.writable():
            return -EBADF
        if off < 0 or length <= 0:
            return -EINVAL
        if off + length > fp.f_vp.v_size:
            return (yield from self._setsize(fp.f_vp, off + length))
        return 0

    def sys_mmap_write(self, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
        return (yield from uvm_mmap.sys_mmap_write(self.k, fdp, fd, off, length))

    def sys_msync(self, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
        return (yield from uvm_mmap.sys_msync(self.k, fdp, fd, off, length))

    # ---- names ------------------------------------------------------------------------------
    def sys_stat(self, path: str, cwd: cwdinfo | None = None, follow: bool = True) -> GEN:
        """sys___stat13 (namei FOLLOW) or sys___lstat13 (`follow` False: a symbolic link
        itself): namei(LOOKUP, LOCKLEAF), vn_stat (the size), vput."""
        self.m.charge(self.m.costs.fs_op)      # the call's inode work (cost.fs_op)
        k = self.k
        err, vp = yield from self._lookup_locked(path, cwd, follow)
        if err:
            return -err
        size = vp.v_size
        yield from k.vfs.vput(vp)
        return size

    def sys_truncate(self, path: str, length: int, cwd: cwdinfo | None = None) -> GEN:
        k = self.k
        if length < 0:
            return -EINVAL
        nd = NDINIT(LOOKUP, FOLLOW, path, _cdir(cwd))
        err = yield from namei(k, nd)
        if err:
            return -err
        vp = nd.ni_vp
        assert vp is not None
        rv = yield from self._setsize(vp, length)
        yield from k.vfs.vrele(vp)
        return rv

    def _lookup_to_create(self, path: str, cwd: cwdinfo | vnode | None
                          ) -> Generator[Any, Any, tuple[int, nameidata]]:
        """namei(CREATE, LOCKPARENT) for a name that must not exist (sys_mkdir, sys_link,
        sys_symlink): the directory comes back locked in ni_dvp, or EEXIST with everything
        released."""
        cdir = cwd if cwd is None or not isinstance(cwd, cwdinfo) else _cdir(cwd)
        nd = NDINIT(CREATE, LOCKPARENT, path, cdir)
        err: int = yield from namei(self.k, nd)
        if not err and nd.ni_vp is not None:
            dvp = nd.ni_dvp
            assert dvp is not None
            vp = nd.ni_vp
            yield from self.k.vfs.vput_parent(dvp, vp)
            yield from self.k.vfs.vrele(vp)
            err = EEXIST
        return err, nd

    def sys_mkdir(self, path: str, mode: int = 0o755, cwd: cwdinfo | None = None) -> GEN:
        self.m.charge(self.m.costs.fs_op)      # the call's inode work (cost.fs_op)
        vfs = self.k.vfs
        err, nd = yield from self._lookup_to_create(path, cwd)
        if err:
            return -err
        dvp = nd.ni_dvp
        assert dvp is not None
        err, nvp = yield from VOP_MKDIR(dvp, nd.ni_cnd, mode & 0o7777)     # vputs dvp
        if not err and nvp is not None:
            yield from vfs.vput(nvp)
        return -err if err else 0

    def _lookup_to_delete(self, path: str, cwd: cwdinfo | None
                          ) -> Generator[Any, Any, tuple[int, nameidata]]:
        """namei(DELETE, LOCKPARENT | LOCKLEAF), as sys_unlink and sys_rmdir start: the
        directory and the vnode come back locked."""
        self.m.charge(self.m.costs.fs_op)      # the call's inode work (cost.fs_op)
        nd = NDINIT(DELETE, LOCKPARENT | LOCKLEAF, path, _cdir(cwd))
        err: int = yield from namei(self.k, nd)
        return err, nd

    def sys_unlink(self, path: str, cwd: cwdinfo | None = None) -> GEN:
        k = self.k
        vfs = k.vfs
        err, nd = yield from self._lookup_to_delete(path, cwd)
        if err:
            return -err
        dvp, vp = nd.ni_dvp, nd.ni_vp
        assert dvp is not None and vp is not None
        if vp is k.rootvnode or dvp is vp:
            yield from vfs.vput_parent(dvp, vp)
            yield from vfs.vput(vp)
            return -EBUSY
        err = yield from VOP_REMOVE(dvp, vp, nd.ni_cnd)        # vputs both
        return -err if err else 0

    def sys_rmdir(self, path: str, cwd: cwdinfo | None = None) -> GEN:
        k = self.k
        vfs = k.vfs
        err, nd = yield from self._lookup_to_delete(path, cwd)
        if err:
            return -err
        dvp, vp = nd.ni_dvp, nd.ni_vp
        assert dvp is not None and vp is not None
        if vp.v_type != VDIR:
            err = ENOTDIR
        elif dvp is vp:
            err = EINVAL                      # rmdir(".")
        elif vp is k.rootvnode:
            err = EBUSY
        if err:
            yield from vfs.vput_parent(dvp, vp)
            yield from vfs.vput(vp)
            return -err
        err = yield from VOP_RMDIR(dvp, vp, nd.ni_cnd)         # vputs both
        return -err if err else 0

    def sys_rename(self, old: str, new: str, cwd: cwdinfo | None = None) -> GEN:
        """rename_files: the source by namei(DELETE, WANTPARENT) (referenced, unlocked), the
        target by namei(RENAME, LOCKPARENT|LOCKLEAF|NOCACHE) (locked), the checks of 2.0,
        then VOP_RENAME, which releases all four."""
        self.m.charge(self.m.costs.fs_op)      # the call's inode work (cost.fs_op)
        k = self.k
        vfs = k.vfs
        cdir = _cdir(cwd)
        fromnd = NDINIT(DELETE, WANTPARENT, old, cdir)
        err = yield from namei(k, fromnd)
        if err:
            return -err
        fdvp, fvp = fromnd.ni_dvp, fromnd.ni_vp
        assert fdvp is not None and fvp is not None
        tond = NDINIT(RENAME, LOCKPARENT | LOCKLEAF | NOCACHE, new, cdir)
        err = yield from namei(k, tond)
        if err:
            yield from vfs.vrele(fdvp)
            yield from vfs.vrele(fvp)
            return -err
        tdvp, tvp = tond.ni_dvp, tond.ni_vp
        assert tdvp is not None
        if tvp is not None:
            if fvp.v_type == VDIR and tvp.v_type != VDIR:
                err = ENOTDIR
            elif fvp.v_type != VDIR and tvp.v_type == VDIR:
                err = EISDIR
        if not err and fvp is tdvp:
            err = EINVAL
        if not err and fvp is tvp and fdvp is tdvp and \
                fromnd.ni_cnd.cn_nameptr == tond.ni_cnd.cn_nameptr:
            err = -1                          # the same name: nothing to do
        if err:
            yield from vfs.vput_parent(tdvp, tvp)
            if tvp is not None:
                yield from vfs.vput(tvp)
            yield from vfs.vrele(fdvp)
            yield from vfs.vrele(fvp)
            return 0 if err == -1 else -err
        err = yield from VOP_RENAME(fdvp, fvp, fromnd.ni_cnd, tdvp, tvp, tond.ni_cnd)
        return -err if err else 0

    def sys_link(self, path: str, link: str, cwd: cwdinfo | None = None) -> GEN:
        """sys_link: the file by namei(LOOKUP) (referenced), the new name by
        namei(CREATE, LOCKPARENT); EEXIST if it exists; VOP_LINK (vputs the directory)."""
        self.m.charge(self.m.costs.fs_op)      # the call's inode work (cost.fs_op)
        k = self.k
        vfs = k.vfs
        cdir = _cdir(cwd)
        nd = NDINIT(LOOKUP, FOLLOW, path, cdir)
        err = yield from namei(k, nd)
        if err:
            return -err
        vp = nd.ni_vp
        assert vp is not None
        err, nd2 = yield from self._lookup_to_create(link, cdir)
        if not err:
            dvp = nd2.ni_dvp
            assert dvp is not None
            err = yield from VOP_LINK(dvp, vp, nd2.ni_cnd)          # vputs dvp
        yield from vfs.vrele(vp)
        return -err if err else 0

    def sys_symlink(self, target: str, path: str, cwd: cwdinfo | None = None) -> GEN:
        """sys_symlink: namei(CREATE, LOCKPARENT); EEXIST if the name exists; VOP_SYMLINK
        (vputs the directory)."""
        self.m.charge(self.m.costs.fs_op)
        err, nd = yield from self._lookup_to_create(path, cwd)
        if err:
            return -err
        dvp = nd.ni_dvp
        assert dvp is not None
        err = yield from VOP_SYMLINK(dvp, nd.ni_cnd, target)
        return -err if err else 0

    def sys_readlink(self, path: str, n: int, cwd: cwdinfo | None = None) -> GEN:
        """sys_readlink: namei(LOOKUP, LOCKLEAF) of the link itself; EINVAL if it is not
        one; VOP_READLINK; the bytes returned (at most `n`)."""
        self.m.charge(self.m.costs.fs_op)
        k = self.k
        err, vp = yield from self._lookup_locked(path, cwd, False)
        if err:
            return -err
        err, target = yield from VOP_READLINK(vp) if vp.v_type == VLNK else _einval()
        yield from k.vfs.vput(vp)
        return -err if err else min(max(0, n), len(target.encode("latin-1", "replace")))

    def sys_chdir(self, path: str, cwd: cwdinfo) -> GEN:
        """Change the process's current directory (namei LOCKLEAF, must be a directory)."""
        k = self.k
        err, vp = yield from self._lookup_locked(path, cwd, True)
        if err:
            return -err
        if vp.v_type != VDIR:
            yield from k.vfs.vput(vp)
            return -ENOTDIR
        yield from k.vfs.vn_unlock(vp)
        old = cwd.cwdi_cdir
        cwd.cwdi_cdir = vp
        if old is not None:
            yield from k.vfs.vrele(old)
        return 0

    def close_all(self, fdp: filedesc) -> Generator[Any, Any, None]:
        for fd in sorted(fdp.fd_ofiles):
            yield from self.sys_close(fdp, fd)


def _einval() -> Generator[Any, Any, tuple[int, str]]:
    yield from ()
    return EINVAL, ""


def _cdir(cwd: cwdinfo | None) -> vnode | None:
    return cwd.cwdi_cdir if cwd is not None else None


__all__ = ["NOFILE", "O_WRONLY", "Syscalls", "cwdinfo", "file", "filedesc"]
