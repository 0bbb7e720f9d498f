"""fork1 (sys/kern/kern_fork.c, netbsd-2-0 branch): a new process whose descriptors are the
parent's, copied (fdcopy: each open file referenced once more, so parent and child share
its offset) or shared (FORK_SHAREFILES: fdshare, what __clone(CLONE_FILES) asks), and whose
current directory is copied (cwdinit: the directory referenced again) or shared
(FORK_SHARECWD: cwdshare, CLONE_FS). Replays of Linux programs use it for fork, vfork,
clone and clone3: a thread is a child sharing both (vfslab has no LWPs apart from that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vfslab.kern.kern_descrip import cwdinfo, filedesc

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.kern_proc import Proc

# sys/sys/proc.h
FORK_PPWAIT = 0x01
FORK_SHAREVM = 0x02
FORK_SHARECWD = 0x04
FORK_SHAREFILES = 0x08


def fdcopy(fdp: filedesc) -> filedesc:
    """A copy of a descriptor table: the same open files, each referenced once more."""
    new = filedesc()
    for fd, fp in fdp.fd_ofiles.items():
        fp.f_count += 1
        new.fd_ofiles[fd] = fp
    return new


def fdshare(fdp: filedesc) -> filedesc:
    fdp.fd_refcnt += 1
    return fdp


def cwdinit(k: Kernel, cwdi: cwdinfo) -> cwdinfo:
    cdir = cwdi.cwdi_cdir
    if cdir is not None:
        k.vfs.vref(cdir)
    return cwdinfo(cdir)


def cwdshare(cwdi: cwdinfo) -> cwdinfo:
    cwdi.cwdi_refcnt += 1
    return cwdi


def fork1(k: Kernel, parent: Proc, flags: int, child: Proc) -> None:
    """Give `child` the parent's descriptors and directory, shared or copied by `flags`."""
    child.p_fd = fdshare(parent.p_fd) if flags & FORK_SHAREFILES else fdcopy(parent.p_fd)
    child.p_cwdi = (cwdshare(parent.p_cwdi) if flags & FORK_SHARECWD
                    else cwdinit(k, parent.p_cwdi))
