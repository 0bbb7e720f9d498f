"""The event queue and the clock of an emulated machine.

Time is integer nanoseconds. The queue orders events by (time, sequence number), so ties
break in the order the events were posted: a run is a pure function of its inputs and seed.
Each CPU has a local clock that advances with the CPU time charged by the code running on it
(`charge`); `time()` is the running code's view (its CPU's clock), `now` the event loop's.

CPUs made busy by a wakeup during an event are dispatched right after it without a trip
through the heap (`_immediate`) when nothing else is due first: the same order, cheaper.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vfslab.sim.context import CPU, Context

Event = tuple[int, int, Callable[[Any], None], Any]


class EventQueue:
    """Mixin of Engine: the heap, the clock, seeded randomness and the run loop."""

    now: int
    seed: int
    cur: Context | None
    _heap: list[Event]
    _seq: int
    _running: bool
    _immediate: list[CPU]
    _nimmediate: int
    _dispatch: Callable[[CPU], None]          # Threads (threads.py)

    def _init_events(self, seed: int) -> None:
        self.now = 0
        self._heap = []
        self._seq = 0
        self.seed = seed
        self._running = False
        self._immediate = []
        self._nimmediate = 0

    # ---- randomness -------------------------------------------------------------------------
    def random(self, stream: str) -> random.Random:
        """An independent seeded stream: adding a consumer never shifts another's draws."""
        return random.Random(f"vfslab:{self.seed}:{stream}")

    # ---- clock ------------------------------------------------------------------------------
    def time(self) -> int:
        """The current time as the running code sees it: its CPU's local clock."""
        cur = self.cur
        return cur.cpu.t if cur is not None else self.now

    def charge(self, ns: int) -> None:
        """Charge CPU time to the running context."""
        self.cur.cpu.t += ns  # type: ignore[union-attr]

    # ---- events -----------------------------------------------------------------------------
    def _push(self, t: int, fn: Callable[[Any], None], arg: Any) -> None:
        self._seq += 1
        heappush(self._heap, (t, self._seq, fn, arg))

    def at(self, t: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call fn(arg) at time t outside any emulated context, charging no CPU time: for
        observers (metric samplers), never for emulated code."""
        self._push(t, fn, arg)

    def run(self, until: int | None = None) -> None:
        """Process events in order until none is left or the next is after `until`.

        An emulated panic (including a deadlock) propagates to the caller with its report.
        """
        heap = self._heap
        imm = self._immediate
        pop = heappop
        dispatch = self._dispatch
        limit = until if until is not None else 1 << 62
        self._running = True
        try:
            while heap or imm:
                if imm:
                    if len(imm) == 1:
                        # the common case of _run_immediate, inline: one CPU to dispatch
                        cpu = imm[0]
                        t = cpu.t if cpu.t > self.now else self.now
                        if not (heap and heap[0][0] < t) and t <= limit:
                            imm.clear()
                            if t > self.now:
                                self.now = t
                            self._nimmediate += 1
                            dispatch(cpu)
                            continue
                    self._run_immediate(until)
                    if not heap:
                        continue
                if heap[0][0] > limit:
                    break
                t, _, fn, arg = pop(heap)
                if t > self.now:
                    self.now = t
                fn(arg)
        finally:
            self._running = False
        if until is not None and until > self.now:
            self.now = until

    def _run_immediate(self, until: int | None) -> None:
        imm = self._immediate
        heap = self._heap
        dispatch = self._dispatch
        while imm:
            cpu = imm[0]
            t = cpu.t if cpu.t > self.now else self.now
            if (heap and heap[0][0] < t) or (until is not None and t > until):
                # something is due first: go through the heap after all
                for c in imm:
                    self._push(c.t if c.t > self.now else self.now, dispatch, c)
                imm.clear()
                return
            imm.pop(0)
            if t > self.now:
                self.now = t
            self._nimmediate += 1
            dispatch(cpu)

    def pending_events(self) -> int:
        return len(self._heap)

    def events_processed(self) -> int:
        """Events taken from the queue or dispatched at once (for run summaries)."""
        return self._seq - len(self._heap) + self._nimmediate
