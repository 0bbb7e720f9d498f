"""strace logs: the reader's syntax, and replays of real programs recorded here (tar, dd,
sqlite3, git) checked against their logs: files created, bytes written, fsync count."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sysharness import stat_size

from vfslab.errors import InputError
from vfslab.runner import RunConfig, run_scenario
from vfslab.workload.strace import parse, split_args, to_scenario, unescape

HAVE_STRACE = shutil.which("strace") is not None


def test_unescape_and_split() -> None:
    assert unescape(r"a\"b\n\x41\101\\") == 'a"b\nAA\\'
    assert split_args('3</x, y>, "a, \\"b", {st_size=5, x=[1, 2]}, 7') == \
        ["3</x, y>", '"a, \\"b"', "{st_size=5, x=[1, 2]}", "7"]


def test_formats_unfinished_resumed_and_failures() -> None:
    log = """\
100 10:00:00.000000 openat(AT_FDCWD</w>, "f", O_WRONLY|O_CREAT, 0644) = 3</w/f> <0.000010>
100 10:00:00.000100 write(3</w/f>, "abc"..., 4096 <unfinished ...>
101 10:00:00.000150 stat("/w/old", {st_mode=S_IFREG|0644, st_size=9999, ...}) = 0
100 10:00:00.000200 <... write resumed>) = 4096 <0.000100>
101 10:00:00.000300 openat(AT_FDCWD, "/w/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
100 10:00:00.000400 fsync(3</w/f>) = 0 <0.001000>
100 10:00:00.002000 close(3</w/f>) = 0
101 10:00:00.003000 +++ exited with 0 +++
"""
    tr = parse("t.log", log)
    assert [op.kind for op in tr.procs[100]] == ["open", "write", "fsync", "close"]
    assert tr.existing == {"/w/old": 9999} and tr.created == {"/w/f"}
    assert tr.failed == {"openat": 1}
    sc = to_scenario("t.log", log)
    assert {s.path: s.size for s in sc.setup}["/replay/w/old"] == 9999


def test_logs_without_pids_times_or_decorations() -> None:
    log = 'open("/a", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3\nwrite(3, "x", 1) = 1\nclose(3) = 0\n'
    tr = parse("t.log", log)
    assert [op.kind for op in tr.procs[0]] == ["open", "write", "close"]


@pytest.mark.parametrize("line,words", [
    ("100 10:00:00.0 write(3</f>, \"x\", 1", "= RESULT"),
    ("100 10:00:00.0 <... write resumed>) = 1", "resumed"),
    ("100 10:00:00.0 !!!", "expected NAME(ARGS)"),
    ('100 10:00:00.0 write(3</f>, "unterminated, 1) = 1', "unterminated"),
])
def test_malformed_lines_name_the_line(line: str, words: str) -> None:
    with pytest.raises(InputError) as ei:
        parse("bad.log", "100 10:00:00.0 close(9</f>) = 0\n" + line + "\n")
    assert ei.value.file == "bad.log" and ei.value.line == 2 and words in ei.value.message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_is_an_input_error_never_a_crash(text: str) -> None:
    with contextlib.suppress(InputError):
        parse("fuzz.log", text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_unescape_never_crashes(text: str) -> None:
    assert isinstance(unescape(text), str)


def test_a_ten_thousand_line_log_parses(capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['1 10:00:00.000000 openat(AT_FDCWD, "/big", O_RDWR|O_CREAT, 0644) = 3</big>']
    for i in range(10_000):
        lines.append(f'1 10:00:{i // 1000:02d}.{i % 1000:06d} pwrite64(3</big>, "..."..., '
                     f'4096, {i * 4096}) = 4096 <0.000005>')
    t0 = time.perf_counter()
    sc = to_scenario("big.log", "\n".join(lines))
    parse_s = time.perf_counter() - t0
    res = run_scenario(RunConfig(scenario=sc, kernel={"disk": "ssd"}))
    with capsys.disabled():
        print(f"\n10,001-line log: parsed in {parse_s:.3f} s, replayed in {res.wall_s:.3f} s")
    assert res.summary["bytes_written"] == 10_000 * 4096


def _record(tmp: Path, name: str, cmd: list[str], cwd: Path) -> Path:
    log = tmp / f"{name}.log"
    r = subprocess.run(["strace", "-f", "-tt", "-T", "-y", "-o", str(log), *cmd], cwd=cwd,
                       capture_output=True, check=False)
    if r.returncode != 0 or not log.exists() or log.stat().st_size == 0:
        pytest.skip(f"strace could not trace {name} here: {r.stderr[-200:]!r}")
    return log


def _from_log(log: Path) -> tuple[dict[str, int], int]:
    """Bytes written per regular file and the fsync count, read straight from the log."""
    written: dict[str, int] = defaultdict(int)
    fsyncs = 0
    for line in log.read_text(errors="replace").splitlines():
        m = re.search(r" (?:write|pwrite64|writev|pwritev)\(\d+<(/[^>]*)>.*\) = (\d+)", line)
        if m and not m.group(1).startswith(("/dev", "/proc")):
            written[m.group(1)] += int(m.group(2))
        if re.search(r" f(?:data)?sync\(\d+</[^>]*>\) = 0", line):
            fsyncs += 1
    return written, fsyncs


@pytest.mark.skipif(not HAVE_STRACE, reason="strace is not installed")
@pytest.mark.parametrize("program", ["tar", "dd", "sqlite3", "git"])
def test_replays_of_real_programs_match_their_logs(tmp_path: Path, program: str) -> None:
    work = tmp_path / "w"
    work.mkdir()
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
    if program == "tar":
        src = work / "src"
        (src / "sub").mkdir(parents=True)
        for i in range(4):
            (src / "sub" / f"f{i}").write_bytes(bytes(range(256)) * (40 * (i + 1)))
        subprocess.run(["tar", "cf", "a.tar", "src"], cwd=work, check=True)
        shutil.rmtree(src)
        cmd = ["tar", "xf", "a.tar"]
    elif program == "dd":
        cmd = ["dd", "if=/dev/zero", "of=out.bin", "bs=64k", "count=64", "conv=fsync"]
    elif program == "sqlite3":
        cmd = ["sqlite3", "t.db", "create table t(x); insert into t values(1); "
               "begin; insert into t values(2); insert into t values(3); commit;"]
    else:
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        for i in range(3):
            (work / f"file{i}.txt").write_text("hello\n" * (i + 1) * 100)
        subprocess.run(["git", "add", "."], cwd=work, check=True)
        cmd = ["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "x"]
    log = _record(tmp_path, program, cmd, work)
    expect_written, expect_fsyncs = _from_log(log)
    sc = to_scenario(str(log))
    res = run_scenario(RunConfig(scenario=sc, kernel={"disk": "ssd"}))
    assert res.panic is None
    s = res.summary
    assert s["bytes_written"] == sum(expect_written.values())
    assert s["latency"].get("fsync", {"count": 0})["count"] == expect_fsyncs
    # every file the program created and left behind exists with its size
    fs = res.kernel
    for path in sc.notes["created"]:
        host = Path(path)
        if host.exists() and host.is_file() and str(host).startswith(str(work)):
            size = stat_size(fs, "/replay" + path)
            assert size == host.stat().st_size, path
