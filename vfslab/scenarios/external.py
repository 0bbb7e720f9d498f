"""Scenarios from fio job files and strace logs (`vfslab run fio:JOB`, `strace:LOG`, and
`fio = '''...'''` / `strace = "LOG"` in a scenario file's [[process]] tables)."""

from __future__ import annotations

from vfslab.scenario import ProcessSpec, Scenario


def from_fio(path: str) -> Scenario:
    from vfslab.workload.fio import to_scenario

    return to_scenario(path)


def fio_processes(text: str, where: str, start_ns: int, warnings: list[str]
                  ) -> list[ProcessSpec]:
    from vfslab.workload.fio import to_scenario

    sc = to_scenario(where, text=text)
    warnings.extend(sc.warnings)
    for p in sc.processes:
        p.start_ns += start_ns
    return sc.processes


def from_strace(path: str) -> Scenario:
    from vfslab.workload.strace import to_scenario

    return to_scenario(path)


def strace_processes(path: str, start_ns: int, warnings: list[str]) -> list[ProcessSpec]:
    sc = from_strace(path)
    warnings.extend(sc.warnings)
    for p in sc.processes:
        p.start_ns += start_ns
    return sc.processes
