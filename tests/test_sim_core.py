"""The engine: ordering, sleep and wakeup, spl and interrupt delivery, panics, locks,
callouts, CPUs, and determinism."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from vfslab.kern.lock import (
    EBUSY,
    LK_EXCLUSIVE,
    LK_NOWAIT,
    LK_RELEASE,
    LK_SHARED,
    LockOps,
    lock,
    simplelock,
)
from vfslab.sim.callout import Callout, periodic
from vfslab.sim.engine import EWOULDBLOCK, Engine
from vfslab.sim.ipl import IPL_BIO, IPL_CLOCK, IPL_NONE, IPL_SOFTCLOCK
from vfslab.sim.panic import Deadlock, Panic

GEN = Generator[Any, Any, Any]


def test_events_at_one_time_run_in_posting_order() -> None:
    m = Engine()
    seen: list[int] = []
    for i in range(20):
        m.at(1000, seen.append, i)
    m.at(500, seen.append, -1)
    m.run()
    assert seen == [-1, *range(20)] and m.now == 1000


def test_wakeup_wakes_every_sleeper_in_sleep_order_and_timeouts_fire() -> None:
    m = Engine()
    log: list[tuple[str, object, int]] = []

    def sleeper(name: str, timo: int) -> GEN:
        rv = yield from m.tsleep("chan", f"wait-{name}", timo)
        log.append((name, rv, m.time()))

    def waker() -> GEN:
        yield from m.tsleep("nothing", "pause", 5_000)
        m.wakeup("chan")

    m.spawn("a", sleeper("a", 0))
    m.spawn("b", sleeper("b", 0))
    m.spawn("c", sleeper("c", 1_000))      # times out before the wakeup
    m.spawn("w", waker())
    m.run()
    names = [x[0] for x in log]
    assert names == ["c", "a", "b"]
    assert log[0][1] == EWOULDBLOCK and log[1][1] == 0 and log[2][1] == 0
    assert log[0][2] >= 1_000 and log[1][2] >= 5_000


def test_a_wakeup_before_the_timeout_cancels_it() -> None:
    m = Engine()
    out: list[Any] = []

    def sleeper() -> GEN:
        out.append((yield from m.tsleep("x", "x", 10_000)))
        out.append((yield from m.tsleep("y", "y", 50_000)))

    def waker() -> GEN:
        yield from m.tsleep("z", "z", 1_000)
        m.wakeup("x")

    m.spawn("s", sleeper())
    m.spawn("w", waker())
    m.run()
    assert out == [0, EWOULDBLOCK]


def test_pending_interrupt_is_taken_exactly_when_the_level_drops() -> None:
    m = Engine()
    log: list[tuple[str, int, int]] = []

    def handler(_: Any) -> None:
        log.append(("intr", m.time(), m.cur.cpu.ipl))  # type: ignore[union-attr]

    def body() -> GEN:
        m.post_intr(0, IPL_BIO, handler, None, at=m.time() + 100)
        s = m.splbio()
        m.charge(10_000)
        m.ipoint()                     # due, but masked: stays pending
        assert not log
        m.charge(5_000)
        t_splx = m.time()
        m.splx(s)
        log.append(("after-splx", t_splx, m.curipl()))
        yield from ()

    m.spawn("t", body())
    m.run()
    assert log[0][0] == "intr" and log[0][2] == IPL_BIO
    assert log[1][0] == "after-splx"
    # taken at the splx, with the spl cost of splx charged first
    assert log[0][1] - log[1][1] == m.costs.spl + m.costs.intr_entry


def test_thousands_of_interrupts_pending_at_once_are_all_taken_when_the_level_drops() -> None:
    """Each handler leaves the next pending interrupt to the loop that took it, in the same
    order, so a deep backlog costs no Python stack (490 pending overflowed it once)."""
    m = Engine()
    order: list[int] = []

    def handler(i: Any) -> None:
        order.append(i)

    def body() -> GEN:
        s = m.splbio()
        for i in range(3000):
            m.post_intr(0, IPL_BIO, handler, i, at=m.time() + 1)
        m.charge(10_000)
        m.ipoint()                     # all due, all masked
        m.splx(s)
        yield from ()

    m.spawn("t", body())
    m.run()
    assert order == list(range(3000))


def test_higher_levels_preempt_lower_handlers_and_lower_ones_wait() -> None:
    m = Engine()
    log: list[str] = []

    def clock(_: Any) -> None:
        log.append("clock")

    def soft(_: Any) -> None:
        log.append("soft")

    def bio(_: Any) -> None:
        log.append("bio-start")
        m.post_intr(0, IPL_SOFTCLOCK, soft, None)
        m.post_intr(0, IPL_CLOCK, clock, None)
        m.charge(100)
        m.ipoint()                     # clock preempts here; softclock must wait
        log.append("bio-end")

    m.post_intr(0, IPL_BIO, bio, None, at=10)
    m.run()
    assert log == ["bio-start", "clock", "bio-end", "soft"]


def test_an_interrupt_lands_inside_a_critical_section() -> None:
    m = Engine(irq_stress=1.0)
    L = LockOps(m)
    lk = simplelock("x_lock")
    seen: list[bool] = []

    def handler(_: Any) -> None:
        seen.append(lk.holder is not None)

    def body() -> GEN:
        L.simple_lock(lk)
        m.post_intr(0, IPL_BIO, handler, None, at=10**9)    # far in the future
        m.ipoint()                     # stress: taken early, inside the section
        L.simple_unlock(lk)
        yield from ()

    m.spawn("t", body())
    m.run()
    assert seen == [True]


def test_sleeping_in_an_interrupt_handler_panics_naming_it() -> None:
    m = Engine()

    def wdintr(_: Any) -> None:
        m.tsleep("x", "oops")          # no yield from: still caught

    m.post_intr(0, IPL_BIO, wdintr, None, at=5, name="wdintr")
    with pytest.raises(Panic) as ei:
        m.run()
    assert "interrupt handler cannot sleep" in ei.value.message
    assert "wdintr" in ei.value.context
    assert ei.value.stacks[0][-1] == "wdintr"


def test_recursive_simple_lock_is_locking_against_myself() -> None:
    m = Engine()
    L = LockOps(m)
    lk = simplelock("v_interlock")

    def body() -> GEN:
        L.simple_lock(lk)
        L.simple_lock(lk)
        yield from ()

    m.spawn("t", body())
    with pytest.raises(Deadlock, match="locking against myself"):
        m.run()


def test_simple_lock_try_fails_when_held() -> None:
    m = Engine()
    L = LockOps(m)
    lk = simplelock("a")
    out: list[bool] = []

    def body() -> GEN:
        out.append(L.simple_lock_try(lk))
        out.append(L.simple_lock_try(lk))
        L.simple_unlock(lk)
        yield from ()

    m.spawn("t", body())
    m.run()
    assert out == [True, False] and lk.holder is None


def test_lockmgr_shared_exclusive_and_nowait() -> None:
    m = Engine()
    L = LockOps(m)
    vl = lock("vnlock", "vnlock")
    log: list[Any] = []

    def reader(name: str) -> GEN:
        yield from L.lockmgr(vl, LK_SHARED)
        log.append((name, "shared", m.time()))
        yield from m.tsleep(name, "hold", 1_000_000)
        yield from L.lockmgr(vl, LK_RELEASE)

    def writer() -> GEN:
        yield from m.tsleep("w", "later", 10)
        log.append(("nowait", (yield from L.lockmgr(vl, LK_EXCLUSIVE | LK_NOWAIT))))
        yield from L.lockmgr(vl, LK_EXCLUSIVE)
        log.append(("writer", "exclusive", m.time()))
        yield from L.lockmgr(vl, LK_RELEASE)

    m.spawn("r1", reader("r1"))
    m.spawn("r2", reader("r2"))
    m.spawn("w", writer())
    m.run()
    assert [x[1] for x in log[:2]] == ["shared", "shared"]
    assert log[2] == ("nowait", EBUSY)
    assert log[3][1] == "exclusive" and log[3][2] >= 1_000_000


def test_lockmgr_abba_is_a_deadlock_with_both_chains() -> None:
    m = Engine()
    L = LockOps(m)
    a, b = lock("A", "A"), lock("B", "B")

    def take(first: lock, second: lock) -> GEN:
        yield from L.lockmgr(first, LK_EXCLUSIVE)
        yield from m.tsleep(first, "pause", 1000)
        yield from L.lockmgr(second, LK_EXCLUSIVE)

    m.spawn("t1", take(a, b))
    m.spawn("t2", take(b, a))
    with pytest.raises(Deadlock) as ei:
        m.run()
    assert len(ei.value.stacks) == 2 and all("take" in st for st in ei.value.stacks)


def test_ltsleep_loses_no_wakeup() -> None:
    m = Engine(irq_stress=1.0)
    L = LockOps(m)
    lk = simplelock("i")
    done: list[bool] = []

    def waker(_: Any) -> None:
        m.wakeup("cond")

    def body() -> GEN:
        L.simple_lock(lk)
        m.post_intr(0, IPL_BIO, waker, None, at=10**9)
        # the interrupt is pulled in at the unlock's interrupt point, after we are queued
        yield from L.ltsleep("cond", "cond", 0, lk, relock=False)
        done.append(True)

    m.spawn("t", body())
    m.run()
    assert done == [True]


def test_callouts_reset_stop_and_periodic() -> None:
    m = Engine()
    fired: list[tuple[str, int]] = []
    c = Callout(m, "c")

    def boot(_: Any) -> None:
        c.reset(1000, lambda a: fired.append(("c", m.time())))
        c.reset(3000, lambda a: fired.append(("c2", m.time())))    # replaces the first
        d = Callout(m, "d")
        d.reset(2000, lambda a: fired.append(("d", m.time())))
        d.stop()

    m.at(0, boot)
    p = periodic(m, 10_000, lambda a: fired.append(("tick", m.now)))
    m.run(until=35_000)
    p.stop()
    names = [f[0] for f in fired]
    assert names == ["c2", "tick", "tick", "tick"]
    assert fired[0][1] >= 3000


def test_two_cpus_run_two_threads_at_once() -> None:
    m = Engine(ncpus=2)
    spans: dict[str, tuple[int, int, int]] = {}

    def busy(name: str) -> GEN:
        start = m.time()
        m.charge(1_000_000)
        spans[name] = (start, m.time(), m.cur.cpu.index)  # type: ignore[union-attr]
        yield from ()

    m.spawn("a", busy("a"))
    m.spawn("b", busy("b"))
    m.run()
    (sa, ea, ca), (sb, eb, cb) = spans["a"], spans["b"]
    assert ca != cb and sa < eb and sb < ea


def test_wakeup_asks_a_busy_cpu_to_reschedule() -> None:
    m = Engine()
    order: list[str] = []

    def hog() -> GEN:
        m.post_intr(0, IPL_BIO, lambda _: m.wakeup("io"), None, at=m.time() + 1)
        for i in range(5):
            m.charge(10_000)
            m.ipoint()
            if m.want_resched():
                order.append(f"hog yields at {i}")
                yield from m.yield_cpu()
        order.append("hog done")

    def sleeper() -> GEN:
        yield from m.tsleep("io", "io")
        order.append("sleeper ran")

    m.spawn("sleeper", sleeper())
    m.spawn("hog", hog())
    m.run()
    assert order[0].startswith("hog yields") and order[1] == "sleeper ran"


def _trace(seed: int, stress: float) -> list[tuple[str, int, int]]:
    m = Engine(ncpus=2, seed=seed, irq_stress=stress)
    L = LockOps(m)
    rng = m.random("model")
    lk = simplelock("l")
    trace: list[tuple[str, int, int]] = []

    def intr(i: int) -> None:
        trace.append(("intr", i, m.time()))
        m.wakeup(("w", i % 4))

    def worker(i: int) -> GEN:
        for j in range(30):
            s = m.splbio()
            L.simple_lock(lk)
            m.charge(rng.randrange(100, 2000))
            L.simple_unlock(lk)
            m.splx(s)
            m.post_intr(j % 2, IPL_BIO, intr, i, at=m.time() + rng.randrange(1, 50_000))
            yield from m.tsleep(("w", i), "w", 40_000)
            trace.append(("w", i * 100 + j, m.time()))

    for i in range(4):
        m.spawn(f"w{i}", worker(i))
    m.run()
    assert all(c.ipl == IPL_NONE for c in m.cpus)
    return trace


def test_identical_seeds_give_identical_runs_and_others_differ() -> None:
    a, b = _trace(7, 0.2), _trace(7, 0.2)
    assert a == b and len(a) > 100
    assert _trace(8, 0.2) != a
