"""The built-in scenario library. Each builder returns a Scenario; `SCENARIOS` lists them with
one line each (`vfslab scenarios`)."""

from __future__ import annotations

from collections.abc import Callable

from vfslab.errors import InputError
from vfslab.scenario import Scenario
from vfslab.scenarios import builtin

# Scenarios written in Python; the rest of the library is the .toml files beside this module.
SCENARIOS: dict[str, tuple[Callable[[], Scenario], str]] = {
    "protocol": (builtin.protocol, "every path of the mail: async metadata writes, I/O errors, "
                 "vnode recycling, fsync waits (the validator's default)"),
    "pr24596": (builtin.pr24596, "kern/24596: recent data rewritten in bursts through write(2) "
                "and mmap beside interactive readers on a 2004 desktop (the default of "
                "`compare`)"),
    "steadywriter": (builtin.steadywriter, "a steady 4 MB/s writer, interactive readers and "
                     "small saves on a 2004 desktop (pr24596 before the PR was modelled)"),
}


def all_names() -> list[str]:
    from vfslab.scenarios.library import library_files

    return sorted({*SCENARIOS, *library_files()})


def builtin_scenario(name: str) -> Scenario:
    from vfslab.scenarios.library import library_files
    from vfslab.scenarios.toml_file import load_toml

    entry = SCENARIOS.get(name)
    if entry is not None:
        return entry[0]()
    files = library_files()
    if name in files:
        return load_toml(str(files[name][0]))
    raise InputError(f"unknown scenario {name!r}: expected one of {', '.join(all_names())}, "
                     "a .toml scenario file, fio:JOB.fio or strace:LOG")
