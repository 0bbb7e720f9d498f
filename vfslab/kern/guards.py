"""Field guards, declared once next to each kernel structure, as NetBSD's vnode.h comment table
does ("v_flag, v_usecount, v_holdcnt ... are locked by the v_interlock simple lock").

A declaration maps a field to its guard written as the kernel would say it:
    "v_interlock"                 an instance lock: the attribute of the same object
    "vnode_free_list_slock"       a global lock, by its name (the kernel registers it)
    "splbio"                      an spl level (splbio, splvm, splhigh, ...)
    "global_v_numoutput_slock+splbio"   both
Containers (lists and queues mutated in place) are named in `containers`: every read of such a
field is taken as an access that may write.

`tracked` fields have no declared guard: the validator runs Eraser's lockset algorithm on them.

Protocol variants change guards (the mail's fixes move v_dirtyblkhd under v_interlock): a
protocol passes overrides to `resolve`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from vfslab.sim.ipl import SPL_NAMES

_SPL_BY_NAME = {name: level for level, name in SPL_NAMES.items() if level > 0}

# How many structures are being set up by code that alone can reach them (a constructor, or
# getnewvnode re-initialising a recycled vnode): the validator does not check their fields,
# as lockdep does not check an object before it is published.
initializing = [0]


@contextmanager
def private_setup() -> Iterator[None]:
    """Fields set inside are an object's initialisation, not shared accesses."""
    initializing[0] += 1
    try:
        yield
    finally:
        initializing[0] -= 1


# A KASSERT's reads are DIAGNOSTIC's, not the kernel's: unchecked the same way.
kassert = private_setup


@dataclass(frozen=True, slots=True)
class Guard:
    """What must be held to touch a field: locks (all of them) and/or a minimum spl level."""

    locks: tuple[str, ...] = ()
    spl: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Guard:
        locks: list[str] = []
        spl = 0
        for part in text.replace(" ", "").split("+"):
            if not part:
                continue
            if part in _SPL_BY_NAME:
                spl = max(spl, _SPL_BY_NAME[part])
            else:
                locks.append(part)
        return cls(tuple(locks), spl, text)

    @property
    def spl_only(self) -> bool:
        return self.spl > 0 and not self.locks


@dataclass(slots=True)
class StructGuards:
    """The guard table of one kernel structure."""

    name: str                       # the C struct's name: "vnode", "buf", "uvm_object"
    cls: type
    guards: dict[str, Guard]
    containers: frozenset[str] = frozenset()
    tracked: frozenset[str] = frozenset()


@dataclass(slots=True)
class GuardRegistry:
    structs: dict[type, StructGuards] = field(default_factory=dict)

    def by_name(self, name: str) -> StructGuards:
        for sg in self.structs.values():
            if sg.name == name:
                return sg
        raise KeyError(name)


REGISTRY = GuardRegistry()
T = TypeVar("T")


def declare_guards(name: str, guards: dict[str, str], containers: tuple[str, ...] = (),
                   tracked: tuple[str, ...] = ()) -> Callable[[type[T]], type[T]]:
    """Class decorator: declare the guard table of a kernel structure."""

    def deco(cls: type[T]) -> type[T]:
        REGISTRY.structs[cls] = StructGuards(
            name, cls, {f: Guard.parse(g) for f, g in guards.items()},
            frozenset(containers), frozenset(tracked))
        return cls

    return deco


def resolve(overrides: dict[str, dict[str, str]] | None = None) -> list[StructGuards]:
    """The guard tables in force under a protocol: the declarations with its overrides.

    `overrides` maps a struct name to {field: guard text}; an empty text removes the guard
    (the field becomes Eraser-tracked instead).
    """
    out: list[StructGuards] = []
    overrides = overrides or {}
    for sg in REGISTRY.structs.values():
        guards = dict(sg.guards)
        tracked = set(sg.tracked)
        for f, text in overrides.get(sg.name, {}).items():
            if text:
                guards[f] = Guard.parse(text)
                tracked.discard(f)
            else:
                guards.pop(f, None)
                tracked.add(f)
        out.append(StructGuards(sg.name, sg.cls, guards, sg.containers, frozenset(tracked)))
    return out
