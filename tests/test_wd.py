"""The disk: service times against hand-computed values, queue order, depth, faults, tears."""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from typing import Any

import pytest

from vfslab.dev import HDD, SSD, make_disk
from vfslab.dev.faults import FaultRule
from vfslab.dev.wd import Torn
from vfslab.sim.engine import Engine

B_READ = 0x00100000
B_ERROR = 0x00000800


class Req:
    def __init__(self, blkno: int, nbytes: int, read: bool, data: list[Any] | None = None):
        self.b_flags = B_READ if read else 0
        self.b_blkno = blkno
        self.b_bcount = nbytes
        self.b_resid = 0
        self.b_error = 0
        self.b_data = data if data is not None else [None] * (nbytes // 4096)


def _submit_all(m: Engine, disk: Any, reqs: list[Req]) -> None:
    """Hand every request to the disk from one thread and run until the disk is idle."""
    def body() -> Generator[Any, Any, None]:
        for r in reqs:
            disk.strategy(r)
        yield from ()

    m.spawn("t", body())
    m.run()


def test_seek_curve_passes_through_the_data_sheet_points() -> None:
    h = HDD()
    n = h.cylinders
    assert h.seek_ms(1) == pytest.approx(0.8)
    assert h.seek_ms(int(n / 3)) == pytest.approx(8.5, abs=0.01)
    assert h.seek_ms(n) == pytest.approx(17.0, abs=0.01)
    # the square-root regime by hand: a + b*sqrt(100)
    b = (8.5 - 0.8) / (math.sqrt(n / 3) - 1)
    assert h.seek_ms(100) == pytest.approx(0.8 - b + b * 10)


def test_rotational_latency_follows_the_platter_angle() -> None:
    h = HDD(overhead_us=0)
    # first request: sector 0 (cylinder 0, angle 0) at t=0: no seek, no wait
    t0 = h.service_ns(True, 0, 4096, 0)
    assert t0 == int(4096 / h.rate_Bps(0) * 1e9)
    # a far sector on the same cylinder at half a revolution: wait half a turn minus nothing
    h2 = HDD(overhead_us=0)
    half = int(h2.avg_spt / 2)
    t = h2.service_ns(True, half, 4096, 0)
    expect_wait = int(((half / h2.avg_spt) % 1.0) * h2.rev_ns)
    assert t == expect_wait + int(4096 / h2.rate_Bps(0) * 1e9)


def test_sequential_requests_stream_without_rotation() -> None:
    h = HDD(overhead_us=0)
    h.service_ns(False, 1000, 65536, 0)
    t = h.service_ns(False, 1000 + 128, 65536, 123_456_789)
    assert t == int(65536 / h.rate_Bps(h.cyl) * 1e9)


def test_ssd_parallelism_makes_the_n_plus_first_wait() -> None:
    s = SSD(read_us=80, write_us=30, mbps=400, channels=4)
    times = [s.service_ns(True, 0, 4096, 0) for _ in range(5)]
    one = 80_000 + int(4096 / (400e6 / 4) * 1e9)
    assert times[:4] == [one] * 4 and times[4] == 2 * one


def _run(disk_kind: str, reqs: list[Req], **kw: Any) -> tuple[Engine, Any, list[Req]]:
    m = Engine()
    done: list[Req] = []

    def iodone(bp: Any) -> None:
        done.append(bp)
        m.wakeup(bp)

    disk = make_disk(m, disk_kind, iodone=iodone, **kw)

    def body() -> Generator[Any, Any, None]:
        for r in reqs:
            disk.strategy(r)
        for r in reqs:
            while r not in done:
                yield from m.tsleep(r, "biowait")

    m.spawn("t", body())
    m.run()
    return m, disk, done


def test_disksort_serves_a_one_way_elevator_and_fifo_arrival_order() -> None:
    blks = [800, 80, 400, 1600, 8]
    _, _, done = _run("hdd", [Req(b, 4096, True) for b in blks], queue="disksort")
    # the first goes at once (800); then upward from 800: 1600; then wrap: 8, 80, 400
    assert [r.b_blkno for r in done] == [800, 1600, 8, 80, 400]
    _, _, done = _run("hdd", [Req(b, 4096, True) for b in blks], queue="fifo")
    assert [r.b_blkno for r in done] == blks


def test_writes_land_and_reads_return_them() -> None:
    m, disk, _ = _run("ssd", [Req(16, 8192, False, [b"a" * 4096, 7])])
    assert disk.store[2] == b"a" * 4096 and disk.store[3] == 7
    r = Req(16, 8192, True)
    m2, disk2, _ = _run("ssd", [r])
    assert r.b_data == [None, None]
    disk2.store.update(disk.store)


def test_queue_depth_is_respected() -> None:
    m, disk, _ = _run("ssd", [Req(i * 8, 4096, True) for i in range(10)], depth=2)
    assert disk.stats.max_queue == 10 and disk.stats.reads == 10


@pytest.mark.parametrize("rule,failed", [
    (FaultRule("nth", nth=2), [False, True, False, False]),
    (FaultRule("range", op="write", start=2, end=3), [False, False, True, False]),
    (FaultRule("range", op="read", start=2, end=3), [False, False, False, False]),
])
def test_fault_rules(rule: FaultRule, failed: list[bool]) -> None:
    m = Engine()
    reqs = [Req(i * 8, 4096, False, [i]) for i in range(4)]
    disk = make_disk(m, "ssd", iodone=lambda bp: None, depth=1)
    disk.faults.add(rule)
    _submit_all(m, disk, reqs)
    assert [bool(r.b_flags & B_ERROR) for r in reqs] == failed
    for i, r in enumerate(reqs):
        if r.b_flags & B_ERROR:
            assert i not in disk.store and r.b_error == 5


def test_fraction_faults_are_seeded() -> None:
    def pattern(seed: int) -> list[bool]:
        m = Engine(seed=seed)
        reqs = [Req(i * 8, 4096, True) for i in range(200)]
        disk = make_disk(m, "ssd", iodone=lambda bp: None,
                         faults=[{"kind": "fraction", "fraction": 0.2}])
        _submit_all(m, disk, reqs)
        return [bool(r.b_flags & B_ERROR) for r in reqs]

    a, b, c = pattern(1), pattern(1), pattern(2)
    assert a == b and a != c and 10 < sum(a) < 80


def test_power_cut_tears_the_write_in_service_at_a_sector() -> None:
    m = Engine()
    disk = make_disk(m, "hdd", iodone=lambda bp: None)
    disk.store[10] = b"o" * 4096
    disk.store[11] = 5
    r = Req(80, 8192, False, [bytearray(b"n" * 4096), 9])

    def body() -> Generator[Any, Any, None]:
        disk.strategy(r)
        yield from ()

    m.spawn("t", body())
    m.run(until=1)          # started, not completed
    rng = random.Random(3)
    k = random.Random(3).randrange(17)
    image = disk.power_cut(True, rng)
    if k >= 8:
        assert image[10] == b"n" * 4096
        assert (image[11] == 9) if k == 16 else isinstance(image[11], Torn)
    else:
        assert image[10] == b"n" * 512 * k + b"o" * (4096 - 512 * k)
        assert image[11] == 5
    assert disk.power_cut(False, rng)[10] == b"o" * 4096
