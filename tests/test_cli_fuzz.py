"""Fuzzing the command line: random options (the commands' own, with valid and malformed
values, and stray tokens) end in a result or one clear error and exit status 2, never a
traceback or a hang. Runs are kept short by options appended last (click keeps the last), and
the commands run in a scratch directory since some write their output there.

`VFSLAB_CLI_FUZZ_EXAMPLES` raises the number of command lines tried."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vfslab.cli import COMMANDS, load, main

# bench measures for minutes; record runs the programs it is given
FUZZED = ["run", "compare", "check", "crashtest", "fsck", "scenarios", "sweep", "report"]
# appended last: short runs, one worker, no cluster
TAIL: dict[str, list[str]] = {
    "run": ["--duration", "0.03s"],
    "compare": ["--duration", "0.03s", "--no-out"],
    "check": ["--duration", "0.03s"],
    "crashtest": ["--duration", "0.05s", "--crashes", "1", "--per-run", "1", "--jobs", "1",
                  "--engine", "local"],
}
VALUES = ["", "0", "-1", "1", "2", "3.5", "1e9", "abc", "10ms", "-5ms", "nan", "inf", "2x",
          "trickle", "syncer", "linux", "netbsd-2.0", "biodoned", "splbio-always", "stream",
          "randfsync", "pr24596", "protocol", "fio:/nonexistent.fio", "strace:/nonexistent.log",
          "/nonexistent", "x=y", "trickle.window=2", "trickle.window=0", "trickle.hz=abc",
          "machine.physmem_mb=-3", "machine.disk=floppy", "machine.nosuch=1", "cost.ctxsw=abc",
          "syncer.syncdelay=1", "random", "local", "json", "--", "-", "=", "é", "\x00",
          # files in the scratch directory: bytes that are no text, a directory for a file
          "binary.bin", "strace:binary.bin", "fio:binary.bin", "adir", "adir/x/y"]


def _options(name: str) -> list[str]:
    cmd: click.Command = load(COMMANDS[name])
    out = []
    for p in cmd.params:
        if isinstance(p, click.Option):
            out.extend(o for o in p.opts if o not in ("--engine", "--jobs", "--workers",
                                                       "--address"))
    return out


OPTIONS = {name: _options(name) for name in FUZZED}


@st.composite
def command_line(draw: Any) -> list[str]:
    name = draw(st.sampled_from(FUZZED))
    args = [name]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        if kind <= 1 and OPTIONS[name]:
            args.append(draw(st.sampled_from(OPTIONS[name])))
            if kind == 0:
                args.append(draw(st.sampled_from(VALUES)))
        elif kind == 2:
            args.append(draw(st.sampled_from(VALUES)))
        else:
            args.append(draw(st.text(max_size=12)))
    return args + TAIL.get(name, [])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli-fuzz")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (d / "adir").mkdir()
    return d


@settings(max_examples=int(os.environ.get("VFSLAB_CLI_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(argv=command_line())
def test_any_command_line_ends_cleanly(argv: list[str], scratch: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(scratch)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(here)
    text = err.getvalue()
    assert "Traceback" not in text, f"{argv}: {text}"
    assert code in (0, 1, 2, 4, 8), f"{argv}: exit {code}: {text}"
    if code == 2:
        assert text.strip(), f"{argv}: exit 2 without a message"
        assert "vfslab:" in text or "Error:" in text, f"{argv}: {text}"
