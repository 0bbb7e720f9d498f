"""The buffer cache (sys/kern/vfs_bio.c, NetBSD 2.0): the buffer hash, the free queues
(LOCKED, LRU, AGE, EMPTY), getblk, bread, breadn, bwrite, bawrite, bdwrite, brelse, biowait and
biodone, with 2.0's locks (bqueue_slock, b_interlock) and spl levels, in 2.0's order.

Buffer memory follows 2.0's dynamic sizing: a high-water mark of `bufcache` percent of physical
memory; 2.0's coin toss in buf_lotsfree() is made deterministic (grow while under the low-water
mark, or while the AGE queue is empty and under the high-water mark).

A failed asynchronous write, as 2.0: biodone brelse()s the buffer, which B_ERROR invalidates:
its data and the error are gone, and the fsync that started it (ffs_fsync's bawrite passes)
returns 0 (`bio.write_error=drop`, the default). `bio.write_error=report` (not 2.0: Linux's
mark_buffer_write_io_error and AS_EIO) keeps the error for the buffer's vnode, and that
vnode's next fsync returns it (EIO): the data is still lost, but not promised. A failed write
of a device block (an inode block), asynchronous or not, is reported by the next fsync of
each inode in it, once, as Linux's errseq. `bio.write_error=redirty` (not 2.0: FreeBSD's
brelse, "Failed write, redirty", sys/kern/vfs_bio.c from FreeBSD 4 on) reports as `report` does
and keeps the buffer of a failed asynchronous write: brelse clears B_ERROR and re-dirties it
instead of invalidating it, so the data stays in memory and is written again (a bitmap block
that failed is not re-read from the disk's older copy, which gave out blocks still in use).
A failed synchronous write is thrown away, as in 2.0 (see `_redirty`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import (
    B_AGE,
    B_ASYNC,
    B_BUSY,
    B_CACHE,
    B_CALL,
    B_DELWRI,
    B_DONE,
    B_ERROR,
    B_INVAL,
    B_LOCKED,
    B_NOCACHE,
    B_READ,
    B_VFLUSH,
    B_WANTED,
    BQ_AGE,
    BQ_EMPTY,
    BQ_LOCKED,
    BQ_LRU,
    BQUEUES,
    PAGE_SIZE,
    buf,
)
from vfslab.kern.lock import simplelock
from vfslab.kern.vnode import VBLK, vnode
from vfslab.kern.vnode_if import VOP_STRATEGY
from vfslab.sim.panic import Panic
from vfslab.sim.stack import call_chain
from vfslab.tunable import Tunable, declare_setting, setting

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel


WRITE_ERROR = declare_setting("bio", Tunable(
    "write_error", str, "drop",
    "a failed asynchronous buffer write (metadata, directories, indirect blocks): drop (2.0: "
    "the buffer is invalidated and the error lost, so the fsync that wrote it returns 0) or "
    "report (the error is kept for the vnode's next fsync, as Linux's AS_EIO) or redirty (as "
    "report, and brelse keeps the buffer dirty to be written again, as FreeBSD's brelse)",
    choices=("drop", "report", "redirty")))

EIO = 5


@dataclass(slots=True)
class BioStats:
    getblk_hits: int = 0
    getblk_misses: int = 0
    getblk_sleeps: int = 0
    breads: int = 0
    bwrites_sync: int = 0
    bwrites_async: int = 0
    bdwrites: int = 0
    biodone: int = 0
    biodone_async_brelse: int = 0
    biodone_call: int = 0
    biodone_errors: int = 0
    brelse: int = 0
    bufs_dirtied: int = 0
    brelvp_in_intr: int = 0
    brelse_dissociated: int = 0   # invalid or failed buffers brelse took off their vnode
    bufs_redirtied: int = 0       # failed writes brelse made delayed writes again (redirty)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BufCache:
    """vfs_bio.c: one machine's buffer cache."""

    def __init__(self, k: Kernel, physmem_pages: int, bufcache_pct: int = 15) -> None:
        self.k = k
        self.m = k.m
        L = k.locks
        self.simple_lock = L.simple_lock
        self.simple_unlock = L.simple_unlock
        self.ltsleep = L.ltsleep
        self.bqueue_slock = simplelock("bqueue_slock")
        self.bufqueues: list[OrderedDict[buf, None]] = [OrderedDict() for _ in range(BQUEUES)]
        self.bufhash: dict[tuple[vnode, int], buf] = {}
        self.bufmem = 0
        pct = min(95, max(5, bufcache_pct))
        self.bufmem_hiwater = physmem_pages * PAGE_SIZE * pct // 100
        self.bufmem_lowater = max(64 * 1024, self.bufmem_hiwater >> 3)
        self.nbuf_alloc = 0
        self.needbuffer = False
        self.ndirty = 0          # B_DELWRI buffers (metrics)
        self.stats = BioStats()
        # the block device's strategy routine (bdevsw[major].d_strategy), set at attach
        self.bdev_strategy: Callable[[buf], None] = self._nostrategy
        self.notify = k.notify
        # bio.write_error=report: a failed asynchronous write's error, per vnode, until an
        # fsync of the vnode takes it
        mode = setting(k.cfg.sysctl, "bio.write_error")
        self.report_errors = mode in ("report", "redirty")
        # bio.write_error=redirty: brelse re-dirties a failed write (FreeBSD's brelse)
        self.redirty_errors = mode == "redirty"
        self.latched: dict[vnode, int] = {}
        # ... and of the device's blocks (an inode block holds many inodes: each fsync
        # compares the block's failure number with the last it reported, as errseq does)
        self.block_errors: dict[tuple[vnode, int], int] = {}
        self.nblock_errors = 0
        # (vnode, negative lbn): a file's indirect block whose write failed, so brelse threw
        # it away. In 2.0 the pointers lived only in that buffer, and the next bmap read the
        # disk's older copy; the file system's decoded copy (ufs_bmap's cache) must go too
        # (found by the crash matrix: with the pointer kept in memory, the block was never
        # allocated again nor its pointer written, and data fsync'd after the error was lost)
        self.lost_indirect: set[tuple[vnode, int]] = set()

    def take_write_error(self, vp: vnode) -> int:
        """The error of a failed asynchronous write of one of vp's buffers since the last
        call (bio.write_error=report), else 0."""
        return self.latched.pop(vp, 0) if self.latched else 0

    def keep_write_error(self, bp: buf, asynchronous: bool) -> None:
        """bio.write_error=report: keep a failed write's error for the fsyncs that must hear
        of it. A device block's failure is numbered per block, for each inode in it, whether
        the write was asynchronous or not: a synchronous one fails for its caller only (found
        by the crash matrix with every fix: another file's fsync wrote the inode block, got
        EIO, and the inode whose update went with the buffer was never told). A file's own
        buffer's asynchronous failure is latched for that vnode's next fsync; a synchronous
        one's caller has the error."""
        vp = bp.b_vp
        if vp is None:
            return
        if vp.v_type == VBLK:
            self.nblock_errors += 1
            self.block_errors[(vp, bp.b_blkno // 8)] = self.nblock_errors
        elif asynchronous:
            self.latched[vp] = bp.b_error or EIO

    def block_error(self, devvp: vnode, blk: int) -> int:
        """The number of the last failed asynchronous write of device block `blk` (4 KiB
        blocks; bio.write_error=report), 0 if none failed."""
        return self.block_errors.get((devvp, blk), 0)

    def strategy(self, bp: buf) -> None:
        """Hand a request to the disk driver (VOP_STRATEGY of the device vnode). b_proc
        names who queued it (the running thread or interrupt), for per-call records."""
        cur = self.m.cur
        bp.b_proc = cur.name if cur is not None else ""
        for f in self.notify.io_started:
            f(bp)
        self.bdev_strategy(bp)

    def _nostrategy(self, bp: buf) -> None:
        raise Panic("no disk attached", "", [], self.m.time())

    def panic(self, msg: str) -> Panic:
        cur = self.m.cur
        return Panic(msg, cur.describe() if cur is not None else "boot", [call_chain(2)],
                     self.m.time())

    # ---- free queues (called at splbio with bqueue_slock held) ------------------------------
    def bremfree(self, bp: buf) -> None:
        q = bp.b_qindex
        if q < 0:
            raise self.panic(f"bremfree: buf not on a queue {bp!r}")
        del self.bufqueues[q][bp]
        bp.b_qindex = -1

    def binstailfree(self, bp: buf, q: int) -> None:
        self.bufqueues[q][bp] = None
        bp.b_qindex = q

    def binsheadfree(self, bp: buf, q: int) -> None:
        dq = self.bufqueues[q]
        dq[bp] = None
        dq.move_to_end(bp, last=False)
        bp.b_qindex = q

    # ---- lookup and allocation --------------------------------------------------------------
    def incore(self, vp: vnode, blkno: int) -> buf | None:
        self.m.charge(self.m.costs.buf_lookup)
        bp = self.bufhash.get((vp, blkno))
        if bp is not None and not (bp.b_flags & B_INVAL):
            return bp
        return None

    def getblk(self, vp: vnode, blkno: int, size: int, slptimeo: int = 0
               ) -> Generator[Any, Any, buf | None]:
        """Get the buffer for (vp, blkno), busy: from the cache, sleeping while another holds
        it, or a new one. A new buffer has b_blkno = b_lblkno = blkno: for a file or directory
        vnode ufs_strategy maps it to a disk address with VOP_BMAP when it is first read or
        written (ffs_balloc and ufs_bmaparray set b_blkno themselves for the indirect
        blocks they create or read); for the device vnode blkno is the disk address."""
        m = self.m
        stats = self.stats
        while True:
            s = m.splbio()
            self.simple_lock(self.bqueue_slock)
            bp = self.incore(vp, blkno)
            if bp is not None:
                self.simple_lock(bp.b_interlock)
                if bp.b_flags & B_BUSY:
                    self.simple_unlock(self.bqueue_slock)
                    bp.b_flags |= B_WANTED
                    stats.getblk_sleeps += 1
                    err = yield from self.ltsleep(bp, "getblk", slptimeo, bp.b_interlock, False)
                    m.splx(s)
                    if err:
                        return None
                    continue
                bp.b_flags |= B_BUSY
                self.bremfree(bp)
                stats.getblk_hits += 1
                self.simple_unlock(bp.b_interlock)
                self.simple_unlock(self.bqueue_slock)
                m.splx(s)
                m.charge(m.costs.buf_op)
                if bp.b_bcount != size:
                    self.allocbuf(bp, size)
                return bp
            bp = yield from self.getnewbuf(slptimeo)
            if bp is None:
                self.simple_unlock(self.bqueue_slock)
                m.splx(s)
                continue
            stats.getblk_misses += 1
            key = (vp, blkno)
            self.bufhash[key] = bp
            bp.b_hashkey = key
            bp.b_lblkno = blkno
            bp.b_blkno = blkno
            self.k.vfs.bgetvp(vp, bp)
            self.simple_unlock(bp.b_interlock)
            self.simple_unlock(self.bqueue_slock)
            m.splx(s)
            m.charge(m.costs.buf_op)
            self.allocbuf(bp, size)
            return bp

    def bget(self, vp: vnode, blkno: int, size: int) -> Generator[Any, Any, buf]:
        """getblk without a timeout: it always returns the buffer."""
        while True:
            bp = yield from self.getblk(vp, blkno, size, 0)
            if bp is not None:
                return bp

    def geteblk(self, size: int) -> Generator[Any, Any, buf]:
        """An empty, disassociated buffer (for I/O of the page cache: getiobuf)."""
        bp = buf()
        bp.b_flags = B_BUSY
        bp.b_bcount = size
        bp.b_bufsize = size
        bp.b_data = [None] * (size // PAGE_SIZE)
        yield from ()
        return bp

    def allocbuf(self, bp: buf, size: int) -> None:
        old = bp.b_bufsize
        nblk = (size + PAGE_SIZE - 1) // PAGE_SIZE
        data = bp.b_data
        if len(data) < nblk:
            data.extend([None] * (nblk - len(data)))
        elif len(data) > nblk:
            del data[nblk:]
        bp.b_bcount = size
        bp.b_bufsize = nblk * PAGE_SIZE
        self.bufmem += bp.b_bufsize - old

    def buf_lotsfree(self) -> bool:
        if self.bufmem < self.bufmem_lowater:
            return True
        if self.bufmem >= self.bufmem_hiwater:
            return False
        return not self.bufqueues[BQ_AGE]

    def getnewbuf(self, slptimeo: int) -> Generator[Any, Any, buf | None]:
        """Find a buffer: new while memory allows, else the head of AGE then LRU; a delayed
        write found there is started with bawrite and the caller retries (returns None).
        Called at splbio with bqueue_slock held; returns the buffer with b_interlock held."""
        if self.buf_lotsfree():
            bp = buf()
            bp.b_flags = B_BUSY
            self.nbuf_alloc += 1
            self.simple_lock(bp.b_interlock)
            return bp
        while True:
            q = self.bufqueues[BQ_EMPTY] or self.bufqueues[BQ_AGE] or self.bufqueues[BQ_LRU]
            if not q:
                self.needbuffer = True
                yield from self.ltsleep(self, "getnewbuf", slptimeo, self.bqueue_slock, True)
                return None
            bp = next(iter(q))
            self.simple_lock(bp.b_interlock)
            self.bremfree(bp)
            if bp.b_flags & B_VFLUSH:
                # a delayed write being flushed: age it, leave it off the queue
                bp.b_flags = (bp.b_flags & ~B_VFLUSH) | B_AGE
                self.simple_unlock(bp.b_interlock)
                continue
            bp.b_flags |= B_BUSY
            if bp.b_flags & B_DELWRI:
                bp.b_flags |= B_AGE
                self.simple_unlock(bp.b_interlock)
                self.simple_unlock(self.bqueue_slock)
                self.bawrite(bp)
                self.simple_lock(self.bqueue_slock)
                return None
            if bp.b_vp is not None:
                self.brelvp(bp)
            bp.b_flags = B_BUSY
            bp.b_blkno = bp.b_lblkno = 0
            bp.b_iodone = None
            bp.b_error = 0
            bp.b_resid = 0
            bp.b_private = None
            bp.b_dirtied_at = -1
            bp.b_dirindex = None
            if bp.b_hashkey is not None:
                self.bremhash(bp)
            return bp

    def bremhash(self, bp: buf) -> None:
        key = bp.b_hashkey
        if key is not None and self.bufhash.get(key) is bp:
            del self.bufhash[key]
        bp.b_hashkey = None

    # ---- reads ------------------------------------------------------------------------------
    def bio_doread(self, vp: vnode, blkno: int, size: int, async_: bool
                   ) -> Generator[Any, Any, buf]:
        bp = yield from self.bget(vp, blkno, size)
        if not (bp.b_flags & (B_DONE | B_DELWRI)):
            bp.b_flags |= B_READ | (B_ASYNC if async_ else 0)
            VOP_STRATEGY(vp, bp)
        elif async_:
            self.brelse(bp)
        return bp

    def bread(self, vp: vnode, blkno: int, size: int) -> Generator[Any, Any, tuple[int, buf]]:
        """Read a block (Bach p.54): returns (error, bp); the caller brelse()s bp."""
        self.stats.breads += 1
        bp = yield from self.bio_doread(vp, blkno, size, False)
        err = yield from self.biowait(bp)
        return err, bp

    def breadn(self, vp: vnode, blkno: int, size: int, rablks: list[int], rasizes: list[int]
               ) -> Generator[Any, Any, tuple[int, buf]]:
        """bread with asynchronous read-ahead of `rablks`."""
        self.stats.breads += 1
        bp = yield from self.bio_doread(vp, blkno, size, False)
        for rb, rs in zip(rablks, rasizes, strict=True):
            if self.incore(vp, rb) is None:
                yield from self.bio_doread(vp, rb, rs, True)
        err = yield from self.biowait(bp)
        return err, bp

    # ---- writes -----------------------------------------------------------------------------
    def bwrite(self, bp: buf) -> Generator[Any, Any, int]:
        """Write a busy buffer; synchronous unless B_ASYNC (then it is released in biodone)."""
        m = self.m
        if not (bp.b_flags & B_BUSY):
            raise self.panic(f"bwrite: buffer not busy {bp!r}")
        sync = not (bp.b_flags & B_ASYNC)
        vp = bp.b_vp
        mp = vp.v_mount if vp is not None else None
        if sync and mp is not None and mp.async_:
            self.bdwrite(bp)
            return 0
        if sync:
            self.stats.bwrites_sync += 1
        else:
            self.stats.bwrites_async += 1
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        wasdelayed = bp.b_flags & B_DELWRI
        bp.b_flags &= ~(B_READ | B_DONE | B_ERROR | B_DELWRI)
        if wasdelayed:
            self.ndirty -= 1
            bp.b_dirtied_at = -1
            if vp is not None:
                self.k.vfs.reassignbuf(bp, vp)
                for f in self.k.notify.buf_cleaned:
                    f(bp)
        if vp is not None:
            self.k.vfs.numoutput_incr(vp)
        self.simple_unlock(bp.b_interlock)
        m.splx(s)
        if vp is not None:
            VOP_STRATEGY(vp, bp)
        else:
            self.strategy(bp)
        if sync:
            rv = yield from self.biowait(bp)
            self.brelse(bp)
            return rv
        return 0

    def bawrite(self, bp: buf) -> None:
        """Asynchronous write: B_ASYNC + bwrite; biodone brelse()s it at interrupt level."""
        m = self.m
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        bp.b_flags |= B_ASYNC
        self.simple_unlock(bp.b_interlock)
        m.splx(s)
        gen = self.bwrite(bp)
        try:
            next(gen)
        except StopIteration:
            return
        raise self.panic("bawrite: asynchronous bwrite slept")

    def bdwrite(self, bp: buf) -> None:
        """Delayed write: mark B_DELWRI, move to the dirty list (syncer worklist), release."""
        m = self.m
        self.stats.bdwrites += 1
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        if not (bp.b_flags & B_BUSY):
            raise self.panic(f"bdwrite: buffer not busy {bp!r}")
        if not (bp.b_flags & B_DELWRI):
            bp.b_flags |= B_DELWRI
            self.ndirty += 1
            self.stats.bufs_dirtied += 1
            if bp.b_vp is not None:
                self.k.vfs.reassignbuf(bp, bp.b_vp)
        bp.b_flags &= ~B_DONE
        self.simple_unlock(bp.b_interlock)
        m.splx(s)
        self.brelse(bp)

    # ---- release ----------------------------------------------------------------------------
    def brelse(self, bp: buf) -> None:
        """Release a buffer onto the free lists (Bach p.46). On B_ERROR or B_INVAL it calls
        reassignbuf and brelvp, even when run from biodone at interrupt level."""
        m = self.m
        self.stats.brelse += 1
        s = m.splbio()
        self.simple_lock(self.bqueue_slock)
        self.simple_lock(bp.b_interlock)
        flags = bp.b_flags
        if not (flags & B_BUSY):
            raise self.panic(f"brelse: buffer not busy {bp!r}")
        if self.needbuffer:
            self.needbuffer = False
            m.wakeup(self)
        if flags & B_WANTED:
            flags &= ~(B_WANTED | B_AGE)
            m.wakeup(bp)
        if flags & (B_LOCKED | B_ERROR) == (B_LOCKED | B_ERROR):
            flags &= ~B_ERROR
        if flags & (B_NOCACHE | B_ERROR) and self.redirty_errors \
                and flags & (B_READ | B_ERROR | B_INVAL | B_ASYNC) == B_ERROR | B_ASYNC:
            flags = self._redirty(bp, flags)      # (only on a failed write: off the hot path)
        if flags & (B_NOCACHE | B_ERROR):
            flags |= B_INVAL
            if flags & B_ERROR and not flags & B_READ and bp.b_lblkno < 0 \
                    and bp.b_vp is not None and bp.b_vp.v_type != VBLK:
                self.lost_indirect.add((bp.b_vp, bp.b_lblkno))
        queued = False
        if flags & B_VFLUSH:
            flags &= ~B_VFLUSH
            if not (flags & (B_ERROR | B_INVAL | B_LOCKED | B_AGE)) and bp.b_qindex >= 0:
                queued = True
            elif bp.b_qindex >= 0:
                self.bremfree(bp)
        if not queued:
            if bp.b_bufsize <= 0 or flags & B_INVAL:
                if flags & B_DELWRI:
                    self.ndirty -= 1
                    for f in self.k.notify.buf_cleaned:
                        f(bp)
                flags &= ~(B_DONE | B_DELWRI)
                bp.b_flags = flags
                if bp.b_vp is not None:
                    self.stats.brelse_dissociated += 1
                    if m.cur is not None and m.cur.intr:
                        self.stats.brelvp_in_intr += 1
                    self.k.vfs.reassignbuf(bp, bp.b_vp)
                    self.brelvp(bp)
                if bp.b_hashkey is not None:
                    self.bremhash(bp)
                self.binsheadfree(bp, BQ_EMPTY if bp.b_bufsize <= 0 else BQ_AGE)
            elif flags & B_LOCKED:
                self.binstailfree(bp, BQ_LOCKED)
            elif not (flags & B_AGE):
                self.binstailfree(bp, BQ_LRU)
            else:
                self.binstailfree(bp, BQ_AGE)
        bp.b_flags = (flags & ~(B_AGE | B_ASYNC | B_BUSY | B_NOCACHE)) | B_CACHE
        self.simple_unlock(bp.b_interlock)
        self.simple_unlock(self.bqueue_slock)
        m.charge(m.costs.buf_op)
        m.splx(s)

    def _redirty(self, bp: buf, flags: int) -> int:
        """bio.write_error=redirty (not 2.0): a failed asynchronous write is made a delayed
        write again, as FreeBSD's brelse does ("Failed write, redirty": B_ERROR cleared,
        bdirty); the buffer goes back on its vnode's dirty list and the syncer's worklist,
        dated from now. Called from brelse at splbio with the buffer's interlock held.

        A failed synchronous write is thrown away as in 2.0, where FreeBSD keeps it too: its
        caller has the error, and 2.0's callers undo what they did on the assumption that
        the buffer is gone (ufs_makeinode's `bad:` frees the inode whose directory entry
        failed to write; a kept directory block then named a free inode, which the next
        open found and wrote to: found by the crash tests, protocol with 3% write faults)."""
        flags &= ~(B_ERROR | B_NOCACHE | B_DONE)
        bp.b_wfailures += 1
        if not flags & B_DELWRI:
            flags |= B_DELWRI
            self.ndirty += 1
            self.stats.bufs_dirtied += 1
            self.stats.bufs_redirtied += 1
            bp.b_flags = flags
            if bp.b_vp is not None:
                self.k.vfs.reassignbuf(bp, bp.b_vp)
        return flags

    def brelvp(self, bp: buf) -> None:
        self.k.vfs.brelvp(bp)

    def set_flags_inval(self, bp: buf) -> None:
        bp.b_flags |= B_BUSY | B_INVAL | B_VFLUSH

    def bbusy(self, bp: buf, wmesg: str) -> Generator[Any, Any, bool]:
        """Make a specific cached buffer busy, as vinvalbuf and ffs_fsync do: if it is busy,
        sleep until released and return False (the caller rescans)."""
        m = self.m
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        if bp.b_flags & B_BUSY:
            bp.b_flags |= B_WANTED
            yield from self.ltsleep(bp, wmesg, 0, bp.b_interlock, False)
            m.splx(s)
            return False
        bp.b_flags |= B_BUSY | B_VFLUSH
        self.simple_unlock(bp.b_interlock)
        m.splx(s)
        return True

    def btrybusy(self, bp: buf) -> bool:
        """Make a buffer busy if it is not (the syncer's and trickle's non-sleeping path)."""
        m = self.m
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        if bp.b_flags & B_BUSY:
            self.simple_unlock(bp.b_interlock)
            m.splx(s)
            return False
        bp.b_flags |= B_BUSY | B_VFLUSH
        self.simple_unlock(bp.b_interlock)
        m.splx(s)
        return True

    def bbackdate(self, bp: buf, when: int) -> None:
        """A delayed-write buffer now carries a change made at `when` (an inode block taking
        the block pointers of data dirtied then): it is as old as that change, so a policy
        keyed on age writes it when that data is due, not a whole window later."""
        m = self.m
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        older = bp.b_flags & B_DELWRI and 0 <= when < bp.b_dirtied_at
        if older:
            bp.b_dirtied_at = when
            for f in self.k.notify.buf_dirtied:
                f(bp)
        self.simple_unlock(bp.b_interlock)
        m.splx(s)

    # ---- completion -------------------------------------------------------------------------
    def biowait(self, bp: buf) -> Generator[Any, Any, int]:
        m = self.m
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        if m.track_waits and not bp.b_flags & (B_DONE | B_DELWRI):
            self._note_queue(bp)
        while not (bp.b_flags & (B_DONE | B_DELWRI)):
            yield from self.ltsleep(bp, "biowait", 0, bp.b_interlock, True)
        if bp.b_flags & B_ERROR:
            err = bp.b_error or EIO
        else:
            err = 0
        self.simple_unlock(bp.b_interlock)
        m.splx(s)
        return err

    def _note_queue(self, bp: buf) -> None:
        """What else the disk had when a caller began to wait for `bp`: the other requests
        in service or queued, writes by who queued them (kept on the buf, for the per-call
        record that describes this wait)."""
        disk = self.k.disk
        if disk is None or not hasattr(disk, "pending"):
            return
        reads, pending = disk.pending()
        writes = dict(pending)
        if bp.b_flags & B_READ:           # not itself
            reads -= 1
        elif writes.get(bp.b_proc, 0) > 0:
            writes[bp.b_proc] -= 1
            if not writes[bp.b_proc]:
                del writes[bp.b_proc]
        nw = sum(writes.values())
        by = ", ".join(f"{n} by {w}" for w, n in sorted(writes.items(), key=lambda x: -x[1]))
        bp.b_private_note = (f"with {nw} write(s) ({by}) and {max(0, reads)} other read(s) "
                             f"at the disk" if nw else
                             f"with {max(0, reads)} other read(s) at the disk")

    def biodone(self, bp: buf) -> None:
        """Mark I/O complete (the disk's completion interrupt calls this at IPL_BIO)."""
        for f in self.notify.io_done:
            f(bp)
        self.k.proto.biodone(self, bp)

    def biodone_work(self, bp: buf) -> None:
        """biodone's body in 2.0: B_DONE, vwakeup for writes, then the B_CALL callback, or
        brelse for B_ASYNC, or a wakeup of the biowait sleeper."""
        m = self.m
        st = self.stats
        st.biodone += 1
        s = m.splbio()
        self.simple_lock(bp.b_interlock)
        if bp.b_flags & B_DONE:
            raise self.panic(f"biodone already {bp!r}")
        bp.b_flags |= B_DONE
        if bp.b_flags & B_ERROR:
            st.biodone_errors += 1
        if not (bp.b_flags & B_READ):
            self.k.vfs.vwakeup(bp)
        if bp.b_flags & B_CALL:
            st.biodone_call += 1
            bp.b_flags &= ~B_CALL
            self.simple_unlock(bp.b_interlock)
            iodone = bp.b_iodone
            assert iodone is not None
            iodone(bp)
        elif bp.b_flags & B_ASYNC:
            st.biodone_async_brelse += 1
            if self.report_errors and bp.b_flags & B_ERROR and not bp.b_flags & B_READ:
                self.keep_write_error(bp, asynchronous=True)
            self.simple_unlock(bp.b_interlock)
            self.brelse(bp)
        else:
            if self.report_errors and bp.b_flags & B_ERROR and not bp.b_flags & B_READ:
                self.keep_write_error(bp, asynchronous=False)
            bp.b_flags &= ~B_WANTED
            m.wakeup(bp)
            self.simple_unlock(bp.b_interlock)
        m.splx(s)

    # ---- introspection ----------------------------------------------------------------------
    def dirty_buffers(self) -> int:
        return self.ndirty
