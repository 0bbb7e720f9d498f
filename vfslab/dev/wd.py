"""A disk driver in the manner of NetBSD's wd(4)/sd(4) of 2004: a request queue (queues.py:
disksort, FIFO, or Linux's mq-deadline), a device that holds up to `depth` requests, a
completion interrupt at IPL_BIO that transfers the data, starts the next request and calls
biodone.

The block store maps 4 KiB block numbers to payloads; a write's payloads land at completion.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vfslab.dev.faults import FaultInjector
from vfslab.dev.models import ServiceModel
from vfslab.dev.queues import Merged, RequestQueue, make_queue
from vfslab.sim.engine import Engine
from vfslab.sim.ipl import IPL_BIO

B_READ = 0x00100000
B_ERROR = 0x00000800
EIO = 5
SECTOR = 512
BLOCK_SECTORS = 8


class WriteLog:
    """The disk's write history, kept when crash tests ask for it: the image the disk would
    hold after a power cut at any instant is the starting image plus the writes completed by
    then, with the writes in service torn. Recording it instead of stopping the machine lets
    one run yield many crash images without perturbing the run."""

    def __init__(self, store: dict[int, Any]) -> None:
        self.initial = dict(store)
        # (time, request number, first block, payloads): writes as they entered service
        self.starts: list[tuple[int, int, int, tuple[Any, ...]]] = []
        # (time, request number, succeeded): completions of reads and writes, in time order
        self.ends: list[tuple[int, int, bool]] = []
        # (time, first block, blocks): writes as they were queued (strategy), so that a loss
        # report can tell data the disk had been given from data never written out
        self.queued: list[tuple[int, int, int]] = []

    def queued_write(self, now: int, bp: Any) -> None:
        self.queued.append((now, bp.b_blkno // BLOCK_SECTORS, bp.b_bcount // 4096))

    def started(self, now: int, reqno: int, bp: Any) -> None:
        n = bp.b_bcount // 4096
        data = tuple(bytes(v) if isinstance(v, bytearray) else v for v in bp.b_data[:n])
        self.starts.append((now, reqno, bp.b_blkno // BLOCK_SECTORS, data))

    def finished(self, now: int, reqno: int, ok: bool) -> None:
        self.ends.append((now, reqno, ok))


class DiskTracer(Protocol):
    """What a timeline is told of a disk's requests (a request may be a Merged one)."""

    def queued(self, disk: Disk, bp: Any, t: int) -> None: ...

    def started(self, disk: Disk, req: Any, t: int) -> None: ...

    def finished(self, disk: Disk, req: Any, t: int, ok: bool) -> None: ...


class Torn:
    """A 4 KiB block whose write was cut by a power failure after `sectors` sectors."""

    __slots__ = ("old", "new", "sectors")

    def __init__(self, old: Any, new: Any, sectors: int) -> None:
        self.old = old
        self.new = new
        self.sectors = sectors

    def __repr__(self) -> str:
        return f"Torn({self.sectors}/8 sectors)"


@dataclass(slots=True)
class DiskStats:
    reads: int = 0
    writes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    busy_ns: int = 0
    errors: int = 0
    max_queue: int = 0


class Disk:
    """One disk: driver queue, device slots, service model, faults, store."""

    def __init__(self, m: Engine, model: ServiceModel, iodone: Callable[[Any], None],
                 queue: str = "disksort", depth: int = 1, intr_cpu: int = 0,
                 nblocks: int = 1 << 20, faults: FaultInjector | None = None,
                 name: str = "wd0", queue_settings: dict[str, Any] | None = None) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.m = m
        self.model = model
        self.iodone = iodone
        self.queue_kind = queue
        self.depth = depth
        self.intr_cpu = intr_cpu
        self.nblocks = nblocks
        self.faults = faults
        self.name = name
        self.store: dict[int, Any] = {}
        self.stats = DiskStats()
        self.queue: RequestQueue = make_queue(queue, queue_settings)
        self.inflight: dict[Any, tuple[int, int, int]] = {}   # bp -> (start, end, number)
        # requests queued or in service: reads, and writes by who queued them (b_proc),
        # kept as counts so that a waiter can be told what it is behind at no cost
        self.pending_reads = 0
        self.pending_writes: dict[str, int] = {}
        self.nstarted = 0
        self.head_blkno = 0
        self._intrname = f"{name}intr"
        # crash tests: every write started and completed, for images at any past instant
        self.log: WriteLog | None = None
        # a timeline (vfslab/trace/): told of each request queued, started and finished
        self.trace: DiskTracer | None = None
        self.tears = True             # a power cut tears the write in service (a disk option)

    # ---- queue --------------------------------------------------------------------------
    def queue_length(self) -> int:
        return len(self.queue) + len(self.inflight)

    def pending(self) -> tuple[int, dict[str, int]]:
        """(reads, {who queued them: writes}) queued or in service now."""
        return self.pending_reads, self.pending_writes

    def _count(self, bp: Any, n: int) -> None:
        if bp.b_flags & B_READ:
            self.pending_reads += n
        else:
            who = getattr(bp, "b_proc", None) or "?"
            left = self.pending_writes.get(who, 0) + n
            if left:
                self.pending_writes[who] = left
            else:
                del self.pending_writes[who]

    # ---- driver entry points -----------------------------------------------------------------
    def strategy(self, bp: Any) -> None:
        """Queue a request (from thread or interrupt context) and start the device."""
        m = self.m
        s = m.splbio()
        blk = bp.b_blkno // BLOCK_SECTORS
        if bp.b_blkno % BLOCK_SECTORS or bp.b_bcount % 4096 or blk < 0 or \
                blk + bp.b_bcount // 4096 > self.nblocks:
            bp.b_flags |= B_ERROR
            bp.b_error = EIO
            bp.b_resid = bp.b_bcount
            m.splx(s)
            self.iodone(bp)
            return
        self._count(bp, 1)
        if self.log is not None and not bp.b_flags & B_READ:
            self.log.queued_write(m.time(), bp)
        self.queue.add(bp, m.time())
        q = self.queue_length()
        if q > self.stats.max_queue:
            self.stats.max_queue = q
        if self.trace is not None:
            self.trace.queued(self, bp, m.time())
        self.start()
        m.splx(s)

    def start(self) -> None:
        """Give the device as many queued requests as it has slots (wdstart)."""
        m = self.m
        while len(self.inflight) < self.depth:
            bp = self.queue.next(m.time(), self.head_blkno)
            if bp is None:
                return
            m.charge(m.costs.driver_start)
            now = m.time()
            read = bool(bp.b_flags & B_READ)
            svc = self.model.service_ns(read, bp.b_blkno, bp.b_bcount, now)
            end = now + svc
            self.nstarted += 1
            self.inflight[bp] = (now, end, self.nstarted)
            self.head_blkno = bp.b_blkno + bp.b_bcount // SECTOR
            if self.log is not None and not read:
                self.log.started(now, self.nstarted, bp)
            if self.trace is not None:
                self.trace.started(self, bp, now)
            m.post_intr(self.intr_cpu, IPL_BIO, self.intr, bp, at=end, name=self._intrname)

    def intr(self, bp: Any) -> None:
        """The completion interrupt (IPL_BIO): transfer, status, next request, biodone."""
        m = self.m
        m.charge(m.costs.driver_done)
        start, _end, reqno = self.inflight.pop(bp)
        now = m.time()
        self.model.complete(bp.b_blkno, bp.b_bcount, now)
        self.stats.busy_ns += max(0, now - start)
        blk = bp.b_blkno // BLOCK_SECTORS
        n = bp.b_bcount // 4096
        read = bool(bp.b_flags & B_READ)
        failed = self.faults is not None and self.faults.should_fail(read, blk, n, reqno, now)
        if failed:
            bp.b_flags |= B_ERROR
            bp.b_error = EIO
            bp.b_resid = bp.b_bcount
            self.stats.errors += 1
        else:
            bp.b_resid = 0
            store = self.store
            if read:
                self.stats.reads += 1
                self.stats.bytes_read += bp.b_bcount
                bp.b_data = [store.get(blk + i) for i in range(n)]
            else:
                self.stats.writes += 1
                self.stats.bytes_written += bp.b_bcount
                data = bp.b_data
                for i in range(n):
                    v = data[i]
                    store[blk + i] = bytes(v) if isinstance(v, bytearray) else v
        if self.log is not None:
            self.log.finished(now, reqno, not failed)
        if self.trace is not None:
            self.trace.finished(self, bp, now, not failed)
        self.start()
        if isinstance(bp, Merged):
            for child in bp.finish():
                self._count(child, -1)
                self.iodone(child)
        else:
            self._count(bp, -1)
            self.iodone(bp)

    def preload(self, blocks: dict[int, Any]) -> None:
        """Content on the disk before the run (the tree a scenario starts from): in the
        store, and in the write log's starting image, taking no emulated time."""
        self.store.update(blocks)
        if self.log is not None:
            self.log.initial.update(blocks)

    # ---- power failure ------------------------------------------------------------------------
    def power_cut(self, tear: bool, rng: random.Random) -> dict[int, Any]:
        """The image a power cut leaves now: completed writes; a write in service torn at a
        seeded sector boundary when `tear`; queued requests lost."""
        image = dict(self.store)
        if tear:
            for bp, _ in sorted(self.inflight.items(), key=lambda kv: kv[1]):
                if bp.b_flags & B_READ:
                    continue
                n = bp.b_bcount // 4096
                tear_write(image, bp.b_blkno // BLOCK_SECTORS, bp.b_data[:n],
                           rng.randrange(n * BLOCK_SECTORS + 1))
        return image


def tear_write(image: dict[int, Any], blk: int, data: Any, sectors: int) -> None:
    """Apply the first `sectors` 512-byte sectors of a write of `data` (one payload a block)
    at `blk` to `image`: what a disk that writes sectors in order holds when power fails.
    Metadata blocks become the mixed bytes; a data block's stamps become a `Torn`."""
    for i, new in enumerate(data):
        done = min(BLOCK_SECTORS, max(0, sectors - i * BLOCK_SECTORS))
        if done == 0:
            break
        new = bytes(new) if isinstance(new, bytearray) else new
        if done == BLOCK_SECTORS:
            image[blk + i] = new
            continue
        old = image.get(blk + i)
        if isinstance(new, bytes):
            base = old if isinstance(old, bytes) else bytes(4096)
            image[blk + i] = new[:done * SECTOR] + base[done * SECTOR:]
        else:
            image[blk + i] = Torn(old, new, done)
