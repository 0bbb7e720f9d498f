"""The driver's request queue, chosen by `machine.disk_queue`: what the disk does next.

- `disksort`: NetBSD 2.0's disksort_blkno (kern/subr_disk.c), a one-way elevator (C-LOOK):
  the next request at or above the head, else wrap to the lowest. Reads and writes alike.
- `fifo`: arrival order (BUFQ_FCFS).
- `mq-deadline`: Linux's default scheduler for a rotating disk (block/mq-deadline.c, as of
  Linux 6.x, one priority class): requests sorted by sector per direction and kept in a FIFO
  per direction with a deadline (`read_expire` 500 ms, `write_expire` 5 s); dispatch runs in
  batches of up to `fifo_batch` (16) requests of one direction in sector order; reads are
  preferred, but a write batch is forced once writes have been passed over `writes_starved`
  (2) times; a batch starts from the oldest request of its direction when that one has
  expired or no request lies ahead of the last one dispatched (__dd_dispatch_request,
  deadline_check_fifo, deadline_next_request from `latest_pos`). The tunables are the sysfs
  names under /sys/block/*/queue/iosched/, as `--set mq_deadline.NAME=VALUE`. Under it,
  the block layer merges a request into a queued one of the same direction that it
  continues (a back merge) or precedes (a front merge), up to `max_sectors_kb` (1280 KiB,
  /sys/block/*/queue/max_sectors_kb; blk_mq_sched_try_merge): NetBSD 2.0's driver merged
  nothing, and its file systems cluster up to MAXPHYS (64 KiB).

Simplified (docs/model.md): no priority classes or aging, no merging of two queued requests
that a merge has made adjacent (elv_merge_requests), deadlines in ns rather than jiffies,
and no limit on queued requests (nr_requests).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from vfslab.tunable import Tunable, declare_setting, setting

B_READ = 0x00100000
SECTOR = 512

READ_EXPIRE = declare_setting("mq_deadline", Tunable(
    "read_expire", int, 500, "a read's deadline (block/mq-deadline.c: HZ / 2)", unit="ms",
    min=0, max=3_600_000))
WRITE_EXPIRE = declare_setting("mq_deadline", Tunable(
    "write_expire", int, 5000, "a write's deadline (5 * HZ)", unit="ms", min=0,
    max=3_600_000))
FIFO_BATCH = declare_setting("mq_deadline", Tunable(
    "fifo_batch", int, 16, "requests of one direction dispatched in sector order before the "
    "direction is chosen again", positive=True, max=1_000_000))
WRITES_STARVED = declare_setting("mq_deadline", Tunable(
    "writes_starved", int, 2, "times reads may be preferred over waiting writes before a "
    "write batch", min=0, max=1_000_000))
MAX_SECTORS_KB = declare_setting("mq_deadline", Tunable(
    "max_sectors_kb", int, 1280, "the largest request the block layer builds by merging "
    "(queue/max_sectors_kb; 0: no merging)", unit="KiB", min=0, max=1 << 20))
B_ERROR = 0x00000800

NAMES = ("disksort", "fifo", "mq-deadline")


class RequestQueue(Protocol):
    """What the driver asks of its queue (wdstart takes requests while the device has room)."""

    def add(self, bp: Any, now: int) -> None: ...

    def next(self, now: int, head_blkno: int) -> Any: ...

    def __len__(self) -> int: ...


class Fifo:
    """Arrival order."""

    def __init__(self) -> None:
        self.q: deque[Any] = deque()

    def add(self, bp: Any, now: int) -> None:
        self.q.append(bp)

    def next(self, now: int, head_blkno: int) -> Any:
        return self.q.popleft() if self.q else None

    def __len__(self) -> int:
        return len(self.q)


class Disksort:
    """disksort_blkno: a one-way elevator over the block number, reads and writes alike."""

    def __init__(self) -> None:
        self.sorted: list[tuple[int, int, Any]] = []     # (blkno, arrival, bp)
        self._seq = 0

    def add(self, bp: Any, now: int) -> None:
        self._seq += 1
        insort(self.sorted, (bp.b_blkno, self._seq, bp))

    def next(self, now: int, head_blkno: int) -> Any:
        s = self.sorted
        if not s:
            return None
        i = bisect_left(s, (head_blkno, -1)) if s[-1][0] >= head_blkno else 0
        if i >= len(s):
            i = 0
        return s.pop(i)[2]

    def __len__(self) -> int:
        return len(self.sorted)


READ, WRITE = 0, 1


class Merged:
    """Several contiguous bufs of one direction serviced as one request: to the driver it is
    a buf (b_flags, b_blkno, b_bcount, b_data); at completion `finish` gives each its part
    of the status, and the driver calls biodone on each (blk_update_request)."""

    __slots__ = ("bufs", "b_flags", "b_blkno", "b_bcount", "b_resid", "b_error")

    def __init__(self, first: Any) -> None:
        self.bufs: list[Any] = [first]
        self.b_flags = first.b_flags & B_READ
        self.b_blkno = first.b_blkno
        self.b_bcount = first.b_bcount
        self.b_resid = 0
        self.b_error = 0

    def back(self, bp: Any) -> None:
        self.bufs.append(bp)
        self.b_bcount += bp.b_bcount

    def front(self, bp: Any) -> None:
        self.bufs.insert(0, bp)
        self.b_blkno = bp.b_blkno
        self.b_bcount += bp.b_bcount

    @property
    def b_data(self) -> list[Any]:
        return [v for bp in self.bufs for v in bp.b_data[:bp.b_bcount // 4096]]

    @b_data.setter
    def b_data(self, vals: list[Any]) -> None:
        i = 0
        for bp in self.bufs:
            n = bp.b_bcount // 4096
            bp.b_data = vals[i:i + n]
            i += n

    def finish(self) -> list[Any]:
        """Each buf's status from the request's; the bufs, in sector order."""
        failed = self.b_flags & B_ERROR
        for bp in self.bufs:
            if failed:
                bp.b_flags |= B_ERROR
                bp.b_error = self.b_error
                bp.b_resid = bp.b_bcount
            else:
                bp.b_resid = 0
        return self.bufs


class MqDeadline:
    """block/mq-deadline.c's dispatch for one priority class (see the module docstring)."""

    def __init__(self, read_expire_ms: int = 500, write_expire_ms: int = 5000,
                 fifo_batch: int = 16, writes_starved: int = 2,
                 max_sectors_kb: int = 1280) -> None:
        self.fifo_expire = (read_expire_ms * 1_000_000, write_expire_ms * 1_000_000)
        self.fifo_batch = fifo_batch
        self.writes_starved = writes_starved
        self.max_bytes = max_sectors_kb * 1024
        # per direction: sort_list (sector, arrival, req) and fifo_list (deadline, arrival,
        # req); a request is a buf or a Merged
        self.sort_list: tuple[list[tuple[int, int, Any]], list[tuple[int, int, Any]]] = ([], [])
        self.fifo_list: tuple[deque[tuple[int, int, Any]], deque[tuple[int, int, Any]]] = (
            deque(), deque())
        # merge candidates per direction: end sector -> entry, start sector -> entry
        self.by_end: tuple[dict[int, list[Any]], dict[int, list[Any]]] = ({}, {})
        self.by_start: tuple[dict[int, list[Any]], dict[int, list[Any]]] = ({}, {})
        self.merges = 0
        self.latest_pos = [0, 0]      # the sector after the last request dispatched, per dir
        self.last_dir = WRITE
        self.batching = 0
        self.starved = 0
        self._seq = 0
        self._gone: set[int] = set()  # arrival numbers dispatched but still in a fifo
        self.dispatched = [0, 0]      # for tests and reports: requests dispatched per dir
        self.expired_dispatches = 0   # batches started because a deadline had passed

    def add(self, bp: Any, now: int) -> None:
        """A back or front merge into a queued request if one fits (blk_mq_sched_try_merge:
        the merged request keeps its place in the FIFO), else dd_insert_request: into the
        sector-sorted tree and, with its deadline, the FIFO."""
        d = READ if bp.b_flags & B_READ else WRITE
        if self.max_bytes and self._merge(d, bp):
            return
        self._seq += 1
        ent = [bp.b_blkno, self._seq, bp]
        insort(self.sort_list[d], (bp.b_blkno, self._seq, ent))
        self.fifo_list[d].append((now + self.fifo_expire[d], self._seq, ent))
        self.by_end[d][bp.b_blkno + bp.b_bcount // SECTOR] = ent
        self.by_start[d][bp.b_blkno] = ent

    def _merge(self, d: int, bp: Any) -> bool:
        ent = self.by_end[d].get(bp.b_blkno)
        if ent is not None and ent[2].b_bcount + bp.b_bcount <= self.max_bytes:
            req = ent[2] if isinstance(ent[2], Merged) else Merged(ent[2])
            del self.by_end[d][bp.b_blkno]
            req.back(bp)
            ent[2] = req
            self.by_end[d][req.b_blkno + req.b_bcount // SECTOR] = ent
            self.merges += 1
            return True
        end = bp.b_blkno + bp.b_bcount // SECTOR
        ent = self.by_start[d].get(end)
        if ent is not None and ent[2].b_bcount + bp.b_bcount <= self.max_bytes:
            req = ent[2] if isinstance(ent[2], Merged) else Merged(ent[2])
            del self.by_start[d][end]
            s = self.sort_list[d]
            s.pop(bisect_left(s, (ent[0], ent[1])))
            req.front(bp)
            ent[0] = req.b_blkno
            ent[2] = req
            insort(s, (ent[0], ent[1], ent))
            self.by_start[d][ent[0]] = ent
            self.merges += 1
            return True
        return False

    def __len__(self) -> int:
        return len(self.sort_list[READ]) + len(self.sort_list[WRITE])

    # ---- the helpers of __dd_dispatch_request ---------------------------------------------
    def _fifo_head(self, d: int) -> tuple[int, int, Any] | None:
        f = self.fifo_list[d]
        while f and f[0][1] in self._gone:
            self._gone.discard(f.popleft()[1])
        return f[0] if f else None

    def _next_request(self, d: int) -> tuple[int, int, Any] | None:
        """deadline_next_request: the first request at or after latest_pos[d]."""
        s = self.sort_list[d]
        i = bisect_left(s, (self.latest_pos[d], -1))
        return s[i] if i < len(s) else None

    def _check_fifo(self, d: int, now: int) -> bool:
        """deadline_check_fifo: has the oldest request of direction d expired?"""
        head = self._fifo_head(d)
        return head is not None and now >= head[0]

    def _move(self, d: int, item: tuple[int, int, Any]) -> Any:
        """deadline_move_request: off both lists (and out of merge reach); the next one is
        looked up from where it ends."""
        s = self.sort_list[d]
        s.pop(bisect_left(s, item[:2]))
        ent = item[2]
        self._gone.add(ent[1])
        req = ent[2]
        end = req.b_blkno + req.b_bcount // SECTOR
        if self.by_end[d].get(end) is ent:
            del self.by_end[d][end]
        if self.by_start[d].get(req.b_blkno) is ent:
            del self.by_start[d][req.b_blkno]
        self.latest_pos[d] = end
        self.dispatched[d] += 1
        return req

    def next(self, now: int, head_blkno: int) -> Any:
        """__dd_dispatch_request."""
        # batches are reads XOR writes: go on with this one while entitled
        ent = self._next_request(self.last_dir)
        if ent is not None and self.batching < self.fifo_batch:
            self.batching += 1
            return self._move(self.last_dir, ent)
        # not in a batch: choose the direction
        if self.sort_list[READ]:
            if self._fifo_head(WRITE) is not None and self.starved >= self.writes_starved:
                d = WRITE
                self.starved = 0
            else:
                if self._fifo_head(WRITE) is not None:
                    self.starved += 1
                d = READ
        elif self.sort_list[WRITE]:
            d = WRITE
            self.starved = 0
        else:
            return None
        # find the best request of that direction
        nxt = self._next_request(d)
        expired = self._check_fifo(d, now)
        if nxt is None or expired:
            # a deadline has passed, or nothing lies ahead: start from the oldest
            self.expired_dispatches += expired
            head = self._fifo_head(d)
            assert head is not None
            s = self.sort_list[d]
            ent = s[bisect_left(s, (head[2][0], head[1]))]
        else:
            ent = nxt
        self.last_dir = d
        self.batching = 1
        return self._move(d, ent)


def make_queue(name: str, sysctl: dict[str, Any] | None = None) -> RequestQueue:
    """The queue `name` (one of NAMES) with its tunables from a machine's settings."""
    makers: dict[str, Callable[[], RequestQueue]] = {
        "disksort": Disksort,
        "fifo": Fifo,
        "mq-deadline": lambda: MqDeadline(*(
            setting(sysctl or {}, f"mq_deadline.{t.name}")
            for t in (READ_EXPIRE, WRITE_EXPIRE, FIFO_BATCH, WRITES_STARVED,
                      MAX_SECTORS_KB))),
    }
    if name not in makers:
        raise ValueError(f"queue must be one of {', '.join(NAMES)}, got {name!r}")
    return makers[name]()
