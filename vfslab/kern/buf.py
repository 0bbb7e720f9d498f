"""struct buf and its flags (sys/sys/buf.h, NetBSD 2.0).

Data is carried per 4 KiB block in `b_data`: a list of payloads, `bytearray` for metadata the
file system edits in place, `int` version stamps for file data, None for zeroes. The disk copies
payloads at completion, so the disk holds exactly what was written and when.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vfslab.kern.guards import declare_guards
from vfslab.kern.lock import simplelock

if TYPE_CHECKING:
    from vfslab.kern.vnode import vnode

# b_flags (sys/sys/buf.h)
B_AGE = 0x00000001
B_NEEDCOMMIT = 0x00000002
B_ASYNC = 0x00000004
B_BAD = 0x00000008
B_BUSY = 0x00000010
B_SCANNED = 0x00000020
B_CALL = 0x00000040
B_DELWRI = 0x00000080
B_DIRTY = 0x00000100
B_DONE = 0x00000200
B_EINTR = 0x00000400
B_ERROR = 0x00000800
B_GATHERED = 0x00001000
B_INVAL = 0x00002000
B_LOCKED = 0x00004000
B_NOCACHE = 0x00008000
B_CACHE = 0x00020000
B_PHYS = 0x00040000
B_RAW = 0x00080000
B_READ = 0x00100000
B_TAPE = 0x00200000
B_WANTED = 0x00800000
B_WRITE = 0x00000000
B_VFLUSH = 0x04000000
B_PAGEIO = 0x10000000      # a page-cache cluster I/O (genfs_putpages/getpages)

FLAG_NAMES = {
    B_AGE: "B_AGE", B_ASYNC: "B_ASYNC", B_BUSY: "B_BUSY", B_SCANNED: "B_SCANNED",
    B_CALL: "B_CALL", B_DELWRI: "B_DELWRI", B_DONE: "B_DONE", B_ERROR: "B_ERROR",
    B_INVAL: "B_INVAL", B_LOCKED: "B_LOCKED", B_NOCACHE: "B_NOCACHE", B_CACHE: "B_CACHE",
    B_READ: "B_READ", B_WANTED: "B_WANTED", B_VFLUSH: "B_VFLUSH", B_PAGEIO: "B_PAGEIO",
}

# Free queues (vfs_bio.c): BQ_LOCKED, BQ_LRU, BQ_AGE, BQ_EMPTY
BQ_LOCKED = 0
BQ_LRU = 1
BQ_AGE = 2
BQ_EMPTY = 3
BQUEUES = 4
BQ_NAMES = ("LOCKED", "LRU", "AGE", "EMPTY")

DEV_BSIZE = 512
PAGE_SIZE = 4096
PAGE_SHIFT = 12
SECTORS_PER_PAGE = PAGE_SIZE // DEV_BSIZE
MAXPHYS = 64 * 1024


def flags_str(flags: int) -> str:
    return "|".join(n for b, n in FLAG_NAMES.items() if flags & b) or "0"


# b_flags belong to whoever holds B_BUSY (2.0 sets them with or without b_interlock), so the
# buffer declares no field guards: the mail's protocol is about the vnode's fields.
@declare_guards("buf", {})
class buf:  # noqa: N801  (NetBSD's struct name)
    """struct buf: one buffer-cache buffer or one I/O request."""

    __slots__ = ("b_flags", "b_vp", "b_lblkno", "b_blkno", "b_bcount", "b_bufsize", "b_resid",
                 "b_error", "b_data", "b_iodone", "b_interlock", "b_qindex", "b_private",
                 "b_dirtied_at", "b_onvnlist", "b_hashkey", "b_proc", "b_started", "b_dirindex",
                 "b_private_note", "b_wfailures", "__weakref__")

    def __init__(self) -> None:
        self.b_flags = 0
        self.b_vp: vnode | None = None
        self.b_lblkno = 0
        self.b_blkno = 0            # disk address in DEV_BSIZE sectors
        self.b_bcount = 0
        self.b_bufsize = 0
        self.b_resid = 0
        self.b_error = 0
        self.b_data: list[Any] = []
        self.b_iodone: Callable[[buf], None] | None = None
        self.b_interlock = simplelock("b_interlock")
        self.b_qindex = -1          # free queue it is on, -1 when busy/none
        self.b_private: Any = None  # b_private: the pages of a page-cache I/O, etc.
        self.b_dirtied_at = -1      # when it became B_DELWRI (for trickle sync and metrics)
        self.b_onvnlist = 0         # 0 none, 1 clean list, 2 dirty list (LIST_NEXT != NOLIST)
        self.b_hashkey: tuple[Any, int] | None = None   # (vp, lblkno) while in the hash
        self.b_proc: Any = None     # who queued it at the disk (a thread's name)
        self.b_private_note = ""    # what else the disk had when someone began to wait for it
        self.b_started = 0
        self.b_wfailures = 0        # failed writes brelse kept dirty (bio.write_error=redirty)
        # a directory block's entries decoded (ufs_lookup's scan of it, kept while the block's
        # contents are unchanged: a speed-up of the emulator, charged as the scan it replaces)
        self.b_dirindex: Any = None

    def __repr__(self) -> str:
        vp = self.b_vp
        return (f"<buf lblk={self.b_lblkno} blk={self.b_blkno} n={self.b_bcount} "
                f"vp={vp.v_id if vp is not None else None} {flags_str(self.b_flags)}>")
