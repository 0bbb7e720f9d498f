"""What a run emulates: processes with their workload bodies, files that exist before the run,
how long it runs, and the machine it runs on (KernelConfig overrides).

Scenarios come from the built-in library (vfslab/scenarios), TOML files, fio job files and
strace logs; all of them end up as a `Scenario`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

Body = Callable[[Any, random.Random], Generator[Any, Any, Any]]


@dataclass
class ProcessSpec:
    name: str
    body: Body
    start_ns: int = 0


@dataclass
class SetupItem:
    """A directory, or a file of `size` bytes, that exists before the measured run."""

    path: str
    size: int = 0
    is_dir: bool = False
    # False: the file is only extended to `size` (posix_fallocate, as fio lays out a file
    # a job will write), not written: no block is allocated until the run writes it
    fill: bool = True
    link: str | None = None   # a symbolic link to this target (not a file)


@dataclass
class Scenario:
    name: str
    description: str
    processes: list[ProcessSpec]
    setup: list[SetupItem] = field(default_factory=list)
    duration_s: float = 60.0
    kernel: dict[str, Any] = field(default_factory=dict)   # KernelConfig field overrides
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    # a replay: the run ends when every process has exited, `duration_s` being a cap (a run
    # the cap cuts says so in its summary)
    until_exit: bool = False
