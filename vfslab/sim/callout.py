"""callout(9): run a function at a later time from the soft clock interrupt.

A callout handler runs at IPL_SOFTCLOCK in interrupt context: it cannot sleep. Periodic daemons
are threads that sleep with a timeout or on lbolt; callouts are for short work like wakeups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vfslab.sim.context import Intr
from vfslab.sim.engine import Engine
from vfslab.sim.ipl import IPL_SOFTCLOCK


class Callout:
    """One callout: reset() arms (or re-arms) it, stop() disarms it."""

    __slots__ = ("engine", "name", "_irq", "fn", "arg")

    def __init__(self, engine: Engine, name: str = "callout") -> None:
        self.engine = engine
        self.name = name
        self._irq: Intr | None = None
        self.fn: Callable[[Any], None] | None = None
        self.arg: Any = None

    def reset(self, delay_ns: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Arm the callout to call fn(arg) `delay_ns` from now, cancelling an armed one."""
        self.stop()
        self.fn = fn
        self.arg = arg
        self._irq = self.engine.post_intr(0, IPL_SOFTCLOCK, self._fire, None,
                                          at=self.engine.time() + delay_ns, name=self.name)

    def _fire(self, _: Any) -> None:
        self._irq = None
        fn = self.fn
        if fn is not None:
            fn(self.arg)

    def stop(self) -> bool:
        """Disarm; True if it was armed."""
        irq = self._irq
        if irq is None:
            return False
        self.engine.cancel_intr(irq)
        self._irq = None
        return True

    def pending(self) -> bool:
        return self._irq is not None


def periodic(engine: Engine, period_ns: int, fn: Callable[[Any], None], arg: Any = None,
             name: str = "periodic") -> Callout:
    """A callout that re-arms itself every period (like the clock's lbolt wakeup)."""
    c = Callout(engine, name)

    def tick(a: Any) -> None:
        c.reset(period_ns, tick, a)
        fn(a)

    c.reset(period_ns, tick, arg)
    return c
