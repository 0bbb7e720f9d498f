"""The built-in scenario library. Each builder returns a Scenario; `SCENARIOS` lists them with
one line each (`vfslab scenarios`)."""

from __future__ import annotations

from collections.abc import Callable

from vfslab.errors import InputError
from vfslab.scenario import Scenario
from vfslab.scenarios import builtin

SCENARIOS: dict[str, tuple[Callable[[], Scenario], str]] = {
    "stream": (builtin.stream, "one process streaming 64 KiB writes into a large file"),
    "smallfiles": (builtin.smallfiles, "many small files created and written in a few dirs"),
    "randfsync": (builtin.randfsync, "random 4 KiB overwrites of a file, fsync every 8 writes"),
    "readwrite": (builtin.readwrite, "a sequential reader beside a streaming writer"),
    "protocol": (builtin.protocol, "every path of the mail: async metadata writes, I/O errors, "
                 "vnode recycling, fsync waits (the validator's default)"),
    "pr24596": (builtin.pr24596, "kern/24596: a large steady writer, an interactive reader "
                "and small-file activity on a 2004 disk (the default of `compare`)"),
}


def builtin_scenario(name: str) -> Scenario:
    entry = SCENARIOS.get(name)
    if entry is None:
        raise InputError(f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)}, "
                         "a .toml scenario file, fio:JOB.fio or strace:LOG")
    return entry[0]()
