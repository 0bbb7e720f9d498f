"""Linux's dirty-page arithmetic (mm/page-writeback.c, Linux 6.x), as pure functions in its
own units: pages, pages per second, jiffies. Integer arithmetic as the C does it, so a
hand-worked case gives the kernel's number; the `linux` policy (linux.py) holds the state.

- Thresholds: `domain_dirty_limits` over `global_dirtyable_memory` (free pages less the
  kernel's reserve, plus the file LRU); the `*_bytes` sysctls win over the ratios.
- Position control: `pos_ratio_polynom` (1 at the setpoint, 2 at the free-run ceiling, 0 at
  the limit) times the device's control line (`wb_position_ratio`).
- Rate control: `wb_update_write_bandwidth` (over a 4 s period: idle time excluded by the
  caller restarting the estimate, wb_bandwidth_estimate_start), `wb_update_dirty_ratelimit`
  (toward write_bw x task_ratelimit / dirty_rate, in filtered steps), `update_dirty_limit`
  (the smoothed hard limit).
- Pauses: `wb_max_pause` (a pool-size bound, at most MAX_PAUSE = HZ/5), `wb_min_pause` (the
  target pause and `nr_dirtied_pause`), `dirty_poll_interval` (in free run, about the square
  root of the margin).
"""

from __future__ import annotations

RATELIMIT_CALC_SHIFT = 10
BANDWIDTH_INTERVAL_S = 0.2          # max(HZ/5, 1) jiffies
DIRTY_POLL_THRESH = 32              # 128 KiB >> (PAGE_SHIFT - 10): pages
DIRTY_SCOPE = 8
MIN_WRITEBACK_PAGES = 1024          # 4096 KiB / PAGE_SIZE
INIT_BW = 100 << (20 - 12)          # 100 MiB/s in pages/s (backing-dev.c)
PAGE_SIZE = 4096


def ilog2(n: int) -> int:
    return max(1, n).bit_length() - 1


def roundup_pow_of_two(n: int) -> int:
    return 1 << (max(1, n) - 1).bit_length()


def div_s64(a: int, b: int) -> int:
    """C division of signed 64-bit integers: truncates toward zero."""
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def dirtyable_memory(free: int, reserve: int, file_pages: int) -> int:
    """global_dirtyable_memory: free pages above the reserve, plus the file LRU, plus one."""
    return free - min(free, reserve) + file_pages + 1


def domain_dirty_limits(avail: int, ratio: int, bytes_: int, bg_ratio: int, bg_bytes: int
                        ) -> tuple[int, int]:
    """(thresh, bg_thresh) in pages: a byte setting wins over its ratio; the background
    threshold is halved below the limit if it is not below it."""
    r = ratio * PAGE_SIZE // 100          # ratios per PAGE_SIZE, for precision, as the C
    bgr = bg_ratio * PAGE_SIZE // 100
    thresh = -(-bytes_ // PAGE_SIZE) if bytes_ else r * avail // PAGE_SIZE
    bg = -(-bg_bytes // PAGE_SIZE) if bg_bytes else bgr * avail // PAGE_SIZE
    if bg >= thresh:
        bg = thresh // 2
    return thresh, bg


def freerun_ceiling(thresh: int, bg_thresh: int) -> int:
    return (thresh + bg_thresh) // 2


def setpoint_of(thresh: int, bg_thresh: int, limit: int) -> int:
    return (freerun_ceiling(thresh, bg_thresh) + limit) // 2


def pos_ratio_polynom(setpoint: int, dirty: int, limit: int) -> int:
    """1 + ((setpoint - dirty) / (limit - setpoint))^3, clamped to [0, 2], << 10."""
    x = div_s64((setpoint - dirty) << RATELIMIT_CALC_SHIFT, (limit - setpoint) | 1)
    pos = x
    pos = pos * x >> RATELIMIT_CALC_SHIFT
    pos = pos * x >> RATELIMIT_CALC_SHIFT
    pos += 1 << RATELIMIT_CALC_SHIFT
    return max(0, min(2 << RATELIMIT_CALC_SHIFT, pos))


def wb_position_ratio(dirty: int, thresh: int, bg_thresh: int, limit: int, wb_dirty: int,
                      wb_thresh: int, write_bw: int) -> int:
    """The global polynomial times the device's line (f = 1 at wb_setpoint, falling over a
    span of 8 x write_bw, at least 1/4), raised in the device's reserve area (below half its
    threshold). << 10; 0 at or above the limit."""
    if dirty >= limit:
        return 0
    setpoint = setpoint_of(thresh, bg_thresh, limit)
    pos = pos_ratio_polynom(setpoint, dirty, limit)
    wb_thresh = min(wb_thresh, thresh)
    wb_thresh = max(wb_thresh, (limit - dirty) // 8)
    x = (wb_thresh << 16) // (thresh | 1)
    wb_setpoint = setpoint * x >> 16
    span = (thresh - wb_thresh + 8 * write_bw) * x >> 16
    x_intercept = wb_setpoint + span
    if wb_dirty < x_intercept - span // 4:
        pos = pos * (x_intercept - wb_dirty) // ((x_intercept - wb_setpoint) | 1)
    else:
        pos //= 4
    x_intercept = wb_thresh // 2
    if wb_dirty < x_intercept:
        if wb_dirty > x_intercept // 8:
            pos = pos * x_intercept // wb_dirty
        else:
            pos *= 8
    return pos


def write_bandwidth(hz: int, elapsed: int, written: int, written_stamp: int, old: int,
                    avg: int) -> tuple[int, int]:
    """wb_update_write_bandwidth: (write_bandwidth, avg_write_bandwidth) in pages/s after
    `elapsed` jiffies in which written - written_stamp pages completed."""
    period = roundup_pow_of_two(3 * hz)
    bw = (written - min(written, written_stamp)) * hz
    if elapsed > period:
        bw //= elapsed
        avg = bw
    else:
        bw += old * (period - elapsed)
        bw >>= ilog2(period)
        # one more level of smoothing, for filtering out sudden spikes
        if avg > old and old >= bw:
            avg -= (avg - old) >> 3
        if avg < old and old <= bw:
            avg += (old - avg) >> 3
    return bw, max(avg, 1)


def update_dirty_limit(limit: int, thresh: int, dirty: int) -> int:
    """The smoothed hard limit: up to thresh at once, down by 1/32 of the gap a step (to
    the higher of thresh and dirty)."""
    if limit < thresh:
        return thresh
    target = max(thresh, dirty)
    if limit > target:
        return limit - ((limit - target) >> 5)
    return limit


def dirty_ratelimit_step(hz: int, dirty: int, setpoint: int, pos_ratio: int, write_bw: int,
                         dirty_ratelimit: int, prev_balanced: int, dirtied: int,
                         dirtied_stamp: int, elapsed: int) -> tuple[int, int]:
    """wb_update_dirty_ratelimit: (dirty_ratelimit, balanced_dirty_ratelimit) in pages/s."""
    dirty_rate = (dirtied - dirtied_stamp) * hz // max(1, elapsed)
    task_ratelimit = (dirty_ratelimit * pos_ratio >> RATELIMIT_CALC_SHIFT) + 1
    balanced = task_ratelimit * write_bw // (dirty_rate | 1)
    balanced = min(balanced, write_bw)
    step = 0
    if dirty < setpoint:
        x = min(prev_balanced, balanced, task_ratelimit)
        if dirty_ratelimit < x:
            step = x - dirty_ratelimit
    else:
        x = max(prev_balanced, balanced, task_ratelimit)
        if dirty_ratelimit > x:
            step = dirty_ratelimit - x
    shift = dirty_ratelimit // (2 * step + 1)
    step = -(-(step >> shift) // 8) if shift < 64 else 0
    if dirty_ratelimit < balanced:
        dirty_ratelimit += step
    else:
        dirty_ratelimit -= step
    return max(dirty_ratelimit, 1), balanced


def dirty_poll_interval(dirty: int, thresh: int) -> int:
    if thresh > dirty:
        return 1 << (ilog2(thresh - dirty) >> 1)
    return 1


def max_pause(hz: int) -> int:
    return max(hz // 5, 1)


def wb_max_pause(hz: int, avg_write_bw: int, wb_dirty: int) -> int:
    """Limit the pause on a small pool so it does not run dry (8 is the safety ratio)."""
    t = wb_dirty // (1 + avg_write_bw // roundup_pow_of_two(1 + hz // 8))
    return min(t + 1, max_pause(hz))


def wb_min_pause(hz: int, avg_write_bw: int, dirty_ratelimit: int, max_pause_: int,
                 task_ratelimit: int) -> tuple[int, int]:
    """(min_pause, nr_dirtied_pause): a 10 ms target pause for one writer (N x 10 ms for 2^N
    writers), at most max_pause / 2, and the pages a writer may dirty before the next check."""
    hi = ilog2(avg_write_bw)
    lo = ilog2(dirty_ratelimit)
    t = max(1, hz // 100)
    if hi > lo:
        t += (hi - lo) * (10 * hz) // 1024
    t = min(t, 1 + max_pause_ // 2)
    rhz = roundup_pow_of_two(hz)
    pages = dirty_ratelimit * t // rhz
    if pages < DIRTY_POLL_THRESH:
        t = max_pause_
        pages = dirty_ratelimit * t // rhz
        if pages > DIRTY_POLL_THRESH:
            pages = DIRTY_POLL_THRESH
            t = hz * DIRTY_POLL_THRESH // dirty_ratelimit
    pause = hz * pages // (task_ratelimit + 1)
    if pause > max_pause_:
        t = max_pause_
        pages = task_ratelimit * t // rhz
    return (1 + t // 2 if pages >= DIRTY_POLL_THRESH else t), pages


def writeback_chunk_size(avg_write_bw: int, dirty_limit: int, nr_pages: int) -> int:
    """Pages an inode gets per turn: half a second of bandwidth, at most the limit / 8 and
    the work's pages, plus 4 MiB, rounded down to 4 MiB."""
    pages = min(avg_write_bw // 2, dirty_limit // DIRTY_SCOPE)
    pages = min(pages, nr_pages)
    return (pages + MIN_WRITEBACK_PAGES) // MIN_WRITEBACK_PAGES * MIN_WRITEBACK_PAGES
