"""strace logs as scenarios: what a real program did (`strace -f -tt -T -y`; the reader's
syntax is strace_syntax.py), replayed through vfslab's system calls with its processes, its
order, its think times and its outcomes, and every place the replay differs said.

- **Processes as the log has them**: fork and vfork make a child with a copy of the parent's
  descriptor table (the same open files, so shared offsets) and directory; clone and clone3
  share the table with CLONE_FILES and the directory with CLONE_FS (a thread shares both);
  the replay forks at the same point (kern_fork.fork1). A pid seen again after its task
  exited is a new task. Each task's relative paths resolve against its directory, `*at()`
  paths against the descriptor's path (strace -y shows both).
- **The tree before the run** is inferred from the log: what a call created (O_CREAT|O_EXCL,
  mkdir, link, rename targets, a plain O_CREAT with no sign the file was there) did not exist
  before it; what a call found (an open without O_CREAT, a stat, an unlink, a failed mkdir
  with EEXIST, a chdir) did, a directory if it was opened with O_DIRECTORY, read with
  getdents, stat'ed as S_IFDIR or chdir'ed into; sizes from stat and fstat results, reads
  and lseeks. Paths are replayed under /replay, keeping the tree's shape.
- **Calls**: open/openat/openat2/creat, read/write and their p- and -v forms, lseek,
  fsync/fdatasync (also on a directory), sync/syncfs, close, dup*, fcntl(F_DUPFD*),
  unlink(at), rmdir, rename(at/at2, RENAME_NOREPLACE), mkdir(at), link(at), truncate,
  ftruncate, fallocate, the stat family and statx, access, chdir/fchdir, getdents(64),
  copy_file_range, sendfile and splice (the bytes land in the target file), utimensat,
  futimens, utimes, chmod/fchmod(at), chown/fchown(at)/lchown (inode updates; with
  lchown or AT_SYMLINK_NOFOLLOW, of a link itself), O_PATH opens (the lookup, lstat's with
  O_NOFOLLOW; the holding directory's descriptor stands in for the handle),
  symlink(at), readlink(at) and lstat, and shared
  writable mmaps (the mapped range dirtied at msync, or at munmap if no msync came since:
  the log cannot tell which pages were stored to, nor when). Calls on pipes, sockets,
  /dev, /proc and /sys are ignored and counted; a file-system call still not modelled
  (xattrs, ...) is counted by name. Symbolic links are made and read (symlink, readlink,
  lstat); an absolute target is mapped under /replay with the paths, so readlink's count
  is compared as success or failure. A link found before the run (readlink, or lstat's
  S_IFLNK) is made with the target the log shows, the file or directory a stat through it
  showed made there; a target -s cut, or never shown, is made up outside the replayed tree
  as that file or directory (`_link_targets`).
- **Descriptors open before the log began** (a shell's `< in > out`), seen by their -y path
  on first use, are opened when the task starts, read-write, one open file a path.
- **Order**: each task keeps its think times, and a step waits for every step of any task
  that had ended before it began in the log (the futexes, pipes and waits that ordered
  them are not replayed; wait4 for a child is).
- **To completion**: the run ends when every replayed task has exited (the scenario's
  `until_exit`); its duration is a cap, and a replay the cap cuts says so.
- **Outcomes** are compared: each replayed call's result (success or errno; bytes for reads,
  writes and lseek) against the log's; differences are counted by call and outcome with the
  first log lines (`ReplayStats`, the run's `replay` summary).
"""

from __future__ import annotations

import os
import posixpath
import random
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from vfslab.errors import InputError
from vfslab.kern.fcntl import (
    EBADF,
    ERRNO_NAMES,
    O_APPEND,
    O_CREAT,
    O_DIRECTORY,
    O_DSYNC,
    O_EXCL,
    O_RDONLY,
    O_RDWR,
    O_SYNC,
    O_TRUNC,
    O_WRONLY,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
)
from vfslab.kern.kern_fork import FORK_SHARECWD, FORK_SHAREFILES
from vfslab.scenario import ProcessSpec, Scenario, SetupItem
from vfslab.workload.strace_syntax import (
    Call,
    Exit,
    Spawning,
    fd_and_path,
    read_log,
    split_args,
    string_value,
    unescape,
)

ROOT = "/replay"
S = 1_000_000_000
FLAGS = {"O_RDONLY": O_RDONLY, "O_WRONLY": O_WRONLY, "O_RDWR": O_RDWR, "O_CREAT": O_CREAT,
         "O_TRUNC": O_TRUNC, "O_EXCL": O_EXCL, "O_APPEND": O_APPEND, "O_SYNC": O_SYNC,
         "O_DSYNC": O_DSYNC, "O_DIRECTORY": O_DIRECTORY}
READS = {"read", "pread64", "readv", "preadv", "preadv2"}
WRITES = {"write", "pwrite64", "writev", "pwritev", "pwritev2"}
STATS = {"stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
         "fstatat64", "stat64", "lstat64"}
FORKS = {"fork", "vfork", "clone", "clone2", "clone3"}
UTIMES = {"utimensat", "futimens", "utimes", "utime", "futimesat"}
CHMODS = {"chmod", "fchmod", "fchmodat", "fchmodat2"}
CHOWNS = {"chown", "fchown", "fchownat", "lchown"}
# calls that touch no file system state vfslab models
IGNORED = {"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
           "prlimit64", "getrandom", "mprotect", "rt_sigaction", "rt_sigprocmask", "getpid",
           "geteuid", "getuid", "getgid", "getegid", "exit_group", "exit", "uname", "ioctl",
           "futex", "clock_gettime", "gettimeofday", "umask", "getcwd", "sysinfo",
           "madvise", "sched_getaffinity", "poll", "ppoll", "select", "pselect6", "kill",
           "tgkill", "getppid", "gettid", "getpgrp", "setpgid", "getpgid",
           "pipe", "pipe2", "socket", "connect", "sendto", "recvfrom", "recvmsg", "sendmsg",
           "bind", "listen", "accept", "accept4", "getsockname", "getpeername", "setsockopt",
           "getsockopt", "shutdown", "socketpair", "epoll_create1", "epoll_ctl",
           "epoll_wait", "epoll_pwait", "eventfd2", "rt_sigreturn", "sigaltstack",
           "nanosleep", "clock_nanosleep", "sched_yield", "getrusage", "times", "alarm",
           "setitimer", "getitimer", "prctl", "capget", "capset", "setuid", "setgid",
           "setresuid", "setresgid", "getresuid", "getresgid", "getgroups", "setgroups",
           "mlock", "munlock", "mremap", "membarrier", "sched_setaffinity", "getpriority",
           "setpriority", "rt_sigtimedwait", "rt_sigsuspend", "pause", "timerfd_create",
           "timerfd_settime", "inotify_init1", "inotify_add_watch", "flock", "fadvise64",
           "readahead", "statfs", "fstatfs", "getxattr", "lgetxattr", "fgetxattr",
           "listxattr", "llistxattr", "flistxattr", "sched_getparam", "sched_getscheduler",
           "personality", "close_range", "pidfd_open", "sync_file_range"}


@dataclass(slots=True)
class Op:
    """One replayed step: `call` is the log's name, `expect` its outcome (a result >= 0, an
    errno name, or None when the log's result is not comparable); `seq` its place among all
    the log's steps by when they ended."""

    kind: str
    args: tuple[Any, ...]
    start_ns: int
    end_ns: int
    lineno: int
    call: str
    expect: int | str | None
    seq: int = -1


class OpenFile:
    """An open file as the log shows it: what the descriptors of several tasks share."""

    __slots__ = ("path", "flags", "is_dir", "offset")

    def __init__(self, path: str, flags: int, is_dir: bool = False) -> None:
        self.path = path
        self.flags = flags
        self.is_dir = is_dir
        self.offset = 0            # the file offset the log implies (reads, writes, lseek)


class Task:
    """One task of the log (a process or a thread), by pid and generation."""

    def __init__(self, key: tuple[int, int], fds: dict[int, OpenFile], fs: list[str],
                 parent: tuple[int, int] | None) -> None:
        self.key = key
        self.fds = fds              # shared with the tasks of the same table (CLONE_FILES)
        self.fs = fs                # [cwd], shared with CLONE_FS
        self.parent = parent
        self.ops: list[Op] = []
        self.maps: dict[int, tuple[str, int, int]] = {}
        self.exited = False
        # descriptors open before the log began (a shell's `< in > out`): log fd -> file
        self.preopened: dict[int, OpenFile] = {}

    @property
    def name(self) -> str:
        pid, gen = self.key
        return f"pid{pid}" + (f".{gen}" if gen else "")


@dataclass
class Trace:
    tasks: dict[tuple[int, int], Task] = field(default_factory=dict)
    first_ns: int = -1
    existing: dict[str, int] = field(default_factory=dict)     # path -> size before
    dirs: set[str] = field(default_factory=set)                # paths known as directories
    absent: set[str] = field(default_factory=set)              # known not to exist before
    links: dict[str, str] = field(default_factory=dict)        # symbolic links found: target
    cut_links: set[str] = field(default_factory=set)           # ... whose target -s cut
    created: set[str] = field(default_factory=set)
    unmodelled: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    calls: int = 0             # file-system calls the replay makes (modelled)

    @property
    def procs(self) -> dict[int, list[Op]]:
        """Each task's ops by pid (the first generation): for reports."""
        return {t.key[0]: t.ops for t in self.tasks.values()}


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.tr = Trace()
        self.live: dict[int, Task] = {}
        self.gen: Counter[int] = Counter()
        self.spawning: list[tuple[Task, int]] = []    # (parent, fork flags) not yet resumed
        self.known: dict[str, bool] = {}              # path -> existed (True) / absent (False)
        # the empty path names nothing (ENOENT, in Linux as in NetBSD's namei): a call on it
        # says nothing about the directory it would otherwise resolve against. Found by CI,
        # whose Python stats "" at start-up: the working directory was taken for absent.
        self.known[""] = False
        self.maybe: set[str] = set()                  # O_CREAT'ed, no sign yet it was there
        self.written: set[str] = set()                # files the log wrote to

    # ---- tasks ------------------------------------------------------------------------------
    def task(self, pid: int) -> Task:
        t = self.live.get(pid)
        if t is not None:
            return t
        if self.spawning:
            # a child runs before its parent's clone() returns in the log: its parent is
            # the oldest call still making a child
            parent, flags = self.spawning.pop(0)
            return self._child(parent, pid, flags)
        key = (pid, self.gen[pid])
        self.gen[pid] += 1
        t = Task(key, {}, ["/"], None)
        self.tr.tasks[key] = t
        self.live[pid] = t
        return t

    def _child(self, parent: Task, pid: int, flags: int) -> Task:
        key = (pid, self.gen[pid])
        self.gen[pid] += 1
        fds = parent.fds if flags & FORK_SHAREFILES else dict(parent.fds)
        fs = parent.fs if flags & FORK_SHARECWD else list(parent.fs)
        t = Task(key, fds, fs, parent.key)
        self.tr.tasks[key] = t
        self.live[pid] = t
        return t

    # ---- paths --------------------------------------------------------------------------------
    def path_arg(self, t: Task, dirfd: str | None, arg: str) -> str:
        p = string_value(arg)
        if p is None:
            raise ValueError(f"expected a path string, got {arg[:40]!r}")
        base = t.fs[0]
        absolute = p.startswith("/")
        # an absolute path needs its dirfd only to learn the working directory from
        if dirfd is not None and (not absolute or dirfd.lstrip().startswith("AT_FDCWD<")):
            num, deco = fd_and_path(dirfd)
            if deco:
                base = deco
                if num is None:
                    # AT_FDCWD</dir>: the task's working directory, which a log that begins
                    # after it was set cannot show otherwise (found replaying `make -C g`: the
                    # first task's cwd was taken for "/", so chdir("g") went to /g and the
                    # linker's chmod("hello") failed with ENOENT)
                    t.fs[0] = deco
            elif num is not None and num in t.fds:
                base = t.fds[num].path
        if absolute:
            return os.path.normpath(p)
        if not p:
            return ""
        return os.path.normpath(os.path.join(base, p))

    def fd_file(self, t: Task, arg: str) -> tuple[int | None, OpenFile | None]:
        num, deco = fd_and_path(arg)
        if num is None:
            return None, None
        f = t.fds.get(num)
        if f is None and deco is not None:
            # opened before the log began (or by a task we did not see start): the replay
            # opens it when the task starts (found replaying `tee out < in`: every read of
            # the shell's stdin was EBADF, and a `> out` would have lost every write)
            f = OpenFile(deco, O_RDWR, False)
            t.fds[num] = f
            self.found(deco)
            if not _skip_path(deco):
                t.preopened[num] = f
        return num, f

    def found(self, p: str, is_dir: bool = False, size: int = -1) -> None:
        """`p` existed before the call that shows it, unless the log created it first. A
        file opened with a plain O_CREAT was there only if it shows data before the log
        wrote any."""
        if p in self.maybe:
            if size <= 0:
                return
            self.maybe.discard(p)
            self.tr.created.discard(p)
        if self.known.setdefault(p, True) and p not in self.tr.created:
            self.tr.existing.setdefault(p, 0)
            if size > self.tr.existing[p]:
                self.tr.existing[p] = size
        if is_dir:
            self.tr.dirs.add(p)

    def made(self, p: str, is_dir: bool = False) -> None:
        """`p` was created by this call: it did not exist before (unless already found)."""
        if p not in self.known:
            self.known[p] = False
            self.tr.absent.add(p)
        self.tr.created.add(p)
        if is_dir:
            self.tr.dirs.add(p)

    # ---- a call -------------------------------------------------------------------------------
    def call(self, c: Call) -> None:
        tr = self.tr
        if tr.first_ns < 0:
            tr.first_ns = c.t_ns
        t = self.task(c.pid)
        expect: int | str | None = c.errno if c.errno else c.ret
        if c.errno is not None:
            tr.failed[c.name] += 1

        def add(kind: str, *a: Any) -> None:
            tr.calls += 1
            t.ops.append(Op(kind, a, c.t_ns - tr.first_ns, c.t_ns + c.dur_ns - tr.first_ns,
                            c.lineno, c.name, expect))

        ok = c.errno is None and (c.ret is None or c.ret >= 0)
        name, args = c.name, c.args
        if c.ret is None and name not in FORKS:
            # '= ?': the task vanished during the call; what it did is unknown
            tr.ignored[name] += 1
            return
        if name in FORKS:
            if c.ret is None or not ok:
                return
            flags = _fork_flags(name, args)
            child = self.live.get(c.ret)
            if child is None or child.parent != t.key:
                child = self._child(t, c.ret, flags)
            for i, (parent, _f) in enumerate(self.spawning):
                if parent is t:            # this call's child is accounted for
                    del self.spawning[i]
                    break
            add("fork", child.key, flags)
            return
        if name in ("wait4", "waitid"):
            m = re.search(r"si_pid=(\d+)", ",".join(args)) if name == "waitid" else None
            cpid = int(m.group(1)) if m else (c.ret or 0)
            kids = [key for key, tk in tr.tasks.items() if key[0] == cpid and tk.parent == t.key]
            if ok and cpid > 0 and kids:
                add("wait", max(kids))
                return
            tr.ignored[name] += 1
            return
        if name in ("open", "openat", "creat", "openat2"):
            at = name in ("openat", "openat2")
            p = self.path_arg(t, args[0] if at else None, args[1] if at else args[0])
            if name == "creat":
                flags = O_WRONLY | O_CREAT | O_TRUNC
            elif name == "openat2":
                m = re.search(r"flags=([A-Z_|0-9x]+)", args[2])
                flags = _flags(m.group(1)) if m else 0
            else:
                flags = _flags(args[2] if at else args[1])
            if c.ret_deco:
                p = c.ret_deco or p
            if _skip_path(p):
                tr.ignored[name] += 1
                return
            if ok:
                assert c.ret is not None
                is_dir = bool(flags & O_DIRECTORY)
                t.fds[c.ret] = OpenFile(p, flags, is_dir)
                if flags & O_CREAT and flags & (O_EXCL | O_TRUNC) and p not in self.known:
                    self.made(p)
                elif flags & O_CREAT and p not in self.known:
                    self.maybe.add(p)
                    tr.created.add(p)
                else:
                    self.found(p, is_dir)
            elif c.errno == "ENOENT" and p not in self.known:
                self.known[p] = False
                tr.absent.add(p)
            elif c.errno == "EEXIST":
                self.found(p)
            flag_text = args[2] if at or name == "openat2" else args[1] if len(args) > 1 else ""
            if "O_PATH" in flag_text:
                # Linux's path handle (O_NOFOLLOW: of a link itself), which reads and writes
                # nothing (found replaying `tar x` of links: GNU tar checks each new link so)
                add("openpath", c.ret if ok else -1, p, "O_NOFOLLOW" in flag_text)
                return
            add("open", c.ret if ok else -1, p, flags)
            return
        if name in READS or name in WRITES:
            fd, f = self.fd_file(t, args[0])
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            off = _int(args[3]) if name[0] == "p" else -1
            kind = "read" if name in READS else "write"
            pos = off if off >= 0 else f.offset
            if ok and off < 0 and c.ret:
                f.offset += c.ret
            if kind == "write" and ok:
                self.written.add(f.path)
            if kind == "read" and ok and c.ret and f.path not in self.written:
                self.found(f.path, size=pos + c.ret)
            add(kind, fd, c.ret if ok else _count(args, name), off)
            return
        if name in ("lseek", "_llseek"):
            fd, f = self.fd_file(t, args[0])
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            whence = {"SEEK_SET": SEEK_SET, "SEEK_CUR": SEEK_CUR, "SEEK_END": SEEK_END}.get(
                args[-1].strip(), SEEK_SET)
            off = _int(args[1]) if name == "lseek" else _int(args[1]) << 32 | _int(args[2])
            if ok and whence == SEEK_END and f.path not in self.written and c.ret is not None:
                self.found(f.path, size=c.ret - off)
            if ok and c.ret is not None:
                f.offset = c.ret
            add("lseek", fd, off, whence)
            return
        if name in ("fsync", "fdatasync"):
            fd, f = self.fd_file(t, args[0])
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            add(name, fd)
            return
        if name in ("sync", "syncfs"):
            add("sync")
            return
        if name == "close":
            fd, f = self.fd_file(t, args[0])
            if fd is not None:
                t.fds.pop(fd, None)
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            add("close", fd)
            return
        if name in ("dup", "dup2", "dup3") or (name == "fcntl" and len(args) > 1 and
                                              args[1].strip().startswith("F_DUPFD")):
            fd, f = self.fd_file(t, args[0])
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            if ok and c.ret is not None:
                t.fds[c.ret] = f
            add("dup", fd, c.ret if ok else -1)
            return
        if name in ("unlink", "unlinkat", "rmdir"):
            at = name == "unlinkat"
            p = self.path_arg(t, args[0] if at else None, args[1] if at else args[0])
            rmdir = name == "rmdir" or (at and len(args) > 2 and "AT_REMOVEDIR" in args[2])
            if ok:
                self.found(p, rmdir)
            add("rmdir" if rmdir else "unlink", p)
            return
        if name in ("rename", "renameat", "renameat2"):
            if name == "rename":
                a, b = self.path_arg(t, None, args[0]), self.path_arg(t, None, args[1])
            else:
                a, b = self.path_arg(t, args[0], args[1]), self.path_arg(t, args[2], args[3])
            noreplace = name == "renameat2" and len(args) > 4 and "RENAME_NOREPLACE" in args[4]
            if ok:
                self.found(a)
                self.made(b)
            add("rename", a, b, noreplace)
            return
        if name in ("mkdir", "mkdirat"):
            at = name == "mkdirat"
            p = self.path_arg(t, args[0] if at else None, args[1] if at else args[0])
            if ok:
                self.made(p, True)
            elif c.errno == "EEXIST":
                self.found(p, True)
            add("mkdir", p)
            return
        if name in ("link", "linkat"):
            if name == "link":
                a, b = self.path_arg(t, None, args[0]), self.path_arg(t, None, args[1])
            else:
                a, b = self.path_arg(t, args[0], args[1]), self.path_arg(t, args[2], args[3])
            if ok:
                self.found(a)
                self.made(b)
            add("link", a, b)
            return
        if name in ("symlink", "symlinkat"):
            dest = string_value(args[0])
            if dest is None:
                raise ValueError(f"expected the link's target string, got {args[0][:40]!r}")
            p = self.path_arg(t, args[1] if name == "symlinkat" else None,
                              args[2] if name == "symlinkat" else args[1])
            if ok:
                self.made(p)
            add("symlink", dest, p)
            return
        if name in ("readlink", "readlinkat"):
            at = name == "readlinkat"
            p = self.path_arg(t, args[0] if at else None, args[1] if at else args[0])
            if ok and p not in tr.created and self.known.get(p, True):
                # a link that was there: its target as the log shows it (-s may cut it). A
                # stat that followed it first said what its target is, not that `p` is that
                # (found replaying a venv's python: stat showed a regular file, so the replay
                # made one, and its readlink said EINVAL)
                raw = args[2] if at else args[1]
                if p not in tr.links or not tr.links[p]:       # none yet, or lstat's
                    tr.links[p] = string_value(raw) or "."
                    tr.cut_links.discard(p)
                    if raw.rstrip().endswith('"...'):
                        tr.cut_links.add(p)
                self.known[p] = True
            elif c.errno == "EINVAL":
                self.found(p)                   # there, and not a link
            elif c.errno == "ENOENT" and p not in self.known:
                self.known[p] = False
                tr.absent.add(p)
            add("readlink", p, _int(args[3] if at else args[2]))
            return
        if name == "ftruncate":
            fd, f = self.fd_file(t, args[0])
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            add("ftruncate", fd, _int(args[1]))
            return
        if name == "truncate":
            p = self.path_arg(t, None, args[0])
            if ok:
                self.found(p)
            add("truncate", p, _int(args[1]))
            return
        if name == "fallocate":
            fd, f = self.fd_file(t, args[0])
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            add("fallocate", fd, _int(args[2]), _int(args[3]))
            return
        if name in STATS or name in ("fstat", "fstat64"):
            text = ",".join(args)
            if name in ("fstat", "fstat64") or (name in ("newfstatat", "statx") and
                                                "AT_EMPTY_PATH" in text and
                                                string_value(args[1]) == ""):
                fd, f = self.fd_file(t, args[0])
                if f is None or _skip_path(f.path):
                    tr.ignored[name] += 1
                    return
                p = f.path
                kind = "fstat"
                target: int | str | None = fd
            else:
                at = name in ("newfstatat", "statx", "faccessat", "faccessat2", "fstatat64")
                p = self.path_arg(t, args[0] if at else None, args[1] if at else args[0])
                if _skip_path(p):
                    tr.ignored[name] += 1
                    return
                nofollow = name in ("lstat", "lstat64") or "AT_SYMLINK_NOFOLLOW" in text
                kind = "lstat" if nofollow else "stat"
                target = p
            if ok and "S_IFLNK" in text:
                # a link (lstat): there before unless the log made it; its target unknown
                # until a readlink shows it (then a made-up one: _link_targets)
                if p not in tr.created and self.known.get(p, True) and p not in tr.links:
                    tr.links[p] = ""
                    tr.cut_links.add(p)
                    self.known[p] = True
            elif ok:
                sm = re.search(r"st(?:x)?_size=(\d+)", text)
                is_dir = bool(re.search(r"S_IFDIR", text))
                if p not in self.written:
                    self.found(p, is_dir, int(sm.group(1)) if sm else -1)
                else:
                    self.found(p, is_dir)
                if kind == "fstat" and is_dir:
                    f.is_dir = True         # type: ignore[union-attr]
            elif c.errno == "ENOENT" and p not in self.known:
                self.known[p] = False
                tr.absent.add(p)
            add(kind, target)
            return
        if name in ("chdir", "fchdir"):
            if name == "chdir":
                p = self.path_arg(t, None, args[0])
            else:
                _fd, f = self.fd_file(t, args[0])
                if f is None:
                    tr.ignored[name] += 1
                    return
                p = f.path
            if ok:
                t.fs[0] = p
                self.found(p, True)
            add("chdir", p)
            return
        if name in ("getdents", "getdents64"):
            fd, f = self.fd_file(t, args[0])
            if f is None or _skip_path(f.path):
                tr.ignored[name] += 1
                return
            f.is_dir = True
            self.found(f.path, True)
            # entries are sized differently on FFS: what compares is data or end
            add("getdents", fd, _int(args[2]))
            t.ops[-1].expect = c.errno or (1 if c.ret else 0)
            return
        if name in ("copy_file_range", "sendfile", "sendfile64", "splice"):
            self._copy(t, c, add)
            return
        if name in UTIMES or name in CHMODS or name in CHOWNS:
            what = "utimes" if name in UTIMES else "chmod" if name in CHMODS else "chown"
            if name.startswith("f") and not name.endswith("at") and name != "futimesat" \
                    or (name == "utimensat" and args[1].strip() == "NULL"):
                fd, f = self.fd_file(t, args[0])
                if f is None or _skip_path(f.path):
                    tr.ignored[name] += 1
                    return
                add("f" + what, fd, _mode(args, name))
                return
            at = name.endswith("at") or name in ("utimensat", "futimesat", "fchmodat2")
            p = self.path_arg(t, args[0] if at else None, args[1] if at else args[0])
            if _skip_path(p):
                tr.ignored[name] += 1
                return
            if ok:
                self.found(p)
            # lchown and AT_SYMLINK_NOFOLLOW change a link itself (found replaying `tar x`
            # of links: each utimensat and fchownat of a new, dangling link was ENOENT)
            follow = name != "lchown" and not any("AT_SYMLINK_NOFOLLOW" in a for a in args)
            add(what, p, _mode(args, name), follow)
            return
        if name in ("mmap", "mmap2"):
            if len(args) >= 6 and "MAP_SHARED" in args[3] and "PROT_WRITE" in args[2] and ok:
                fd, f = self.fd_file(t, args[4])
                if f is not None and not _skip_path(f.path) and c.ret is not None:
                    t.maps[c.ret] = (f.path, _int(args[5]), _int(args[1]))
                    add("mmap", fd, c.ret, _int(args[5]), _int(args[1]))
                    return
            tr.ignored[name] += 1
            return
        if name in ("msync", "munmap"):
            addr = _int(args[0])
            if addr in t.maps:
                add("mmap_flush", addr, name == "msync")
                if name == "munmap":
                    t.maps.pop(addr, None)
            else:
                tr.ignored[name] += 1
            return
        if name == "fcntl" or name in IGNORED:
            tr.ignored[name] += 1
            return
        tr.unmodelled[name] += 1

    def _copy(self, t: Task, c: Call, add: Any) -> None:
        """copy_file_range(in, off_in, out, off_out, len, flags), sendfile(out, in, off,
        count), splice(in, off_in, out, off_out, len, flags): the bytes read from a file
        and written to a file; a pipe or socket side is not replayed."""
        a = c.args
        if c.name == "copy_file_range" or c.name == "splice":
            src, soff, dst, doff = a[0], a[1], a[2], a[3]
        else:
            dst, src, soff, doff = a[0], a[1], a[2], "NULL"
        sfd, sf = self.fd_file(t, src)
        dfd, df = self.fd_file(t, dst)
        s_ok = sf is not None and not _skip_path(sf.path)
        d_ok = df is not None and not _skip_path(df.path)
        if not s_ok and not d_ok:
            self.tr.ignored[c.name] += 1
            return
        n = c.ret if c.errno is None and c.ret is not None else 0
        if s_ok and n and sf is not None and sf.path not in self.written:
            self.found(sf.path)
        if d_ok and df is not None:
            self.written.add(df.path)
        if c.name == "copy_file_range" and df is not None and df.flags & O_APPEND:
            # Linux refuses an output open for appending (copy_file_range(2): EBADF), as
            # cat's `>>` meets it before falling back to read and write: the replay's copy,
            # made of a read and a write, would not (found replaying `cat a >> b`)
            add("fail", EBADF)
            return
        add("copy", sfd if s_ok else None, _offset_arg(soff), dfd if d_ok else None,
            _offset_arg(doff), n)

    def exit(self, e: Exit) -> None:
        t = self.live.pop(e.pid, None)
        if t is not None:
            t.exited = True


def _offset_arg(a: str) -> int:
    """NULL (the file's offset: -1) or [N] / [N => M] (N)."""
    m = re.match(r"^\[(\d+)", a.strip())
    return int(m.group(1)) if m else -1


def _mode(args: list[str], name: str) -> int:
    for a in args:
        a = a.strip()
        if re.fullmatch(r"0[0-7]+", a):
            return int(a, 8)
    return -1


def _fork_flags(name: str, args: list[str]) -> int:
    text = ",".join(args)
    if name in ("fork", "vfork"):
        return 0
    flags = 0
    if "CLONE_FILES" in text or "CLONE_THREAD" in text:
        flags |= FORK_SHAREFILES
    if "CLONE_FS" in text or "CLONE_THREAD" in text:
        flags |= FORK_SHARECWD
    return flags


def _count(args: list[str], name: str) -> int:
    """The count a read or write asked for (for a failed call)."""
    try:
        return _int(args[2])
    except IndexError:
        return 0


def _int(text: str) -> int:
    """A C integer as strace prints it (decimal, 0x hex, 0 octal); 0 for '?' or NULL."""
    t = text.strip()
    try:
        return int(t, 0)
    except ValueError:
        try:
            return int(t, 8) if t.startswith("0") else int(t)
        except ValueError:
            return 0


def _skip_path(p: str) -> bool:
    return p.startswith(("/proc", "/sys", "/dev", "pipe:", "socket:", "anon_inode:")) or \
        p.startswith("[")


def _flags(text: str) -> int:
    out = 0
    for part in text.split("|"):
        out |= FLAGS.get(part.strip(), 0)
    return out


def parse(path: str, text: str | None = None) -> Trace:
    if text is None:
        try:
            with open(path, errors="replace") as fh:
                text = fh.read()
        except OSError as e:
            raise InputError(f"cannot read strace log: {e.strerror}", path) from None
    p = _Parser(path)
    tr = p.tr
    tr.lines = sum(1 for line in text.splitlines() if line.strip())
    for ev in read_log(path, text, IGNORED):
        if isinstance(ev, Exit):
            p.exit(ev)
            continue
        if isinstance(ev, Spawning):
            # an unfinished clone(): its child may show up before it returns
            p.spawning.append((p.task(ev.pid), _fork_flags(ev.name, ev.args)))
            continue
        try:
            p.call(ev)
        except (IndexError, ValueError) as e:
            raise InputError(f"{ev.name}: unexpected arguments ({e})", path,
                             ev.lineno) from None
    return tr


# ---- the replay ------------------------------------------------------------------------------
class ReplayStats:
    """What the replay did against what the log says: counts, and each difference by call
    and outcome with its first log lines."""

    FIRST = 5

    def __init__(self, calls: int, not_modelled: dict[str, int]) -> None:
        self.calls = calls
        self.replayed = 0
        self.diverged = 0
        self.by_call: dict[str, dict[str, list[int]]] = {}    # call -> outcome -> [n, lines]
        self.not_modelled = not_modelled
        self._counts: Counter[tuple[str, str]] = Counter()

    def outcome(self, op: Op, rv: int) -> None:
        exp = op.expect
        if exp is None:
            return
        got: int | str = ERRNO_NAMES.get(-rv, f"errno {-rv}") if rv < 0 else rv
        if op.kind in ("open", "openpath", "dup", "fork", "wait"):
            # a descriptor's or pid's number may differ: success is what compares
            same = (isinstance(exp, int) and isinstance(got, int)) or exp == got
        elif op.kind in ("close", "stat", "lstat", "fstat", "chdir", "readlink") or \
                op.kind.endswith(
                ("utimes", "chmod", "chown")):
            same = (isinstance(exp, int) and isinstance(got, int)) or exp == got
        else:
            same = exp == got
        if same:
            return
        self.diverged += 1
        key = f"{got} (log: {exp})"
        self._counts[(op.call, key)] += 1
        lines = self.by_call.setdefault(op.call, {}).setdefault(key, [])
        if len(lines) < self.FIRST:
            lines.append(op.lineno)

    def summary(self) -> dict[str, Any]:
        by: dict[str, dict[str, Any]] = {}
        for (call, key), n in sorted(self._counts.items()):
            by.setdefault(call, {})[key] = {"count": n,
                                            "first_lines": self.by_call[call][key]}
        return {"calls": self.calls, "replayed": self.replayed, "diverged": self.diverged,
                "diverged_by_call": by, "not_modelled": dict(self.not_modelled)}


# replayed steps that are one system call of a path, or of a descriptor and numbers
BY_PATH = frozenset({"unlink", "rmdir", "stat", "lstat", "chdir"})
BY_FD = frozenset({"fsync", "fdatasync", "fstat", "ftruncate", "fallocate"})


LINK_TARGETS = "/.vfslab-link-targets"       # outside ROOT: no path of the log reaches it


def _link_targets(tr: Trace, existing: dict[str, int]) -> dict[str, str]:
    """Links whose target the replay makes up: a link whose target -s cut (the log shows a
    prefix of it) gets a target of its own outside the replayed tree, a file of the size
    (or a directory, as) a stat through the link showed, so that opening or stat-ing the link
    finds what the log's program found; readlink's count is not compared. A whole target the
    log shows is made (a file of that size or a directory) where it points, unless the log
    shows it otherwise. Returns {link: made-up target}; adds the targets it points at to
    `existing` and `tr.dirs`."""
    made: dict[str, str] = {}
    for p, dst in sorted(tr.links.items()):
        if p in tr.created:
            continue
        if p in tr.cut_links:
            made[p] = f"{LINK_TARGETS}/{len(made)}"
            continue
        if p not in tr.existing and p not in tr.dirs:
            continue                      # nothing seen through it: the target as shown
        target = posixpath.normpath(dst if dst.startswith("/")
                                    else posixpath.join(posixpath.dirname(p), dst))
        if target in existing or target in tr.dirs or target in tr.links \
                or target in tr.absent or target in tr.created:
            continue
        if p in tr.dirs:
            tr.dirs.add(target)
        existing[target] = tr.existing.get(p, 0)
    return made


def _map(p: str) -> str:
    if not p:
        return ""                   # the empty path stays empty: namei's ENOENT
    return ROOT + ("" if p == "/" else p)


class _Replayer:
    """The replay of a log's tasks, keeping the log's order across them: a step starts only
    once every step of any task that had ended before it started in the log has ended here
    too (what the program's own synchronisation, futexes and pipes the replay does not
    model, guaranteed), and otherwise runs concurrently, as in the log."""

    def __init__(self, tr: Trace, stats: ReplayStats, speed: float, no_think: bool) -> None:
        self.tr = tr
        self.stats = stats
        self.speed = speed
        self.no_think = no_think
        ops = sorted((op for t in tr.tasks.values() for op in t.ops),
                     key=lambda o: (o.end_ns, o.lineno))
        for i, op in enumerate(ops):
            op.seq = i
        self.end_times = [op.end_ns for op in ops]
        self.done = bytearray(len(ops))
        self.frontier = 0             # steps 0 .. frontier-1 (by log end) have all ended
        self.pids: dict[tuple[int, int], int] = {}      # a log task -> its replay's pid

    def body(self, task: Task, fdmap: dict[int, int], start_ns: int) -> Any:
        """The replay of one task: `fdmap` turns the log's descriptors into the replay's
        (shared by the tasks that share a table, copied at fork)."""
        ops = task.ops
        stats = self.stats

        def run(sys: Any, rng: random.Random) -> Generator[Any, Any, None]:
            # the descriptors it had from before the log, one open file a path (a shell's
            # `> out 2>&1` shares one); not calls of the log, so not counted or compared
            opened: dict[str, int] = {}
            for logfd, f in sorted(task.preopened.items()):
                rv = opened.get(f.path)
                if rv is None:
                    rv = yield from sys.open(_map(f.path), O_RDONLY if f.is_dir else O_RDWR,
                                             0)
                    opened[f.path] = rv
                if rv >= 0:
                    fdmap[logfd] = rv
            maps: dict[int, tuple[int, int, int]] = {}
            # mappings msync'ed since they were last dirtied: munmap does not dirty them
            # again (stores after an msync are not in the log either way)
            flushed: set[int] = set()
            t0 = sys.now()
            base = start_ns
            for op in ops:
                need = bisect_left(self.end_times, op.start_ns)
                while self.frontier < need:
                    yield from sys.user_wait(self, "replay order")
                if not self.no_think:
                    due = t0 + int((op.start_ns - base) / self.speed)
                    now = sys.now()
                    if due > now:
                        yield from sys.nanosleep(due - now)
                rv = yield from self.step(sys, rng, op, fdmap, maps, flushed)
                stats.replayed += 1
                if rv is not None:
                    stats.outcome(op, rv)
                self.done[op.seq] = 1
                if op.seq == self.frontier:
                    while self.frontier < len(self.done) and self.done[self.frontier]:
                        self.frontier += 1
                    sys.user_wake(self)
        return run

    def step(self, sys: Any, rng: random.Random, op: Op, fdmap: dict[int, int],
             maps: dict[int, tuple[int, int, int]], flushed: set[int]
             ) -> Generator[Any, Any, int | None]:
        k = op.kind
        a = op.args

        def fd_of(logfd: Any) -> int:
            return fdmap.get(logfd, -1) if logfd is not None else -1

        if k == "fork":
            child = self.tr.tasks[a[0]]
            flags = a[1]
            cmap = fdmap if flags & FORK_SHAREFILES else dict(fdmap)
            start = op.start_ns
            rv: int = yield from sys.fork(flags, child.name, self.body(child, cmap, start),
                                          rng)
            self.pids[a[0]] = rv
            return rv
        if k == "wait":
            # wait4 for the child the log waited for: the parent goes on when it has exited
            rv = yield from sys.wait(self.pids.get(a[0], -1))
            return rv
        if k in BY_PATH:                  # call(path)
            rv = yield from getattr(sys, k)(_map(a[0]))
            return rv
        if k in BY_FD:                    # call(fd, the log's other arguments)
            rv = yield from getattr(sys, k)(fd_of(a[0]), *a[1:])
            return rv
        if k == "open":
            rv = yield from sys.open(_map(a[1]), a[2], 0o644)
            if rv >= 0 and a[0] >= 0:
                fdmap[a[0]] = rv
            return rv
        if k == "openpath":
            # O_PATH (2.0 has none): the lookup (lstat with O_NOFOLLOW), then a descriptor
            # of the directory holding it stands in: the log's later calls on the handle
            # (fstat, close; *at calls are resolved to paths beforehand) need only one
            path = _map(a[1])
            rv = yield from (sys.lstat(path) if a[2] else sys.stat(path))
            if rv < 0:
                return rv
            rv = yield from sys.open(posixpath.dirname(path) or ROOT, O_RDONLY, 0)
            if rv >= 0 and a[0] >= 0:
                fdmap[a[0]] = rv
            return rv
        if k in ("read", "write"):
            fd = fd_of(a[0])
            if a[2] >= 0:
                call = sys.pread if k == "read" else sys.pwrite
                rv = yield from call(fd, a[1], a[2])
            else:
                rv = yield from (sys.read if k == "read" else sys.write)(fd, a[1])
            return rv
        if k == "lseek":
            rv = yield from sys.lseek(fd_of(a[0]), a[1], a[2])
            return rv
        if k == "sync":
            rv = yield from sys.sync()
            return rv
        if k == "close":
            fd = fdmap.pop(a[0], -1)
            if fd >= 0 and fd in fdmap.values():
                return 0                  # another log descriptor still uses it
            rv = yield from sys.close(fd)
            return rv
        if k == "dup":
            fd = fd_of(a[0])
            if a[1] < 0:
                rv = yield from sys.dup(fd)
                return rv
            old = fdmap.get(a[1])
            if old is not None and old not in [v for lf, v in fdmap.items() if lf != a[1]]:
                yield from sys.close(old)
            rv = yield from sys.dup(fd)
            if rv >= 0:
                fdmap[a[1]] = rv
            return rv
        if k == "rename":
            if a[2]:                      # RENAME_NOREPLACE: EEXIST if the target exists
                there = yield from sys.stat(_map(a[1]))
                if there >= 0:
                    return -17
            rv = yield from sys.rename(_map(a[0]), _map(a[1]))
            return rv
        if k == "mkdir":
            rv = yield from sys.mkdir(_map(a[0]), 0o755)
            return rv
        if k == "link":
            rv = yield from sys.link(_map(a[0]), _map(a[1]))
            return rv
        if k == "truncate":
            rv = yield from sys.truncate(_map(a[0]), a[1])
            return rv
        if k == "symlink":
            # an absolute target points into the replayed tree, as the path does
            target = _map(a[0]) if a[0].startswith("/") else a[0]
            rv = yield from sys.symlink(target, _map(a[1]))
            return rv
        if k == "readlink":
            rv = yield from sys.readlink(_map(a[0]), a[1])
            return rv
        if k == "getdents":
            rv = yield from sys.getdents(fd_of(a[0]), a[1])
            return rv if rv <= 0 else 1
        if k in ("utimes", "chmod", "chown"):
            rv = yield from sys.setattr(_map(a[0]), k, a[1], a[2])
            return rv
        if k in ("futimes", "fchmod", "fchown"):
            rv = yield from sys.fsetattr(fd_of(a[0]), k[1:], a[1])
            return rv
        if k == "fail":                   # refused by a rule of Linux's, before any I/O
            yield from ()
            return -int(a[0])
        if k == "copy":
            sfd, soff, dfd, doff, n = a
            got = n
            if sfd is not None:
                got = yield from (sys.pread(fd_of(sfd), n, soff) if soff >= 0
                                  else sys.read(fd_of(sfd), n))
                if got < 0:
                    return got
            if dfd is not None and got > 0:
                got = yield from (sys.pwrite(fd_of(dfd), got, doff) if doff >= 0
                                  else sys.write(fd_of(dfd), got))
            return got
        if k == "mmap":
            fd = fd_of(a[0])
            if fd >= 0:
                maps[a[1]] = (fd, a[2], a[3])
                flushed.discard(a[1])
            return None
        if k == "mmap_flush" and a[0] in maps:
            fd, off, length = maps[a[0]]
            if a[1]:                      # msync: the stores so far, then the flush
                yield from sys.mmap_write(fd, off, length)
                flushed.add(a[0])
                rv = yield from sys.msync(fd, off, length)
                return rv
            if a[0] not in flushed:       # munmap: stores since no msync
                yield from sys.mmap_write(fd, off, length)
            maps.pop(a[0], None)
            flushed.discard(a[0])
            return None
        return None


def to_scenario(path: str, text: str | None = None, speed: float = 1.0,
                no_think: bool = False) -> Scenario:
    tr = parse(path, text)
    roots = [t for t in tr.tasks.values() if t.parent is None and t.ops]
    if not any(t.ops for t in tr.tasks.values()):
        raise InputError("no file system calls found in the log", path, 0)
    stats = ReplayStats(tr.calls, dict(tr.unmodelled))
    rep = _Replayer(tr, stats, speed, no_think)
    procs = []
    for t in roots:
        start = t.ops[0].start_ns
        procs.append(ProcessSpec(t.name, rep.body(t, {}, start),
                                 int(start / speed) if not no_think else 0))
    # the tree before the run: what was found, with the directories above it
    existing = {p: s for p, s in tr.existing.items()
                if p not in tr.absent and p not in tr.links}
    targets = _link_targets(tr, existing)
    dirs = {p for p in existing if p in tr.dirs}
    for p in [*existing, *tr.created, *tr.links]:
        d = PurePosixPath(p).parent
        while d != d.parent:
            if str(d) not in tr.absent:
                dirs.add(str(d))
            d = d.parent
    from vfslab.fs.ufs_layout import MAXNAMLEN

    def fits(p: str) -> bool:
        return all(len(part.encode()) <= MAXNAMLEN           # as the kernel counts it
                   for part in p.split("/"))

    toolong = sorted(p for p in [*existing, *dirs] if not fits(p))
    setup = [SetupItem(ROOT, 0, True)]
    setup += [SetupItem(_map(d), 0, True)
              for d in sorted(dirs, key=lambda x: (x.count("/"), x)) if d != "/" and fits(d)]
    setup += [SetupItem(_map(p), size) for p, size in sorted(existing.items())
              if p not in dirs and p != "/" and fits(p)]
    setup += [SetupItem(_map(p), link=targets.get(p) or (
                  _map(dst) if dst.startswith("/") else dst))
              for p, dst in sorted(tr.links.items())
              if p not in dirs and p not in tr.created and fits(p)]
    if targets:
        setup.insert(1, SetupItem(LINK_TARGETS, 0, True))
        setup += [SetupItem(t, tr.existing.get(p, 0), p in tr.dirs)
                  for p, t in sorted(targets.items())]
    end = max((op.end_ns for t in tr.tasks.values() for op in t.ops), default=0)
    warnings = []
    if toolong:
        warnings.append(f"{path}: {len(toolong)} path(s) found before the run have a name "
                        f"longer than FFS allows ({MAXNAMLEN} bytes, as UTF-8), "
                        f"e.g. {toolong[0][:60]}...: not created; their calls fail with "
                        f"ENAMETOOLONG and count as divergences")
    if tr.unmodelled:
        warnings.append(f"{path}: calls not modelled: " + ", ".join(
            f"{n} x{c}" for n, c in tr.unmodelled.most_common()))
    sc = Scenario(f"strace:{PurePosixPath(path).name}", f"replay of {path}", procs, setup,
                  duration_s=max(60.0, 20 * end / S / speed), warnings=warnings)
    sc.until_exit = True
    sc.notes.update({"unmodelled": dict(tr.unmodelled), "ignored": dict(tr.ignored),
                     "failed": dict(tr.failed), "lines": tr.lines,
                     "created": sorted(tr.created), "existing": dict(existing),
                     "log_s": end / S, "replay_stats": stats})
    return sc


__all__ = ["Op", "ReplayStats", "Trace", "parse", "split_args", "to_scenario", "unescape"]
