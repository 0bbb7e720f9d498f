"""lockmgr as kern_lock.c 1.77 has it, and what the validator says of it, in the manner of
lockdep's rwsem self-tests (lib/locking-selftest.c): each case a few threads on one lock."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from vfslab.check.checker import Checker
from vfslab.kern.lock import (
    LK_DRAIN,
    LK_EXCLUSIVE,
    LK_INTERLOCK,
    LK_NOWAIT,
    LK_RELEASE,
    LK_SHARED,
    LockOps,
    lock,
    lockinit,
    simplelock,
)
from vfslab.sim.engine import Engine
from vfslab.sim.panic import Deadlock, Panic

GEN = Generator[Any, Any, Any]
MS = 1_000_000


class Bench:
    """An engine, its lock ops, one rwsem-like lock "L", a validator, and a log of events."""

    def __init__(self) -> None:
        self.m = Engine()
        self.L = LockOps(self.m)
        self.c = Checker(self.m)
        self.m.checker = self.c
        self.lk = lock("L", "lwait")
        self.log: list[str] = []

    def at(self, ms: int, name: str, body: Callable[[], GEN]) -> None:
        def main() -> GEN:
            if ms:
                yield from self.m.tsleep(object(), "start", ms * MS)
            yield from body()
        self.m.spawn(name, main())

    def hold(self, who: str, flags: int, ms: int) -> Callable[[], GEN]:
        def body() -> GEN:
            yield from self.L.lockmgr(self.lk, flags)
            self.log.append(f"{who} got")
            yield from self.m.tsleep(object(), "hold", ms * MS)
            self.log.append(f"{who} done")
            yield from self.L.lockmgr(self.lk, LK_RELEASE)
        return body

    def kinds(self) -> set[str]:
        return {f.kind for f in self.c.findings()}


def test_a_shared_request_waits_behind_a_waiting_exclusive_one() -> None:
    b = Bench()
    b.at(0, "reader1", b.hold("r1", LK_SHARED, 10))
    b.at(1, "writer", b.hold("w", LK_EXCLUSIVE, 1))      # waits for r1, wants the lock
    b.at(2, "reader2", b.hold("r2", LK_SHARED, 1))       # shares with r1? not past w
    b.m.run()
    assert b.log == ["r1 got", "r1 done", "w got", "w done", "r2 got", "r2 done"]
    assert b.kinds() == set()


def test_without_a_waiting_writer_readers_share() -> None:
    b = Bench()
    b.at(0, "reader1", b.hold("r1", LK_SHARED, 10))
    b.at(2, "reader2", b.hold("r2", LK_SHARED, 1))
    b.m.run()
    assert b.log == ["r1 got", "r2 got", "r2 done", "r1 done"]


def test_a_second_shared_hold_is_reported_when_taken_even_with_no_writer() -> None:
    b = Bench()

    def twice() -> GEN:
        yield from b.L.lockmgr(b.lk, LK_SHARED)
        yield from b.L.lockmgr(b.lk, LK_SHARED)      # no writer: it is granted
        yield from b.L.lockmgr(b.lk, LK_RELEASE)
        yield from b.L.lockmgr(b.lk, LK_RELEASE)
    b.at(0, "reader", twice)
    b.m.run()
    assert b.kinds() == {"recursive-shared-lock"}
    assert b.lk.lk_sharecount == 0


def test_a_second_shared_hold_deadlocks_behind_a_queued_writer() -> None:
    b = Bench()

    def reader() -> GEN:
        yield from b.L.lockmgr(b.lk, LK_SHARED)
        yield from b.m.tsleep(object(), "think", 5 * MS)     # the writer queues meanwhile
        yield from b.L.lockmgr(b.lk, LK_SHARED)
    b.at(0, "reader", reader)
    b.at(1, "writer", b.hold("w", LK_EXCLUSIVE, 1))
    with pytest.raises(Deadlock, match="thread reader waits for L -> thread writer"):
        b.m.run()


def test_a_sleeping_lock_under_a_spin_lock_is_reported_though_it_is_free() -> None:
    b = Bench()
    spin = simplelock("S")

    def body() -> GEN:
        b.L.simple_lock(spin)
        yield from b.L.lockmgr(b.lk, LK_EXCLUSIVE)          # free: it does not sleep
        yield from b.L.lockmgr(b.lk, LK_RELEASE)
        b.L.simple_unlock(spin)
    b.at(0, "t", body)
    b.m.run()
    assert b.kinds() == {"sleeping-lock-under-spinlock"}


def test_nowait_and_the_interlock_handed_over_are_not_reported() -> None:
    b = Bench()
    spin = simplelock("S")

    def body() -> GEN:
        b.L.simple_lock(spin)
        assert (yield from b.L.lockmgr(b.lk, LK_EXCLUSIVE | LK_NOWAIT)) == 0
        yield from b.L.lockmgr(b.lk, LK_RELEASE)
        # LK_INTERLOCK: lockmgr releases `spin` once it holds its own interlock
        yield from b.L.lockmgr(b.lk, LK_EXCLUSIVE | LK_INTERLOCK, spin)
        assert spin.holder is None
        yield from b.L.lockmgr(b.lk, LK_RELEASE)
    b.at(0, "t", body)
    b.m.run()
    assert b.kinds() == set()


def test_the_exclusive_holder_asking_shared_downgrades_the_lock() -> None:
    b = Bench()

    def owner() -> GEN:
        yield from b.L.lockmgr(b.lk, LK_EXCLUSIVE)
        yield from b.L.lockmgr(b.lk, LK_SHARED)             # "downgrade it to shared"
        b.log.append(f"owner shares {b.lk.lk_sharecount}, excl {b.lk.lk_exclusivecount}")
        yield from b.m.tsleep(object(), "hold", 10 * MS)
        yield from b.L.lockmgr(b.lk, LK_RELEASE)
        yield from b.L.lockmgr(b.lk, LK_RELEASE)
    b.at(0, "owner", owner)
    b.at(2, "reader", b.hold("r", LK_SHARED, 1))           # now shares with the owner
    b.m.run()
    assert b.log == ["owner shares 2, excl 0", "r got", "r done"]


def test_drain_waits_for_holders_and_waiters_then_decommissions_the_lock() -> None:
    b = Bench()
    b.at(0, "holder", b.hold("h", LK_EXCLUSIVE, 10))
    b.at(1, "waiter", b.hold("w", LK_EXCLUSIVE, 5))
    b.at(2, "drainer", b.hold("d", LK_DRAIN, 1))
    b.m.run()
    # the waiter queued before the drain is served first: a drain waits for waiters too
    assert b.log == ["h got", "h done", "w got", "w done", "d got", "d done"]
    assert b.lk.lk_drained
    lockinit(b.lk)                                        # getnewvnode's lockinit
    b.log.clear()
    b.at(0, "again", b.hold("a", LK_EXCLUSIVE, 1))
    b.m.run()
    assert b.log == ["a got", "a done"]


def test_a_drained_lock_is_decommissioned_until_lockinit() -> None:
    b = Bench()
    b.at(0, "drainer", b.hold("d", LK_DRAIN, 1))

    def late() -> GEN:
        yield from b.L.lockmgr(b.lk, LK_SHARED)
    b.at(5, "late", late)
    with pytest.raises(Panic, match="using decommissioned lock: L"):
        b.m.run()


def test_vgonel_waits_for_a_running_vop_inactive_before_cleaning() -> None:
    """vclean's VOP_LOCK(LK_DRAIN): a vnode still locked by its VOP_INACTIVE is not
    flushed and reclaimed under it."""
    from sysharness import run_body

    from vfslab.kern.fcntl import O_CREAT, O_WRONLY

    def body(sys: Any) -> GEN:
        k = sys.k
        fd = yield from sys.open("/a", O_WRONLY | O_CREAT)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        yield from sys.write(fd, 8192)
        yield from sys.close(fd)                     # unreferenced: on the free list
        order: list[str] = []

        def inactive() -> GEN:                       # as vrele's VOP_INACTIVE would
            yield from k.vfs.vn_lock(vp, LK_EXCLUSIVE)
            order.append("inactive runs")
            yield from k.m.tsleep(object(), "inact", 5 * MS)
            order.append("inactive ends")
            yield from k.vfs.vn_unlock(vp)
        k.m.spawn("inactive", inactive())
        yield from k.m.tsleep(object(), "let it lock", MS)
        s = k.proto.vi_lock(vp)
        yield from k.vfs.vgonel(vp, s)
        order.append(f"cleaned (data {vp.v_data})")
        return order

    _k, order = run_body(body)
    assert order == ["inactive runs", "inactive ends", "cleaned (data None)"]


def test_an_unused_drain_flag_is_not_a_lock_of_its_own() -> None:
    # the validator sees the drained hold as a hold of L, nothing else
    b = Bench()
    b.at(0, "d", b.hold("d", LK_DRAIN, 1))
    b.m.run()
    assert b.kinds() == set() and b.log == ["d got", "d done"]
