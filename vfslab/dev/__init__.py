"""Disks: a driver with a queue and a completion interrupt (wd.py), service-time models
(models.py) and fault injection (faults.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vfslab.dev.faults import FaultInjector, FaultRule, rules_from_config
from vfslab.dev.models import HDD, SSD
from vfslab.dev.wd import Disk, Torn
from vfslab.errors import InputError
from vfslab.sim.engine import Engine

__all__ = ["HDD", "SSD", "Disk", "FaultInjector", "FaultRule", "Torn", "make_disk"]


def make_disk(m: Engine, kind: str = "hdd", iodone: Callable[[Any], None] | None = None,
              queue: str = "disksort", depth: int | None = None, intr_cpu: int = 0,
              nblocks: int = 1 << 20, faults: Any = None, tear: bool = True,
              queue_settings: dict[str, Any] | None = None, **params: Any) -> Disk:
    """A disk of `kind` ("hdd" or "ssd") whose completions call `iodone` (biodone).
    `tear`: whether a power cut tears the write in service at a sector boundary (disks
    without power-loss protection) or loses it whole."""
    try:
        if kind == "hdd":
            model: Any = HDD(**params)
            d = depth or 1
        elif kind == "ssd":
            model = SSD(**params)
            d = depth or 32
        else:
            raise InputError(f"disk: expected hdd or ssd, got {kind!r}")
    except TypeError as e:
        raise InputError(f"disk {kind}: {e}") from None
    inj = faults
    if isinstance(faults, list):
        inj = FaultInjector(m.random("disk-faults"), rules_from_config(faults))
    elif faults is None:
        inj = FaultInjector(m.random("disk-faults"))
    if intr_cpu >= len(m.cpus):
        raise InputError(f"intr_cpu {intr_cpu}: the machine has {len(m.cpus)} cpu(s)")
    disk = Disk(m, model, iodone or (lambda bp: None), queue, d, intr_cpu, nblocks, inj,
                queue_settings=queue_settings)
    disk.tears = bool(tear)
    return disk
