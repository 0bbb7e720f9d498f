"""Call chains of the emulated kernel, read from the Python stack.

A chain is the list of emulated kernel functions (outermost first) of the current context only:
an interrupt handler's chain starts at the handler, not in the thread it interrupted. Each entry
is a `Frame`: a `str` (the function's name, which is what chains compare and hash by, so two
chains through the same functions are the same chain whatever their lines), carrying where the
function was (`file:line` of the call it was making, as a traceback's) and its role: a function
of the emulated system's own model (""), or one the emulated system marked (`mark_frames`: its
own helpers, which the real system does not have, or the workload's program code).
"""

from __future__ import annotations

import os
import sys
from types import CodeType, FrameType


class Frame(str):
    """One entry of a call chain: the function's name, with `where` (file:line, relative to
    the source tree) and `role` ("" for a modelled function, else what the emulated system
    said it is, e.g. "helper" or "program")."""

    where: str
    role: str

    def __new__(cls, name: str, where: str = "", role: str = "") -> Frame:
        f = super().__new__(cls, name)
        f.where = where
        f.role = role
        return f

    def __reduce__(self) -> tuple[type[Frame], tuple[str, str, str]]:
        return (Frame, (str(self), self.where, self.role))

    def renamed(self, name: str) -> Frame:
        """The same frame under another name (a lock primitive named with its lock)."""
        return Frame(name, self.where, self.role)

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
    """Leave functions of these names or qualified names out of chains (helpers between a
    kernel function and the lock it takes, so that a chain names the caller and the lock,
    not the plumbing; dispatch through a vector, which adds no function of its own)."""
    global _HIDDEN
    _HIDDEN = _HIDDEN | frozenset(names)


# name -> role of the functions the emulated system marked, and module prefix -> role
_ROLES: dict[str, str] = {}
_MODULE_ROLES: dict[str, str] = {}
# the source tree's root, to print file names relative to it
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (code, line) -> Frame: a chain is built only once per new fact, but the same frames recur
_frames: dict[tuple[CodeType, int], Frame] = {}


def mark_frames(role: str, *names: str) -> None:
    """Give functions of these names `role` in chains (e.g. "helper": the emulated system's
    own plumbing, with no function of that name in the system it models). A name is a
    function's name, a qualified name ("Ubc.write") or every method of a class ("Proc.*")."""
    for n in names:
        _ROLES[n] = role
    _frames.clear()


def mark_modules(role: str, *prefixes: str) -> None:
    """Give every function of modules whose names start with one of `prefixes` `role`."""
    for p in prefixes:
        _MODULE_ROLES[p] = role
    _frames.clear()


def role_of(name: str, module: str = "", qualname: str = "") -> str:
    """The role a function of this name (in this module, with this qualified name) has in
    chains: its module's, else its qualified name's, its class's or its name's."""
    for p, r in _MODULE_ROLES.items():
        if module.startswith(p):
            return r
    if qualname:
        role = _ROLES.get(qualname)
        if role is None and "." in qualname:
            role = _ROLES.get(qualname.rsplit(".", 1)[0] + ".*")
        if role is not None:
            return role
    return _ROLES.get(name, "")


def _frame(code: CodeType, line: int, module: str) -> Frame:
    key = (code, line)
    fr = _frames.get(key)
    if fr is None:
        path = code.co_filename
        if path.startswith(_ROOT):
            path = path[len(_ROOT) + 1:]
        fr = _frames[key] = Frame(code.co_name, f"{path}:{line}",
                                  role_of(code.co_name, module, code.co_qualname))
    return fr


def add_boundary(code: CodeType) -> None:
    """Mark an engine function whose frame starts a context (thread step or interrupt entry)."""
    _boundaries.add(code)


def _is_kernel(frame: FrameType) -> bool:
    mod = frame.f_globals.get("__name__", "")
    return isinstance(mod, str) and mod.startswith(_KERNEL_PREFIXES)


def _chain_from(f: FrameType | None, limit: int = 48) -> list[str]:
    """Kernel functions (`Frame`s) from frame `f` out to the start of its context, outermost
    first (private helpers, protocol plumbing and recursion's repeats left out)."""
    out: list[str] = []
    bounds = _boundaries
    while f is not None and len(out) < limit:
        if f.f_code in bounds:
            break
        if _is_kernel(f):
            name = f.f_code.co_name
            if not name.startswith("_") and name not in _HIDDEN \
                    and f.f_code.co_qualname not in _HIDDEN:
                fr = _frame(f.f_code, f.f_lineno, f.f_globals.get("__name__", ""))
                # a repeat (recursion, or a protocol's decision of the same name) is shown
                # once, where the outermost of them is
                if out and out[-1] == name:
                    out[-1] = fr
                else:
                    out.append(fr)
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
                out.append(_frame(code, frame.f_lineno, frame.f_globals.get("__name__", "")))
        gen = getattr(gen, "gi_yieldfrom", None)
    return out
