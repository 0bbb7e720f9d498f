"""Linux's writeback (fs/fs-writeback.c and mm/page-writeback.c, Linux 6.x) on vfslab's
page cache: one backing device, one flusher, the sysctls by their names.

The flusher (wb_workfn) runs when woken from a writer's path or by its delayed work, every
`dirty_writeback_centisecs` while anything is dirty (wb_wakeup_delayed). Each run does
(wb_do_writeback):
- the **periodic pass** (wb_check_old_data_flush) once an interval has passed since the last:
  wb_writeback for_kupdate over every inode whose `dirtied_when` is older than
  `dirty_expire_centisecs`, oldest first; an inode that still has dirty pages when its slice
  is used up is requeued (b_more_io, `dirtied_when` kept) and written again in the same pass,
  so an expired inode is written whole, whatever each page's age, until no progress is made
  or the pass has written as many pages as were dirty when it began;
- **background writeback** (wb_check_background_flush) while the dirty (reclaimable) pages
  are above the background threshold (wb_over_bg_thresh): every dirty inode, oldest first.
Each inode gets a chunk per turn (writeback_chunk_size: half a second of the estimated write
bandwidth, at most the dirty limit / 8, plus 4 MiB, rounded down to 4 MiB), written
range-cyclic from its `writeback_index` in page order (write_cache_pages), and the pass
returns to re-check its conditions after HZ/10 of writing (writeback_sb_inodes). After the
write, requeue_inode: pages still dirty with the slice used up -> requeue; dirty otherwise
(redirtied while written, or pages skipped busy) -> redirty_tail, which resets
`dirtied_when` to now if it is older than the newest dirty inode's; clean -> off the lists.

The writer's side (balance_dirty_pages_ratelimited): every `nr_dirtied_pause` pages a task
dirties (32 at first; about the square root of the margin in free run), balance_dirty_pages
wakes the flusher if the dirty pages are above the background threshold and no writeback is
running, lets the task go below the free-run ceiling ((thresh + bg_thresh) / 2), and above
it pauses the task for pages_dirtied / task_ratelimit, less the time since its last pause
(think time credited), task_ratelimit = dirty_ratelimit x pos_ratio (linux_dirty.py); no
pause below the minimum (the debt carries), at most max_pause. Thresholds are fractions of
dirtyable memory (free pages above the reserve plus the page cache); the throttle counts
dirty plus under-writeback pages, background writeback dirty pages only.

The inode (`linux.inode`): `ext2` (the default) - write_inode only copies the inode into its
block, a dirty buffer of the block device's inode, which is itself a dirty inode on the
lists with its own `dirtied_when`, written when it expires in turn (with the indirect
blocks, also the block device's buffers in ext2; a directory's blocks are its own pages):
appended data is reachable after twice the expiry. `journal` - metadata goes to a journal
committed `commit_interval` after the transaction opens (jbd2, ext4's commit=5): here the
commit writes the dirty metadata buffers in place, without a journal on disk.

Simplified (docs/model.md): one device and one memory domain (no cgroups, no per-device
share of the threshold beyond "all of it once it has completed writes"), no per-CPU
ratelimit counters or dirty_throttle_leaks, metadata buffers are not charged to the task
that dirtied them, an inode with nothing to write is not slept on (inode_sleep_on_writeback).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.buf import buf
from vfslab.kern.vnode import VDIR, uvm_object, vnode
from vfslab.policy import linux_dirty as ld
from vfslab.policy.base import Tunable, WritebackPolicy
from vfslab.sim.callout import Callout

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

NS = 1_000_000_000
GEN = Generator[Any, Any, Any]


class _Bdev:
    """The block device's inode: in ext2 the inode blocks, bitmaps and indirect blocks are
    its page cache, dirtied and written as one inode."""

    def __repr__(self) -> str:
        return "bdev"


BDEV = _Bdev()
Inode = vnode | _Bdev


class TaskState:
    """A writer's throttling state (task_struct's nr_dirtied, nr_dirtied_pause,
    dirty_paused_when)."""

    __slots__ = ("nr_dirtied", "nr_dirtied_pause", "dirty_paused_when")

    def __init__(self) -> None:
        self.nr_dirtied = 0
        self.nr_dirtied_pause = 128 >> (12 - 10)     # kernel/fork.c
        self.dirty_paused_when = 0


class Work:
    """struct wb_writeback_work for the two kinds the flusher makes itself."""

    __slots__ = ("nr_pages", "for_kupdate", "for_background")

    def __init__(self, nr_pages: int, for_kupdate: bool = False,
                 for_background: bool = False) -> None:
        self.nr_pages = nr_pages
        self.for_kupdate = for_kupdate
        self.for_background = for_background


class LinuxPolicy(WritebackPolicy):
    name = "linux"
    write_faults = True           # page_mkclean and write-notify: every store faults
    TUNABLES = (
        Tunable("dirty_writeback_centisecs", int, 500,
                "vm.dirty_writeback_centisecs: the flusher's period (0: no periodic pass)",
                unit="cs", min=0, max=360000),
        Tunable("dirty_expire_centisecs", int, 3000,
                "vm.dirty_expire_centisecs: age at which a dirty inode is written", unit="cs",
                min=0, max=360000),
        Tunable("dirty_background_ratio", int, 10,
                "vm.dirty_background_ratio: % of dirtyable memory above which background "
                "writeback runs", unit="%", min=0, max=100),
        Tunable("dirty_background_bytes", int, 0,
                "vm.dirty_background_bytes: the same in bytes (0: use the ratio)", unit="B",
                min=0, max=1 << 50),
        Tunable("dirty_ratio", int, 20,
                "vm.dirty_ratio: % of dirtyable memory at which writers are throttled",
                unit="%", min=0, max=100),
        Tunable("dirty_bytes", int, 0,
                "vm.dirty_bytes: the same in bytes (0: use the ratio; at least 2 pages)",
                unit="B", min=0, max=1 << 50),
        Tunable("inode", str, "ext2",
                "when an inode's metadata is written: ext2 (its block device's inode expires "
                "in turn) or journal (committed every commit_interval)"),
        Tunable("commit_interval", float, 5.0, "journal: jbd2's commit interval (commit=)",
                unit="s", positive=True, max=3600),
        Tunable("hz", int, 1000, "CONFIG_HZ: the jiffy the arithmetic counts in", unit="1/s",
                min=100, max=1000),
    )

    @classmethod
    def check_options(cls, opts: dict[str, Any]) -> None:
        from vfslab.errors import InputError

        if opts["inode"] not in ("ext2", "journal"):
            raise InputError(f"linux.inode: expected ext2 or journal, got {opts['inode']!r}")
        # the sysctl handlers zero the other form when one is written: both set is ambiguous
        for ratio, bytes_ in (("dirty_ratio", "dirty_bytes"),
                              ("dirty_background_ratio", "dirty_background_bytes")):
            if opts[bytes_] and opts[ratio] != cls.tunables()[ratio].default:
                raise InputError(f"linux.{ratio} and linux.{bytes_}: set one (writing either "
                                 f"sysctl zeroes the other)")
        if 0 < opts["dirty_bytes"] < 2 * ld.PAGE_SIZE:
            raise InputError(f"linux.dirty_bytes: at least {2 * ld.PAGE_SIZE} (2 pages, "
                             f"dirty_bytes_min), got {opts['dirty_bytes']}")
        if not opts["dirty_bytes"] and opts["dirty_ratio"] == 0:
            raise InputError("linux.dirty_ratio: 0 with no dirty_bytes stops every writer")

    def __init__(self, k: Kernel, options: dict[str, Any]) -> None:
        super().__init__(k, options)
        o = self.opts
        self.hz: int = o["hz"]
        self.journal = o["inode"] == "journal"
        self.ident = object()           # what the flusher sleeps on
        self.commit_ident = object()    # what kjournald2 sleeps on
        # the inode lists (b_dirty ordered by dirtied_when, oldest first)
        self.b_dirty: dict[Inode, int] = {}
        self.b_io: deque[Inode] = deque()
        self.b_more_io: deque[Inode] = deque()
        self.dirtied_when: dict[Inode, int] = {}
        self.writeback_index: dict[Inode, int] = {}
        self.tasks: dict[object, TaskState] = {}
        # the flusher's state
        self.running = False            # WB_writeback_running
        self.woken = False
        self.timer_at: int | None = None
        self.last_old_flush = 0
        # the device's accounting (wb->stat, in pages) and estimates (pages/s, jiffies)
        self.nr_writeback = 0           # pages and buffers under write (NR_WRITEBACK)
        self.wb_dirtied = 0             # WB_DIRTIED
        self.wb_written = 0             # WB_WRITTEN
        self.dirtied_stamp = 0
        self.written_stamp = 0
        self.bw_time_stamp = 0
        self.write_bandwidth = ld.INIT_BW
        self.avg_write_bandwidth = ld.INIT_BW
        self.dirty_ratelimit = ld.INIT_BW
        self.balanced_dirty_ratelimit = ld.INIT_BW
        self.dirty_limit = 0
        self.dirty_limit_tstamp = 0
        self.dirty_exceeded = False
        self._bw_callout: Callout | None = None
        self._inflight: dict[buf, int] = {}
        # journal: when the running transaction commits
        self.commit_at: int | None = None
        # counters for reports and tests
        self.kupdate_passes = 0
        self.background_passes = 0
        self.background_wakeups = 0     # flusher woken from a writer's path
        self.pauses = 0
        self.paused_ns = 0
        # the most pages a paused writer was let dirty before its next check: how far over
        # the limit the throttle lets dirty data go
        self.max_pause_batch = 0
        self.commits = 0
        self.chunks: list[int] = []     # chunk sizes given, in pages (the last 1000)
        # dirty + writeback pages each time the throttle acted (above free run): n, sum,
        # sum of squares, max
        self._held = [0, 0, 0, 0]

    # ---- the promise ----------------------------------------------------------------------
    def window_s(self) -> float:
        """Data expires after dirty_expire and is written by the next pass. ext2: write_inode
        then dirties the inode's block, a page of the block device's inode, which expires and
        is written in turn: the data is reachable after twice that (found by the crash
        tests). journal: the commit follows within commit_interval."""
        o = self.opts
        data = (o["dirty_expire_centisecs"] + o["dirty_writeback_centisecs"]) / 100.0
        return data + (o["commit_interval"] if self.journal else data)

    def period_s(self) -> float:
        return self.opts["dirty_writeback_centisecs"] / 100.0

    # ---- units and counts -------------------------------------------------------------------
    def jiffies(self) -> int:
        return self.m.time() * self.hz // NS

    def nr_reclaimable(self) -> int:
        """NR_FILE_DIRTY: dirty pages, the metadata buffers counted as pages."""
        return self.ndirty_pages() + self.ndirty_buffers()

    def dirtyable(self) -> int:
        """global_dirtyable_memory: free pages above the reserve (the page daemon's target,
        uvmexp.freetarg, standing for the zones' high watermarks) plus the file LRU (every
        page in use is a file page here)."""
        free = self.nfree_pages()
        return ld.dirtyable_memory(free, self.nreserved_pages(), self.npages() - free)

    def limits(self) -> tuple[int, int]:
        """(thresh, bg_thresh) in pages, now."""
        o = self.opts
        return ld.domain_dirty_limits(self.dirtyable(), o["dirty_ratio"], o["dirty_bytes"],
                                      o["dirty_background_ratio"],
                                      o["dirty_background_bytes"])

    def thresholds(self) -> tuple[int, int, int, int]:
        """(background, freerun, setpoint, limit) in pages, now."""
        thresh, bg = self.limits()
        limit = max(thresh, self.dirty_limit)
        return bg, ld.freerun_ceiling(thresh, bg), ld.setpoint_of(thresh, bg, limit), limit

    def wb_thresh(self, thresh: int) -> int:
        """The device's share of the threshold: all of it once it has completed writes
        (one device: the fraction of completions is 1; before any, 0)."""
        return thresh if self.wb_written else 0

    # ---- hooks --------------------------------------------------------------------------------
    def start(self) -> None:
        now = self.jiffies()
        self.bw_time_stamp = now
        self.dirty_limit_tstamp = now
        self.last_old_flush = now
        self.dirty_limit = self.limits()[0]    # writeback_set_ratelimit at boot
        self._bw_callout = Callout(self.m, "wb-bandwidth")
        self.spawn("flush", self.wb_workfn())
        if self.journal:
            self.spawn("jbd2", self.kjournald2())

    def _mark_dirty(self, ino: Inode) -> None:
        """__mark_inode_dirty: an inode on no list goes on b_dirty, dated now; a device that
        had nothing dirty arms the flusher's delayed work."""
        if ino in self.b_dirty or ino in self.dirtied_when:
            return
        idle = not self.has_dirty_io()
        self.dirtied_when[ino] = self.jiffies()
        self.b_dirty[ino] = self.dirtied_when[ino]
        if idle:
            self.wb_wakeup_delayed()

    def object_dirtied(self, uobj: uvm_object, now: int) -> None:
        if uobj.vp is not None:
            self._mark_dirty(uobj.vp)

    def page_dirtied(self, pg: Any, now: int) -> None:
        # account_page_dirtied: the device's and the dirtying task's counts
        self.wb_dirtied += 1
        cur = self.current_thread()
        if cur is not None:
            self._task(cur).nr_dirtied += 1

    def buf_dirtied(self, bp: buf) -> None:
        if self.journal:
            if self.commit_at is None:      # a transaction opens; it commits on a timer
                self.commit_at = self.now() + int(self.opts["commit_interval"] * NS)
                self.m.wakeup(self.commit_ident)
            return
        owner = self._buf_owner(bp)
        if owner is not None:
            self._mark_dirty(owner)

    def io_started(self, bp: buf) -> None:
        if not bp.b_flags & 0x00100000:     # B_READ
            n = max(1, bp.b_bcount // ld.PAGE_SIZE)
            self._inflight[bp] = n
            self.nr_writeback += n

    def io_done(self, bp: buf) -> None:
        n = self._inflight.pop(bp, 0)
        if not n:
            return
        self.nr_writeback -= n
        self.wb_written += n
        c = self._bw_callout
        if self.nr_writeback == 0 and c is not None and not c.pending():
            # wb_inode_writeback_end: the estimate is brought up to date BANDWIDTH_INTERVAL
            # after the last writeback ends (batched for inodes ending together)
            c.reset(int(ld.BANDWIDTH_INTERVAL_S * NS), lambda _: self.wb_update_bandwidth())

    def _buf_owner(self, bp: buf) -> Inode | None:
        """ext2: a directory's blocks are its own pages; everything else (the inode blocks,
        bitmaps, a file's indirect blocks) is the block device's."""
        vp = bp.b_vp
        if vp is None:
            return None
        if vp.v_type == VDIR:
            return vp
        return BDEV

    def _task(self, key: object) -> TaskState:
        ts = self.tasks.get(key)
        if ts is None:
            ts = self.tasks[key] = TaskState()
        return ts

    # ---- the flusher ------------------------------------------------------------------------
    def has_dirty_io(self) -> bool:
        return bool(self.b_dirty or self.b_io or self.b_more_io)

    def wb_wakeup_delayed(self) -> None:
        """queue_delayed_work(dwork, dirty_writeback_interval): armed unless pending."""
        interval = self.opts["dirty_writeback_centisecs"]
        if interval and self.timer_at is None:
            self.timer_at = self.now() + interval * NS // 100
            self.m.wakeup(self.ident)

    def wb_start_background_writeback(self) -> None:
        """wb_wakeup: run the flusher now (mod_delayed_work(dwork, 0))."""
        self.background_wakeups += 1
        self.woken = True
        self.timer_at = None
        self.m.wakeup(self.ident)

    def wb_workfn(self) -> GEN:
        m = self.m
        while True:
            now = self.now()
            if not self.woken and (self.timer_at is None or now < self.timer_at):
                timo = 0 if self.timer_at is None else self.timer_at - now
                yield from m.tsleep(self.ident, "wb_workfn", timo)
                continue
            self.woken = False
            self.timer_at = None
            self.running = True
            try:
                yield from self.wb_check_old_data_flush()
                yield from self.wb_check_background_flush()
            finally:
                self.running = False
            if self.has_dirty_io():
                self.wb_wakeup_delayed()

    def wb_check_old_data_flush(self) -> GEN:
        interval = self.opts["dirty_writeback_centisecs"]
        if not interval:
            return
        now = self.jiffies()
        if now < self.last_old_flush + interval * self.hz // 100:
            return
        self.last_old_flush = now
        nr_pages = self.nr_reclaimable() + len(self.b_dirty)    # get_nr_dirty_pages
        if nr_pages:
            self.kupdate_passes += 1
            start = self.now()
            yield from self.wb_writeback(Work(nr_pages, for_kupdate=True))
            self.pass_done("kupdate", start)

    def wb_over_bg_thresh(self) -> bool:
        return self.nr_reclaimable() > self.limits()[1]

    def wb_check_background_flush(self) -> GEN:
        if self.wb_over_bg_thresh():
            self.background_passes += 1
            start = self.now()
            yield from self.wb_writeback(Work(1 << 62, for_background=True))
            self.pass_done("background", start)

    def queue_io(self, dirtied_before: int) -> None:
        """b_more_io first, then the inodes of b_dirty dirtied at or before the cut, oldest
        first (move_expired_inodes stops at the first younger one)."""
        self.b_io.extend(self.b_more_io)
        self.b_more_io.clear()
        for ino, when in list(self.b_dirty.items()):
            if when > dirtied_before:
                break
            del self.b_dirty[ino]
            self.b_io.append(ino)

    def wb_writeback(self, work: Work) -> GEN:
        expire = self.opts["dirty_expire_centisecs"] * self.hz // 100
        while True:
            if work.nr_pages <= 0:
                break
            if work.for_background and not self.wb_over_bg_thresh():
                break
            if not self.b_io:
                now = self.jiffies()
                self.queue_io(now - expire if work.for_kupdate else now)
            progress = yield from self.writeback_sb_inodes(work)
            if progress:
                continue
            # nothing written: Linux sleeps on a b_more_io inode's writeback; nothing else
            # writes an inode here, so there is nothing to wait for
            break

    def writeback_sb_inodes(self, work: Work) -> Generator[Any, Any, int]:
        start = self.jiffies()
        total = 0
        while self.b_io:
            ino = self.b_io.popleft()
            if isinstance(ino, vnode) and ino.v_data is None:
                self._forget(ino)                   # reclaimed meanwhile
                continue
            chunk = ld.writeback_chunk_size(self.avg_write_bandwidth, self.dirty_limit,
                                            work.nr_pages)
            self.chunks.append(chunk)
            del self.chunks[:-1000]
            wrote = yield from self.writeback_single_inode(ino, chunk)
            work.nr_pages -= wrote
            total += wrote
            clean = not self._is_dirty(ino)
            if clean:
                total += 1                          # an inode made clean is progress
            self.requeue_inode(ino, clean, wrote >= chunk)
            if total:
                if self.jiffies() > start + self.hz // 10:
                    break
                if work.nr_pages <= 0:
                    break
        return total

    def requeue_inode(self, ino: Inode, clean: bool, slice_used: bool) -> None:
        if clean:
            self._forget(ino)
        elif slice_used:
            self.b_more_io.append(ino)              # requeue_io: dirtied_when kept
        else:
            self.redirty_tail(ino)

    def redirty_tail(self, ino: Inode) -> None:
        """Back on b_dirty as its newest; dated now if older than the newest there."""
        if self.b_dirty:
            newest = next(reversed(self.b_dirty.values()))
            if self.dirtied_when[ino] < newest:
                self.dirtied_when[ino] = self.jiffies()
        self.b_dirty.pop(ino, None)
        self.b_dirty[ino] = self.dirtied_when[ino]

    def _forget(self, ino: Inode) -> None:
        self.b_dirty.pop(ino, None)
        self.dirtied_when.pop(ino, None)
        if ino in self.b_more_io:
            self.b_more_io.remove(ino)

    def _is_dirty(self, ino: Inode) -> bool:
        if isinstance(ino, _Bdev):
            return bool(self._bdev_buffers())
        if ino.v_uobj is not None and ino.v_uobj.dirtyq:
            return True
        return ino.v_type == VDIR and not self.journal and bool(ino.v_dirtyblkhd)

    def _bdev_buffers(self) -> list[buf]:
        return [bp for bp in self.dirty_buffers() if self._buf_owner(bp) is BDEV]

    # ---- writing one inode -------------------------------------------------------------------
    def writeback_single_inode(self, ino: Inode, chunk: int) -> Generator[Any, Any, int]:
        """do_writepages (range-cyclic from writeback_index), then write_inode."""
        self.wb_bandwidth_estimate_start()
        if isinstance(ino, _Bdev):
            wrote = self._write_buffers(ino, self._bdev_buffers(), chunk)
        else:
            wrote = yield from self._write_pages(ino, chunk)
            if ino.v_type == VDIR and not self.journal:
                wrote += self._write_buffers(ino, list(ino.v_dirtyblkhd), chunk - wrote)
            # write_inode: the inode into its block (a dirty buffer: ext2's bdev inode, or
            # the journal's next commit)
            yield from self.update_inode(ino)
        if self.jiffies() > self.bw_time_stamp + self.hz // 5:
            self.wb_update_bandwidth()
        return wrote

    def _write_pages(self, vp: vnode, chunk: int) -> Generator[Any, Any, int]:
        dirty = sorted(self.dirty_pages(vp), key=_offset)
        if not dirty:
            return 0
        start = self.writeback_index.get(vp, 0)
        i = next((j for j, pg in enumerate(dirty) if pg.offset >= start), len(dirty))
        batch = (dirty[i:] + dirty[:i])[:chunk]
        yield from self.flush_pages(vp, pages=batch)
        # range_cyclic: the next turn starts after the last page written, or over if done
        self.writeback_index[vp] = batch[-1].offset + 1 if len(batch) >= chunk else 0
        return len(batch)

    def _write_buffers(self, ino: Inode, bufs: list[buf], chunk: int) -> int:
        bufs.sort(key=_blkno)
        start = self.writeback_index.get(ino, 0)
        i = next((j for j, bp in enumerate(bufs) if bp.b_blkno >= start), len(bufs))
        wrote = 0
        last = 0
        for bp in bufs[i:] + bufs[:i]:
            if wrote >= chunk:
                break
            if self.flush_buffer(bp):
                wrote += max(1, bp.b_bcount // ld.PAGE_SIZE)
                last = bp.b_blkno
        self.writeback_index[ino] = last + 1 if wrote >= chunk else 0
        return wrote

    # ---- the journal ------------------------------------------------------------------------
    def kjournald2(self) -> GEN:
        """Commit the running transaction when its timer expires: every dirty metadata
        buffer is written (in place here; a journal block and a checkpoint in ext4)."""
        while True:
            now = self.now()
            if self.commit_at is None or now < self.commit_at:
                timo = 0 if self.commit_at is None else self.commit_at - now
                yield from self.m.tsleep(self.commit_ident, "jbd2", timo)
                continue
            self.commit_at = None
            self.commits += 1
            for bp in self.dirty_buffers():
                self.flush_buffer(bp)
            if self.ndirty_buffers() and self.commit_at is None:
                # buffers busy at the commit wait for the next transaction
                self.commit_at = self.now() + int(self.opts["commit_interval"] * NS)

    # ---- bandwidth and rate estimates ---------------------------------------------------------
    def wb_bandwidth_estimate_start(self) -> None:
        """After more than a second with nothing under writeback, restart the estimate: idle
        time is not time the device could have been writing."""
        now = self.jiffies()
        if now - self.bw_time_stamp > self.hz and self.nr_writeback == 0:
            self.dirtied_stamp = self.wb_dirtied
            self.written_stamp = self.wb_written
            self.bw_time_stamp = now

    def wb_update_bandwidth(self, ratelimit: tuple[int, int, int, int] | None = None) -> None:
        """__wb_update_bandwidth; with `ratelimit` = (dirty, thresh, bg_thresh, pos_ratio)
        from balance_dirty_pages, the dirty limit and dirty_ratelimit too."""
        now = self.jiffies()
        elapsed = max(now - self.bw_time_stamp, 1)
        if ratelimit is not None:
            dirty, thresh, bg, pos = ratelimit
            if now >= self.dirty_limit_tstamp + self.hz // 5:
                self.dirty_limit = ld.update_dirty_limit(self.dirty_limit, thresh, dirty)
                self.dirty_limit_tstamp = now
            limit = max(thresh, self.dirty_limit)
            self.dirty_ratelimit, self.balanced_dirty_ratelimit = ld.dirty_ratelimit_step(
                self.hz, dirty, ld.setpoint_of(thresh, bg, limit), pos,
                self.avg_write_bandwidth, self.dirty_ratelimit,
                self.balanced_dirty_ratelimit, self.wb_dirtied, self.dirtied_stamp, elapsed)
        self.write_bandwidth, self.avg_write_bandwidth = ld.write_bandwidth(
            self.hz, elapsed, self.wb_written, self.written_stamp, self.write_bandwidth,
            self.avg_write_bandwidth)
        self.dirtied_stamp = self.wb_dirtied
        self.written_stamp = self.wb_written
        self.bw_time_stamp = now

    # ---- the writer's side ------------------------------------------------------------------
    def write_throttle(self, vp: vnode, npages: int) -> GEN:
        """balance_dirty_pages_ratelimited, after each write(2)."""
        cur = self.current_thread()
        if cur is None:
            return
        ts = self._task(cur)
        ratelimit = ts.nr_dirtied_pause
        if self.dirty_exceeded:
            ratelimit = min(ratelimit, 32 >> (12 - 10))
        if ts.nr_dirtied >= ratelimit:
            yield from self.balance_dirty_pages(vp, ts, ts.nr_dirtied)

    def balance_dirty_pages(self, vp: vnode, ts: TaskState, pages_dirtied: int) -> GEN:
        hz = self.hz
        while True:
            now = self.jiffies()
            nr_reclaimable = self.nr_reclaimable()
            dirty = nr_reclaimable + self.nr_writeback
            thresh, bg = self.limits()
            if nr_reclaimable > bg and not self.running:
                self.wb_start_background_writeback()
            if dirty <= ld.freerun_ceiling(thresh, bg):
                ts.dirty_paused_when = now
                ts.nr_dirtied = 0
                ts.nr_dirtied_pause = ld.dirty_poll_interval(dirty, thresh)
                return
            if not self.running:
                self.wb_start_background_writeback()
            h = self._held
            h[0] += 1
            h[1] += dirty
            h[2] += dirty * dirty
            h[3] = max(h[3], dirty)
            wb_thresh = self.wb_thresh(thresh)
            wb_dirty = dirty
            self.dirty_exceeded = wb_dirty > wb_thresh and dirty > thresh
            limit = max(thresh, self.dirty_limit)
            pos = ld.wb_position_ratio(dirty, thresh, bg, limit, wb_dirty, wb_thresh,
                                       self.avg_write_bandwidth)
            if now > self.bw_time_stamp + hz // 5:
                self.wb_update_bandwidth((dirty, thresh, bg, pos))
            dirty_ratelimit = self.dirty_ratelimit
            task_ratelimit = dirty_ratelimit * pos >> ld.RATELIMIT_CALC_SHIFT
            max_pause = ld.wb_max_pause(hz, self.avg_write_bandwidth, wb_dirty)
            min_pause, nr_dirtied_pause = ld.wb_min_pause(
                hz, self.avg_write_bandwidth, dirty_ratelimit, max_pause, task_ratelimit)
            if task_ratelimit == 0:
                pause = max_pause
            else:
                period = hz * pages_dirtied // task_ratelimit
                pause = period
                if ts.dirty_paused_when:
                    pause -= now - ts.dirty_paused_when
                if pause < min_pause:
                    # think time: credited by moving the virtual time on; reset if long
                    if pause < -hz:
                        ts.dirty_paused_when = now
                        ts.nr_dirtied = 0
                    elif period:
                        ts.dirty_paused_when += period
                        ts.nr_dirtied = 0
                    elif ts.nr_dirtied_pause <= pages_dirtied:
                        ts.nr_dirtied_pause += pages_dirtied
                    return
                if pause > max_pause:
                    now += min(pause - max_pause, max_pause)
                    pause = max_pause
            self.pauses += 1
            ns = pause * NS // hz
            self.paused_ns += ns
            yield from self.pause(vp, ns, "balance_dirty_pages")
            ts.dirty_paused_when = now + pause
            ts.nr_dirtied = 0
            ts.nr_dirtied_pause = nr_dirtied_pause
            if nr_dirtied_pause > self.max_pause_batch:
                self.max_pause_batch = nr_dirtied_pause
            if task_ratelimit:
                return
            ncpu = len(self.m.cpus)
            if wb_dirty <= ncpu * 8 * (1 + ld.ilog2(ncpu)):      # wb_stat_error()
                return

    # ---- for reports and tests -----------------------------------------------------------------
    def report(self) -> dict[str, float | int | str]:
        """The thresholds and estimates at the end, the flusher's passes, and where the
        throttle held the writers: dirty + writeback pages each time it acted, against the
        setpoint."""
        bg, freerun, setpoint, limit = self.thresholds()
        mb = ld.PAGE_SIZE / 1e6
        n, tot, sq, top = self._held
        out: dict[str, float | int | str] = {
            "inode": self.opts["inode"],
            "background_threshold_mb": bg * mb, "free_run_mb": freerun * mb,
            "setpoint_mb": setpoint * mb, "limit_mb": limit * mb,
            "write_bandwidth_estimate_mb_s": self.avg_write_bandwidth * mb,
            "dirty_ratelimit_mb_s": self.dirty_ratelimit * mb,
            "flusher_woken_by_writers": self.background_wakeups,
            "periodic_passes": self.kupdate_passes,
            "background_passes": self.background_passes,
            "pauses": self.pauses, "paused_s": self.paused_ns / NS,
            "throttle_checks_above_free_run": n,
        }
        if n:
            mean = tot / n
            sd = max(0.0, sq / n - mean * mean) ** 0.5
            # what the throttle held (dirty + writeback when it acted), over the setpoint
            out["held_over_setpoint"] = mean / setpoint if setpoint else 0.0
            out["held_spread_over_setpoint"] = sd / setpoint if setpoint else 0.0
            out["held_at_most_mb"] = top * mb
        if self.journal:
            out["commits"] = self.commits
        return out

    def pos_ratio(self, dirty: float) -> float:
        """The global control line at `dirty` pages, as a fraction (1 at the setpoint)."""
        _bg, _freerun, setpoint, limit = self.thresholds()
        return ld.pos_ratio_polynom(setpoint, int(dirty), limit) / (1 << ld.RATELIMIT_CALC_SHIFT)


def _offset(pg: Any) -> int:
    return int(pg.offset)


def _blkno(bp: buf) -> int:
    return bp.b_blkno


__all__ = ["BDEV", "LinuxPolicy", "TaskState"]
