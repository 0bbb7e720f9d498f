"""Options shared by the commands that run scenarios, and their parsing: `--set NAME=VALUE`
for policy tunables (`trickle.window=10s`), machine settings (`machine.physmem_mb=128`) and
costs (`cost.ctxsw=2000`), or a TOML file of the same."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vfslab.errors import InputError, read_text
from vfslab.tunable import check_setting, setting_scopes

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|ms|s|m|h)?\s*$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def output_dir(path: str, option: str = "--out") -> None:
    """Make the output directory before any run, so that a path the host refuses is said at
    once, not after the runs it would have held."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{option} {path}: cannot make the directory: {e.strerror}") from None


def parse_duration_s(text: str, where: str = "duration") -> float:
    m = _DURATION.match(str(text))
    if not m:
        raise InputError(f"{where}: expected a duration like 30, 2.5s, 500ms or 2m, got {text!r}")
    s = float(m.group(1)) * _UNITS[m.group(2)]
    if not 0 < s <= 1e7:
        raise InputError(f"{where}: must be more than 0 and at most 1e7 s, got {text!r}")
    return s


def parse_value(text: str) -> Any:
    t = text.strip()
    if t.lower() in ("true", "yes", "on"):
        return True
    if t.lower() in ("false", "no", "off"):
        return False
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        pass
    m = _DURATION.match(t)
    if m and m.group(2):
        return float(m.group(1)) * _UNITS[m.group(2)]
    return t


def parse_sets(items: tuple[str, ...], config: str | None = None
               ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Split `--set` items (and a TOML file) into (policy options by policy, machine, cost)."""
    policy: dict[str, dict[str, Any]] = {}
    machine: dict[str, Any] = {}
    cost: dict[str, Any] = {}
    pairs: list[tuple[str, Any, str]] = []
    if config:
        try:
            data = tomllib.loads(read_text(config, "settings file"))
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"not valid TOML: {e}", config, getattr(e, "lineno", 0)) from None
        for section, table in data.items():
            if not isinstance(table, dict):
                raise InputError(f"expected a [section] of settings, got {section} = {table!r}",
                                 config)
            for key, val in table.items():
                pairs.append((f"{section}.{key}", val, config))
    for item in items:
        if "=" not in item:
            raise InputError(f"--set: expected NAME=VALUE (e.g. trickle.window=10s), got {item!r}")
        key, _, val = item.partition("=")
        pairs.append((key.strip(), parse_value(val), "--set"))
    for key, val, src in pairs:
        scope, dot, name = key.partition(".")
        if not dot or not name:
            raise InputError(f"{src}: expected SCOPE.NAME (policy.option, machine.x, cost.x), "
                             f"got {key!r}")
        if scope == "machine":
            machine[name] = val
        elif scope in setting_scopes():
            machine[key] = check_setting(key, val)     # a kernel setting (ffs.write_behind)
        elif scope == "cost":
            cost[name] = val
        else:
            policy.setdefault(scope, {})[name] = val
    return policy, machine, cost


def _trace_file(_ctx: click.Context, _param: click.Parameter, value: str | None
                ) -> str | None:
    if value is not None and not Path(value).name:
        # "" or "dir/": no file name to write (and compare's per-run names need a stem)
        raise InputError(f"--trace: expected a file name, got {value!r}")
    return value


def trace_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--trace FILE: a Perfetto timeline of the run (vfslab/trace/)."""
    return click.option(
        "--trace", "trace", type=click.Path(dir_okay=False), default=None, metavar="FILE",
        callback=_trace_file,
        help="write a Perfetto trace of the run to FILE (open it at ui.perfetto.dev)")(f)


def scenario_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options every scenario-running command takes."""
    opts = [
        click.option("--seed", type=int, default=0, show_default=True, help="random seed"),
        click.option("--duration", "duration", default=None,
                     help="emulated run time (e.g. 30s, 2m); default: the scenario's"),
        click.option("--cpus", type=click.IntRange(1, 64), default=1, show_default=True),
        click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                     help="policy tunable (trickle.window=10s), machine.X or cost.X"),
        click.option("--config", type=click.Path(dir_okay=False), default=None,
                     help="TOML file of settings ([trickle] window = 10, [machine] ...)"),
        click.option("--irq-stress", type=click.FloatRange(0, 1), default=0.0,
                     help="probability that an interrupt point takes the next interrupt early"),
        click.option("--invariants", is_flag=True, help="check the stack's invariants as it runs"),
        click.option("--strict", is_flag=True,
                     help="fio: refuse options vfslab does not model (default: warn); "
                          "strace: a replay that diverges from its log or is cut short is "
                          "an error (exit 1)"),
        click.option("--speed", type=float, default=1.0, show_default=True,
                     help="strace: replay N times faster (think times divided by N)"),
        click.option("--no-think", is_flag=True, help="strace: replay without think times"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f
