"""The vnode-operations vector (sys/kern/vnode_if.src and vnode_if.c, NetBSD 2.0): the only way
the kernel reaches a file system. Each vnode carries `v_op`, its file-system type's table
(FFS's `ffs_vnodeop_p`, the device vnode's `spec_vnodeop_p`); `VOP_X(vp, ...)` calls
`vp.v_op.vop_x(vp, ...)`.

Locking rules are vnode_if.src's: VOP_LOOKUP gets dvp locked and may unlock it (PDIRUNLOCK);
VOP_CREATE and VOP_MKDIR vput dvp (WILLPUT); VOP_REMOVE and VOP_RMDIR vput dvp and vp;
VOP_LINK vputs dvp; VOP_RENAME vreles fdvp and fvp and vputs tdvp and tvp; VOP_INACTIVE gets
vp locked and unlocks it (WILLUNLOCK); VOP_READ, VOP_WRITE, VOP_FSYNC, VOP_TRUNCATE,
VOP_SETATTR and VOP_UPDATE get vp locked.

Operations that may sleep are generators (`yield from VOP_FSYNC(...)`) returning an errno (0
for success) or a tuple whose first element is one; results that C returns through pointers
are returned in the tuple. VOP_STRATEGY does not sleep. The wrappers return the operation's
generator itself, so they add no frame of their own to call chains (as vnode_if.c's inline
VCALLs add none to a kernel backtrace's meaning).

Departure: 2.0's VOP_STRATEGY takes only the buffer and dispatches on bp->b_vp; here it takes
the vnode whose strategy routine is meant, as NetBSD's later VOP_STRATEGY(vp, bp) does, so
that genfs hands page I/O to the device vnode VOP_BMAP returned without borrowing b_vp.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.kern_subr import uio
    from vfslab.kern.uvm_page import vm_page
    from vfslab.kern.vfs_lookup import componentname
    from vfslab.kern.vnode import vnode

GEN = Generator[Any, Any, Any]

EOPNOTSUPP = 45
EJUSTRETURN = -2          # ufs_lookup: "not found, but you may create it here"

# ioflag (sys/vnode.h)
IO_UNIT = 0x01
IO_APPEND = 0x02
IO_SYNC = 0x04 | 0x20     # IO_SYNC includes IO_DSYNC
IO_NDELAY = 0x10
IO_DSYNC = 0x20
IO_DIRECT = 0x4000        # O_DIRECT (NetBSD 5's; modelled by its effect)
IO_MMAP = 0x8000          # vfslab: stores through a mapping (the fault path's dirtying)

# VOP_FSYNC flags (sys/vnode.h)
FSYNC_WAIT = 0x0001
FSYNC_DATAONLY = 0x0002
FSYNC_RECLAIM = 0x0004
FSYNC_LAZY = 0x0008

# VOP_UPDATE flags (ufs/ufs/inode.h)
UPDATE_WAIT = 0x0001
UPDATE_DIROP = 0x0002

# VOP_PUTPAGES flags (uvm/uvm_pager.h)
PGO_CLEANIT = 0x001
PGO_SYNCIO = 0x002
PGO_FREE = 0x008
PGO_PDFREECLUST = 0x080

OPS = ("lookup", "create", "mkdir", "remove", "rmdir", "link", "rename", "open", "close",
       "read", "write", "fsync", "getattr", "setattr", "truncate", "inactive", "reclaim",
       "lock", "unlock", "islocked", "bmap", "strategy", "bwrite", "getpages", "putpages",
       "update", "readdir", "symlink", "readlink", "balloc")


def vop_eopnotsupp(*args: Any) -> GEN:
    """genfs_eopnotsupp: the operation is not supported by this file-system type."""
    yield from ()
    return EOPNOTSUPP


class vnodeops:  # noqa: N801  (struct vnodeopv_desc: one file-system type's table)
    """A vnode-operations vector: `vop_NAME` for each operation; missing ones are
    vop_eopnotsupp, as vfs_opv_init fills the holes of a table with its default."""

    __slots__ = ("name", *(f"vop_{op}" for op in OPS))

    def __init__(self, name: str, **ops: Callable[..., Any]) -> None:
        self.name = name
        for op in OPS:
            setattr(self, f"vop_{op}", vop_eopnotsupp)
        for op, fn in ops.items():
            if op not in OPS:
                raise ValueError(f"{name}: unknown vnode operation {op!r}")
            setattr(self, f"vop_{op}", fn)

    def __repr__(self) -> str:
        return f"<vnodeops {self.name}>"


# ---- the calls (vnode_if.c), one per operation ---------------------------------------------
def VOP_LOOKUP(dvp: vnode, cnp: componentname) -> Generator[Any, Any, tuple[int, vnode | None]]:  # noqa: N802
    gen: Generator[Any, Any, tuple[int, vnode | None]] = dvp.v_op.vop_lookup(dvp, cnp)
    return gen


def VOP_CREATE(dvp: vnode, cnp: componentname, mode: int  # noqa: N802
               ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    gen: Generator[Any, Any, tuple[int, vnode | None]] = dvp.v_op.vop_create(dvp, cnp, mode)
    return gen


def VOP_MKDIR(dvp: vnode, cnp: componentname, mode: int  # noqa: N802
              ) -> Generator[Any, Any, tuple[int, vnode | None]]:
    gen: Generator[Any, Any, tuple[int, vnode | None]] = dvp.v_op.vop_mkdir(dvp, cnp, mode)
    return gen


def VOP_REMOVE(dvp: vnode, vp: vnode, cnp: componentname) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = dvp.v_op.vop_remove(dvp, vp, cnp)
    return gen


def VOP_RMDIR(dvp: vnode, vp: vnode, cnp: componentname) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = dvp.v_op.vop_rmdir(dvp, vp, cnp)
    return gen


def VOP_LINK(dvp: vnode, vp: vnode, cnp: componentname) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = dvp.v_op.vop_link(dvp, vp, cnp)
    return gen


def VOP_RENAME(fdvp: vnode, fvp: vnode, fcnp: componentname, tdvp: vnode,  # noqa: N802
               tvp: vnode | None, tcnp: componentname) -> Generator[Any, Any, int]:
    gen: Generator[Any, Any, int] = fdvp.v_op.vop_rename(fdvp, fvp, fcnp, tdvp, tvp, tcnp)
    return gen


def VOP_OPEN(vp: vnode, mode: int) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_open(vp, mode)
    return gen


def VOP_CLOSE(vp: vnode, fflag: int) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_close(vp, fflag)
    return gen


def VOP_READ(vp: vnode, uio_: uio, ioflag: int) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_read(vp, uio_, ioflag)
    return gen


def VOP_WRITE(vp: vnode, uio_: uio, ioflag: int) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_write(vp, uio_, ioflag)
    return gen


def VOP_FSYNC(vp: vnode, flags: int, start: int = 0, end: int = 0  # noqa: N802
              ) -> Generator[Any, Any, int]:
    gen: Generator[Any, Any, int] = vp.v_op.vop_fsync(vp, flags, start, end)
    return gen


def VOP_GETATTR(vp: vnode) -> Generator[Any, Any, tuple[int, dict[str, int]]]:  # noqa: N802
    gen: Generator[Any, Any, tuple[int, dict[str, int]]] = vp.v_op.vop_getattr(vp)
    return gen


def VOP_SETATTR(vp: vnode, vattr: dict[str, int]) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_setattr(vp, vattr)
    return gen


def VOP_READDIR(vp: vnode, offset: int, n: int  # noqa: N802
                ) -> Generator[Any, Any, tuple[int, int]]:
    """Directory bytes from `offset`, at most `n` (vp locked): (0 or an errno, the count)."""
    gen: Generator[Any, Any, tuple[int, int]] = vp.v_op.vop_readdir(vp, offset, n)
    return gen


def VOP_SYMLINK(dvp: vnode, cnp: componentname, target: str  # noqa: N802
                ) -> Generator[Any, Any, int]:
    """Make a symbolic link `cnp` in dvp (locked) pointing at `target`; vputs dvp."""
    gen: Generator[Any, Any, int] = dvp.v_op.vop_symlink(dvp, cnp, target)
    return gen


def VOP_READLINK(vp: vnode) -> Generator[Any, Any, tuple[int, str]]:  # noqa: N802
    """A symbolic link's target (vp locked)."""
    gen: Generator[Any, Any, tuple[int, str]] = vp.v_op.vop_readlink(vp)
    return gen


def VOP_TRUNCATE(vp: vnode, length: int, flags: int = 0) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_truncate(vp, length, flags)
    return gen


def VOP_INACTIVE(vp: vnode) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_inactive(vp)
    return gen


def VOP_RECLAIM(vp: vnode) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_reclaim(vp)
    return gen


def VOP_LOCK(vp: vnode, flags: int) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_lock(vp, flags)
    return gen


def VOP_UNLOCK(vp: vnode, flags: int = 0) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_unlock(vp, flags)
    return gen


def VOP_BMAP(vp: vnode, lbn: int, maxrun: int = 0  # noqa: N802
             ) -> Generator[Any, Any, tuple[int, vnode | None, int, int]]:
    """(error, the device vnode, the disk address in DEV_BSIZE sectors or -1 for a hole,
    how many following blocks are contiguous with it, up to `maxrun`)."""
    gen: Generator[Any, Any, tuple[int, vnode | None, int, int]] = vp.v_op.vop_bmap(
        vp, lbn, maxrun)
    return gen


def VOP_BALLOC(vp: vnode, off: int, n: int) -> Generator[Any, Any, int]:  # noqa: N802
    """Allocate the blocks of [off, off+n) that are holes (vnode locked): 0 or an errno
    (ENOSPC). 2.0's takes a buffer pointer out as well; no caller here wants it."""
    gen: Generator[Any, Any, int] = vp.v_op.vop_balloc(vp, off, n)
    return gen


def VOP_STRATEGY(vp: vnode, bp: buf) -> None:  # noqa: N802
    vp.v_op.vop_strategy(vp, bp)


def VOP_BWRITE(bp: buf) -> Generator[Any, Any, int]:  # noqa: N802
    vp = bp.b_vp
    assert vp is not None
    gen: Generator[Any, Any, int] = vp.v_op.vop_bwrite(bp)
    return gen


def VOP_GETPAGES(vp: vnode, pgs: list[vm_page]) -> Generator[Any, Any, int]:  # noqa: N802
    """Read the busy, not yet valid pages `pgs` (consecutive in the file): 0 or an errno."""
    gen: Generator[Any, Any, int] = vp.v_op.vop_getpages(vp, pgs)
    return gen


def VOP_PUTPAGES(vp: vnode, off: int, end: int, flags: int) -> Generator[Any, Any, int]:  # noqa: N802
    gen: Generator[Any, Any, int] = vp.v_op.vop_putpages(vp, off, end, flags)
    return gen


def VOP_UPDATE(vp: vnode, flags: int, since: int = -1) -> Generator[Any, Any, int]:  # noqa: N802
    """ffs_update. `since` (vfslab): the inode block carries data dirtied then, and is dated
    back to it (bbackdate) so that a policy keyed on age writes it when that data is due."""
    gen: Generator[Any, Any, int] = vp.v_op.vop_update(vp, flags, since)
    return gen


__all__ = [name for name in dir() if name.startswith(("VOP_", "IO_", "FSYNC_", "UPDATE_",
                                                      "PGO_"))] + [
    "EJUSTRETURN", "EOPNOTSUPP", "OPS", "vnodeops", "vop_eopnotsupp"]
