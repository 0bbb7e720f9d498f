"""Replays that do what the program did, or say exactly where they don't: strace's syntax
read right, processes and their descriptors as the log has them, the tree before the run
inferred, every outcome compared, replays run to completion, and real programs recorded
here replaying with no divergence."""

# ruff: noqa: E501  (strace lines are as long as strace writes them)
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sysharness import stat_size

from vfslab.cli import cli
from vfslab.errors import InputError
from vfslab.runner import RunConfig, run_scenario
from vfslab.workload.strace import parse, to_scenario
from vfslab.workload.strace_syntax import read_log

HAVE_STRACE = shutil.which("strace") is not None


def replay(log: str, **kernel: Any) -> Any:
    sc = to_scenario("t.log", textwrap.dedent(log))
    return run_scenario(RunConfig(scenario=sc, kernel={"disk": "ssd", **kernel}))


# ---- the syntax --------------------------------------------------------------------------
def test_pread_and_pwrite_offsets_are_their_fourth_argument() -> None:
    tr = parse("t.log", textwrap.dedent("""\
        9 10:00:00.000001 openat(AT_FDCWD</w>, "d.db", O_RDWR|O_CREAT, 0644) = 3</w/d.db>
        9 10:00:00.000002 pwrite64(3</w/d.db>, "SQLite format 3\\0"..., 4096, 0) = 4096
        9 10:00:00.000003 pread64(3</w/d.db>, "\\0\\0\\0\\1"..., 16, 24) = 16
        """))
    ops = tr.procs[9]
    assert [(op.kind, op.args[1:]) for op in ops[1:]] == [("write", (4096, 0)),
                                                         ("read", (16, 24))]


def test_paths_with_parentheses_quotes_angle_brackets_and_255_bytes_read_whole() -> None:
    long = "n" * 255
    tr = parse("t.log", textwrap.dedent(f"""\
        5 10:00:00.000001 openat(AT_FDCWD</t>, "a)b", O_RDONLY) = 3</t/a)b>
        5 10:00:00.000002 read(3</t/a)b>, "x", 131072) = 1
        5 10:00:00.000003 openat(AT_FDCWD</t>, "q\\"u>o<t,e", O_RDONLY) = 4</t/q\\"u\\76o\\74t,e>
        5 10:00:00.000004 read(4</t/q\\"u\\76o\\74t,e>, "y", 131072) = 1
        5 10:00:00.000005 openat(AT_FDCWD</t>, "{long}", O_RDONLY) = 5</t/{long}>
        5 10:00:00.000006 read(5</t/{long}>, "z", 131072) = 1
        """))
    assert sorted(tr.existing) == sorted(["/t/a)b", '/t/q"u>o<t,e', f"/t/{long}"])
    assert [op.kind for op in tr.procs[5]] == ["open", "read"] * 3
    r = replay(f"""\
        5 10:00:00.000001 openat(AT_FDCWD</t>, "a)b", O_RDONLY) = 3</t/a)b>
        5 10:00:00.000002 read(3</t/a)b>, "x", 131072) = 1
        5 10:00:00.000005 openat(AT_FDCWD</t>, "{long}", O_RDONLY) = 5</t/{long}>
        5 10:00:00.000006 read(5</t/{long}>, "z", 131072) = 1
        """)
    # FFS's names go to 255 bytes: the long one is made before the run and read as logged
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]["diverged_by_call"]
    assert not any("longer than" in w for w in r.scenario.warnings)


def test_epoch_and_relative_timestamps_are_read_and_mixing_them_is_refused() -> None:
    epoch = list(read_log("e.log", "1796165743.000000 close(3) = 0\n"
                                   "1796165743.250000 close(4) = 0\n"))
    assert [c.t_ns for c in epoch] == [1796165743 * 10**9, 1796165743 * 10**9 + 250_000_000]
    rel = list(read_log("r.log", "     0.000000 close(3) = 0\n     0.500000 close(4) = 0\n"
                                 "     0.250000 close(5) = 0\n"))
    assert [c.t_ns for c in rel] == [0, 500_000_000, 750_000_000]
    with pytest.raises(InputError) as ei:
        list(read_log("m.log", "10:00:00.000001 close(3) = 0\n0.5 close(4) = 0\n"))
    assert ei.value.line == 2 and "HH:MM:SS" in ei.value.message


def test_a_call_resumed_after_another_tasks_lines_is_one_call() -> None:
    calls = list(read_log("u.log", textwrap.dedent("""\
        7 10:00:00.000100 write(3</f>, "abc"..., 4096 <unfinished ...>
        8 10:00:00.000150 close(4</g>) = 0
        7 10:00:00.000900 <... write resumed>) = 4096 <0.000800>
        """)))
    w = next(c for c in calls if c.name == "write")
    assert (w.args, w.ret, w.t_ns % 10**9, w.dur_ns) == (
        ['3</f>', '"abc"...', "4096"], 4096, 100_000, 800_000)


# ---- processes ----------------------------------------------------------------------------
FORKED = """\
    1 10:00:00.000001 openat(AT_FDCWD</w>, "log", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3</w/log>
    1 10:00:00.000002 write(3</w/log>, "0123456789", 10) = 10
    1 10:00:00.000003 fork() = 2
    2 10:00:00.000004 write(3</w/log>, "child", 5) = 5
    2 10:00:00.000005 close(3</w/log>) = 0
    2 10:00:00.000006 +++ exited with 0 +++
    1 10:00:00.000007 wait4(2, NULL, 0, NULL) = 2
    1 10:00:00.000008 write(3</w/log>, "end", 3) = 3
    1 10:00:00.000009 close(3</w/log>) = 0
    """


def test_a_forked_child_writes_through_the_parents_open_file_and_its_offset() -> None:
    r = replay(FORKED)
    assert r.summary["replay"]["diverged"] == 0
    assert r.summary["bytes_written"] == 18
    # one open file, three writers' bytes in sequence: 18 bytes, not 10 overwritten by 5
    assert stat_size(r.kernel, "/replay/w/log") == 18


def test_threads_share_the_table_and_a_reused_pid_is_a_new_process() -> None:
    tr = parse("t.log", textwrap.dedent("""\
        1 10:00:00.000001 openat(AT_FDCWD</w>, "a", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3</w/a>
        1 10:00:00.000002 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0}, 88) = 2
        2 10:00:00.000003 write(3</w/a>, "t", 1) = 1
        2 10:00:00.000004 +++ exited with 0 +++
        1 10:00:00.000005 fork() = 3
        3 10:00:00.000006 close(3</w/a>) = 0
        3 10:00:00.000007 +++ exited with 0 +++
        3 10:00:00.000008 openat(AT_FDCWD</w>, "b", O_RDONLY) = 4</w/b>
        """))
    keys = sorted(tr.tasks)
    assert keys == [(1, 0), (2, 0), (3, 0), (3, 1)]
    assert tr.tasks[(2, 0)].fds is tr.tasks[(1, 0)].fds          # CLONE_FILES
    assert tr.tasks[(3, 0)].fds is not tr.tasks[(1, 0)].fds      # fork copies
    assert tr.tasks[(3, 1)].parent is None and 3 not in tr.tasks[(3, 1)].fds


# ---- the tree before the run -----------------------------------------------------------------
def test_what_the_log_creates_is_not_there_before_and_what_it_opens_as_a_directory_is_one(
        ) -> None:
    log = """\
        1 10:00:00.000001 mkdirat(AT_FDCWD</w>, "new", 0777) = 0
        1 10:00:00.000002 openat(AT_FDCWD</w>, "new/index.lock", O_RDWR|O_CREAT|O_EXCL, 0666) = 3</w/new/index.lock>
        1 10:00:00.000003 close(3</w/new/index.lock>) = 0
        1 10:00:00.000004 openat(AT_FDCWD</w>, "objects/pack", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 4</w/objects/pack>
        1 10:00:00.000005 getdents64(4</w/objects/pack>, 0x55 /* 2 entries */, 32768) = 48
        1 10:00:00.000006 getdents64(4</w/objects/pack>, 0x55 /* 0 entries */, 32768) = 0
        1 10:00:00.000007 close(4</w/objects/pack>) = 0
        1 10:00:00.000008 mkdir("/w/new", 0777) = -1 EEXIST (File exists)
        """
    sc = to_scenario("t.log", textwrap.dedent(log))
    setup = {s.path: s.is_dir for s in sc.setup}
    assert setup.get("/replay/w/objects/pack") is True
    assert "/replay/w/new" not in setup and "/replay/w/new/index.lock" not in setup
    r = replay(log)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]


def test_a_stat_of_the_empty_path_fails_without_making_the_working_directory_absent() -> None:
    # Python's start-up in a fresh venv stats "" (no AT_EMPTY_PATH): ENOENT, in both kernels
    log = """\
        1 10:00:00.000001 newfstatat(AT_FDCWD</w>, "", 0x7fff, 0) = -1 ENOENT (No such file or directory)
        1 10:00:00.000002 openat(AT_FDCWD</w>, "p.py", O_RDONLY|O_CLOEXEC) = 3</w/p.py>
        1 10:00:00.000003 read(3</w/p.py>, "x", 4096) = 1
        1 10:00:00.000004 close(3</w/p.py>) = 0
        """
    sc = to_scenario("t.log", textwrap.dedent(log))
    setup = {s.path: s.is_dir for s in sc.setup}
    assert setup.get("/replay/w") is True and setup.get("/replay/w/p.py") is False
    r = replay(log)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]


@pytest.mark.parametrize("log", [
    # a stat through the link first, then readlink: its target cut by -s (found replaying a
    # venv's python, whose readlink then failed with EINVAL: the replay had made a file)
    """\
    7 10:00:00.000001 newfstatat(AT_FDCWD</w>, "/w/env/bin/py", {st_mode=S_IFREG|0755, st_size=17584, ...}, 0) = 0
    7 10:00:00.000002 readlink("/w/env/bin/py", "/opt/python/versions/3.11.7/bin"..., 4096) = 40
    7 10:00:00.000003 openat(AT_FDCWD</w>, "/w/env/bin/py", O_RDONLY) = 3</opt/python/versions/3.11.7/bin/python3.11>
    7 10:00:00.000004 pread64(3</opt/python/versions/3.11.7/bin/python3.11>, ""..., 4096, 16384) = 1200
    """,
    # lstat says a link and no readlink ever shows its target
    """\
    7 10:00:00.000001 newfstatat(AT_FDCWD</w>, "/w/cur", {st_mode=S_IFLNK|0777, st_size=9, ...}, AT_SYMLINK_NOFOLLOW) = 0
    7 10:00:00.000002 newfstatat(AT_FDCWD</w>, "/w/cur", {st_mode=S_IFREG|0644, st_size=300, ...}, 0) = 0
    7 10:00:00.000003 openat(AT_FDCWD</w>, "/w/cur", O_RDONLY) = 3</w/v2.dat>
    7 10:00:00.000004 read(3</w/v2.dat>, ""..., 4096) = 300
    """,
    # a whole relative target: the file is made where it points, of the size seen through it
    """\
    7 10:00:00.000001 readlink("/w/cur", "v2.dat", 4096) = 6
    7 10:00:00.000002 newfstatat(AT_FDCWD</w>, "/w/cur", {st_mode=S_IFREG|0644, st_size=300, ...}, 0) = 0
    7 10:00:00.000003 lstat("/w/cur", {st_mode=S_IFLNK|0777, st_size=6, ...}) = 0
    """,
], ids=["stat-then-readlink-cut", "lstat-only", "whole-target"])
def test_a_link_found_before_the_run_is_made_a_link_to_what_the_log_saw_through_it(
        log: str) -> None:
    r = replay(log)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]["diverged_by_call"]
    assert r.summary["replay"]["replayed"] == len(textwrap.dedent(log).splitlines())
    # made as a link (not a regular file where stat saw one), to a target of the size seen
    made = {it.path: it for it in r.scenario.setup}
    link = next(it for p, it in made.items() if p.endswith(("/bin/py", "/w/cur")))
    assert link.link and link.size == 0
    target = link.link if link.link.startswith("/") else "/replay/w/" + link.link
    assert made[target].size in (17584, 300) and not made[target].is_dir


def test_a_tasks_working_directory_is_learnt_from_at_fdcwd_before_a_relative_chdir() -> None:
    """The log begins after the shell set the directory: only AT_FDCWD</w> shows it (found
    replaying `make -C g`: chdir("g") went to /g and the linker's chmod failed)."""
    r = replay("""\
        7 10:00:00.000001 openat(AT_FDCWD</w>, "/etc/conf", O_RDONLY) = 3</etc/conf>
        7 10:00:00.000002 chdir("g") = 0
        7 10:00:00.000003 openat(AT_FDCWD</w/g>, "hello", O_WRONLY|O_CREAT|O_EXCL, 0666) = 4</w/g/hello>
        7 10:00:00.000004 close(4</w/g/hello>) = 0
        7 10:00:00.000005 chmod("hello", 0755) = 0
        """)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]["diverged_by_call"]
    assert r.summary["replay"]["replayed"] == 5
    # the file chmod changed is the one the log created, not one made up at /g before
    made = {it.path for it in r.scenario.setup}
    assert "/replay/w/g" in made and not {"/replay/g", "/replay/g/hello"} & made


def test_copy_file_range_to_a_file_open_for_appending_is_refused_as_linux_refuses_it() -> None:
    """cat's `>>`: EBADF, then read and write (the replay's copy, a read and a write, took
    it: 0 bytes where the log had EBADF)."""
    r = replay("""\
        7 10:00:00.000001 openat(AT_FDCWD</w>, "out", O_WRONLY|O_CREAT|O_APPEND, 0666) = 1</w/out>
        7 10:00:00.000002 openat(AT_FDCWD</w>, "in", O_RDONLY) = 3</w/in>
        7 10:00:00.000003 copy_file_range(3</w/in>, NULL, 1</w/out>, NULL, 9223372035781033984, 0) = -1 EBADF (Bad file descriptor)
        7 10:00:00.000004 read(3</w/in>, "hi\\n", 131072) = 3
        7 10:00:00.000005 write(1</w/out>, "hi\\n", 3) = 3
        """)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]["diverged_by_call"]
    assert r.summary["bytes_written"] == 3


def test_a_new_dangling_link_is_changed_and_checked_itself_as_gnu_tar_does() -> None:
    """tar x of a link: symlinkat, then utimensat and fchownat with AT_SYMLINK_NOFOLLOW
    (lutimes, lchown) and an O_PATH|O_NOFOLLOW handle to fstat; each was ENOENT in the
    replay, which followed the link to a target not extracted yet."""
    r = replay("""\
        7 10:00:00.000001 openat(AT_FDCWD</w>, "x", O_RDONLY|O_DIRECTORY) = 4</w/x>
        7 10:00:00.000002 mkdirat(4</w/x>, "src", 0700) = 0
        7 10:00:00.000003 symlinkat("sub/f1", 4</w/x>, "src/l1") = 0
        7 10:00:00.000004 utimensat(4</w/x>, "src/l1", [UTIME_OMIT, {tv_sec=1796665252, tv_nsec=0}], AT_SYMLINK_NOFOLLOW) = 0
        7 10:00:00.000005 fchownat(4</w/x>, "src/l1", 0, 0, AT_SYMLINK_NOFOLLOW) = 0
        7 10:00:00.000006 openat(4</w/x>, "src/l1", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_PATH) = 5</w/x/src/l1>
        7 10:00:00.000007 newfstatat(5</w/x/src/l1>, "", {st_mode=S_IFLNK|0777, st_size=6, ...}, AT_EMPTY_PATH) = 0
        7 10:00:00.000008 close(5</w/x/src/l1>) = 0
        7 10:00:00.000009 utimensat(4</w/x>, "src/l1", [UTIME_OMIT, {tv_sec=1, tv_nsec=0}], 0) = -1 ENOENT (No such file or directory)
        """)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]["diverged_by_call"]
    assert r.summary["replay"]["replayed"] == 9


def test_descriptors_open_before_the_log_began_are_opened_when_the_task_starts() -> None:
    """`prog < in > out 2>&1` under `vfslab record`: the shell opened them before strace's
    child began (found replaying `tee out < in`: every read of stdin was EBADF)."""
    r = replay("""\
        7 10:00:00.000001 read(0</w/in>, "bye\\n", 8192) = 4
        7 10:00:00.000002 write(1</w/out>, "bye\\n", 4) = 4
        7 10:00:00.000003 write(2</w/out>, "err\\n", 4) = 4
        7 10:00:00.000004 read(0</w/in>, "", 8192) = 0
        7 10:00:00.000005 close(0</w/in>) = 0
        7 10:00:00.000006 close(1</w/out>) = 0
        7 10:00:00.000007 close(2</w/out>) = 0
        """)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]["diverged_by_call"]
    assert r.summary["bytes_written"] == 8
    # one open file for the two descriptors of /w/out: the second write lands after the first
    assert stat_size(r.kernel, "/replay/w/out") == 8


def test_a_utf8_name_keeps_its_own_bytes_in_the_replay() -> None:
    """100 accented letters, 200 bytes of UTF-8: as Latin-1 characters they were 400 bytes
    in the kernel's UTF-8, past FFS's 255, and the create failed with ENAMETOOLONG."""
    name = "\\303\\251" * 100
    r = replay(f"""\
        7 10:00:00.000001 openat(AT_FDCWD</w>, "{name}", O_WRONLY|O_CREAT|O_EXCL, 0666) = 3</w/{name}>
        7 10:00:00.000002 write(3</w/{name}>, "x", 1) = 1
        7 10:00:00.000003 close(3</w/{name}>) = 0
        """)
    assert r.summary["replay"]["diverged"] == 0, r.summary["replay"]["diverged_by_call"]
    assert stat_size(r.kernel, "/replay/w/" + "\u00e9" * 100) == 1


# ---- outcomes and completion ----------------------------------------------------------------
def test_a_call_whose_outcome_differs_is_counted_with_its_line() -> None:
    r = replay("""\
        1 10:00:00.000001 openat(AT_FDCWD</w>, "a", O_WRONLY|O_CREAT|O_EXCL, 0644) = 3</w/a>
        1 10:00:00.000002 close(3</w/a>) = 0
        1 10:00:00.000003 unlink("/w/a") = 0
        1 10:00:00.000004 unlink("/w/a") = 0
        """)
    rp = r.summary["replay"]
    assert rp["diverged"] == 1
    assert rp["diverged_by_call"] == {"unlink": {"ENOENT (log: 0)": {"count": 1,
                                                                     "first_lines": [4]}}}


def test_a_replay_runs_until_its_processes_exit_and_says_when_the_cap_cut_it() -> None:
    log = """\
        1 10:00:00.000000 openat(AT_FDCWD</w>, "a", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3</w/a>
        1 10:00:04.000000 write(3</w/a>, "x", 1) = 1
        1 10:00:09.000000 close(3</w/a>) = 0
        """
    r = replay(log)
    rp = r.summary["replay"]
    assert not rp["cut"] and rp["replayed"] == 3
    assert 9.0 <= r.summary["emulated_s"] < 9.5
    sc = to_scenario("t.log", textwrap.dedent(log))
    cut = run_scenario(RunConfig(scenario=sc, duration_s=5, kernel={"disk": "ssd"}))
    rp = cut.summary["replay"]
    assert rp["cut"] and rp["replayed"] == 2 and rp["unfinished_processes"] == ["pid1"]


def test_strict_makes_a_divergence_an_error_exit(tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    log.write_text('1 10:00:00.000001 unlink("/w/a") = 0\n'
                   '1 10:00:00.000002 unlink("/w/a") = 0\n')
    loose = CliRunner().invoke(cli, ["run", f"strace:{log}"])
    assert loose.exit_code == 0 and "diverged from the log" in loose.output
    strict = CliRunner().invoke(cli, ["run", f"strace:{log}", "--strict"])
    assert strict.exit_code == 1 and "1 calls diverged" in strict.output


# ---- real programs, recorded here ---------------------------------------------------------------
THREADED = """
import os, threading
fd = os.open("out.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
def w():
    for _ in range(64):
        os.write(fd, b"x" * 8192)
ts = [threading.Thread(target=w) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
os.fsync(fd)
os.close(fd)
"""
FORKING = """
import os
fd = os.open("log.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
pids = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        for j in range(50):
            os.write(fd, b"line %d %d\\n" % (i, j))
        os.fsync(fd)
        os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
os.write(fd, b"done\\n")
os.close(fd)
"""
MMAPPER = """
import mmap, os
fd = os.open("data.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
for i in range(0, 1 << 20, 4096):
    m[i:i + 8] = b"abcdefgh"
m.flush()
m.close()
os.close(fd)
t = os.open("cfg.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(t, b"key=value\\n" * 100)
os.fsync(t)
os.close(t)
os.rename("cfg.tmp", "cfg")
"""


def _program(name: str, work: Path) -> list[str]:
    def tree() -> None:
        (work / "src" / "sub").mkdir(parents=True)
        for i in range(4):
            (work / "src" / "sub" / f"f{i}").write_bytes(bytes(range(256)) * (40 * (i + 1)))

    py = sys.executable
    if name == "tar-extract":
        tree()
        subprocess.run(["tar", "cf", "a.tar", "src"], cwd=work, check=True)
        shutil.rmtree(work / "src")
        return ["tar", "xf", "a.tar"]
    if name == "tar-create":
        tree()
        return ["tar", "cf", "b.tar", "src"]
    if name == "git":
        for i in range(3):
            (work / f"file{i}.txt").write_text("hello\n" * (i + 1) * 100)
        return ["sh", "-c", "git init -q && git add . && "
                "git -c user.email=a@b -c user.name=a commit -q -m x"]
    if name == "cp-r":
        tree()
        return ["cp", "-r", "src", "dst"]
    if name == "sqlite3-journal":
        return ["sqlite3", "t.db", "create table t(x); insert into t values(1); begin; "
                "insert into t values(2); insert into t values(3); commit;"]
    if name == "sqlite3-wal":
        return ["sqlite3", "w.db", "pragma journal_mode=wal; create table t(x); "
                "insert into t values(1); begin; insert into t values(2); commit;"]
    if name == "dd-direct":
        return ["dd", "if=/dev/zero", "of=out.bin", "bs=64k", "count=32", "oflag=direct",
                "conv=fsync"]
    script = {"threads": THREADED, "fork": FORKING, "mmap": MMAPPER}[name]
    (work / "p.py").write_text(script)
    return [py, "p.py"]


def _joined(text: str) -> list[str]:
    """The log's lines with each '<unfinished ...>' call joined to its '<... resumed>'."""
    out: list[str] = []
    pending: dict[str, str] = {}
    for line in text.splitlines():
        pid = line.split(" ", 1)[0]
        if line.endswith("<unfinished ...>"):
            pending[pid] = line[:-len("<unfinished ...>")].rstrip()
            continue
        m = re.match(r"^\S+\s+\S+\s+<\.\.\. \w+ resumed>(.*)$", line)
        if m and pid in pending:
            line = pending.pop(pid) + m.group(1)
        out.append(line)
    return out


def _from_log(text: str, work: Path) -> tuple[int, int]:
    """Bytes written to the work tree's files and the fsync/fdatasync/msync count, read
    straight from the log (not through vfslab's reader)."""
    written = syncs = 0
    w = re.escape(str(work))
    for line in _joined(text):
        m = re.search(rf" (?:write|pwrite64|writev|pwritev)\(\d+<{w}[^>]*>.*\) = (\d+)", line)
        if m:
            written += int(m.group(1))
        m = re.search(rf" (?:copy_file_range|sendfile)\(.*\d+<{w}[^>]*>.*\) = (\d+)", line)
        if m and "copy_file_range" in line:
            written += int(m.group(1))
        if re.search(rf" f(?:data)?sync\(\d+<{w}[^>]*>\) = 0", line) or \
                re.search(r" msync\(0x[0-9a-f]+, \d+, MS_SYNC\) = 0", line):
            syncs += 1
        if re.search(r" mmap\(NULL, (\d+), PROT_READ\|PROT_WRITE, MAP_SHARED, \d+<" + w, line):
            written += int(re.search(r"mmap\(NULL, (\d+)", line).group(1))  # type: ignore[union-attr]
    return written, syncs


PROGRAMS = ["tar-extract", "tar-create", "git", "cp-r", "sqlite3-journal", "sqlite3-wal",
            "threads", "fork", "dd-direct", "mmap"]


@pytest.mark.skipif(not HAVE_STRACE, reason="strace is not installed")
@pytest.mark.parametrize("program", PROGRAMS)
def test_a_real_programs_replay_matches_its_log(tmp_path: Path, program: str) -> None:
    work = tmp_path / "w"
    work.mkdir()
    cmd = _program(program, work)
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} is not installed")
    log = tmp_path / "p.log"
    r = subprocess.run(["strace", "-f", "-tt", "-T", "-y", "-o", str(log), *cmd], cwd=work,
                       capture_output=True, check=False, env={**os.environ, "LC_ALL": "C"})
    if r.returncode != 0 or not log.exists() or log.stat().st_size == 0:
        pytest.skip(f"strace could not trace {program} here: {r.stderr[-200:]!r}")
    text = log.read_text(errors="replace")
    written, syncs = _from_log(text, work)
    sc = to_scenario(str(log))
    res = run_scenario(RunConfig(scenario=sc))        # the 2004 disk: slower than the host's
    assert res.panic is None
    rp = res.summary["replay"]
    assert not rp["cut"]
    assert rp["diverged"] == 0, rp["diverged_by_call"]
    assert rp["not_modelled"] == {}
    assert res.summary["bytes_written"] == written
    assert res.summary["latency"].get("fsync", {"count": 0})["count"] == syncs
    for path in sc.notes["created"]:
        host = Path(path)
        if host.is_file() and str(host).startswith(str(work)):
            assert stat_size(res.kernel, "/replay" + path) == host.stat().st_size, path


def test_a_child_that_runs_before_its_clone_returns_is_still_its_parents_child() -> None:
    tr = parse("t.log", textwrap.dedent("""\
        1 10:00:00.000001 openat(AT_FDCWD</w>, "a", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3</w/a>
        1 10:00:00.000002 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>
        2 10:00:00.000003 write(3</w/a>, "c", 1) = 1
        1 10:00:00.000004 <... clone resumed>, child_tidptr=0x7f) = 2
        1 10:00:00.000005 write(3</w/a>, "p", 1) = 1
        """))
    assert sorted(tr.tasks) == [(1, 0), (2, 0)]
    child = tr.tasks[(2, 0)]
    assert child.parent == (1, 0) and [op.kind for op in child.ops] == ["write"]
    assert [op.kind for op in tr.tasks[(1, 0)].ops] == ["open", "fork", "write"]
    r = replay("""\
        1 10:00:00.000001 openat(AT_FDCWD</w>, "a", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3</w/a>
        1 10:00:00.000002 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>
        2 10:00:00.000003 write(3</w/a>, "c", 1) = 1
        1 10:00:00.000004 <... clone resumed>, child_tidptr=0x7f) = 2
        1 10:00:00.000005 write(3</w/a>, "p", 1) = 1
        """)
    assert r.summary["replay"]["diverged"] == 0 and r.summary["bytes_written"] == 2
