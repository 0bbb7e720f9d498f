"""Find a scenario by what the user typed: a built-in name, a scenario .toml file, `fio:JOB`
or `strace:LOG`."""

from __future__ import annotations

from pathlib import Path

from vfslab.errors import InputError
from vfslab.scenario import Scenario


def load(spec: str) -> Scenario:
    if spec.startswith("fio:"):
        from vfslab.scenarios.external import from_fio

        return from_fio(spec[4:])
    if spec.startswith("strace:"):
        from vfslab.scenarios.external import from_strace

        return from_strace(spec[7:])
    if spec.endswith(".toml") or Path(spec).suffix == ".toml":
        from vfslab.scenarios.toml_file import load_toml

        return load_toml(spec)
    from vfslab.scenarios import all_names, builtin_scenario

    if spec in all_names():
        return builtin_scenario(spec)
    if Path(spec).exists():
        raise InputError("expected a scenario .toml file, or fio:JOB / strace:LOG", spec)
    return builtin_scenario(spec)
