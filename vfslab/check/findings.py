"""Findings of the validator: what was found, about which lock class or field, in which
context, with which call chains; deduplicated by kind, subject and chains, with a count."""

from __future__ import annotations

from dataclasses import dataclass, field

# Every kind the validator reports, with a one-line meaning for reports.
KINDS: dict[str, str] = {
    "irq-lock-inversion": "a lock taken in an interrupt is taken elsewhere with that "
                          "interrupt enabled (directly or through a lock held while taking it)",
    "lock-order-cycle": "locks taken in an order that forms a cycle",
    "unguarded-access": "a field read or written without its declared guard",
    "spl-only-guard": "a field guarded only by an spl level, which masks interrupts on one "
                      "CPU only: a race on a multiprocessor",
    "lockset-race": "no lock consistently guards a shared, written field (Eraser)",
    "data-race": "two CPUs inside their critical sections on the same field at once",
    "sleep-in-interrupt": "an interrupt handler tried to sleep",
    "sleep-holding-spinlock": "a thread slept holding a spin lock",
    "recursive-lock": "a lock taken by the context that already holds it",
    "recursive-shared-lock": "a shared lock taken again by a thread that holds it shared: "
                             "lockmgr makes the second request wait behind a waiting "
                             "exclusive one, which waits for the first",
    "sleeping-lock-under-spinlock": "a sleeping lock (lockmgr) requested while holding a "
                                    "spin lock: it may sleep with the spin lock held",
    "bad-unlock": "a lock released that is not held, or held by another context",
    "spl-imbalance": "an spl level or a lock left raised or held at a boundary",
    "deadlock": "a deadlock that happened in the run",
    "panic": "the emulated kernel panicked",
}


@dataclass
class Finding:
    kind: str
    subject: str                       # lock class or "struct.field"
    context: str                       # where it happened: thread, interrupt at IPL_x on cpuN
    stacks: list[list[str]]            # call chains, outermost first
    first_seen_ns: int
    count: int = 1
    explanation: str = ""
    scenario: list[str] = field(default_factory=list)   # "possible unsafe scenario" lines
    details: list[str] = field(default_factory=list)

    def key(self) -> tuple[str, str, tuple[tuple[str, ...], ...]]:
        return (self.kind, self.subject, tuple(tuple(s) for s in self.stacks))

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "subject": self.subject, "context": self.context,
                "stacks": self.stacks, "count": self.count,
                "first_seen_ns": self.first_seen_ns}
