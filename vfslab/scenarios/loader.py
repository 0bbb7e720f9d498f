"""Find a scenario by what the user typed: a built-in name, a scenario .toml file, `fio:JOB`
or `strace:LOG`."""

from __future__ import annotations

from pathlib import Path

from vfslab.errors import InputError
from vfslab.scenario import Scenario


def load(spec: str, strict: bool = False, speed: float = 1.0, no_think: bool = False
         ) -> Scenario:
    """`strict` refuses fio options vfslab does not model; `speed` divides an strace
    replay's think times, `no_think` removes them."""
    if spec.startswith("fio:"):
        from vfslab.workload.fio import to_scenario as fio_scenario

        return fio_scenario(spec[4:], strict=strict)
    if spec.startswith("strace:"):
        from vfslab.workload.strace import to_scenario as strace_scenario

        if speed <= 0:
            raise InputError(f"--speed: expected a positive factor, got {speed}")
        return strace_scenario(spec[7:], speed=speed, no_think=no_think)
    if spec.endswith(".toml") or Path(spec).suffix == ".toml":
        from vfslab.scenarios.toml_file import load_toml

        return load_toml(spec)
    from vfslab.scenarios import all_names, builtin_scenario

    if spec in all_names():
        return builtin_scenario(spec)
    if Path(spec).exists():
        raise InputError("expected a scenario .toml file, or fio:JOB / strace:LOG", spec)
    return builtin_scenario(spec)
