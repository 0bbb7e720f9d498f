"""A kernel without a file system, for unit tests of the buffer cache, vnodes and the syncer.

`MemDisk` is a test double of the disk driver: a fixed service time, one request at a time,
completion interrupts at IPL_BIO, and a set of block numbers that fail with EIO.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from vfslab.kern.buf import B_ERROR, B_READ, buf
from vfslab.kern.init_main import Kernel, KernelConfig, mount
from vfslab.kern.vnode import VBLK, vnode
from vfslab.kern.vnode_if import FSYNC_WAIT, vnodeops
from vfslab.metrics.collector import Metrics
from vfslab.policy.syncer import SyncerPolicy
from vfslab.sim.ipl import IPL_BIO

EIO = 5


class MemDisk:
    def __init__(self, k: Kernel, service_ns: int = 1_000_000) -> None:
        self.k = k
        self.m = k.m
        self.service_ns = service_ns
        self.store: dict[int, Any] = {}
        self.queue: deque[buf] = deque()
        self.busy = False
        self.fail_blocks: set[int] = set()
        self.log: list[tuple[int, str, int, int]] = []   # (time, op, blkno, nblocks)

    def strategy(self, bp: buf) -> None:
        s = self.m.splbio()
        self.queue.append(bp)
        if not self.busy:
            self._start()
        self.m.splx(s)

    def _start(self) -> None:
        bp = self.queue.popleft()
        self.busy = True
        self.m.post_intr(0, IPL_BIO, self.intr, bp, at=self.m.time() + self.service_ns,
                         name="memdiskintr")

    def intr(self, bp: buf) -> None:
        blk = bp.b_blkno // 8
        n = bp.b_bcount // 4096
        read = bool(bp.b_flags & B_READ)
        self.log.append((self.m.time(), "R" if read else "W", blk, n))
        if any(b in self.fail_blocks for b in range(blk, blk + n)):
            bp.b_flags |= B_ERROR
            bp.b_error = EIO
            bp.b_resid = bp.b_bcount
        elif read:
            bp.b_data = [self.store.get(blk + i) for i in range(n)]
        else:
            for i in range(n):
                v = bp.b_data[i]
                self.store[blk + i] = bytes(v) if isinstance(v, bytearray) else v
        self.busy = False
        if self.queue:
            self._start()
        self.k.bio.biodone(bp)


class MiniFS:
    """Just enough of a file system for the syncer and the page cache: each vnode owns a
    contiguous 100000-block extent; fsync = putpages + flush dirty buffers."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        vfs = k.vfs
        self.vnodeop = vnodeops(
            "minifs", fsync=self.fsync, bmap=self.bmap, strategy=self.strategy,
            lock=vfs.genfs_lock, unlock=vfs.genfs_unlock, inactive=self.inactive,
            reclaim=vfs._nullop, getpages=k.genfs.genfs_getpages,
            putpages=k.genfs.genfs_putpages)

    def fsync(self, vp: vnode, flags: int, start: int = 0, end: int = 0
              ) -> Generator[Any, Any, int]:
        wait = bool(flags & FSYNC_WAIT)
        err: int = yield from self.k.genfs.putpages(vp, 0, 0, clean=True, sync=wait)
        err2: int = yield from self.k.vfs.vflushbuf(vp, wait)
        return err or err2

    def bmap(self, vp: vnode, lbn: int, maxrun: int = 0
             ) -> Generator[Any, Any, tuple[int, vnode, int, int]]:
        yield from ()
        # a test may end the file's first extent at block `extent_break` (v_data)
        brk = vp.v_data.get("extent_break") if isinstance(vp.v_data, dict) else None
        if brk is not None and lbn < brk:
            maxrun = min(maxrun, brk - lbn - 1)
        return 0, vp, (vp.v_id * 100_000 + lbn) * 8, maxrun

    def strategy(self, vp: vnode, bp: buf) -> None:
        self.k.bio.strategy(bp)

    def inactive(self, vp: vnode) -> Generator[Any, Any, int]:
        err: int = yield from self.k.vfs.genfs_unlock(vp)
        return err


class Mount(mount):
    def __init__(self, fs: MiniFS) -> None:
        super().__init__(fs, False)


def make_kernel(**kw: Any) -> tuple[Kernel, MemDisk]:
    cfg = KernelConfig(**kw)
    k = Kernel(cfg)
    k.aiodone.start()
    k.metrics = Metrics(k)
    k.notify.attach(k.metrics)
    k.policy = SyncerPolicy(k, {})
    k.notify.attach(k.policy)
    disk = MemDisk(k)
    k.disk = disk
    k.bio.bdev_strategy = disk.strategy
    return k, disk


def run_thread(k: Kernel, body: Callable[[], Generator[Any, Any, Any]],
               until_s: float = 100.0) -> Any:
    out: dict[str, Any] = {}

    def main() -> Generator[Any, Any, None]:
        out["rv"] = yield from body()

    td = k.m.spawn("test", main())
    k.m.run(until=int(until_s * 1e9))
    assert td.state == 3, f"test thread did not finish: {td.wmesg}"
    return out["rv"]


def new_vnode(k: Kernel, vtype: int = VBLK, mounted: bool = True) -> Generator[Any, Any, vnode]:
    fs = MiniFS(k)
    err, vp = yield from k.vfs.getnewvnode("test", Mount(fs) if mounted else None, fs.vnodeop)
    assert err == 0 and vp is not None
    vp.v_type = vtype
    return vp
