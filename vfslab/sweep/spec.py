"""Sweep files: a grid and/or seeded random samples over policies, protocols, tunables,
scenarios, machines and seeds, expanded into run points (plain dicts, one per run).

    [sweep]
    scenario = ["pr24596"]          # names, .toml files, fio:JOB, strace:LOG
    duration = "30s"
    seeds = 3                       # or a list [0, 1, 2]
    samples = 0                     # random points drawn from [random] (seeded by `seed`)
    seed = 1

    [grid]
    policy = ["syncer", "trickle", "linux"]
    protocol = ["netbsd-2.0"]
    cpus = [1]
    "trickle.window" = [2, 5, 10]   # a policy's tunable varies only with that policy
    "machine.physmem_mb" = [128, 256]
    "machine.disk" = ["hdd", "ssd"]

    [random]                        # uniform ranges [low, high] (integers stay integers)
    "trickle.window" = [1.0, 20.0]
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import tomllib
from pathlib import Path
from typing import Any

from vfslab.commands.common import parse_duration_s
from vfslab.errors import InputError, read_text
from vfslab.plugins import canonical, policy_scopes
from vfslab.tunable import check_setting, setting_scopes

TOP = {"policy", "protocol", "cpus", "scenario", "seed"}


def run_id(point: dict[str, Any]) -> str:
    """A stable identity of a run: the hash of its parameters."""
    blob = json.dumps(point, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


def _line(text: str, key: str) -> int:
    pat = re.compile(rf'^\s*(\[\s*{re.escape(key)}\s*\]|"?{re.escape(key)}"?\s*=)')
    for i, ln in enumerate(text.splitlines(), start=1):
        if pat.match(ln):
            return i
    return 0


def _check_key(key: str, path: str, text: str, values: list[Any],
               scopes: dict[str, type]) -> None:
    if key in TOP:
        return
    scope, dot, name = key.partition(".")
    if scope in setting_scopes():
        for v in values:
            try:
                check_setting(key, v)
            except InputError as e:
                raise InputError(e.message, path, _line(text, key)) from None
        return
    if not dot or not name or scope not in (*scopes, "machine", "cost"):
        raise InputError(f"unknown sweep parameter {key!r}: expected policy, protocol, cpus, "
                         "scenario, seed, POLICY.tunable, machine.X or cost.X", path,
                         _line(text, key))
    if scope in scopes:
        _check_policy_values(scopes[scope], name, values, path, _line(text, key))


def _check_policy_values(cls: type, name: str, values: list[Any], path: str,
                         line: int) -> None:
    """A misspelled tunable or a bad value fails the sweep file now, with its line, rather
    than every run that uses it later."""
    parse = cls.parse_options  # type: ignore[attr-defined]
    for v in values:
        try:
            parse({name: v})
        except InputError as e:
            raise InputError(e.message, path, line) from None


def _is_file_spec(spec: str) -> bool:
    where, sep, _ = spec.rpartition(":")
    return bool(sep) and where.endswith(".py")


def _scope_name(spec: str) -> str:
    from vfslab.policy import policy_class

    return str(policy_class(spec).name)


def load(path: str) -> list[dict[str, Any]]:
    return expand(read_text(path, "sweep file"), path)


def expand(text: str, path: str = "sweep.toml") -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        raise InputError(f"not valid TOML: {e}", path, int(m.group(1)) if m else 0) from None
    for section in data:
        if section not in ("sweep", "grid", "random"):
            raise InputError(f"unknown section [{section}]: expected [sweep], [grid], [random]",
                             path, _line(text, section))
    sw = data.get("sweep", {})
    grid: dict[str, Any] = dict(data.get("grid", {}))
    rand: dict[str, Any] = dict(data.get("random", {}))
    scenarios = sw.get("scenario", ["stream"])
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if "scenario" in grid:
        scenarios = grid.pop("scenario")
    try:
        duration = parse_duration_s(sw.get("duration", "30s"), "duration")
    except InputError as e:
        raise InputError(e.message, path, _line(text, "duration")) from None
    seeds = sw.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise InputError("seeds: expected a count >= 1 or a list", path,
                             _line(text, "seeds"))
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise InputError("seeds: expected a count or a list of integers", path,
                         _line(text, "seeds"))
    policies = grid.get("policy", [sw.get("policy", "syncer")])
    if isinstance(policies, str):
        policies = [policies]
    if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
        raise InputError("policy: expected a list of policy names or specs", path,
                         _line(text, "policy"))
    # a file spec is taken relative to the sweep file, and made absolute for the workers
    here = Path(path).parent
    policies = [canonical(str(here / p) if _is_file_spec(p) and not Path(
        p.rpartition(":")[0]).is_absolute() else p) for p in policies]
    try:
        scopes = policy_scopes(policies)
    except InputError as e:
        raise InputError(f"policy: {e.message}", path, _line(text, "policy")) from None
    for key, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise InputError(f"{key}: expected a non-empty list of values", path,
                             _line(text, key))
        _check_key(key, path, text, vals, scopes)
    for key, rng in rand.items():
        if not (isinstance(rng, list) and len(rng) == 2 and all(
                isinstance(v, (int, float)) for v in rng) and rng[0] <= rng[1]):
            raise InputError(f"{key}: expected a range [low, high]", path, _line(text, key))
        _check_key(key, path, text, rng, scopes)
    grid.pop("policy", None)
    names = {p: _scope_name(p) for p in policies}
    POLICIES = tuple(scopes)
    base_keys = [k for k in grid if k.split(".")[0] not in POLICIES]
    points: list[dict[str, Any]] = []
    samples = int(sw.get("samples", 0))
    rnd = random.Random(f"sweep:{sw.get('seed', 0)}")
    for scenario in scenarios:
        for policy in policies:
            pol_keys = [k for k in grid if k.split(".")[0] == names[policy]]
            keys = base_keys + pol_keys
            combos = list(itertools.product(*[grid[k] for k in keys])) or [()]
            variants = [dict(zip(keys, c, strict=True)) for c in combos]
            for _ in range(samples):
                v = dict(rnd.choice(variants))
                for key, (lo, hi) in rand.items():
                    if key.split(".")[0] in POLICIES and key.split(".")[0] != names[policy]:
                        continue
                    v[key] = rnd.randint(lo, hi) if isinstance(lo, int) and \
                        isinstance(hi, int) else round(rnd.uniform(lo, hi), 6)
                variants.append(v)
            if samples:
                variants = variants[len(combos):]
            for v in variants:
                for seed in seeds:
                    point: dict[str, Any] = {"scenario": scenario, "policy": policy,
                                             "protocol": "netbsd-2.0", "cpus": 1,
                                             "duration_s": duration}
                    point.update(v)
                    point["seed"] = seed
                    points.append(point)
    return points
