"""The linux policy against Linux's own arithmetic and behaviour (mm/page-writeback.c,
fs/fs-writeback.c): hand-worked cases of the formulas, balance_dirty_pages driven on a
stand-in machine whose counts the test sets, and runs that show who starts writeback."""

from __future__ import annotations

from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from vfslab.errors import InputError
from vfslab.policy import linux_dirty as ld
from vfslab.policy.linux import LinuxPolicy, TaskState
from vfslab.runner import RunConfig, run_scenario
from vfslab.scenario import ProcessSpec, Scenario
from vfslab.scenarios.patterns import writer

MiB = 1 << 20
S = 1_000_000_000


# ---- the formulas, by hand ---------------------------------------------------------------
def test_dirtyable_memory_is_free_pages_above_the_reserve_plus_the_page_cache() -> None:
    assert ld.dirtyable_memory(free=10_000, reserve=2_000, file_pages=90_000) == 98_001
    # a reserve larger than the free pages takes only the free pages away
    assert ld.dirtyable_memory(free=500, reserve=2_000, file_pages=90_000) == 90_001


def test_thresholds_are_ratios_of_dirtyable_memory_unless_bytes_are_set() -> None:
    # ratios in 4096ths, as the C: 20% -> 819, 10% -> 409
    assert ld.domain_dirty_limits(98_001, 20, 0, 10, 0) == (819 * 98_001 // 4096,
                                                           409 * 98_001 // 4096)
    assert ld.domain_dirty_limits(98_001, 20, 0, 10, 0) == (19_595, 9_785)
    # bytes win (rounded up to pages); a background at or above the limit is halved
    assert ld.domain_dirty_limits(98_001, 20, 40 * MiB + 1, 10, 0) == (10_241, 9_785)
    assert ld.domain_dirty_limits(98_001, 20, 0, 30, 0) == (19_595, 19_595 // 2)


def test_pos_ratio_is_one_at_the_setpoint_zero_at_the_limit_two_at_free_run() -> None:
    one = 1 << ld.RATELIMIT_CALC_SHIFT
    assert ld.pos_ratio_polynom(2000, 2000, 3000) == one
    # at the limit, by hand: x = -(1,024,000 // 1001) = -1022 (C truncates); -1022 * -1022
    # >> 10 = 1020; 1020 * -1022 >> 10 = -1019 (an arithmetic shift floors); + 1024 = 5
    assert ld.pos_ratio_polynom(2000, 3000, 3000) == 5
    # at the free-run ceiling, by hand: x = (1000 << 10) // 1001 = 1022;
    # 1022 * 1022 >> 10 = 1020; 1020 * 1022 >> 10 = 1018; + 1024
    assert ld.pos_ratio_polynom(2000, 1000, 3000) == 2042
    assert ld.pos_ratio_polynom(2000, 0, 3000) == 2 * one       # clamped
    # the device's line: 0 at the limit, about 1 at its setpoint
    assert ld.wb_position_ratio(3000, 3000, 1000, 3000, 3000, 3000, 25_600) == 0


def test_chunks_are_half_a_second_of_bandwidth_capped_plus_4_mib_rounded_to_4_mib() -> None:
    # 100 MB/s (25,600 pages/s) and a 3,000-page limit: min(12,800, 375) + 1,024 -> 1,024
    assert ld.writeback_chunk_size(25_600, 3_000, 1 << 40) == 1024
    # 480 MB/s and an 80,000-page limit: min(58,943, 10,000) + 1,024 = 11,024 -> 10,240
    assert ld.writeback_chunk_size(117_887, 80_000, 1 << 40) == 10_240
    # a work with few pages left: 100 + 1,024 -> 1,024
    assert ld.writeback_chunk_size(117_887, 80_000, 100) == 1024


def test_the_bandwidth_estimate_weighs_a_sample_by_its_share_of_four_seconds() -> None:
    # HZ 1000: period 4096 jiffies; 200 jiffies in which 2,000 pages completed, old 25,600:
    # (2,000 * 1000 + 25,600 * 3,896) >> 12 = 24,838
    bw, avg = ld.write_bandwidth(1000, 200, 12_000, 10_000, 25_600, 25_600)
    assert bw == (2_000 * 1000 + 25_600 * 3_896) >> 12 == 24_838
    assert avg == 25_600     # avg moves only when old lies between avg and bw
    # a sample longer than the period replaces both
    assert ld.write_bandwidth(1000, 5000, 5000, 0, 25_600, 25_600) == (1000, 1000)


def test_pauses_are_bounded_by_the_pool_and_by_max_pause() -> None:
    # t = 17,142 // (1 + 25,600 // 128) + 1 = 86 jiffies
    assert ld.wb_max_pause(1000, 25_600, 17_142) == 86
    # a slow device: 17,142 // 8 + 1 = 2,143, capped at MAX_PAUSE = HZ / 5
    assert ld.wb_max_pause(1000, 1000, 17_142) == 200
    # one writer at 100 MB/s: a 10 ms target, 250 pages between checks, min pause 6
    assert ld.wb_min_pause(1000, 25_600, 25_600, 86, 25_575) == (6, 250)
    # in free run, the poll interval is about the square root of the margin
    assert ld.dirty_poll_interval(0, 10_000) == 1 << (13 >> 1) == 64
    assert ld.dirty_poll_interval(10_000, 10_000) == 1


# ---- balance_dirty_pages on a stand-in machine ---------------------------------------------
class _Engine:
    def __init__(self) -> None:
        self.t = 10 * S
        self.cpus = [0]
        self.cur = None
        self.sleeps: list[int] = []
        self.woken = 0

    def time(self) -> int:
        return self.t

    def tsleep(self, ident: object, wmesg: str, timo: int = 0) -> Generator[None, Any, int]:
        self.sleeps.append(timo)
        self.t += timo
        yield None
        return 0

    def wakeup(self, ident: object) -> None:
        self.woken += 1


def _machine(dirty: int) -> tuple[LinuxPolicy, _Engine]:
    """100,000 frames, 10,000 free, a 2,000-page reserve: dirtyable 98,001 (thresholds
    19,595 / 9,785, free run 14,690, setpoint 17,142); `dirty` dirty pages; 100 MB/s."""
    m = _Engine()
    k = SimpleNamespace(m=m, uvm=SimpleNamespace(npages=100_000, free=10_000, freetarg=2_000,
                                                 ndirty=dirty),
                        bio=SimpleNamespace(ndirty=0), nthrottled=0)
    pol = LinuxPolicy(k, {})  # type: ignore[arg-type]
    now = pol.jiffies()
    pol.bw_time_stamp = now           # no estimate update in the call under test
    pol.dirty_limit_tstamp = now
    pol.dirty_limit = 19_595
    pol.wb_written = 1                # the device has completed writes: all of the share
    return pol, m


def _drive(pol: LinuxPolicy, ts: TaskState, pages: int, steps: int = 10) -> None:
    gen = pol.balance_dirty_pages(None, ts, pages)  # type: ignore[arg-type]
    for _ in range(steps):
        try:
            next(gen)
        except StopIteration:
            return


def test_at_the_setpoint_a_writer_sleeps_pages_over_the_task_rate() -> None:
    pol, m = _machine(dirty=17_142)
    assert pol.thresholds() == (9_785, 14_690, 17_142, 19_595)
    ts = TaskState()
    _drive(pol, ts, 1024)
    # pos_ratio: polynomial 1024, device line 1024 * 204,800 // 204,801 = 1023;
    # task rate 25,600 * 1023 >> 10 = 25,575 pages/s; period 1000 * 1024 // 25,575 = 40
    assert m.sleeps == [40 * 1_000_000]
    assert ts.nr_dirtied == 0 and ts.nr_dirtied_pause == 250


def test_pages_under_writeback_count_against_the_writer_as_dirty_ones() -> None:
    # 12,142 dirty and 5,000 under write: the same 17,142 at the setpoint, the same pause
    pol, m = _machine(dirty=12_142)
    pol.nr_writeback = 5_000
    _drive(pol, TaskState(), 1024)
    assert m.sleeps == [40 * 1_000_000]
    # background writeback counts dirty pages only: 12,142 is above 9,785, so it is woken
    assert pol.background_wakeups >= 1


def test_think_time_since_the_last_pause_is_credited() -> None:
    pol, m = _machine(dirty=17_142)
    ts = TaskState()
    ts.dirty_paused_when = pol.jiffies() - 30          # 30 ms of think time
    _drive(pol, ts, 1024)
    assert m.sleeps == [10 * 1_000_000]                # 40 - 30
    # 36 ms: 4 ms left is under the 6 ms minimum: no sleep; the virtual time moves on
    pol, m = _machine(dirty=17_142)
    ts = TaskState()
    ts.dirty_paused_when = before = pol.jiffies() - 36
    _drive(pol, ts, 1024)
    assert m.sleeps == []
    assert ts.dirty_paused_when == before + 40 and ts.nr_dirtied == 0


def test_a_slow_device_caps_the_pause_at_max_pause() -> None:
    pol, m = _machine(dirty=17_142)
    pol.avg_write_bandwidth = 1000
    pol.dirty_ratelimit = 100
    _drive(pol, TaskState(), 1024, steps=1)
    assert m.sleeps == [200 * 1_000_000]


def test_at_the_limit_the_writer_sleeps_max_pause_and_checks_again() -> None:
    pol, m = _machine(dirty=19_595)
    _drive(pol, TaskState(), 32, steps=2)
    # wb_max_pause: 19,595 // 201 + 1 = 98 jiffies, twice: task_ratelimit is 0
    assert m.sleeps == [98 * 1_000_000, 98 * 1_000_000]


def test_below_the_free_run_ceiling_a_writer_is_not_paused_but_wakes_the_flusher() -> None:
    pol, m = _machine(dirty=14_690)
    ts = TaskState()
    _drive(pol, ts, 1024)
    assert m.sleeps == []
    # next check after about sqrt(19,595 - 14,690): 1 << (12 >> 1)
    assert ts.nr_dirtied_pause == 64
    # above the background threshold (9,785) with no writeback running: woken, once
    assert pol.background_wakeups == 1 and m.woken == 1
    # below it: not
    pol, m = _machine(dirty=9_785)
    _drive(pol, TaskState(), 1024)
    assert pol.background_wakeups == 0


def test_pages_are_written_range_cyclic_from_writeback_index() -> None:
    pol, _m = _machine(dirty=0)
    vp = object()
    pages = [SimpleNamespace(offset=o) for o in (5, 1, 9, 3)]     # in dirtying order
    written: list[list[int]] = []

    def flush(vp: Any, pages: list[Any]) -> Generator[Any, Any, int]:
        written.append([pg.offset for pg in pages])
        yield from ()
        return 0

    pol.dirty_pages = lambda v: list(pages)        # type: ignore[method-assign]
    pol.flush_pages = flush                        # type: ignore[method-assign,assignment]
    pol.writeback_index[vp] = 4                    # type: ignore[index]
    for _ in range(2):
        list(pol._write_pages(vp, 2))              # type: ignore[arg-type]
    # in page order from index 4, not the oldest first; then round to the start
    assert written == [[5, 9], [1, 3]]
    assert pol.writeback_index[vp] == 4            # type: ignore[index]


def test_an_inode_redirtied_while_written_is_dated_now_behind_the_newest() -> None:
    pol, m = _machine(dirty=0)
    a, b, c = object(), object(), object()
    for ino, when in ((a, 100), (b, 200)):
        pol.dirtied_when[ino] = pol.b_dirty[ino] = when    # type: ignore[index]
    pol.dirtied_when[c] = 50                               # type: ignore[index]
    # still dirty after its turn, slice not used up: redirty_tail
    pol.requeue_inode(c, clean=False, slice_used=False)    # type: ignore[arg-type]
    assert list(pol.b_dirty) == [a, b, c]
    assert pol.dirtied_when[c] == pol.jiffies()            # type: ignore[index]
    # slice used up: requeued for the same pass, dirtied_when kept
    pol.dirtied_when[a] = 100                              # type: ignore[index]
    pol.b_dirty.pop(a)                                     # type: ignore[arg-type]
    pol.requeue_inode(a, clean=False, slice_used=True)     # type: ignore[arg-type]
    assert list(pol.b_more_io) == [a] and pol.dirtied_when[a] == 100  # type: ignore[index]


def test_both_forms_of_a_limit_are_refused() -> None:
    with pytest.raises(InputError, match="set one"):
        LinuxPolicy.parse_options({"dirty_ratio": 30, "dirty_bytes": 100 * MiB})
    with pytest.raises(InputError, match="ext2 or journal"):
        LinuxPolicy.parse_options({"inode": "xfs"})


# ---- runs ------------------------------------------------------------------------------------
def _run(rate: float, seconds: float, size: int = 1024 * MiB, disk: str = "ssd",
         physmem_mb: int = 64, **opts: Any) -> Any:
    sc = Scenario("w", "a writer", [ProcessSpec("w", writer("/w.dat", size, 64 * 1024, rate))],
                  duration_s=seconds,
                  kernel={"physmem_mb": physmem_mb, "disk": disk, "fs_blocks": 1 << 19,
                          "ffs.write_behind": False})
    return run_scenario(RunConfig(scenario=sc, policy="linux", policy_options=opts))


def _first_write_s(r: Any) -> float:
    """When data first leaves at more than 1 MB/s (the create's metadata writes do not)."""
    s = r.kernel.metrics.series
    t = np.array(s["t_s"])
    w = np.array(s["disk_write_bps"])
    return float(t[np.argmax(w > 1e6)])


def test_the_writer_wakes_the_flusher_as_dirty_pages_pass_the_background_threshold() -> None:
    # 64 MiB: a 6.3 MB background threshold, reached after ~1.6 s at 4 MB/s, well before
    # the first periodic pass at 5 s
    r = _run(4_000_000, 4.5)
    pol = r.kernel.policy
    assert pol.background_wakeups > 0
    assert 1.0 < _first_write_s(r) < 2.5
    bg, *_ = pol.thresholds()
    assert r.summary["figures"]["max_dirty_bytes"] <= (bg + 64) * 4096


def test_a_writer_slower_than_the_disk_keeps_dirty_data_near_the_background_threshold() -> None:
    r = _run(2_000_000, 30)
    pol = r.kernel.policy
    bg, *_ = pol.thresholds()
    s = r.kernel.metrics.series
    t = np.array(s["t_s"])
    dirty = (np.array(s["dirty_pages"]) + np.array(s["dirty_bufs"]))[t > 10]
    assert dirty.max() <= bg + 64
    assert dirty.max() >= 0.9 * bg           # it does reach it: writeback starts there
    assert pol.pauses == 0


def test_a_throttled_writer_holds_dirty_and_writeback_pages_at_the_setpoint() -> None:
    # an overwrite of 32 MiB on the 2004 disk (no allocation, so no metadata waits): the
    # writer is faster than the disk and only balance_dirty_pages holds it back
    r = _run(0, 40, size=32 * MiB, disk="hdd")
    pol = r.kernel.policy
    _bg, _freerun, setpoint, limit = pol.thresholds()
    s = r.kernel.metrics.series
    t = np.array(s["t_s"])
    held = (np.array(s["dirty_pages"]) + np.array(s["dirty_bufs"])
            + np.array(s["pageout_pages"]))[t > 15]
    assert abs(held.mean() / setpoint - 1) < 0.10
    assert held.std() < 0.05 * setpoint
    # over the limit only by what a writer may dirty between two checks: its
    # nr_dirtied_pause, plus the 64 KiB (16 pages) of the write that crosses it
    assert held.max() <= limit + pol.max_pause_batch + 16
    # the policy's own report says the same from the throttle's side
    assert abs(r.summary["policy_report"]["held_over_setpoint"] - 1) < 0.10
    # and the bandwidth estimate is the disk's rate (what the writer gets), within 5%
    tput = r.summary["figures"]["throughput_write_bps"]
    assert abs(pol.avg_write_bandwidth * 4096 / tput - 1) < 0.05


def _bursts(path: str) -> Any:
    """32 MiB flat out every 10 s: 3.4 MB/s on average, the disk's rate while it writes."""
    def body(sys: Any, rng: Any) -> Generator[Any, Any, None]:
        from vfslab.kern.fcntl import O_CREAT, O_WRONLY

        fd = yield from sys.open(path, O_WRONLY | O_CREAT, 0o644)
        for _ in range(6):
            for j in range(512):
                yield from sys.pwrite(fd, 64 * 1024, j * 64 * 1024)
            yield from sys.nanosleep(10 * S)
    return body


def test_the_bandwidth_estimate_leaves_idle_time_out() -> None:
    # estimated only while writeback is under way (restarted after a second idle): what
    # the device does, not the 3.4 MB/s offered on average (counting the idle seconds, the
    # estimate falls to a few pages a second)
    sc = Scenario("b", "bursts", [ProcessSpec("b", _bursts("/b.dat"))], duration_s=60,
                  kernel={"physmem_mb": 64, "disk": "ssd", "fs_blocks": 1 << 19,
                          "ffs.write_behind": False})
    r = run_scenario(RunConfig(scenario=sc, policy="linux"))
    offered = r.kernel.disk.stats.bytes_written / 60
    assert r.kernel.policy.avg_write_bandwidth * 4096 > 10 * offered
    assert r.kernel.policy.write_bandwidth * 4096 > 10 * offered


def _two_phase_writer(path: str) -> Any:
    def body(sys: Any, rng: Any) -> Generator[Any, Any, None]:
        from vfslab.kern.fcntl import O_CREAT, O_WRONLY

        fd = yield from sys.open(path, O_WRONLY | O_CREAT, 0o644)
        for _ in range(160):                  # 10 MiB at t = 0: 2,560 pages, 2.5 chunks
            yield from sys.write(fd, 64 * 1024)
        yield from sys.nanosleep(25 * S)
        for _ in range(16):                   # 1 MiB more at t = 25 s
            yield from sys.write(fd, 64 * 1024)
        yield from sys.nanosleep(60 * S)
    return body


def test_an_expired_inode_is_written_whole_in_one_periodic_pass() -> None:
    sc = Scenario("w", "old and new pages in one file",
                  [ProcessSpec("w", _two_phase_writer("/a.dat"))], duration_s=37,
                  kernel={"physmem_mb": 256, "disk": "ssd", "fs_blocks": 1 << 19,
                          "ffs.write_behind": False})
    r = run_scenario(RunConfig(scenario=sc, policy="linux"))
    pol = r.kernel.policy
    s = r.kernel.metrics.series
    t = np.array(s["t_s"])
    dirty = np.array(s["dirty_pages"])
    # below the background threshold (25 MB): nothing is written until the inode has
    # expired (dirtied at 0.1 s: the pass at 35 s); that pass writes all 2,816 pages, the
    # 1 MiB dirtied 10 s before with them, in two chunks (requeued within the pass)
    assert dirty[(t > 26) & (t < 29)].min() >= 2_816
    assert dirty[t > 36].max() == 0
    assert pol.background_passes == 0
    assert pol.kupdate_passes <= 8


def test_the_ext2_promise_is_twice_the_expiry_and_the_journal_adds_one_commit() -> None:
    k = SimpleNamespace(m=_Engine())
    assert LinuxPolicy(k, {}).window_s() == 70.0            # type: ignore[arg-type]
    assert LinuxPolicy(k, {"inode": "journal"}).window_s() == 40.0  # type: ignore[arg-type]
