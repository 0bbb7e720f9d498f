"""Call chains of the emulated kernel, read from the Python stack.

A chain is the list of emulated kernel functions (outermost first) of the current context only:
an interrupt handler's chain starts at the handler, not in the thread it interrupted.
"""

from __future__ import annotations

import sys
from types import CodeType, FrameType

# Modules whose functions are emulated code, and so appear in chains: the emulated system
# registers its own (the engine knows none of them).
_KERNEL_PREFIXES: tuple[str, ...] = ()
_boundaries: set[CodeType] = set()
# Function names the emulated system wants left out of chains (its plumbing).
_HIDDEN: frozenset[str] = frozenset()


def register_kernel_modules(*prefixes: str) -> None:
    """Functions of modules whose names start with one of `prefixes` appear in chains."""
    global _KERNEL_PREFIXES
    _KERNEL_PREFIXES = tuple(dict.fromkeys((*_KERNEL_PREFIXES, *prefixes)))


def hide_frames(*names: str) -> None:
    """Leave functions of these names out of chains (helpers between a kernel function and
    the lock it takes, so that a chain names the caller and the lock, not the plumbing)."""
    global _HIDDEN
    _HIDDEN = _HIDDEN | frozenset(names)


def add_boundary(code: CodeType) -> None:
    """Mark an engine function whose frame starts a context (thread step or interrupt entry)."""
    _boundaries.add(code)


def _is_kernel(frame: FrameType) -> bool:
    mod = frame.f_globals.get("__name__", "")
    return isinstance(mod, str) and mod.startswith(_KERNEL_PREFIXES)


def _chain_from(f: FrameType | None, limit: int = 48) -> list[str]:
    """Kernel function names from frame `f` out to the start of its context, outermost
    first (private helpers, protocol plumbing and recursion's repeats left out)."""
    out: list[str] = []
    bounds = _boundaries
    while f is not None and len(out) < limit:
        if f.f_code in bounds:
            break
        if _is_kernel(f):
            name = f.f_code.co_name
            if (not name.startswith("_") and name not in _HIDDEN
                    and (not out or out[-1] != name)):
                out.append(name)
        f = f.f_back
    out.reverse()
    return out


def call_chain(skip: int = 1, limit: int = 48) -> list[str]:
    """The emulated call chain of the running context, outermost first."""
    return _chain_from(sys._getframe(skip), limit)


def interrupted_chain(depth: int = 1) -> list[str]:
    """The chain of the context `depth` levels beneath the running interrupt handler (the
    code it interrupted, on the same CPU), outermost first."""
    f: FrameType | None = sys._getframe(1)
    crossed = 0
    while f is not None and crossed < depth:
        if f.f_code in _boundaries:
            crossed += 1
        f = f.f_back
    return _chain_from(f)


def thread_chain(td: object) -> list[str]:
    """The emulated call chain at which a switched-out thread sleeps, outermost first."""
    out: list[str] = []
    gen = getattr(td, "gen", None)
    while gen is not None:
        code = getattr(gen, "gi_code", None)
        frame = getattr(gen, "gi_frame", None)
        if code is not None and frame is not None and _is_kernel(frame):
            name = code.co_name
            if not name.startswith("_") or name.startswith("__"):
                out.append(name)
        gen = getattr(gen, "gi_yieldfrom", None)
    return out
