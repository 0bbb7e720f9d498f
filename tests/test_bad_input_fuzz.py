"""Fuzzing the readers: whatever the text, a reader returns or raises one InputError (file,
line, what was expected), never another exception. Inputs are valid files with lines
dropped, duplicated, cut short or given stray tokens, and plain random text."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vfslab.errors import InputError
from vfslab.scenarios.toml_file import parse_scenario
from vfslab.sweep.spec import expand
from vfslab.workload import fio, strace

FIO = """[global]
ioengine=psync
bs=4k
size=8m
directory=/data
[writer]
rw=randwrite
fsync=16
runtime=2
[reader]
rw=read
bssplit=4k/50:64k/50
thinktime=100
"""

STRACE = """\
100 12:00:00.000100 openat(AT_FDCWD, "/tmp/x", O_WRONLY|O_CREAT, 0644) = 3</tmp/x> <0.000020>
100 12:00:00.000200 write(3</tmp/x>, "hello\\n", 6) = 6 <0.000010>
100 12:00:00.000300 pwrite64(3</tmp/x>, "ab", 2, 4096) = 2 <0.000010>
100 12:00:00.000400 fsync(3</tmp/x>) = 0 <0.001000>
101 12:00:00.000500 openat(AT_FDCWD, "/tmp/x", O_RDONLY) = 4</tmp/x> <0.000010>
101 12:00:00.000600 read(4</tmp/x>, "hello\\n", 4096) = 6 <0.000010>
100 12:00:00.000700 close(3</tmp/x>) = 0 <0.000005>
101 12:00:00.000800 unlink("/tmp/x") = 0 <0.000010>
"""

SCENARIO = """name = "fuzz"
duration = "2s"
[machine]
physmem_mb = 64
[[setup]]
path = "/a"
size = "1MiB"
[[process]]
name = "w"
pattern = "writer"
path = "/b"
size = "1MiB"
bs = "64KiB"
rate = "8MiB/s"
[[process]]
name = "r"
pattern = "reader"
path = "/a"
size = "1MiB"
bs = "64KiB"
think = "1ms"
"""

SWEEP = """[sweep]
scenario = ["stream"]
duration = "2s"
seeds = 2
[grid]
policy = ["trickle", "syncer"]
"trickle.window" = [1, 5]
[random]
"machine.physmem_mb" = [64, 128]
"""

TOKENS = ["=", "[", "]", "\"", "'", "(", ")", ",", "${X}", "-1", "0", "1e99", "k", "%", ":",
          "/", "\\", "<", ">", "...", "=?", "nan", "\x00", "é", " ", "\t", "#", "+++"]


@st.composite
def mutated(draw: Any, base: str) -> str:
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "cut", "insert", "swap"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
        elif op == "insert":
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + draw(st.sampled_from(TOKENS)) + lines[i][j:]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def test_the_bases_are_valid() -> None:
    """Mutations start from files that read cleanly, so every error is the mutation's."""
    fio.to_scenario("job.fio", text=FIO, env={})
    strace.to_scenario("app.log", text=STRACE)
    parse_scenario(SCENARIO, "my.toml")
    assert len(expand(SWEEP, "sweep.toml")) == 6


def _only_input_errors(read: Callable[[str], Any], text: str) -> None:
    try:
        read(text)
    except InputError as e:
        assert e.file, f"an InputError without the file it is about: {e}"


FUZZ = settings(max_examples=int(os.environ.get("VFSLAB_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(mutated(FIO), st.text(max_size=300)))
def test_fio_reader(text: str) -> None:
    _only_input_errors(lambda t: fio.to_scenario("job.fio", text=t, env={}), text)


@FUZZ
@given(st.one_of(mutated(STRACE), st.text(max_size=300)))
def test_strace_reader(text: str) -> None:
    _only_input_errors(lambda t: strace.to_scenario("app.log", text=t), text)


@FUZZ
@given(st.one_of(mutated(SCENARIO), st.text(max_size=300)))
def test_scenario_file_reader(text: str) -> None:
    _only_input_errors(lambda t: parse_scenario(t, "my.toml"), text)


@FUZZ
@given(st.one_of(mutated(SWEEP), st.text(max_size=300)))
def test_sweep_file_reader(text: str) -> None:
    _only_input_errors(lambda t: expand(t, "sweep.toml"), text)
