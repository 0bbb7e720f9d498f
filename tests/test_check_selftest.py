"""The validator against the families of Linux's lib/locking-selftest.c that apply to spin locks
and interrupt levels, written with vfslab's lock API: each case with its expected outcome
(hardirq = an IPL_BIO handler, "irqs off" = splbio)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from vfslab.check.checker import Checker
from vfslab.kern.lock import LK_NESTED, LockOps, declare_subclass, simplelock
from vfslab.sim.engine import Engine
from vfslab.sim.ipl import IPL_BIO
from vfslab.sim.panic import Deadlock

GEN = Generator[Any, Any, Any]


class Bench:
    def __init__(self, ncpus: int = 1) -> None:
        self.m = Engine(ncpus=ncpus)
        self.L = LockOps(self.m)
        self.c = Checker(self.m)
        self.m.checker = self.c
        self.locks: dict[str, simplelock] = {}
        self.t = 0

    def lk(self, name: str) -> simplelock:
        """Lock instances by name: "A" is class A; "X1", "X2" are two instances of class X."""
        if name not in self.locks:
            self.locks[name] = simplelock(name.rstrip("0123456789") or name)
        return self.locks[name]

    def thread(self, body: Callable[[], GEN]) -> None:
        self.t += 1_000_000
        at = self.t

        def main() -> GEN:
            yield from self.m.tsleep(("start", at), "start", at)
            yield from body()

        self.m.spawn(f"e{at}", main())

    def intr(self, fn: Callable[[], None]) -> None:
        self.t += 1_000_000
        self.m.post_intr(0, IPL_BIO, lambda _: fn(), None, at=self.t, name="hardirq")

    def lu(self, *names: str) -> Callable[[], GEN]:
        """Lock the names in order, unlock in reverse (LU2 and friends)."""
        def body() -> GEN:
            for n in names:
                self.L.simple_lock(self.lk(n))
            for n in reversed(names):
                self.L.simple_unlock(self.lk(n))
            yield from ()
        return body

    def lu_irqoff(self, *names: str) -> Callable[[], GEN]:
        inner = self.lu(*names)

        def body() -> GEN:
            s = self.m.splbio()
            yield from inner()
            self.m.splx(s)
        return body

    def run(self) -> set[tuple[str, str]]:
        self.m.run()
        return {(f.kind, f.subject) for f in self.c.findings()}


def kinds(found: set[tuple[str, str]]) -> set[str]:
    return {k for k, _ in found}


# ---- AA ----------------------------------------------------------------------------------------
def test_AA_same_instance_is_a_recursive_lock_and_stops_the_run() -> None:
    b = Bench()
    b.thread(b.lu("A", "A"))
    with pytest.raises(Deadlock):
        b.run()
    assert ("recursive-lock", "A") in {(f.kind, f.subject) for f in b.c.findings()}


def test_AA_two_instances_of_a_class_is_a_possible_AA() -> None:
    b = Bench()
    b.thread(b.lu("X1", "X2"))
    assert ("recursive-lock", "X") in b.run()


# ---- nesting annotations (spin_lock_nested; lockdep's subclasses) -----------------------------
NESTED = declare_subclass(1, "child")      # kern/vnode.py's VNL_CHILD: the same number and name


def lu_nested(b: Bench, *steps: tuple[str, int]) -> Callable[[], GEN]:
    """Lock each (name, subclass) in order (simple_lock_nested when a subclass is given),
    unlock in reverse."""
    def body() -> GEN:
        for n, sub in steps:
            if sub:
                b.L.simple_lock_nested(b.lk(n), sub)
            else:
                b.L.simple_lock(b.lk(n))
        for n, _ in reversed(steps):
            b.L.simple_unlock(b.lk(n))
        yield from ()
    return body


def test_AA_two_instances_with_the_second_nested_is_fine() -> None:
    b = Bench()
    b.thread(lu_nested(b, ("X1", 0), ("X2", NESTED)))
    assert b.run() == set()
    assert ("X", "X/child") in b.c.edges


def test_AA_two_instances_both_in_the_nested_role_is_a_possible_AA() -> None:
    # the annotation names a role, it does not switch the check off: a third instance taken
    # in the role one already held has, is reported
    b = Bench()
    b.thread(lu_nested(b, ("X1", 0), ("X2", NESTED), ("X3", NESTED)))
    assert ("recursive-lock", "X/child") in b.run()


def test_ABBA_between_a_class_and_its_nested_role_is_a_cycle() -> None:
    # X then X/child in one place, X/child then X in another (a child held while its
    # parent is locked): the roles are ordered like any two classes
    b = Bench()
    b.thread(lu_nested(b, ("X1", 0), ("X2", NESTED)))
    b.thread(lu_nested(b, ("X3", NESTED), ("X4", 0)))
    found = b.run()
    assert ("lock-order-cycle", "X/child -> X -> X/child") in found


def test_an_undeclared_subclass_is_refused() -> None:
    b = Bench()

    def body() -> GEN:
        b.L.simple_lock_nested(b.lk("X1"), LK_NESTED(14))
        yield from ()
    b.thread(body)
    with pytest.raises(ValueError, match="never declared"):
        b.run()


def test_a_released_lock_forgets_its_subclass() -> None:
    # the role belongs to one acquisition: taken again plainly, the instance is plain X
    b = Bench()
    first = lu_nested(b, ("X1", 0), ("X2", NESTED))
    again = lu_nested(b, ("X2", 0), ("X1", 0))

    def body() -> GEN:
        yield from first()
        yield from again()
    b.thread(body)
    assert ("recursive-lock", "X") in b.run()


def test_lock_set_subclass_moves_a_held_lock_to_another_role() -> None:
    # lock coupling: a child taken under its parent becomes, once the parent is released,
    # the parent of the next step
    b = Bench()

    def body() -> GEN:
        a, c, d = b.lk("X1"), b.lk("X2"), b.lk("X3")
        b.L.simple_lock(a)
        b.L.simple_lock_nested(c, NESTED)
        b.L.simple_unlock(a)
        b.L.lock_set_subclass(c, 0)
        b.L.simple_lock_nested(d, NESTED)
        b.L.simple_unlock(d)
        b.L.simple_unlock(c)
        yield from ()
    b.thread(body)
    assert b.run() == set()


# ---- cycles ------------------------------------------------------------------------------------
CYCLES = {
    "ABBA": [("A", "B"), ("B", "A")],
    "ABBCCA": [("A", "B"), ("B", "C"), ("C", "A")],
    "ABCABC": [("A", "B"), ("C", "A"), ("B", "C")],
    "ABBCCDDA": [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A")],
    "ABCDBDDA": [("A", "B"), ("C", "D"), ("B", "D"), ("D", "A")],
    "ABCDBCDA": [("A", "B"), ("C", "D"), ("B", "C"), ("D", "A")],
}


@pytest.mark.parametrize("name", list(CYCLES))
def test_cycles_are_reported(name: str) -> None:
    b = Bench()
    for x, y in CYCLES[name]:
        b.thread(b.lu(x, y))
    found = b.run()
    assert kinds(found) == {"lock-order-cycle"}
    f = next(f for f in b.c.findings() if f.kind == "lock-order-cycle")
    assert len(f.stacks) == len(f.details) >= 2     # one chain per edge of the cycle


@pytest.mark.parametrize("name", list(CYCLES))
def test_the_same_order_everywhere_is_not_reported(name: str) -> None:
    b = Bench()
    for x, y in CYCLES[name]:
        a, c = sorted((x, y))
        b.thread(b.lu(a, c))
    assert b.run() == set()


def test_a_trylock_reversal_is_not_a_cycle() -> None:
    b = Bench()
    b.thread(b.lu("A", "B"))

    def tryrev() -> GEN:
        b.L.simple_lock(b.lk("B"))
        got = b.L.simple_lock_try(b.lk("A"))
        if got:
            b.L.simple_unlock(b.lk("A"))
        b.L.simple_unlock(b.lk("B"))
        yield from ()

    b.thread(tryrev)
    assert b.run() == set()


def test_double_unlock_is_a_bad_unlock() -> None:
    b = Bench()

    def body() -> GEN:
        b.L.simple_lock(b.lk("A"))
        b.L.simple_unlock(b.lk("A"))
        b.L.simple_unlock(b.lk("A"))
        yield from ()

    b.thread(body)
    assert ("bad-unlock", "A") in b.run()


def test_unlock_by_another_thread_is_a_bad_unlock() -> None:
    b = Bench()

    def taker() -> GEN:
        b.L.simple_lock(b.lk("A"))
        yield from b.m.tsleep("hold", "hold", 10_000_000)
        b.L.simple_unlock(b.lk("A"))

    def thief() -> GEN:
        b.L.simple_unlock(b.lk("A"))
        yield from ()

    b.thread(taker)
    b.thread(thief)
    found = b.run()
    assert ("bad-unlock", "A") in found
    assert ("sleep-holding-spinlock", "A") in found


# ---- interrupt safety --------------------------------------------------------------------------
def _in_irq(b: Bench, *names: str) -> Callable[[], None]:
    def fn() -> None:
        for n in names:
            b.L.simple_lock(b.lk(n))
        for n in reversed(names):
            b.L.simple_unlock(b.lk(n))
    return fn


@pytest.mark.parametrize("irq_first", [True, False])
def test_irqsafe1_lock_in_irq_and_with_irqs_on(irq_first: bool) -> None:
    b = Bench()
    if irq_first:
        b.intr(_in_irq(b, "A"))
        b.thread(b.lu("A"))
    else:
        b.thread(b.lu("A"))
        b.intr(_in_irq(b, "A"))
    assert b.run() == {("irq-lock-inversion", "A")}


def test_lock_in_irq_and_everywhere_else_under_splbio_is_fine() -> None:
    b = Bench()
    b.intr(_in_irq(b, "A"))
    b.thread(b.lu_irqoff("A"))
    b.intr(_in_irq(b, "A", "B"))
    b.thread(b.lu_irqoff("A", "B"))
    assert b.run() == set()


def test_irqsafe2B_lowering_spl_while_holding_an_irq_safe_lock() -> None:
    b = Bench()
    b.intr(_in_irq(b, "A"))

    def body() -> GEN:
        s = b.m.splbio()
        b.L.simple_lock(b.lk("A"))
        b.m.splx(s)                     # interrupts back on with A held
        b.L.simple_unlock(b.lk("A"))
        yield from ()

    b.thread(body)
    assert b.run() == {("irq-lock-inversion", "A")}


@pytest.mark.parametrize("irqs_off_for_edge", [False, True])
def test_irqsafe3_4_safe_A_and_unsafe_B_through_an_edge(irqs_off_for_edge: bool) -> None:
    b = Bench()
    b.thread(b.lu_irqoff("A", "B") if irqs_off_for_edge else b.lu("A", "B"))
    b.thread(b.lu("B"))                 # B taken with interrupts on
    b.intr(_in_irq(b, "A"))             # A is irq-safe
    found = b.run()
    assert ("irq-lock-inversion", "B") in found


def test_irq_inversion() -> None:
    b = Bench()
    b.thread(b.lu_irqoff("A", "B"))
    b.thread(b.lu("B"))
    b.intr(_in_irq(b, "A"))
    found = b.run()
    assert found == {("irq-lock-inversion", "B")}
    fnd = next(x for x in b.c.findings() if x.subject == "B")
    assert "A -> B" in fnd.explanation and len(fnd.stacks) >= 3


def test_irq_safe_to_unsafe_through_a_chain_of_three() -> None:
    b = Bench()
    b.intr(_in_irq(b, "A", "B"))          # A and B both irq-safe
    b.thread(b.lu_irqoff("B", "C"))
    b.thread(b.lu_irqoff("C", "D"))
    b.thread(b.lu("D"))                   # D irq-unsafe
    found = b.run()
    assert ("irq-lock-inversion", "D") in found
    assert all(k == "irq-lock-inversion" for k in kinds(found))


def test_an_interrupt_taking_a_lock_its_cpu_holds_is_a_real_deadlock() -> None:
    b = Bench()
    b.m.irq_stress = 1.0

    def body() -> GEN:
        b.L.simple_lock(b.lk("A"))
        b.m.post_intr(0, IPL_BIO, lambda _: b.L.simple_lock(b.lk("A")), None,
                      at=b.m.time() + 10**9, name="hardirq")
        b.m.ipoint()
        b.L.simple_unlock(b.lk("A"))
        yield from ()

    b.thread(body)
    with pytest.raises(Deadlock):
        b.run()
    f = next(x for x in b.c.findings() if x.kind == "deadlock")
    assert f.subject == "A" and len(f.stacks) == 2


# ---- sleeping, spl balance -----------------------------------------------------------------------
def test_sleep_holding_a_spinlock() -> None:
    b = Bench()

    def body() -> GEN:
        b.L.simple_lock(b.lk("A"))
        yield from b.m.tsleep("x", "nap", 1000)
        b.L.simple_unlock(b.lk("A"))

    b.thread(body)
    assert ("sleep-holding-spinlock", "A") in b.run()


def test_ltsleep_releasing_the_interlock_is_fine() -> None:
    b = Bench()

    def body() -> GEN:
        b.L.simple_lock(b.lk("A"))
        yield from b.L.ltsleep("x", "nap", 1000, b.lk("A"), relock=True)
        b.L.simple_unlock(b.lk("A"))

    b.thread(body)
    assert b.run() == set()


def test_spl_imbalance_in_a_handler_and_at_userret() -> None:
    b = Bench()
    b.intr(lambda: b.m.splraise(9) and None)     # returns raised to IPL_HIGH

    def body() -> GEN:
        b.m.splbio()
        b.c.on_userret(b.m.cur)
        b.m.spl0()
        yield from ()

    b.thread(body)
    found = b.run()
    assert kinds(found) == {"spl-imbalance"}
    assert len(b.c.findings()) == 2


def test_a_users_own_role_comes_from_the_api_and_orders_like_a_class() -> None:
    # docs/extending.md: a protocol that takes two locks of its own class declares the
    # role of the second through vfslab.api
    from vfslab.api import declare_subclass as api_declare

    second = api_declare(4, "inode-order")
    b = Bench()
    b.thread(lu_nested(b, ("Y1", 0), ("Y2", second)))
    b.thread(lu_nested(b, ("Y3", 0), ("Y4", 0)))
    found = b.run()
    assert ("Y", "Y/inode-order") in b.c.edges
    assert found == {("recursive-lock", "Y")}          # only the unannotated pair
