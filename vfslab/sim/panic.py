"""Emulated kernel panics and deadlocks: they stop a run cleanly with who, where and why."""

from __future__ import annotations


class Panic(Exception):
    """The emulated kernel panicked (LOCKDEBUG-style): the run stops, the report survives."""

    kind = "panic"

    def __init__(self, message: str, context: str = "", stacks: list[list[str]] | None = None,
                 time_ns: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        self.stacks = stacks or []
        self.time_ns = time_ns

    def report(self) -> str:
        lines = [f"panic: {self.message}", f"  in {self.context} at {self.time_ns} ns"]
        for i, st in enumerate(self.stacks):
            lines.append(f"  chain #{i}: " + " -> ".join(st))
        return "\n".join(lines)


class Deadlock(Panic):
    """A real deadlock happened in the run (a CPU spinning on a lock it holds, or waiters in a
    cycle). Raised so the run stops instead of hanging."""

    kind = "deadlock"


class SimulationError(Exception):
    """A misuse of the engine by emulated code (not a kernel panic): a bug in vfslab itself."""
