"""Processes (sys/kern/kern_proc.c): an emulated process is a kernel thread running a workload
body against `ProcSyscalls`, its view of the system call interface.

Each call enters the kernel (charging the trap), runs, and returns to user mode through
`userret`: the validator checks no lock or raised spl leaks out, the latency is recorded, and
the process yields the CPU if a sleeping thread was woken meanwhile (BSD's need_resched).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from vfslab.kern.fcntl import ECHILD
from vfslab.kern.kern_descrip import cwdinfo, filedesc
from vfslab.kern.kern_waits import describe_wait
from vfslab.kern.notify import CallRecord
from vfslab.sim.context import Thread

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

GEN = Generator[Any, Any, int]


class Proc:
    """struct proc: a pid, a name, descriptors, its LWP and its counters."""

    def __init__(self, pid: int, name: str) -> None:
        self.p_pid = pid
        self.p_comm = name
        self.p_fd = filedesc()
        self.p_cwdi = cwdinfo()          # the root until chdir (cwdi_cdir None: rootvnode)
        self.thread: Thread | None = None
        self.nsyscalls = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.errors = 0
        self.exited = False


class ProcSyscalls:
    """The system-call interface one process sees (implements workload.sysapi.SyscallAPI)."""

    def __init__(self, k: Kernel, proc: Proc) -> None:
        self.k = k
        self.m = k.m
        self.proc = proc
        self.sc = k.syscalls
        self.fdp = proc.p_fd
        self.notify = k.notify
        self._target = ""               # what the call in progress is on (per-call records)
        self._off = -1

    def now(self) -> int:
        return self.m.time()

    def _enter(self, target: str | int = "", off: int = -1) -> int:
        m = self.m
        m.charge(m.costs.syscall)
        self.proc.nsyscalls += 1
        return self._begin(target, off)

    def _begin(self, target: str | int, off: int) -> int:
        """Note what the call is on, for a per-call record (if anyone keeps them)."""
        if self.notify.syscall_record:
            if isinstance(target, int):
                fp = self.fdp.fd_ofiles.get(target)
                target = fp.f_path if fp is not None else f"fd {target}"
                if off < 0 and fp is not None:
                    off = fp.f_offset
            self._target = target
            self._off = off
            td = self.m.cur
            if isinstance(td, Thread):
                td.wait_ns = 0
        return self.m.time()

    def _leave(self, op: str, start: int, rv: int, call: str = ""
               ) -> Generator[Any, Any, None]:
        """`op` is the call's kind in the latency summary (fdatasync and msync count as
        fsync there); `call` its own name in the per-call record."""
        m = self.m
        if rv < 0:
            self.proc.errors += 1
        end = m.time()
        for f in self.notify.syscall_done:
            f(op, start, end, rv)
        if self.notify.syscall_record:
            td = m.cur
            wait_ns = 0
            wait = ""
            if isinstance(td, Thread) and td.wait_ns:
                wait_ns = td.wait_ns
                wait = describe_wait(td.wait_wmesg, td.wait_chan)
            nbytes = rv if rv > 0 and op in ("read", "write", "mmap_write") else 0
            rec = CallRecord(self.proc.p_pid, self.proc.p_comm, call or op, self._target,
                             self._off, nbytes, rv, start, end, wait_ns, wait)
            for g in self.notify.syscall_record:
                g(rec)
        inv = self.k.invariants
        if inv is not None:
            inv.after_syscall()
        if m.checker is not None:
            m.checker.on_userret(m.cur)
        if m.want_resched():
            yield from m.yield_cpu()

    # ---- the calls --------------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int = 0o644) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_open(self.fdp, path, flags, mode, self.proc.p_cwdi)
        yield from self._leave("open", t, rv)
        return rv

    def close(self, fd: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_close(self.fdp, fd)
        yield from self._leave("close", t, rv)
        return rv

    def read(self, fd: int, n: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_read(self.fdp, fd, n)
        if rv > 0:
            self.proc.bytes_read += rv
        yield from self._leave("read", t, rv)
        return rv

    def write(self, fd: int, n: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_write(self.fdp, fd, n)
        if rv > 0:
            self.proc.bytes_written += rv
        yield from self._leave("write", t, rv)
        return rv

    def pread(self, fd: int, n: int, off: int) -> GEN:
        t = self._enter(fd, off)
        rv = yield from self.sc.sys_read(self.fdp, fd, n, off) if off >= 0 else _einval()
        if rv > 0:
            self.proc.bytes_read += rv
        yield from self._leave("read", t, rv, "pread")
        return rv

    def pwrite(self, fd: int, n: int, off: int) -> GEN:
        t = self._enter(fd, off)
        rv = yield from self.sc.sys_write(self.fdp, fd, n, off) if off >= 0 else _einval()
        if rv > 0:
            self.proc.bytes_written += rv
        yield from self._leave("write", t, rv, "pwrite")
        return rv

    def lseek(self, fd: int, off: int, whence: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_lseek(self.fdp, fd, off, whence)
        yield from self._leave("lseek", t, rv)
        return rv

    def _fsync_mark(self) -> int:
        return self.notify.writes

    def _journal_fsync(self, fd: int, rv: int, mark: int, first: int = 0,
                       last: int = 1 << 62) -> None:
        """A completed fsync/fdatasync/msync promises the writes made before `mark`; one
        that failed tells the program they may not be on disk (journaled too)."""
        fp = self.fdp.fd_ofiles.get(fd)
        if fp is not None and fp.f_vp is not None:
            self.notify.synced(fp.f_vp, mark, self.m.time(), first, last,
                               error=abs(rv) if rv < 0 else 0)

    def fsync(self, fd: int) -> GEN:
        t = self._enter(fd)
        mark = self._fsync_mark()
        rv = yield from self.sc.sys_fsync(self.fdp, fd, False)
        self._journal_fsync(fd, rv, mark)
        yield from self._leave("fsync", t, rv)
        return rv

    def fdatasync(self, fd: int) -> GEN:
        t = self._enter(fd)
        mark = self._fsync_mark()
        rv = yield from self.sc.sys_fsync(self.fdp, fd, True)
        self._journal_fsync(fd, rv, mark)
        yield from self._leave("fsync", t, rv, "fdatasync")
        return rv

    def sync(self) -> GEN:
        t = self._enter()
        rv = yield from self.sc.sys_sync()
        yield from self._leave("sync", t, rv)
        return rv

    def unlink(self, path: str) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_unlink(path, cwd=self.proc.p_cwdi)
        yield from self._leave("unlink", t, rv)
        return rv

    def rename(self, old: str, new: str) -> GEN:
        t = self._enter(old)
        rv = yield from self.sc.sys_rename(old, new, cwd=self.proc.p_cwdi)
        yield from self._leave("rename", t, rv)
        return rv

    def link(self, path: str, new: str) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_link(path, new, cwd=self.proc.p_cwdi)
        yield from self._leave("link", t, rv)
        return rv

    def chdir(self, path: str) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_chdir(path, self.proc.p_cwdi)
        yield from self._leave("chdir", t, rv)
        return rv

    def mkdir(self, path: str, mode: int = 0o755) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_mkdir(path, mode, cwd=self.proc.p_cwdi)
        yield from self._leave("mkdir", t, rv)
        return rv

    def rmdir(self, path: str) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_rmdir(path, cwd=self.proc.p_cwdi)
        yield from self._leave("rmdir", t, rv)
        return rv

    def stat(self, path: str) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_stat(path, cwd=self.proc.p_cwdi)
        yield from self._leave("stat", t, rv)
        return rv

    def lstat(self, path: str) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_stat(path, cwd=self.proc.p_cwdi, follow=False)
        yield from self._leave("stat", t, rv, "lstat")
        return rv

    def symlink(self, target: str, path: str) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_symlink(target, path, cwd=self.proc.p_cwdi)
        yield from self._leave("symlink", t, rv)
        return rv

    def readlink(self, path: str, n: int) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_readlink(path, n, cwd=self.proc.p_cwdi)
        yield from self._leave("readlink", t, rv)
        return rv

    def fstat(self, fd: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_fstat(self.fdp, fd)
        yield from self._leave("stat", t, rv, "fstat")
        return rv

    def ftruncate(self, fd: int, length: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_ftruncate(self.fdp, fd, length)
        yield from self._leave("truncate", t, rv)
        return rv

    def truncate(self, path: str, length: int) -> GEN:
        t = self._enter(path)
        rv = yield from self.sc.sys_truncate(path, length, cwd=self.proc.p_cwdi)
        yield from self._leave("truncate", t, rv)
        return rv

    def fallocate(self, fd: int, off: int, length: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_fallocate(self.fdp, fd, off, length)
        yield from self._leave("fallocate", t, rv)
        return rv

    def getdents(self, fd: int, n: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_getdents(self.fdp, fd, n)
        yield from self._leave("getdents", t, rv)
        return rv

    def setattr(self, path: str, what: str, mode: int = -1, follow: bool = True) -> GEN:
        """utimes (what "utimes"), chmod ("chmod", `mode`) or chown ("chown") of a path;
        with `follow` False, of a symbolic link itself (lutimes, lchmod, lchown)."""
        t = self._enter(path)
        rv = yield from self.sc.sys_setattr(path, self._attrs(what, mode),
                                            cwd=self.proc.p_cwdi, follow=follow)
        yield from self._leave(what, t, rv)
        return rv

    def fsetattr(self, fd: int, what: str, mode: int = -1) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_fsetattr(self.fdp, fd, self._attrs(what, mode))
        yield from self._leave(what, t, rv)
        return rv

    def _attrs(self, what: str, mode: int) -> dict[str, int]:
        if what == "utimes":
            return {"mtime": self.m.time()}
        if what == "chmod":
            return {"mode": max(0, mode)}
        return {"uid": 0}

    def dup(self, fd: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_dup(self.fdp, fd)
        yield from self._leave("dup", t, rv)
        return rv

    def dup2(self, fd: int, newfd: int) -> GEN:
        t = self._enter(fd)
        rv = yield from self.sc.sys_dup2(self.fdp, fd, newfd)
        yield from self._leave("dup", t, rv)
        return rv

    def mmap_write(self, fd: int, off: int, length: int) -> GEN:
        t = self._begin(fd, off)
        rv = yield from self.sc.sys_mmap_write(self.fdp, fd, off, length)
        if rv > 0:
            self.proc.bytes_written += rv
        yield from self._leave("mmap_write", t, rv)
        return rv

    def msync(self, fd: int, off: int, length: int) -> GEN:
        t = self._enter(fd, off)
        mark = self._fsync_mark()
        rv = yield from self.sc.sys_msync(self.fdp, fd, off, length)
        if length > 0:
            self._journal_fsync(fd, rv, mark, off >> 12, (off + length - 1) >> 12)
        yield from self._leave("fsync", t, rv, "msync")
        return rv

    def fork(self, flags: int, name: str,
             body: Callable[[ProcSyscalls, random.Random], Generator[Any, Any, Any]],
             rng: random.Random) -> GEN:
        """fork1: a child process running `body`, with this one's descriptors and directory
        shared or copied by `flags` (kern_fork.FORK_SHAREFILES, FORK_SHARECWD). Returns the
        child's pid."""
        from vfslab.kern.kern_fork import fork1

        t = self._enter(name)
        k = self.k
        child = Proc(len(k.procs) + 1, name)
        k.procs.append(child)
        fork1(k, self.proc, flags, child)
        _start(k, child, body, rng)
        yield from self._leave("fork", t, child.p_pid)
        return child.p_pid

    def wait(self, pid: int) -> GEN:
        """wait4 for the child `pid`: sleeps until it has exited (exit1 wakes it); ECHILD
        if there is no such process."""
        t = self._enter()
        child = next((p for p in self.k.procs if p.p_pid == pid), None)
        if child is None:
            rv = -ECHILD
        else:
            while not child.exited:
                yield from self.m.tsleep(child, "wait", 0)
            rv = pid
        yield from self._leave("wait", t, rv)
        return rv

    def user_wait(self, key: object, why: str) -> GEN:
        """Sleep until `user_wake(key)`: a workload's own synchronisation between its
        processes (a futex, in effect), not a system call vfslab measures."""
        yield from self.m.tsleep(key, why[:8], 0)
        return 0

    def user_wake(self, key: object) -> None:
        self.m.wakeup(key)

    def nanosleep(self, ns: int) -> GEN:
        if ns > 0:
            self._enter()
            yield from self.m.tsleep(self, "nanoslp", ns)
        return 0

    def compute(self, ns: int) -> GEN:
        """User-mode CPU time: charged on the CPU, yielding it at quantum boundaries."""
        m = self.m
        left = ns
        quantum = m.tick_ns
        while left > 0:
            step = min(left, quantum)
            m.charge(step)
            left -= step
            if m.want_resched() or left > 0:
                yield from m.yield_cpu()
        return 0


def _einval() -> GEN:
    yield from ()
    return -22


def spawn_process(k: Kernel, name: str,
                  body: Callable[[ProcSyscalls, random.Random], Generator[Any, Any, Any]],
                  rng: random.Random, start_ns: int = 0) -> Proc:
    """Create a process running `body(sys, rng)`; it starts `start_ns` after now."""
    proc = Proc(len(k.procs) + 1, name)
    k.procs.append(proc)
    _start(k, proc, body, rng, start_ns)
    return proc


def _start(k: Kernel, proc: Proc,
           body: Callable[[ProcSyscalls, random.Random], Generator[Any, Any, Any]],
           rng: random.Random, start_ns: int = 0) -> None:
    sys = ProcSyscalls(k, proc)

    def main() -> Generator[Any, Any, None]:
        if start_ns > 0:
            yield from k.m.tsleep(proc, "start", start_ns)
        yield from body(sys, rng)
        yield from exit1(k, proc)

    proc.thread = k.m.spawn(proc.p_comm, main(), proc)


def exit1(k: Kernel, proc: Proc) -> Generator[Any, Any, None]:
    """Process exit (kern_exit.c): the last process of a shared descriptor table closes its
    files (fdfree), the last of a shared directory releases it (cwdfree)."""
    fdp = proc.p_fd
    fdp.fd_refcnt -= 1
    if fdp.fd_refcnt == 0:
        yield from k.syscalls.close_all(fdp)
    cwdi = proc.p_cwdi
    cwdi.cwdi_refcnt -= 1
    if cwdi.cwdi_refcnt == 0:
        cdir, cwdi.cwdi_cdir = cwdi.cwdi_cdir, None
        if cdir is not None:
            yield from k.vfs.vrele(cdir)
    proc.exited = True
    k.m.wakeup(proc)                  # a parent in wait4
