"""What a sleeping system call waited on, in words (per-call records, `vfslab slow`).

A thread sleeps on a wait channel (tsleep(9)'s ident) with a message; the channel is a kernel
object: a buffer (biowait, getblk), a page (a busy page), a vnode's lock or its output count,
or something else. The description names the object the way a kernel engineer would look for
it: the file by inode number and the block or page.
"""

from __future__ import annotations

from vfslab.kern.buf import B_PAGEIO, B_READ, PAGE_SIZE, buf
from vfslab.kern.lock import lock
from vfslab.kern.uvm_page import vm_page
from vfslab.kern.vnode import VBLK, vnode


def _vname(vp: vnode | None) -> str:
    if vp is None:
        return "no vnode"
    ino = getattr(vp.v_data, "ino", None)
    return f"inode {ino}" if ino is not None else f"vnode {vp.v_id}"


def describe_buf(bp: buf) -> str:
    """What a buffer's I/O is: "write of inode 7 pages 0-15"."""
    what = "read" if bp.b_flags & B_READ else "write"
    vp = bp.b_vp
    lbn = bp.b_lblkno
    if bp.b_flags & B_PAGEIO:
        where = f"pages {lbn}-{lbn + max(1, bp.b_bcount // PAGE_SIZE) - 1}"
    elif vp is not None and vp.v_type == VBLK:
        where = f"metadata block {bp.b_blkno // 8}"
    elif lbn < 0:
        where = f"indirect block (lbn {lbn})"
    else:
        where = f"block {lbn}"
    whose = "the device" if vp is not None and vp.v_type == VBLK else _vname(vp)
    return f"{what} of {whose} {where}"


def describe_wait(wmesg: str, chan: object) -> str:
    """`wmesg` and what `chan` is: "biowait: write of inode 7 block 12"."""
    if not wmesg:
        return ""
    if isinstance(chan, buf):
        note = f", {chan.b_private_note}" if chan.b_private_note else ""
        return f"{wmesg}: {describe_buf(chan)}{note}"
    if isinstance(chan, vm_page):
        return f"{wmesg}: page {chan.offset} of {_vname(chan.uobject.vp)}"
    if isinstance(chan, vnode):
        return f"{wmesg}: {_vname(chan)}"
    if isinstance(chan, lock):
        return f"{wmesg}: lock {chan.cls}"
    if isinstance(chan, tuple) and len(chan) == 2 and isinstance(chan[0], vnode):
        return f"{wmesg}: {chan[1]} of {_vname(chan[0])}"
    return wmesg
