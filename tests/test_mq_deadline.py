"""Linux's mq-deadline as the driver's queue: batches in sector order, reads preferred,
writes starved at most `writes_starved` times, an expired request served first."""

from __future__ import annotations

from typing import Any

import pytest

from vfslab.dev.queues import Disksort, MqDeadline, make_queue
from vfslab.errors import InputError
from vfslab.runner import RunConfig, run_scenario

B_READ = 0x00100000
MS = 1_000_000


class Req:
    def __init__(self, blkno: int, read: bool = False, nbytes: int = 4096) -> None:
        self.b_flags = B_READ if read else 0
        self.b_blkno = blkno
        self.b_bcount = nbytes

    def __repr__(self) -> str:
        return f"{'R' if self.b_flags else 'W'}{self.b_blkno}"


def drain(q: Any, now: int = 0) -> list[Req]:
    out = []
    while len(q):
        out.append(q.next(now, 0))
    return out


def test_a_batch_of_writes_runs_in_sector_order_up_to_fifo_batch() -> None:
    q = MqDeadline(fifo_batch=4)
    for blk in (800, 80, 400, 8, 240, 160):
        q.add(Req(blk), 0)
    assert [r.b_blkno for r in drain(q)] == [8, 80, 160, 240, 400, 800]


def test_a_waiting_read_is_served_when_the_write_batch_ends() -> None:
    q = MqDeadline(fifo_batch=4, max_sectors_kb=0)     # dispatch alone: no merging
    for i in range(10):
        q.add(Req(1000 + 8 * i), 0)
    first = q.next(0, 0)
    q.add(Req(8, read=True), 1)          # a read far behind the head
    got = [first] + [q.next(2, 0) for _ in range(4)]
    # three more writes finish the batch of four, then the read
    assert [r.b_blkno for r in got] == [1000, 1008, 1016, 1024, 8]


def test_writes_are_starved_at_most_writes_starved_times() -> None:
    q = MqDeadline(fifo_batch=1, writes_starved=2, max_sectors_kb=0)
    for i in range(6):
        q.add(Req(8 * i, read=True), 0)
    assert q.next(0, 0).b_flags                  # a read batch is under way
    q.add(Req(5000), 0)
    order = drain(q)
    # reads are preferred twice more, then the write gets its batch
    assert [bool(r.b_flags) for r in order] == [True, True, False, True, True, True]


def test_an_expired_read_is_served_before_the_reads_ahead_of_the_head() -> None:
    q = MqDeadline(read_expire_ms=500, fifo_batch=2, max_sectors_kb=0)
    q.add(Req(8, read=True), 0)             # the oldest read, behind the head
    for i in range(5):
        q.add(Req(1000 + 8 * i, read=True), 100 * MS)
    q.latest_pos[0] = 900                   # the last read dispatched ended at 900
    # before its deadline the batch goes on in sector order from the head ...
    assert q.next(400 * MS, 0).b_blkno == 1000
    assert q.next(400 * MS, 0).b_blkno == 1008
    # ... a new batch once it has expired starts from it
    assert q.next(501 * MS, 0).b_blkno == 8
    assert q.expired_dispatches == 1


def test_a_read_that_expires_behind_a_write_batch_is_served_before_the_queued_writes() -> None:
    q = MqDeadline(read_expire_ms=500, fifo_batch=4, max_sectors_kb=0)
    for i in range(10):
        q.add(Req(1000 + 8 * i), 0)          # writeback: ten writes ahead in sector order
    q.add(Req(8, read=True), 0)              # a read behind the head, due at 500 ms
    q.add(Req(2000, read=True), 100 * MS)    # a younger read ahead of the read head
    q.latest_pos[0] = 100
    # the write batch under way (last_dir starts as WRITE) runs its four ...
    assert [q.next(t * MS, 0).b_blkno for t in (0, 1, 2, 3)] == [1000, 1008, 1016, 1024]
    # ... then the reads, the expired one first although the other lies ahead of the
    # head; the six writes left wait for the read batch
    assert [r.b_blkno for r in drain(q, 600 * MS)][:3] == [8, 2000, 1032]
    assert q.expired_dispatches == 1


def test_contiguous_requests_merge_up_to_max_sectors_kb_and_complete_each() -> None:
    q = MqDeadline(max_sectors_kb=12)
    a, b, c, e = Req(16), Req(24), Req(8), Req(32)     # 4 KiB each: 8 sectors
    for r in (a, b, c, e):
        q.add(r, 0)
    # b continues a (back), c precedes a (front), e would make 16 KiB: its own request
    assert len(q) == 2 and q.merges == 2
    first = q.next(0, 0)
    assert first.b_blkno == 8 and first.b_bcount == 12 * 1024
    for r, v in zip(first.bufs, ("c", "a", "b"), strict=True):
        r.b_data = [v]
    assert first.b_data == ["c", "a", "b"]
    first.b_data = ["x", "y", "z"]                      # a read's transfer, split
    assert (c.b_data, a.b_data, b.b_data) == (["x"], ["y"], ["z"])
    first.b_flags |= 0x00000800
    first.b_error = 5
    assert [r.b_error for r in first.finish()] == [5, 5, 5]
    assert q.next(0, 0) is e
    # reads do not merge with writes
    q2 = MqDeadline()
    q2.add(Req(8), 0)
    q2.add(Req(16, read=True), 0)
    assert len(q2) == 2


def test_disksort_serves_reads_and_writes_alike_in_one_sweep() -> None:
    q = Disksort()
    for blk, rd in ((400, False), (80, True), (240, False), (8, True)):
        q.add(Req(blk, rd), 0)
    assert [r.b_blkno for r in drain(q)] == [8, 80, 240, 400]


def test_the_queue_and_its_tunables_are_chosen_by_name() -> None:
    q = make_queue("mq-deadline", {"mq_deadline.fifo_batch": 3,
                                   "mq_deadline.read_expire": 20})
    assert isinstance(q, MqDeadline)
    assert q.fifo_batch == 3 and q.fifo_expire == (20 * MS, 5000 * MS)
    with pytest.raises(InputError, match="disk_queue"):
        run_scenario(RunConfig(scenario="stream", duration_s=1,
                               kernel={"disk_queue": "cfq"}))
    with pytest.raises(InputError, match="fifo_batch"):
        run_scenario(RunConfig(scenario="stream", duration_s=1,
                               kernel={"mq_deadline.fifo_batch": 0}))


def test_on_mq_deadline_reads_wait_less_behind_a_writeback_flood() -> None:
    """The rewrite scenario: a reader beside random rewrites that the 2004 syncer flushes
    in bursts; mq-deadline serves the reads within their deadline, disksort in the sweep."""
    p99 = {}
    for queue in ("disksort", "mq-deadline"):
        r = run_scenario(RunConfig(scenario="rewrite", duration_s=70,
                                   kernel={"disk_queue": queue}))
        p99[queue] = r.summary["figures"]["read_latency_p99_ms"]
    assert p99["mq-deadline"] < 0.5 * p99["disksort"]


def test_the_driver_services_a_merged_request_once_and_completes_every_buf() -> None:
    from test_wd import Req as Buf
    from test_wd import _submit_all

    from vfslab.dev import make_disk
    from vfslab.sim.engine import Engine

    m = Engine()
    done: list[Any] = []
    disk = make_disk(m, "hdd", iodone=done.append, queue="mq-deadline")
    # the first goes into service at once; the four behind it are contiguous: one request
    bufs = [Buf(8000, 4096, False, ["far"])] + [Buf(8 * i, 4096, False, [f"p{i}"])
                                               for i in range(4)]
    _submit_all(m, disk, bufs)
    assert disk.stats.writes == 2 and disk.stats.bytes_written == 5 * 4096
    assert sorted(b.b_blkno for b in done) == [0, 8, 16, 24, 8000]
    assert [disk.store[i] for i in range(4)] == ["p0", "p1", "p2", "p3"]
    assert all(b.b_resid == 0 for b in done)
