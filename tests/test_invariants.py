"""DIAGNOSTIC: the library's scenarios run to completion under the invariant checker with the
2004 syncer flushing; a broken invariant stops the run naming itself and the chain."""

from __future__ import annotations

import pytest

from vfslab.kern.diagnostic import InvariantError
from vfslab.runner import RunConfig, run_scenario
from vfslab.scenarios import all_names
from vfslab.sim.panic import Panic


@pytest.mark.parametrize("name", [n for n in all_names()
                                  if n not in ("pr24596", "steadywriter")])
def test_scenarios_hold_the_invariants(name: str) -> None:
    res = run_scenario(RunConfig(scenario=name, duration_s=3.0, invariants=True,
                                 kernel={"fs_blocks": 1 << 17}))
    assert res.panic is None, res.panic.report()
    assert res.kernel.invariants.checks > 5
    assert res.summary["operations"] > 0


def test_a_broken_invariant_stops_the_run_with_its_name() -> None:
    from vfslab.kern.init_main import KernelConfig
    from vfslab.machine import boot

    k = boot(KernelConfig(invariants=True, fs_blocks=1 << 14, disk="ssd"))
    k.m.run(until=100_000_000)
    k.bio.ndirty += 1                 # the count no longer matches the buffers
    with pytest.raises(InvariantError) as ei:
        k.m.run(until=2_000_000_000)
    assert "B_DELWRI buffers but the count says" in ei.value.message


def test_a_sleep_in_an_interrupt_becomes_a_finding() -> None:
    from vfslab.check.checker import Checker
    from vfslab.sim.engine import Engine
    from vfslab.sim.ipl import IPL_BIO

    m = Engine()
    c = Checker(m)
    m.checker = c
    m.post_intr(0, IPL_BIO, lambda _: m.tsleep("x", "oops") and None, None, at=5,
                name="badintr")
    with pytest.raises(Panic) as ei:
        m.run()
    c.record_panic(ei.value)
    assert [(f.kind, f.context) for f in c.findings()] == [
        ("sleep-in-interrupt", "interrupt badintr at IPL_BIO on cpu0")]


def test_lockmgr_from_an_interrupt_panics_even_without_yield_from() -> None:
    """As tsleep: the context is checked at the call, so a handler that forgets `yield from`
    does not silently take nothing (lockdep's self-tests' 'sleeping lock in hardirq')."""
    from vfslab.kern.init_main import Kernel, KernelConfig
    from vfslab.kern.lock import LK_EXCLUSIVE, lock
    from vfslab.sim.ipl import IPL_BIO

    k = Kernel(KernelConfig())
    m = k.m
    lk = lock("testlk", "testlk")
    m.post_intr(0, IPL_BIO, lambda _: k.locks.lockmgr(lk, LK_EXCLUSIVE) and None, None, at=5,
                name="badintr")
    with pytest.raises(Panic, match="lockmgr\\(testlk\\) from interrupt badintr"):
        m.run(until=10)
    assert lk.holder is None
