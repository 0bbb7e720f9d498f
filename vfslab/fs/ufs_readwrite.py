"""Reading and writing file data (sys/ufs/ufs/ufs_readwrite.c, netbsd-2-0 branch, included by
ffs_vnops.c as ffs_read and ffs_write), through UBC: the vnode is locked by vn_read/vn_write.

ffs_write allocates the blocks a 64 KiB window needs (ffs_balloc), copies into the page cache
(ubc), grows the file, and with IO_SYNC/IO_DSYNC ends with an fsync of the range written. An
IO_APPEND write starts at the size, read under the vnode lock.

Write-behind ("simplistic async flushing", as the source's UBC comment calls it; in
ufs_readwrite.c from 2001-10 on, so in 2.0):
after each piece copied in, `if (!async && oldoff >> 16 != uio->uio_offset >> 16)` the whole
64 KiB chunks the write completed are put with PGO_CLEANIT (asynchronously); `async` is the
MNT_ASYNC mount flag. So a sequential writer's data leaves as it is written; what waits for
the syncer is data dirtied without completing a chunk, data stored through mappings and all
of an MNT_ASYNC mount's. `--set ffs.write_behind=false` turns off only this (not 2.0: to
compare policies without it).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.fs.ffs_balloc import ffs_balloc
from vfslab.fs.ufs_layout import MAXFILESIZE
from vfslab.kern.lock import LK_EXCLUSIVE, LK_RELEASE
from vfslab.kern.vnode_if import (
    FSYNC_DATAONLY,
    FSYNC_WAIT,
    IO_APPEND,
    IO_DIRECT,
    IO_DSYNC,
    IO_MMAP,
    IO_SYNC,
    PGO_CLEANIT,
    PGO_FREE,
    PGO_SYNCIO,
    VOP_FSYNC,
    VOP_PUTPAGES,
)
from vfslab.tunable import Tunable, declare_setting, setting

if TYPE_CHECKING:
    from vfslab.fs.inode import inode
    from vfslab.kern.kern_subr import uio
    from vfslab.kern.vnode import vnode

CHUNK = 64 * 1024
EFBIG = 27
GEN = Generator[Any, Any, int]

WRITE_BEHIND = declare_setting("ffs", Tunable(
    "write_behind", bool, True,
    "ffs_write starts an asynchronous write of each 64 KiB chunk a writer completes (2.0); "
    "false: only the writeback policy writes data (MNT_ASYNC turns it off too)"))


def ffs_read(vp: vnode, u: uio, ioflag: int) -> GEN:
    ip: inode = vp.v_data
    k = ip.ump.k
    off = u.uio_offset
    err, got = yield from k.ubc.read(vp, off, u.uio_resid)
    if err:
        return err
    u.uio_offset += got
    u.uio_resid -= got
    if ioflag & IO_DIRECT and got > 0:
        yield from VOP_PUTPAGES(vp, off, off + got, PGO_FREE)
    return 0


def ffs_write(vp: vnode, u: uio, ioflag: int) -> GEN:
    ip: inode = vp.v_data
    ump = ip.ump
    k = ump.k
    L = k.locks
    if ioflag & IO_APPEND:
        u.uio_offset = ip.d.size
    off = u.uio_offset
    n = u.uio_resid
    if n == 0:
        return 0
    if off < 0 or off + n > MAXFILESIZE:
        return EFBIG                   # ufs_readwrite.c WRITE: past um_maxfilesize
    done = 0
    err = 0
    behind = not ump.async_ and not ioflag & IO_MMAP and \
        setting(k.cfg.sysctl, "ffs.write_behind")
    while done < n:
        pos = off + done
        chunk = min(n - done, CHUNK - pos % CHUNK)
        # GOP_ALLOC under the genfs node's g_glock, exclusive (ufs_readwrite.c 1.32.2.2 of
        # 2001-10: both ufs_balloc_range and the whole-block case take it around the
        # allocation), so that no genfs_getpages maps blocks meanwhile
        yield from L.lockmgr(vp.g_glock, LK_EXCLUSIVE)
        err = yield from ffs_balloc(vp, pos, chunk)
        yield from L.lockmgr(vp.g_glock, LK_RELEASE)
        if err:
            break
        err = yield from k.ubc.write(vp, pos, chunk, k.next_stamp(ip.ino),
                                     fault=bool(ioflag & IO_MMAP))
        if err:
            break
        done += chunk
        if pos + chunk > vp.v_size and not ioflag & IO_MMAP:
            vp.v_size = pos + chunk
            ip.d.size = vp.v_size
        end = pos + chunk
        if behind and pos >> 16 != end >> 16:
            # flush what we just wrote: the 64 KiB chunks this piece completed
            err = yield from VOP_PUTPAGES(vp, (pos >> 16) << 16, (end >> 16) << 16,
                                          PGO_CLEANIT)
            if err:
                break
    u.uio_offset = off + done
    u.uio_resid = n - done
    if done:
        ip.d.mtime = ump.m.time()
        ip.dirty = True
        if ioflag & IO_DIRECT:
            # O_DIRECT (NetBSD 5's, modelled by its effect): the data goes to the disk
            # before the call returns, and does not stay in the page cache
            e = yield from VOP_PUTPAGES(vp, off, off + done,
                                        PGO_CLEANIT | PGO_FREE | PGO_SYNCIO)
            err = err or e
        if ioflag & (IO_SYNC | IO_DSYNC):
            mark = k.notify.writes
            dataonly = ioflag & IO_SYNC != IO_SYNC        # IO_DSYNC alone
            e = yield from VOP_FSYNC(vp, FSYNC_WAIT | (FSYNC_DATAONLY if dataonly else 0))
            k.notify.synced(vp, mark, ump.m.time(), off >> 12, (off + done - 1) >> 12,
                            error=e)
            err = err or e
        # else: as ffs_write, only IN_CHANGE|IN_UPDATE: the inode goes out with the next
        # fsync, sync or inactive
    return err
