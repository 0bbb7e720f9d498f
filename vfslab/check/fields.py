"""Checked fields: data descriptors that replace the `__slots__` members of the kernel's
structures while the validator runs, so that every read and write of a guarded or tracked field
is checked (and is an interrupt point), and nothing is paid when it does not run.

Accesses made while an object is being constructed, or outside any emulated context (setup,
observers, the invariant checker), are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vfslab.kern.guards import Guard, StructGuards, initializing

if TYPE_CHECKING:
    from vfslab.check.checker import Checker


class FieldDescriptor:
    """Stands in for one struct field's slot descriptor."""

    __slots__ = ("checker", "m", "orig", "field", "subject", "guard", "container", "owner")

    def __init__(self, checker: Checker, owner: type, field: str, struct: str,
                 guard: Guard | None, container: bool) -> None:
        self.checker = checker
        self.m = checker.m
        self.orig = owner.__dict__[field]
        self.owner = owner
        self.field = field
        self.subject = f"{struct}.{field}"
        self.guard = guard
        self.container = container

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        m = self.m
        cur = m.cur
        if cur is not None and not _constructing[0]:
            m.ipoint()
            self.checker.access(obj, self, self.container, cur)
        return self.orig.__get__(obj, objtype)

    def __set__(self, obj: Any, value: Any) -> None:
        m = self.m
        cur = m.cur
        if cur is not None and not _constructing[0]:
            m.ipoint()
            self.checker.access(obj, self, True, cur)
        self.orig.__set__(obj, value)


# How many constructors of checked structures, or other private set-ups, are running (their
# field setup is not checked): kern/guards.py's counter, which the kernel raises itself too.
_constructing = initializing


def _wrap_init(cls: type) -> Callable[..., None]:
    orig = cls.__dict__["__init__"]

    def __init__(self: Any, *args: Any, **kw: Any) -> None:  # noqa: N807
        _constructing[0] += 1
        try:
            orig(self, *args, **kw)
        finally:
            _constructing[0] -= 1

    __init__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __init__


def install_descriptors(checker: Checker, structs: list[StructGuards]) -> list[FieldDescriptor]:
    installed: list[FieldDescriptor] = []
    for sg in structs:
        cls = sg.cls
        fields = {**{f: g for f, g in sg.guards.items()}, **{f: None for f in sg.tracked}}
        if not fields:
            continue
        if "__init__" in cls.__dict__ and not hasattr(cls.__dict__["__init__"], "__wrapped__"):
            setattr(cls, "__init__", _wrap_init(cls))
        for f, guard in fields.items():
            cur = cls.__dict__.get(f)
            if cur is None or isinstance(cur, FieldDescriptor):
                continue
            d = FieldDescriptor(checker, cls, f, sg.name, guard, f in sg.containers)
            setattr(cls, f, d)
            installed.append(d)
    return installed


def uninstall_descriptors(installed: list[FieldDescriptor]) -> None:
    owners = set()
    for d in installed:
        setattr(d.owner, d.field, d.orig)
        owners.add(d.owner)
    for cls in owners:
        init = cls.__dict__.get("__init__")
        if init is not None and hasattr(init, "__wrapped__"):
            setattr(cls, "__init__", init.__wrapped__)
