"""Scenario files (TOML): the machine, the files that exist before the run, how long it runs,
and the processes, each a named pattern with parameters (see patterns.py), an inline fio job
file (`fio = '''...'''`) or an strace log (`strace = "path"`).

    name = "readwrite"
    description = "a sequential reader beside a streaming writer"
    duration = "20s"
    [machine]
    physmem_mb = 128
    [[setup]]
    path = "/in.dat"
    size = "256MiB"
    [[process]]
    name = "writer"
    pattern = "writer"
    path = "/out.dat"
    size = "512MiB"
    bs = "64KiB"
    rate = "8MiB/s"

Every error names the file, the line and what was expected.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from vfslab.errors import InputError, read_text
from vfslab.scenario import ProcessSpec, Scenario, SetupItem
from vfslab.scenarios.patterns import PATTERNS

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b?)\s*$", re.I)
_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|ms|s|m|h)?\s*$")
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DEC = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
       None: 10**9}


def parse_size(val: Any) -> int:
    """Bytes: 4096, "4k", "64KiB" (binary), "4MB" (decimal), "1GiB"."""
    if isinstance(val, int) and not isinstance(val, bool) and val >= 0:
        return val
    m = _SIZE.match(str(val))
    if not m:
        raise ValueError(f"expected a size like 4096, 64KiB or 4MB, got {val!r}")
    num, unit, suffix = m.group(1), m.group(2).lower(), m.group(3).lower()
    table = _DEC if suffix == "b" and unit else _MULT
    return int(float(num) * table[unit])


def parse_ns(val: Any) -> int:
    if isinstance(val, (int, float)) and not isinstance(val, bool) and val >= 0:
        if not math.isfinite(val) or val > 1e7:
            raise ValueError(f"expected a finite time of at most 1e7 s, got {val!r}")
        return int(val * 10**9)
    m = _TIME.match(str(val))
    if not m:
        raise ValueError(f"expected a duration like 200ms, 2s or 1m, got {val!r}")
    return int(float(m.group(1)) * _NS[m.group(2)])


def parse_rate(val: Any) -> float:
    text = str(val).strip()
    if text.lower().endswith("/s"):
        text = text[:-2]
    return float(parse_size(text))


def _line_of(text: str, key: str, after: int = 0) -> int:
    """The 1-based line where `key =` (or a [[key]] table) first appears after line `after`."""
    pat = re.compile(rf"^\s*(\[\[?\s*{re.escape(key)}\s*\]\]?|{re.escape(key)}\s*=)")
    for i, line in enumerate(text.splitlines()[after:], start=after + 1):
        if pat.match(line):
            return i
    return after


def _table_lines(text: str, name: str) -> list[int]:
    pat = re.compile(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]")
    return [i for i, line in enumerate(text.splitlines(), start=1) if pat.match(line)]


# parameters that must be more than 0 (a count of 0 files, a block of 0 bytes: nothing to run)
POSITIVE = frozenset({"count", "batch", "ndirs", "files_per_dir", "writes_per_txn",
                      "pages_per_round", "bs", "log_bs", "size"})


def _param(kind: str, val: Any) -> Any:
    if kind == "path":
        if not isinstance(val, str) or not val.startswith("/"):
            raise ValueError(f"expected an absolute path, got {val!r}")
        from vfslab.fs.ufs_layout import MAXNAMLEN

        for part in val.split("/"):
            if len(part.encode()) > MAXNAMLEN:
                raise ValueError(f"a name of {len(part.encode())} bytes in {val[:60]!r}...: "
                                 f"vfslab's FFS allows {MAXNAMLEN}")
        return val
    if kind == "size":
        return parse_size(val)
    if kind == "ns":
        return parse_ns(val)
    if kind == "rate":
        return parse_rate(val)
    if kind == "count":
        if isinstance(val, bool) or not isinstance(val, int) or val < 0:
            raise ValueError(f"expected a whole number, got {val!r}")
        return val
    if kind == "bool":
        if not isinstance(val, bool):
            raise ValueError(f"expected true or false, got {val!r}")
        return val
    if kind == "sizes":
        if not isinstance(val, list) or not val:
            raise ValueError(f"expected a list of sizes, got {val!r}")
        return [parse_size(v) for v in val]
    raise ValueError(f"unknown parameter kind {kind}")


def load_toml(path: str) -> Scenario:
    return parse_scenario(read_text(path, "scenario file"), path)


def parse_scenario(text: str, path: str) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        line = getattr(e, "lineno", 0) or (int(m.group(1)) if m else 0)
        raise InputError(f"not valid TOML: {e}", path, line) from None
    known = {"name", "description", "duration", "machine", "setup", "process"}
    for key in data:
        if key not in known:
            raise InputError(f"unknown key {key!r}; expected one of {', '.join(sorted(known))}",
                             path, _line_of(text, key))
    name = data.get("name", Path(path).stem)
    if not isinstance(name, str):
        raise InputError("name: expected a string", path, _line_of(text, "name"))
    try:
        duration = parse_ns(data.get("duration", "60s")) / 1e9
        if duration <= 0:
            raise ValueError(f"must be more than 0, got {data.get('duration')!r}")
    except ValueError as e:
        raise InputError(f"duration: {e}", path, _line_of(text, "duration")) from None
    machine = data.get("machine", {})
    if not isinstance(machine, dict):
        raise InputError("machine: expected a [machine] table", path, _line_of(text, "machine"))
    setup: list[SetupItem] = []
    for i, (item, line) in enumerate(zip(data.get("setup", []),
                                         _table_lines(text, "setup") or [0] * 999,
                                         strict=False)):
        if not isinstance(item, dict) or "path" not in item:
            raise InputError(f"setup #{i + 1}: expected a table with a path", path, line)
        try:
            spath = _param("path", item["path"])
            if item.get("dir", False):
                setup.append(SetupItem(spath, 0, True))
            else:
                setup.append(SetupItem(spath, parse_size(item.get("size", 0))))
        except ValueError as e:
            raise InputError(f"setup #{i + 1}: {e}", path, line) from None
    procs: list[ProcessSpec] = []
    warnings: list[str] = []
    plines = _table_lines(text, "process")
    for i, item in enumerate(data.get("process", [])):
        line = plines[i] if i < len(plines) else 0
        if not isinstance(item, dict):
            raise InputError(f"process #{i + 1}: expected a table", path, line)
        procs.extend(_process(item, i, path, line, text, warnings))
    if not procs:
        raise InputError("expected at least one [[process]]", path, 0)
    return Scenario(name, str(data.get("description", "")).strip(), procs, setup, duration,
                    dict(machine), warnings)


def _process(item: dict[str, Any], i: int, path: str, line: int, text: str,
             warnings: list[str]) -> list[ProcessSpec]:
    pname = str(item.get("name", f"p{i + 1}"))
    try:
        start = parse_ns(item.get("start", 0))
    except ValueError as e:
        raise InputError(f"process {pname}: start: {e}", path, line) from None
    if "fio" in item:
        from vfslab.scenarios.external import fio_processes

        return fio_processes(str(item["fio"]), f"{path}[process {pname}]", start, warnings)
    if "strace" in item:
        from vfslab.scenarios.external import strace_processes

        base = Path(path).parent / str(item["strace"])
        return strace_processes(str(base), start, warnings)
    pat = item.get("pattern")
    if pat not in PATTERNS:
        raise InputError(f"process {pname}: expected pattern = one of {', '.join(PATTERNS)}, "
                         f"or fio = '''job file''', or strace = \"log\"; got {pat!r}", path,
                         _line_of(text, "pattern", line) if "pattern" in item else line)
    fn, kinds = PATTERNS[pat]
    kwargs: dict[str, Any] = {}
    for key, val in item.items():
        if key in ("name", "pattern", "start"):
            continue
        kline = _line_of(text, key, line) or line
        if key not in kinds:
            raise InputError(f"process {pname}: pattern {pat} has no parameter {key!r}; "
                             f"expected {', '.join(kinds)}", path, kline)
        try:
            kwargs[key] = _param(kinds[key], val)
        except ValueError as e:
            raise InputError(f"process {pname}: {key}: {e}", path, kline) from None
        if key in POSITIVE and kwargs[key] <= 0:
            raise InputError(f"process {pname}: {key}: must be more than 0, got {val!r}", path,
                             kline)
    if "size" in kwargs and "bs" in kwargs and kwargs["size"] < kwargs["bs"]:
        raise InputError(f"process {pname}: size {kwargs['size']} is smaller than its block "
                         f"size bs = {kwargs['bs']}", path, line)
    try:
        body = fn(**kwargs)
    except TypeError as e:
        raise InputError(f"process {pname}: {e}", path, line) from None
    return [ProcessSpec(pname, body, start)]
