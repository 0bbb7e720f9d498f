"""Descriptors and open files (sys/kern/kern_descrip.c, sys/sys/file.h, filedesc.h of
NetBSD 2.0): struct file, struct filedesc, struct cwdinfo, fdalloc, closef, sys_close,
sys_dup, sys_dup2, sys_fstat."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.fcntl import EBADF, EMFILE, O_ACCMODE, O_RDONLY, O_RDWR, O_WRONLY
from vfslab.kern.guards import declare_guards
from vfslab.kern.lock import simplelock

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vnode import vnode

NOFILE = 1024
GEN = Generator[Any, Any, int]


@declare_guards("file", {"f_usecount": "f_slock"})
class file:  # noqa: N801  (struct file)
    """An open file: shared by dup'ed descriptors (and, after fork, by the child's).
    `f_usecount` counts the system calls using it now (FILE_USE/FILE_UNUSE, under
    `f_slock`, sys/file.h of 2.0); `f_count` the descriptors referring to it."""

    __slots__ = ("f_vp", "f_flag", "f_offset", "f_count", "f_pmap", "f_path", "f_slock",
                 "f_usecount", "__weakref__")

    def __init__(self, vp: vnode, flags: int, path: str = "") -> None:
        self.f_vp = vp
        self.f_path = path            # as opened (for per-call records)
        self.f_flag = flags
        self.f_offset = 0
        self.f_count = 1
        self.f_slock = simplelock("f_slock")
        self.f_usecount = 0
        # the pages a shared mapping of this open file has mapped (page index -> the page,
        # its prot_gen then): vfslab's mappings are of whole open files, shared after fork
        self.f_pmap: dict[int, tuple[Any, int]] = {}

    def readable(self) -> bool:
        return self.f_flag & O_ACCMODE in (O_RDONLY, O_RDWR)

    def writable(self) -> bool:
        return self.f_flag & O_ACCMODE in (O_WRONLY, O_RDWR)


class filedesc:  # noqa: N801  (struct filedesc)
    """A descriptor table; `fd_refcnt` processes share it (fork1's FORK_SHAREFILES)."""

    __slots__ = ("fd_ofiles", "fd_refcnt")

    def __init__(self) -> None:
        self.fd_ofiles: dict[int, file] = {}
        self.fd_refcnt = 1

    def fdalloc(self, want: int = 0) -> int:
        fd = want
        while fd in self.fd_ofiles:
            fd += 1
        return fd if fd < NOFILE else -1


class cwdinfo:  # noqa: N801  (struct cwdinfo)
    """The process's current directory (cwdi_cdir), referenced; shared by `cwdi_refcnt`
    processes (FORK_SHARECWD)."""

    __slots__ = ("cwdi_cdir", "cwdi_refcnt")

    def __init__(self, cdir: vnode | None = None) -> None:
        self.cwdi_cdir = cdir
        self.cwdi_refcnt = 1


def fd_getfile(k: Kernel, fdp: filedesc, fd: int) -> file | None:
    """The open file of a descriptor, returned with its f_slock held (fd_getfile,
    kern_descrip.c, 2.0; the caller releases it, usually with FILE_USE); None if the
    descriptor is not open."""
    fp = fdp.fd_ofiles.get(fd)
    if fp is None:
        return None
    k.locks.simple_lock(fp.f_slock)
    return fp


def FILE_USE(k: Kernel, fp: file) -> None:  # noqa: N802  (sys/file.h's macro)
    """The system call uses the file: f_usecount++, then f_slock (taken by fd_getfile)
    released."""
    fp.f_usecount += 1
    k.locks.simple_unlock(fp.f_slock)


def FILE_UNUSE(k: Kernel, fp: file) -> None:  # noqa: N802
    """The system call is done with the file: f_usecount-- under f_slock (2.0's closef on a
    FIF_WANTCLOSE file, closed by another thread meanwhile, is not modelled)."""
    k.locks.simple_lock(fp.f_slock)
    fp.f_usecount -= 1
    k.locks.simple_unlock(fp.f_slock)


def fd_release_unused(k: Kernel, fp: file) -> None:
    """fd_getfile's lock dropped without FILE_USE (a call refused after the lookup)."""
    k.locks.simple_unlock(fp.f_slock)


def closef(k: Kernel, fp: file) -> GEN:
    """Drop a reference to an open file; the last one closes the vnode (vn_close)."""
    from vfslab.kern.vfs_vnops import vn_close

    fp.f_count -= 1
    if fp.f_count > 0:
        return 0
    err: int = yield from vn_close(k, fp.f_vp, fp.f_flag)
    return err


def sys_close(k: Kernel, fdp: filedesc, fd: int) -> GEN:
    fp = fdp.fd_ofiles.pop(fd, None)
    if fp is None:
        return -EBADF
    err = yield from closef(k, fp)
    return -err if err else 0


def sys_dup(k: Kernel, fdp: filedesc, fd: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None:
        return -EBADF
    nfd = fdp.fdalloc()
    if nfd < 0:
        return -EMFILE
    fp.f_count += 1
    fdp.fd_ofiles[nfd] = fp
    yield from ()
    return nfd


def sys_dup2(k: Kernel, fdp: filedesc, fd: int, nfd: int) -> GEN:
    fp = fdp.fd_ofiles.get(fd)
    if fp is None or nfd < 0 or nfd >= NOFILE:
        return -EBADF
    if nfd == fd:
        return nfd
    if nfd in fdp.fd_ofiles:
        yield from sys_close(k, fdp, nfd)
    fp.f_count += 1
    fdp.fd_ofiles[nfd] = fp
    return nfd


def sys_fstat(k: Kernel, fdp: filedesc, fd: int) -> GEN:
    """The size of the open file (vn_stat's va_size: what the workloads ask of fstat)."""
    fp = fdp.fd_ofiles.get(fd)
    if fp is None:
        return -EBADF
    yield from ()
    return fp.f_vp.v_size
