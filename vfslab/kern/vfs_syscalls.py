"""File system calls (sys/kern/vfs_syscalls.c, sys_generic.c, kern_descrip.c of NetBSD 2.0):
descriptors and open files, and the calls a workload makes, with errno semantics.

Each call is a generator returning an int: >= 0 on success, a negative errno on failure (the
raw-syscall convention the workload readers use).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.fcntl import (
    EBADF,
    EINVAL,
    EISDIR,
    EMFILE,
    O_ACCMODE,
    O_APPEND,
    O_DIRECT,
    O_DSYNC,
    O_RDONLY,
    O_RDWR,
    O_SYNC,
    O_WRONLY,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
)
from vfslab.kern.lock import LK_EXCLUSIVE
from vfslab.kern.vnode import VDIR, vnode

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

NOFILE = 1024
GEN = Generator[Any, Any, int]


class file:  # noqa: N801  (struct file)
    """An open file: shared by dup'ed descriptors."""

    __slots__ = ("f_vp", "f_flag", "f_offset", "f_count")

    def __init__(self, vp: vnode, flags: int) -> None:
        self.f_vp = vp
        self.f_flag = flags
        self.f_offset = 0
        self.f_count = 1

    def readable(self) -> bool:
        return self.f_flag & O_ACCMODE in (O_RDONLY, O_RDWR)

    def writable(self) -> bool:
        return self.f_flag & O_ACCMODE in (O_WRONLY, O_RDWR)


class filedesc:  # noqa: N801  (struct filedesc)
    __slots__ = ("fd_ofiles",)

    def __init__(self) -> None:
        self.fd_ofiles: dict[int, file] = {}

    def fdalloc(self, want: int = 0) -> int:
        fd = want
        while fd in self.fd_ofiles:
            fd += 1
        return fd if fd < NOFILE else -1


class Syscalls:
    """The system calls of one machine; `p` is the calling process's filedesc."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.m = k.m

    def _fs(self) -> Any:
        return self.k.rootfs

    def _get(self, fdp: filedesc, fd: int) -> file | None:
        return fdp.fd_ofiles.get(fd)

    # ---- open and close ---------------------------------------------------------------------
    def sys_open(self, fdp: filedesc, path: str, flags: int, mode: int = 0o644) -> GEN:
        fs = self._fs()
        self.m.charge(self.m.costs.fs_op)
        err, vp = yield from fs.open_path(path, flags, mode)
        if err:
            return -err
        fd = fdp.fdalloc()
        if fd < 0:
            yield from self.k.vfs.vrele(vp)
            return -EMFILE
        fdp.fd_ofiles[fd] = file(vp, flags)
        return fd

    def sys_close(self, fdp: filedesc, fd: int) -> GEN:
        fp = fdp.fd_ofiles.pop(fd, None)
        if fp is None:
            return -EBADF
        fp.f_count -= 1
        if fp.f_count == 0:
            yield from self.k.vfs.vrele(fp.f_vp)
        return 0

    def sys_dup(self, fdp: filedesc, fd: int) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None:
            return -EBADF
        nfd = fdp.fdalloc()
        if nfd < 0:
            return -EMFILE
        fp.f_count += 1
        fdp.fd_ofiles[nfd] = fp
        yield from ()
        return nfd

    def sys_dup2(self, fdp: filedesc, fd: int, nfd: int) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None or nfd < 0 or nfd >= NOFILE:
            return -EBADF
        if nfd == fd:
            return nfd
        if nfd in fdp.fd_ofiles:
            yield from self.sys_close(fdp, nfd)
        fp.f_count += 1
        fdp.fd_ofiles[nfd] = fp
        return nfd

    # ---- data -------------------------------------------------------------------------------
    def sys_read(self, fdp: filedesc, fd: int, n: int, off: int = -1) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None or not fp.readable():
            return -EBADF
        if n < 0:
            return -EINVAL
        vp = fp.f_vp
        if vp.v_type == VDIR:
            return -EISDIR
        pos = fp.f_offset if off < 0 else off
        fs = self._fs()
        got: int = yield from fs.read(vp, pos, n, fs.IO_DIRECT if fp.f_flag & O_DIRECT else 0)
        if got > 0 and off < 0:
            fp.f_offset = pos + got
        return got

    def sys_write(self, fdp: filedesc, fd: int, n: int, off: int = -1) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None or not fp.writable():
            return -EBADF
        if n < 0:
            return -EINVAL
        fs = self._fs()
        vp = fp.f_vp
        ioflag = 0
        flags = fp.f_flag
        if flags & O_APPEND and off < 0:
            ioflag |= fs.IO_APPEND
        if flags & O_DIRECT:
            ioflag |= fs.IO_DIRECT
        if flags & O_SYNC:
            ioflag |= fs.IO_SYNC
        elif flags & O_DSYNC:
            ioflag |= fs.IO_DSYNC
        pos = fp.f_offset if off < 0 else off
        if ioflag & fs.IO_APPEND:
            pos = vp.v_size
        got: int = yield from fs.write(vp, pos, n, ioflag)
        if got > 0 and off < 0:
            fp.f_offset = pos + got
        return got

    def sys_lseek(self, fdp: filedesc, fd: int, off: int, whence: int) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None:
            return -EBADF
        if whence == SEEK_SET:
            new = off
        elif whence == SEEK_CUR:
            new = fp.f_offset + off
        elif whence == SEEK_END:
            new = fp.f_vp.v_size + off
        else:
            return -EINVAL
        if new < 0:
            return -EINVAL
        fp.f_offset = new
        yield from ()
        return new

    def sys_fsync(self, fdp: filedesc, fd: int, dataonly: bool = False) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None:
            return -EBADF
        # as 2.0's sys_fsync, under the vnode lock: a write(2) in progress (its O_SYNC inode
        # update above all) finishes first, or this fsync could return while the inode block
        # that write is putting on the disk is still in flight (found by the crash tests)
        vp = fp.f_vp
        vfs = self.k.vfs
        yield from vfs.vn_lock(vp, LK_EXCLUSIVE)
        err: int = yield from self._fs().fsync(vp, wait=True, dataonly=dataonly)
        yield from vfs.vn_unlock(vp)
        return -err if err else 0

    def sys_sync(self) -> GEN:
        for mp in self.k.mounts:
            yield from mp.fs.sync(wait=False, lazy=False)
        return 0

    def sys_ftruncate(self, fdp: filedesc, fd: int, length: int) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None or not fp.writable():
            return -EBADF if fp is None else -EINVAL
        if length < 0:
            return -EINVAL
        err: int = yield from self._fs().truncate(fp.f_vp, length)
        return -err if err else 0

    def sys_fallocate(self, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
        """posix_fallocate: make [off, off+len) allocated; the file grows if needed."""
        fp = self._get(fdp, fd)
        if fp is None or not fp.writable():
            return -EBADF
        if off < 0 or length <= 0:
            return -EINVAL
        fs = self._fs()
        alloc = getattr(fs, "allocate", None)
        if alloc is not None:
            err: int = yield from alloc(fp.f_vp, off, length)
            return -err if err else 0
        if off + length > fp.f_vp.v_size:
            err = yield from fs.truncate(fp.f_vp, off + length)
            return -err if err else 0
        return 0

    def sys_fstat(self, fdp: filedesc, fd: int) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None:
            return -EBADF
        yield from ()
        return fp.f_vp.v_size

    def sys_mmap_write(self, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
        """Stores through a shared writable mapping: the pages are dirtied by faults."""
        fp = self._get(fdp, fd)
        if fp is None or not fp.writable():
            return -EBADF
        size = fp.f_vp.v_size
        if off < 0 or length < 0:
            return -EINVAL
        if off >= size:
            return 0
        n = min(length, size - off)
        got: int = yield from self._fs().write(fp.f_vp, off, n, self._fs().IO_MMAP)
        return got

    def sys_msync(self, fdp: filedesc, fd: int, off: int, length: int) -> GEN:
        fp = self._get(fdp, fd)
        if fp is None:
            return -EBADF
        err: int = yield from self.k.genfs.putpages(fp.f_vp, off, off + length, clean=True,
                                                    sync=True)
        return -err if err else 0

    # ---- names ------------------------------------------------------------------------------
    def sys_stat(self, path: str) -> GEN:
        fs = self._fs()
        self.m.charge(self.m.costs.fs_op)
        err, vp = yield from fs.lookup_path(path)
        if err:
            return -err
        size: int = vp.v_size
        yield from self.k.vfs.vrele(vp)
        return size

    def sys_truncate(self, path: str, length: int) -> GEN:
        fs = self._fs()
        err, vp = yield from fs.lookup_path(path)
        if err:
            return -err
        if vp.v_type == VDIR:
            rv = -EISDIR
        else:
            e = yield from fs.truncate(vp, length)
            rv = -e if e else 0
        yield from self.k.vfs.vrele(vp)
        return rv

    def _pathop(self, name: str, *args: Any) -> GEN:
        self.m.charge(self.m.costs.fs_op)
        err: int = yield from getattr(self._fs(), name)(*args)
        return -err if err else 0

    def sys_unlink(self, path: str) -> GEN:
        return (yield from self._pathop("unlink", path))

    def sys_rmdir(self, path: str) -> GEN:
        return (yield from self._pathop("rmdir", path))

    def sys_mkdir(self, path: str, mode: int = 0o755) -> GEN:
        return (yield from self._pathop("mkdir", path, mode))

    def sys_rename(self, old: str, new: str) -> GEN:
        return (yield from self._pathop("rename", old, new))

    def close_all(self, fdp: filedesc) -> Generator[Any, Any, None]:
        for fd in sorted(fdp.fd_ofiles):
            yield from self.sys_close(fdp, fd)


__all__ = ["O_WRONLY", "Syscalls", "file", "filedesc"]
