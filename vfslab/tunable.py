"""Declared settings: a name, a type, a unit, a default, a range and a help text, checked in
one place for `--set`, TOML configs and sweep grids alike.

Policies declare theirs (`WritebackPolicy.TUNABLES`). Kernel subsystems declare theirs here
by scope (`ffs.write_behind`, ...) with `declare_setting`; `--set SCOPE.NAME=VALUE` reaches
them through the machine's configuration (`KernelConfig.sysctl`), as sysctl(8) would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vfslab.errors import InputError


@dataclass(frozen=True)
class Tunable:
    """One declared setting of a policy."""

    name: str
    type: type
    default: Any
    help: str
    unit: str = ""
    min: float | None = None         # inclusive
    max: float | None = None         # inclusive
    positive: bool = False           # strictly greater than 0
    choices: tuple[str, ...] = ()    # the values a str setting may take

    def check(self, owner: str, value: Any) -> Any:
        """The value converted to the declared type, or an InputError naming the key."""
        key = f"{owner}.{self.name}"
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                raise InputError(f"{key}: expected true or false, got {value!r}")
            return value
        if t in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{key}: expected {'an integer' if t is int else 'a number'}"
                                 f"{' (' + self.unit + ')' if self.unit else ''}, got {value!r}")
            if t is int and float(value) != int(value):
                raise InputError(f"{key}: expected an integer, got {value!r}")
            v = t(value)
            if not math.isfinite(float(v)):
                raise InputError(f"{key}: expected a finite number, got {value!r}")
            if self.positive and v <= 0:
                raise InputError(f"{key}: must be greater than 0, got {value!r}")
            if self.min is not None and v < self.min or self.max is not None and v > self.max:
                raise InputError(f"{key}: must be within {self.range_text()}, got {value!r}")
            return v
        if not isinstance(value, t):
            raise InputError(f"{key}: expected {t.__name__}, got {value!r}")
        if self.choices and value not in self.choices:
            raise InputError(f"{key}: expected one of {', '.join(self.choices)}, got {value!r}")
        return value

    def range_text(self) -> str:
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"[{lo}, {hi}]" + (f" {self.unit}" if self.unit else "")



# kernel settings by "scope.name" (registered by the subsystems that read them)
SETTINGS: dict[str, Tunable] = {}


def declare_setting(scope: str, t: Tunable) -> Tunable:
    SETTINGS[f"{scope}.{t.name}"] = t
    return t


def _declared() -> dict[str, Tunable]:
    """The registry, with every subsystem that declares settings imported."""
    import vfslab.machine  # noqa: F401  (its imports declare the kernel's settings)

    return SETTINGS


def setting_scopes() -> set[str]:
    return {key.partition(".")[0] for key in _declared()}


def check_setting(key: str, value: Any) -> Any:
    """A kernel setting's value, converted and range-checked, or an InputError naming the
    key and the choices."""
    t = _declared().get(key)
    if t is None:
        scope = key.partition(".")[0]
        known = sorted(k for k in SETTINGS if k.startswith(scope + "."))
        raise InputError(f"unknown setting {key!r}; expected one of {', '.join(known)}")
    return t.check(key.partition(".")[0], value)


def setting(sysctl: dict[str, Any], key: str) -> Any:
    """The value of a kernel setting in a machine's configuration, or its default."""
    if key in sysctl:
        return sysctl[key]
    return SETTINGS[key].default
