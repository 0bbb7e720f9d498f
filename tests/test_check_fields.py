"""Field guards on small structures: lock, spl and combined guards, interrupt handlers not
protected by the interrupted thread's lock, spl-only guards, Eraser, real data races on two
CPUs, and uninstall; then the report formats."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

from vfslab.check.checker import Checker
from vfslab.check.report import text_report, to_json
from vfslab.kern.guards import REGISTRY, declare_guards, resolve
from vfslab.kern.lock import LockOps, simplelock
from vfslab.sim.engine import Engine
from vfslab.sim.ipl import IPL_BIO

GEN = Generator[Any, Any, Any]


@declare_guards("thing", {"count": "t_lock", "flags": "t_lock+splbio", "queue": "splbio",
                          "total": "thing_global_lock"},
                containers=("queue",), tracked=("loose",))
class Thing:
    __slots__ = ("t_lock", "count", "flags", "queue", "total", "loose")

    def __init__(self) -> None:
        self.t_lock = simplelock("t_lock")
        self.count = 0
        self.flags = 0
        self.queue: list[int] = []
        self.total = 0
        self.loose = 0


def setup(ncpus: int = 1, stress: float = 0.0) -> tuple[Engine, LockOps, Checker, Any]:
    m = Engine(ncpus=ncpus, irq_stress=stress)
    L = LockOps(m)
    c = Checker(m)
    glock = simplelock("thing_global_lock")
    c.install([sg for sg in resolve() if sg.name == "thing"], {"thing_global_lock": glock})
    m.checker = c
    return m, L, c, glock


def found(c: Checker) -> set[tuple[str, str]]:
    return {(f.kind, f.subject) for f in c.findings()}


def run(m: Engine, c: Checker, *bodies: Any) -> set[tuple[str, str]]:
    try:
        for i, b in enumerate(bodies):
            m.spawn(f"t{i}", b())
        m.run()
    finally:
        c.uninstall()
    return found(c)


def test_guards_satisfied_and_not() -> None:
    m, L, c, g = setup()
    t = Thing()

    def body() -> GEN:
        L.simple_lock(t.t_lock)
        t.count += 1                     # ok: t_lock
        s = m.splbio()
        t.flags = 1                      # ok: t_lock + splbio
        m.splx(s)
        t.flags = 2                      # missing splbio
        L.simple_unlock(t.t_lock)
        t.count = 5                      # missing t_lock (write)
        _ = t.count                      # missing t_lock (read): same site? no: another line
        L.simple_lock(g)
        t.total += 1                     # ok: the global lock
        L.simple_unlock(g)
        yield from ()

    got = run(m, c, body)
    assert got == {("unguarded-access", "thing.flags"), ("unguarded-access", "thing.count")}
    msgs = [f.explanation for f in c.findings()]
    assert any("without splbio" in x for x in msgs) and any("without t_lock" in x for x in msgs)


def test_the_interrupted_threads_lock_does_not_protect_a_handler() -> None:
    m, L, c, g = setup(stress=1.0)
    t = Thing()

    def handler(_: Any) -> None:
        t.count += 1

    def body() -> GEN:
        L.simple_lock(t.t_lock)
        m.post_intr(0, IPL_BIO, handler, None, at=10**9, name="thingintr")
        t.count += 1                     # an interrupt point: the handler runs here
        L.simple_unlock(t.t_lock)
        yield from ()

    got = run(m, c, body)
    assert ("unguarded-access", "thing.count") in got
    f = next(f for f in c.findings() if f.kind == "unguarded-access")
    assert f.context.startswith("interrupt thingintr") and f.stacks[0][-1] == "handler"


def test_spl_only_guard_is_reported_once_per_field() -> None:
    m, L, c, g = setup()
    t = Thing()

    def body() -> GEN:
        for _ in range(3):
            s = m.splbio()
            t.queue.append(1)
            m.splx(s)
        yield from ()

    got = run(m, c, body)
    assert got == {("spl-only-guard", "thing.queue")}
    assert c.findings()[0].count == 1


def test_eraser_state_machine() -> None:
    # exclusive use, then shared reads: nothing; a write by another thread with no common
    # lock empties the candidate set: a race
    m, L, c, g = setup()
    t = Thing()
    log: list[str] = []

    def first() -> GEN:
        t.loose = 1                      # virgin -> exclusive
        t.loose = 2
        yield from m.tsleep("a", "a", 1000)
        log.append(str(found(c)))

    def reader() -> GEN:
        yield from m.tsleep("b", "b", 2000)
        L.simple_lock(g)
        _ = t.loose                      # exclusive -> shared, candidates {g}
        L.simple_unlock(g)
        log.append(str(found(c)))
        L.simple_lock(g)
        t.loose = 3                      # shared -> shared-modified, candidates still {g}
        L.simple_unlock(g)
        log.append(str(found(c)))

    def writer() -> GEN:
        yield from m.tsleep("c", "c", 3000)
        t.loose = 4                      # no lock: candidate set empty: race
        yield from ()

    got = run(m, c, first, reader, writer)
    assert log == ["set()", "set()", "set()"]
    assert got == {("lockset-race", "thing.loose")}


def test_eraser_is_quiet_when_one_lock_always_guards() -> None:
    m, L, c, g = setup()
    t = Thing()

    def w(i: int) -> Any:
        def body() -> GEN:
            for _ in range(3):
                L.simple_lock(g)
                t.loose += i
                L.simple_unlock(g)
                yield from m.tsleep(("x", i), "x", 500)
        return body

    assert run(m, c, w(1), w(2), w(3)) == set()


def test_a_real_data_race_on_two_cpus() -> None:
    # a thread on cpu0 inside its splbio section; cpu1's interrupt touches the same list
    m, L, c, g = setup(ncpus=2, stress=1.0)
    t = Thing()

    def handler(_: Any) -> None:
        t.queue.append(2)

    def body() -> GEN:
        s = m.splbio()
        t.queue.append(1)
        m.post_intr(1, IPL_BIO, handler, None, at=10**9, name="cpu1intr")
        _ = len(t.queue)                 # interrupt point: cpu1's handler runs now
        m.splx(s)
        yield from ()

    got = run(m, c, body)
    assert ("data-race", "thing.queue") in got
    f = next(f for f in c.findings() if f.kind == "data-race")
    assert len(f.stacks) == 2 and "cpu1" in f.explanation


def test_one_cpu_has_no_data_race() -> None:
    m, L, c, g = setup(ncpus=1, stress=1.0)
    t = Thing()

    def body() -> GEN:
        s = m.splbio()
        t.queue.append(1)
        m.post_intr(0, IPL_BIO, lambda _: t.queue.append(2), None, at=10**9)
        _ = len(t.queue)                 # masked: the handler waits for splx
        m.splx(s)
        yield from ()

    assert ("data-race", "thing.queue") not in run(m, c, body)


def test_uninstall_restores_plain_slots() -> None:
    m, L, c, g = setup()
    c.uninstall()
    for name in ("count", "flags", "queue", "total", "loose"):
        assert type(Thing.__dict__[name]).__name__ == "member_descriptor"
    assert Thing.__init__.__name__ == "__init__" and not hasattr(Thing.__init__, "__wrapped__")
    assert "thing" in {sg.name for sg in REGISTRY.structs.values()}


def test_reports_dedupe_and_formats() -> None:
    m, L, c, g = setup()
    t = Thing()

    def body() -> GEN:
        for _ in range(5):
            t.count += 1
        yield from ()

    run(m, c, body)
    fs = c.findings()
    assert len(fs) == 1 and fs[0].count == 10       # a read and a write, five times each
    doc = to_json(c, "netbsd-2.0", "unit")
    assert set(doc) == {"protocol", "scenario", "findings", "groups"}
    rec = doc["findings"][0]
    assert set(rec) == {"kind", "subject", "context", "stacks", "count", "first_seen_ns",
                        "group", "frames"}
    assert doc["groups"] == [{"group": rec["group"], "findings": 1,
                              "kinds": ["unguarded-access"], "times": 10}]
    json.dumps(doc)
    text = text_report(c)
    assert "WARNING: unguarded-access" in text and "chain #0:" in text and "body" in text
    assert "Possible unsafe locking scenario" in text
