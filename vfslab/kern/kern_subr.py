"""struct uio and uiomove (sys/sys/uio.h, sys/kern/kern_subr.c, NetBSD 2.0): a transfer's
offset and what is left of it, handed from the file layer to VOP_READ and VOP_WRITE.

vfslab carries no user bytes (pages hold version stamps), so a uio is an offset, a residual
count and a direction; uiomove charges the copy's CPU time and advances both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vfslab.sim.engine import Engine

UIO_READ = 0
UIO_WRITE = 1


class uio:  # noqa: N801  (struct uio)
    __slots__ = ("uio_offset", "uio_resid", "uio_rw")

    def __init__(self, offset: int, resid: int, rw: int) -> None:
        self.uio_offset = offset
        self.uio_resid = resid
        self.uio_rw = rw

    def __repr__(self) -> str:
        return f"<uio off={self.uio_offset} resid={self.uio_resid} rw={self.uio_rw}>"


def uiomove(m: Engine, n: int, uio_: uio) -> int:
    """Move n bytes (no more than uio_resid) between the kernel and the process: charge the
    copy, advance the offset, reduce the residual. Returns 0 (the copy cannot fault here)."""
    n = min(n, uio_.uio_resid)
    if n > 0:
        m.charge(m.costs.copy_per_kib * n // 1024)
        uio_.uio_offset += n
        uio_.uio_resid -= n
    return 0
