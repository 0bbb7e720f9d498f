"""strace logs as scenarios: read what a real program did (`strace -f -tt -T -y`, also without
-y or -T, with or without pids) and replay it through vfslab's system calls, keeping each
process's order and its think times.

Paths of the trace are replayed under /replay, keeping the tree's shape. Files the program
found already there (opened without O_CREAT, or stat'ed) are created before the run with the
largest size the log reveals. Calls on pipes, sockets, /dev, /proc and /sys are ignored but
counted; calls vfslab does not model are counted by name, never dropped silently. Shared
writable mappings are replayed as page dirtying of the mapped range at msync or munmap (the log
cannot tell which pages were stored to).
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from vfslab.errors import InputError
from vfslab.kern.fcntl import (
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
)
from vfslab.scenario import ProcessSpec, Scenario, SetupItem

ROOT = "/replay"
S = 1_000_000_000
_LINE = re.compile(
    r"^(?:\[pid\s+(?P<pid1>\d+)\]\s+|(?P<pid2>\d+)\s+)?"
    r"(?P<time>\d{1,2}:\d\d:\d\d(?:\.\d+)?)?\s*(?P<rest>.*)$")
_CALL = re.compile(r"^(?P<name>[a-z_0-9]+)\((?P<args>.*)$")
_RET = re.compile(r"\)\s*=\s*(?P<ret>-?\d+|\?|0x[0-9a-f]+)(?P<deco><[^>]*>)?"
                  r"(?:\s+(?P<err>E[A-Z0-9]+)\s*\([^)]*\))?"
                  r"(?:\s+\([^)]*\))?\s*(?:<(?P<dur>\d+\.\d+)>)?\s*$")
_FDDECO = re.compile(r"^(-?\d+|AT_FDCWD)(?:<(.*)>)?$")
FLAGS = {"O_RDONLY": O_RDONLY, "O_WRONLY": O_WRONLY, "O_RDWR": O_RDWR, "O_CREAT": O_CREAT,
         "O_TRUNC": O_TRUNC, "O_EXCL": O_EXCL, "O_APPEND": O_APPEND, "O_SYNC": O_SYNC,
         "O_DSYNC": O_DSYNC, "O_DIRECTORY": O_DIRECTORY}
READS = {"read", "pread64", "readv", "preadv", "preadv2"}
WRITES = {"write", "pwrite64", "writev", "pwritev", "pwritev2"}
STATS = {"stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
         "fstatat64", "stat64", "lstat64"}
IGNORED = {"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
           "prlimit64", "getrandom", "mprotect", "rt_sigaction", "rt_sigprocmask", "getpid",
           "geteuid", "getuid", "getgid", "getegid", "exit_group", "uname", "ioctl",
           "futex", "clock_gettime", "gettimeofday", "umask", "getcwd", "sysinfo",
           "madvise", "sched_getaffinity", "poll", "select", "wait4", "kill", "getppid"}


def unescape(s: str) -> str:
    """strace's C-style string escapes: \\n \\t \\" \\\\ \\xNN \\NNN."""
    out: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = s[i + 1]
        simple = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "a": "\a",
                  "b": "\b", '"': '"', "\\": "\\", "'": "'"}
        if d in simple:
            out.append(simple[d])
            i += 2
        elif d == "x" and i + 3 < n + 1 and re.fullmatch(r"[0-9a-fA-F]{2}", s[i + 2:i + 4]):
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        elif d in "01234567":
            j = i + 1
            while j < n and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(chr(int(s[i + 1:j], 8)))
            i = j
        else:
            out.append(d)
            i += 2
    return "".join(out)


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments, respecting quotes and brackets."""
    args: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ValueError("unterminated string")
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        if c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        args.append("".join(cur).strip())
    return args


@dataclass
class Op:
    kind: str
    args: tuple[Any, ...]
    start_ns: int
    end_ns: int


@dataclass
class Trace:
    procs: dict[int, list[Op]] = field(default_factory=dict)
    first_ns: int = -1
    existing: dict[str, int] = field(default_factory=dict)    # path -> size before the trace
    created: set[str] = field(default_factory=set)
    unmodelled: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    lines: int = 0


def _ts(t: str | None, lineno: int, path: str) -> int:
    if t is None:
        return lineno * 1000          # no -tt: keep the order, think times unknown
    h, m, rest = t.split(":")
    return (int(h) * 3600 + int(m) * 60) * S + int(round(float(rest) * S))


def _skip_path(p: str) -> bool:
    return p.startswith(("/proc", "/sys", "/dev", "pipe:", "socket:", "anon_inode:")) or \
        p.startswith("[")


class _Pid:
    def __init__(self) -> None:
        self.cwd = "/"
        self.fds: dict[int, str] = {}
        self.maps: dict[int, tuple[str, int, int]] = {}
        self.pending: tuple[str, str, int] | None = None


def parse(path: str, text: str | None = None) -> Trace:
    if text is None:
        try:
            with open(path, errors="replace") as fh:
                text = fh.read()
        except OSError as e:
            raise InputError(f"cannot read strace log: {e.strerror}", path) from None
    tr = Trace()
    pids: dict[int, _Pid] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            continue
        tr.lines += 1
        m = _LINE.match(line)
        if m is None:
            raise InputError(f"expected an strace line, got {line[:60]!r}", path, lineno)
        pid = int(m.group("pid1") or m.group("pid2") or 0)
        rest = m.group("rest")
        ts = _ts(m.group("time"), lineno, path)
        if tr.first_ns < 0:
            tr.first_ns = ts
        st = pids.setdefault(pid, _Pid())
        if rest.startswith(("+++", "---")) or rest.startswith("strace:"):
            continue
        if rest.startswith("<..."):
            mm = re.match(r"^<\.\.\.\s+([a-z_0-9]+)\s+resumed>\s?(.*)$", rest)
            if mm is None or st.pending is None or st.pending[0] != mm.group(1):
                raise InputError("a '<... resumed>' without its '<unfinished ...>'", path,
                                 lineno)
            name, head, t0 = st.pending
            st.pending = None
            rest = f"{name}({head}{mm.group(2)}"
            ts = t0
        elif rest.endswith("<unfinished ...>"):
            cm = _CALL.match(rest)
            if cm is None:
                raise InputError(f"expected NAME(ARGS <unfinished ...>, got {rest[:60]!r}",
                                 path, lineno)
            st.pending = (cm.group("name"), rest[len(cm.group("name")) + 1:-16], ts)
            continue
        cm = _CALL.match(rest)
        if cm is None:
            raise InputError(f"expected NAME(ARGS) = RESULT, got {rest[:60]!r}", path, lineno)
        name = cm.group("name")
        body = cm.group("args")
        rm = _RET.search(body)
        if rm is None:
            raise InputError(f"expected '= RESULT' after {name}(...)", path, lineno)
        argtext = body[:rm.start()]
        try:
            args = split_args(argtext)
        except ValueError as e:
            raise InputError(f"{name}: {e}", path, lineno) from None
        ret_s = rm.group("ret")
        ret = _int(ret_s)
        dur = int(float(rm.group("dur")) * S) if rm.group("dur") else 0
        if ret_s.startswith("-") or rm.group("err"):
            tr.failed[name] += 1
            continue
        _interpret(tr, st, pid, name, args, ret, rm.group("deco"), ts, ts + dur, path,
                   lineno)
    return tr


def _int(text: str) -> int:
    """A C integer as strace prints it (decimal, 0x hex, 0 octal); 0 for '?'."""
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 8) if text.startswith("0") else int(text)
        except ValueError:
            return 0


def _path_arg(st: _Pid, dirfd: str | None, p: str) -> str:
    p = unescape(p.strip('"'))
    if p.startswith("/"):
        return os.path.normpath(p)
    base = st.cwd
    if dirfd is not None:
        m = _FDDECO.match(dirfd)
        if m and m.group(2):
            base = m.group(2)
        elif m and m.group(1) != "AT_FDCWD" and int(m.group(1)) in st.fds:
            base = st.fds[int(m.group(1))]
    return os.path.normpath(os.path.join(base, p))


def _fd(st: _Pid, a: str) -> tuple[int, str | None]:
    m = _FDDECO.match(a.strip())
    if m is None or m.group(1) == "AT_FDCWD":
        return -1, None
    fd = int(m.group(1))
    return fd, m.group(2) or st.fds.get(fd)


def _flags(text: str) -> int:
    out = 0
    for part in text.split("|"):
        out |= FLAGS.get(part.strip(), 0)
    return out


def _interpret(tr: Trace, st: _Pid, pid: int, name: str, args: list[str], ret: int,
               deco: str | None, t0: int, t1: int, path: str, lineno: int) -> None:
    ops = tr.procs.setdefault(pid, [])
    p: str | None

    def add(kind: str, *a: Any) -> None:
        ops.append(Op(kind, a, t0 - tr.first_ns, t1 - tr.first_ns))

    try:
        if name in ("open", "openat", "creat"):
            dirfd = args[0] if name == "openat" else None
            p = _path_arg(st, dirfd, args[1] if name == "openat" else args[0])
            flags = O_WRONLY | O_CREAT | O_TRUNC if name == "creat" else \
                _flags(args[2] if name == "openat" else args[1])
            if deco:
                p = deco[1:-1] or p
            if _skip_path(p):
                tr.ignored[name] += 1
                return
            st.fds[ret] = p
            if flags & O_CREAT and p not in tr.existing:
                tr.created.add(p)
            elif p not in tr.created and not flags & O_DIRECTORY:
                tr.existing.setdefault(p, 0)
            add("open", ret, p, flags)
        elif name in READS or name in WRITES:
            fd, p = _fd(st, args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            off = -1
            if name.startswith("p"):
                off = _int(args[3] if name.endswith("v") or name.endswith("v2") else args[2])
            kind = "read" if name in READS else "write"
            add(kind, fd, ret, off)
            if kind == "read" and p in tr.existing and off >= 0:
                tr.existing[p] = max(tr.existing[p], off + ret)
        elif name in ("lseek", "_llseek"):
            fd, p = _fd(st, args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            add("lseek", fd, ret)
            if p in tr.existing:
                tr.existing[p] = max(tr.existing[p], ret)
        elif name in ("fsync", "fdatasync"):
            fd, p = _fd(st, args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            add(name, fd)
        elif name in ("sync", "syncfs"):
            add("sync")
        elif name == "close":
            fd, p = _fd(st, args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            st.fds.pop(fd, None)
            add("close", fd)
        elif name in ("dup", "dup2", "dup3") or (name == "fcntl" and len(args) > 1 and
                                                 args[1].startswith("F_DUPFD")):
            fd, p = _fd(st, args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            st.fds[ret] = p
            add("dup", fd, ret)
        elif name == "fcntl":
            tr.ignored[name] += 1
        elif name in ("unlink", "unlinkat"):
            rmdir = name == "unlinkat" and len(args) > 2 and "AT_REMOVEDIR" in args[2]
            p = _path_arg(st, args[0] if name == "unlinkat" else None,
                          args[1] if name == "unlinkat" else args[0])
            add("rmdir" if rmdir else "unlink", p)
        elif name in ("rename", "renameat", "renameat2"):
            if name == "rename":
                a, b = _path_arg(st, None, args[0]), _path_arg(st, None, args[1])
            else:
                a, b = _path_arg(st, args[0], args[1]), _path_arg(st, args[2], args[3])
            add("rename", a, b)
        elif name in ("mkdir", "mkdirat"):
            p = _path_arg(st, args[0] if name == "mkdirat" else None,
                          args[1] if name == "mkdirat" else args[0])
            add("mkdir", p)
        elif name == "rmdir":
            add("rmdir", _path_arg(st, None, args[0]))
        elif name == "ftruncate":
            fd, p = _fd(st, args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            add("ftruncate", fd, _int(args[1]))
        elif name == "truncate":
            add("truncate", _path_arg(st, None, args[0]), _int(args[1]))
        elif name == "fallocate":
            fd, p = _fd(st, args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            add("fallocate", fd, _int(args[2]), _int(args[3]))
        elif name in STATS or name in ("fstat", "fstat64"):
            if name in ("fstat", "fstat64"):
                fd, p = _fd(st, args[0])
            else:
                at = name in ("newfstatat", "statx", "faccessat", "faccessat2", "fstatat64")
                p = _path_arg(st, args[0] if at else None, args[1] if at else args[0])
            if p is None or _skip_path(p):
                tr.ignored[name] += 1
                return
            sm = re.search(r"st_size=(\d+)", ",".join(args)) or \
                re.search(r"stx_size=(\d+)", ",".join(args))
            if p not in tr.created:
                tr.existing.setdefault(p, 0)
                if sm:
                    tr.existing[p] = max(tr.existing[p], int(sm.group(1)))
            add("stat", p)
        elif name == "chdir":
            st.cwd = _path_arg(st, None, args[0])
        elif name == "fchdir":
            fd, p = _fd(st, args[0])
            if p:
                st.cwd = p
        elif name in ("mmap", "mmap2"):
            if len(args) >= 6 and "MAP_SHARED" in args[3] and "PROT_WRITE" in args[2]:
                fd, p = _fd(st, args[4])
                if p and not _skip_path(p):
                    st.maps[ret] = (p, int(args[5], 0), _int(args[1]))
                    add("mmap", fd, ret, int(args[5], 0), _int(args[1]))
                    return
            tr.ignored[name] += 1
        elif name in ("msync", "munmap"):
            addr = _int(args[0])
            if addr in st.maps:
                add("mmap_flush", addr, name == "msync")
                if name == "munmap":
                    st.maps.pop(addr, None)
            else:
                tr.ignored[name] += 1
        elif name in IGNORED:
            tr.ignored[name] += 1
        else:
            tr.unmodelled[name] += 1
    except (IndexError, ValueError) as e:
        raise InputError(f"{name}: unexpected arguments ({e})", path, lineno) from None


def _map(p: str) -> str:
    return ROOT + ("" if p == "/" else p)


def replay_body(ops: list[Op], speed: float, no_think: bool) -> Any:
    def body(sys: Any, rng: random.Random) -> Generator[Any, Any, None]:
        fdmap: dict[int, int] = {}
        maps: dict[int, tuple[int, int, int]] = {}
        prev_end = ops[0].start_ns if ops else 0
        for op in ops:
            gap = op.start_ns - prev_end
            prev_end = max(prev_end, op.end_ns)
            if gap > 0 and not no_think:
                yield from sys.nanosleep(int(gap / speed))
            k = op.kind
            a = op.args
            if k == "open":
                fd = yield from sys.open(_map(a[1]), a[2], 0o644)
                if fd >= 0:
                    fdmap[a[0]] = fd
            elif k in ("read", "write"):
                fd = fdmap.get(a[0], -1)
                if fd < 0:
                    continue
                if a[2] >= 0:
                    call = sys.pread if k == "read" else sys.pwrite
                    yield from call(fd, a[1], a[2])
                else:
                    yield from (sys.read if k == "read" else sys.write)(fd, a[1])
            elif k == "lseek" and a[0] in fdmap:
                yield from sys.lseek(fdmap[a[0]], a[1], 0)
            elif k in ("fsync", "fdatasync") and a[0] in fdmap:
                yield from getattr(sys, k)(fdmap[a[0]])
            elif k == "sync":
                yield from sys.sync()
            elif k == "close" and a[0] in fdmap:
                fd = fdmap.pop(a[0])
                if fd not in fdmap.values():
                    yield from sys.close(fd)
            elif k == "dup" and a[0] in fdmap:
                fdmap[a[1]] = fdmap[a[0]]
            elif k == "unlink":
                yield from sys.unlink(_map(a[0]))
            elif k == "rmdir":
                yield from sys.rmdir(_map(a[0]))
            elif k == "rename":
                yield from sys.rename(_map(a[0]), _map(a[1]))
            elif k == "mkdir":
                yield from sys.mkdir(_map(a[0]), 0o755)
            elif k == "ftruncate" and a[0] in fdmap:
                yield from sys.ftruncate(fdmap[a[0]], a[1])
            elif k == "truncate":
                yield from sys.truncate(_map(a[0]), a[1])
            elif k == "fallocate" and a[0] in fdmap:
                yield from sys.fallocate(fdmap[a[0]], a[1], a[2])
            elif k == "stat":
                yield from sys.stat(_map(a[0]))
            elif k == "mmap" and a[0] in fdmap:
                maps[a[1]] = (fdmap[a[0]], a[2], a[3])
            elif k == "mmap_flush" and a[0] in maps:
                fd, off, length = maps[a[0]]
                yield from sys.mmap_write(fd, off, length)
                if a[1]:
                    yield from sys.msync(fd, off, length)
    return body


def to_scenario(path: str, text: str | None = None, speed: float = 1.0,
                no_think: bool = False) -> Scenario:
    tr = parse(path, text)
    if not tr.procs:
        raise InputError("no file system calls found in the log", path, 0)
    procs = []
    for pid, ops in tr.procs.items():
        if not ops:
            continue
        procs.append(ProcessSpec(f"pid{pid}", replay_body(ops, speed, no_think),
                                 int(ops[0].start_ns / speed) if not no_think else 0))
    dirs: set[str] = set()
    for p in [*tr.existing, *tr.created]:
        d = PurePosixPath(p).parent
        while d != d.parent:    # "/" and "." are their own parents
            dirs.add(str(d))
            d = d.parent
    setup = [SetupItem(_map(d), 0, True) for d in sorted(dirs, key=lambda x: (x.count("/"), x))]
    setup.insert(0, SetupItem(ROOT, 0, True))
    setup.extend(SetupItem(_map(p), size) for p, size in sorted(tr.existing.items())
                 if p not in dirs and p != "/")
    end = max((op.end_ns for ops in tr.procs.values() for op in ops), default=0)
    warnings = []
    if tr.unmodelled:
        warnings.append(f"{path}: calls not modelled: " + ", ".join(
            f"{n} x{c}" for n, c in tr.unmodelled.most_common()))
    sc = Scenario(f"strace:{PurePosixPath(path).name}", f"replay of {path}", procs, setup,
                  duration_s=max(1.0, end / S / speed + 5.0), warnings=warnings)
    sc.notes.update({"unmodelled": dict(tr.unmodelled), "ignored": dict(tr.ignored),
                     "failed": dict(tr.failed), "lines": tr.lines,
                     "created": sorted(tr.created), "existing": dict(tr.existing)})
    return sc
