"""Linux's writeback, simplified but faithful to mm/page-writeback.c and fs/fs-writeback.c:

- one flusher per device (wb_workfn), woken every `dirty_writeback_centisecs` (500): the
  kupdate pass writes the inodes dirtied more than `dirty_expire_centisecs` (3000) ago, oldest
  first (b_dirty ordered by dirtied_when), MAX_WRITEBACK_PAGES (1024) pages at a time;
- background writeback whenever dirty memory is above `dirty_background_ratio` (10%) of
  dirtyable memory, oldest inodes first, until it is below;
- balance_dirty_pages: a writer that dirties pages above the freerun ceiling (halfway between
  the background threshold and the `dirty_ratio` (20%) limit) is paused in proportion to how
  far above the setpoint dirty memory is: IO-less, rate-based throttling, pos_ratio =
  1 + ((setpoint - dirty) / (limit - setpoint))^3, task rate = write bandwidth * pos_ratio,
  pause = pages dirtied / task rate, at most max_pause (200 ms); at the limit, max_pause until
  below it. Write bandwidth is estimated from the disk's completions (an EWMA, as
  wb_update_write_bandwidth).

Simplified: one bdi; dirtyable memory is all page frames; dirty_ratelimit is taken equal to
the write bandwidth (Linux converges it there); metadata buffers ride with their vnode.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import buf
from vfslab.kern.vnode import uvm_object, vnode
from vfslab.policy.base import Tunable, WritebackPolicy

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

NS = 1_000_000_000
MAX_WRITEBACK_PAGES = 1024


class LinuxPolicy(WritebackPolicy):
    name = "linux"
    TUNABLES = (
        Tunable("dirty_writeback_centisecs", int, 500, "flusher period", unit="cs",
                positive=True, max=360000),
        Tunable("dirty_expire_centisecs", int, 3000, "age at which dirty inodes are written",
                unit="cs", min=0, max=360000),
        Tunable("dirty_background_ratio", float, 10.0,
                "% of memory above which writeback starts", unit="%", min=0, max=100),
        Tunable("dirty_ratio", float, 20.0, "% of memory at which writers are stopped",
                unit="%", positive=True, max=100),
        Tunable("max_pause_ms", float, 200.0, "longest throttling pause", unit="ms",
                positive=True, max=60000),
    )

    def __init__(self, k: Kernel, options: dict[str, Any]) -> None:
        super().__init__(k, options)
        # b_dirty: vnodes in the order they became dirty -> dirtied_when
        self.b_dirty: dict[vnode, int] = {}
        self.ident = object()
        self.bw_Bps = 100e6          # initial write bandwidth, as init_bdi's 100 MB/s
        self._bw_t = 0
        self._bw_bytes = 0
        self.kupdate_passes = 0
        self.background_passes = 0
        self.pauses = 0
        self.paused_ns = 0

    def window_s(self) -> float:
        """Data expires after dirty_expire and is written by the next pass; write_inode then
        only dirties the inode's block on the device (as ext2's does without WB_SYNC_ALL),
        and that buffer expires and is written in turn: appended data is reachable on disk
        after twice that (found by the crash tests)."""
        o = self.opts
        return 2 * (o["dirty_expire_centisecs"] + o["dirty_writeback_centisecs"]) / 100.0

    def period_s(self) -> float:
        return self.opts["dirty_writeback_centisecs"] / 100.0

    # ---- thresholds ---------------------------------------------------------------------------
    def thresholds(self) -> tuple[float, float, float, float]:
        """(background, freerun, setpoint, limit) in pages."""
        avail = self.k.uvm.npages
        bg = avail * self.opts["dirty_background_ratio"] / 100.0
        limit = avail * self.opts["dirty_ratio"] / 100.0
        if bg >= limit:
            bg = limit / 2
        freerun = (bg + limit) / 2
        setpoint = (freerun + limit) / 2
        return bg, freerun, setpoint, limit

    def nr_dirty(self) -> int:
        return self.k.uvm.ndirty + self.k.bio.ndirty

    def pos_ratio(self, dirty: float) -> float:
        _bg, _freerun, setpoint, limit = self.thresholds()
        x = (setpoint - dirty) / (limit - setpoint + 1)
        return max(0.0, min(2.0, 1.0 + x * x * x))

    # ---- hooks --------------------------------------------------------------------------------
    def start(self) -> None:
        self._bw_t = self.m.time()
        self._bw_bytes = self.k.disk.stats.bytes_written
        self.m.spawn("flush", self.flusher())

    def object_dirtied(self, uobj: uvm_object, now: int) -> None:
        vp = uobj.vp
        if vp not in self.b_dirty:
            self.b_dirty[vp] = now

    def buf_dirtied(self, bp: buf) -> None:
        vp = bp.b_vp
        if vp is not None and vp not in self.b_dirty:
            self.b_dirty[vp] = self.m.time()

    # ---- the flusher ----------------------------------------------------------------------------
    def update_bandwidth(self) -> None:
        now = self.m.time()
        dt = now - self._bw_t
        if dt < NS // 5:
            return
        w = self.k.disk.stats.bytes_written
        rate = (w - self._bw_bytes) * NS / dt
        if rate > 0:
            self.bw_Bps = 0.75 * self.bw_Bps + 0.25 * rate
        self._bw_t = now
        self._bw_bytes = w

    def flusher(self) -> Generator[Any, Any, None]:
        m = self.m
        period = self.opts["dirty_writeback_centisecs"] * NS // 100
        last_kupdate = m.time()
        while True:
            yield from m.tsleep(self.ident, "flush", period)
            self.update_bandwidth()
            now = m.time()
            if now - last_kupdate >= period:
                last_kupdate = now
                self.kupdate_passes += 1
                cutoff = now - self.opts["dirty_expire_centisecs"] * NS // 100
                yield from self.writeback(lambda when, c=cutoff: when <= c)
            bg, *_ = self.thresholds()
            while self.nr_dirty() > bg:
                self.background_passes += 1
                if not (yield from self.writeback(lambda when: True, until_below=bg)):
                    break

    def writeback(self, eligible: Any, until_below: float | None = None
                  ) -> Generator[Any, Any, bool]:
        """Write eligible inodes oldest first, a chunk of pages each (writeback_sb_inodes)."""
        k = self.k
        wrote = False
        for vp, when in list(self.b_dirty.items()):
            if not eligible(when):
                break
            if until_below is not None and self.nr_dirty() <= until_below:
                break
            uobj = vp.v_uobj
            s = k.proto.vi_lock(vp)
            chunk = []
            for pg in uobj.dirtyq:
                chunk.append(pg)
                if len(chunk) >= MAX_WRITEBACK_PAGES:
                    break
            k.proto.vi_unlock(vp, s)
            if chunk:
                yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=False, pages=chunk)
                wrote = True
            # write_inode and the inode's metadata buffers go with each chunk
            yield from self.update_inode(vp)
            yield from k.vfs.vflushbuf(vp, False)
            s = k.proto.buflist_lock(vp)
            clean = not vp.v_dirtyblkhd
            k.proto.buflist_unlock(vp, s)
            if clean and not uobj.dirtyq:
                self.b_dirty.pop(vp, None)
                wrote = True
            elif vp in self.b_dirty:
                # still dirty: requeue_io keeps dirtied_when and goes round again later
                self.b_dirty.pop(vp)
                self.b_dirty[vp] = when
        return wrote

    # ---- throttling -----------------------------------------------------------------------------
    def write_throttle(self, vp: vnode, npages: int) -> Generator[Any, Any, None]:
        yield from self.balance_dirty_pages(vp, npages)

    def balance_dirty_pages(self, vp: vnode, npages: int) -> Generator[Any, Any, None]:
        m = self.m
        max_pause = int(self.opts["max_pause_ms"] * 1e6)
        while True:
            dirty = self.nr_dirty()
            bg, freerun, _setpoint, limit = self.thresholds()
            if dirty <= freerun:
                return
            if dirty > bg:
                m.wakeup(self.ident)
            self.update_bandwidth()
            if dirty >= limit:
                pause = max_pause
            else:
                rate_pages = self.bw_Bps / 4096 * self.pos_ratio(dirty)
                pause = max_pause if rate_pages <= 0 else min(
                    max_pause, int(npages * NS / rate_pages))
            if pause < 1_000_000 and dirty < limit:
                return
            self.pauses += 1
            self.paused_ns += pause
            yield from self.pause(vp, pause, "balance_dirty_pages")
            if self.nr_dirty() < limit:
                return
