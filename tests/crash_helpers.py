"""Workloads for crash tests, built from a list of operations (what hypothesis generates)."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

from vfslab.crash.crashtest import crash_at, recorded_run
from vfslab.crash.image import Cutter
from vfslab.crash.journal import JournalState
from vfslab.kern.fcntl import O_CREAT, O_RDWR, O_SYNC, O_TRUNC
from vfslab.runner import RunConfig
from vfslab.scenario import ProcessSpec, Scenario

NS = 1_000_000_000
PAGE = 4096
FILES = ("/a", "/b", "/d/c", "/d/e")
SMALL = {"fs_blocks": 1 << 14, "fs_inodes": 512, "physmem_mb": 32, "disk": "hdd"}


def body_of(ops: list[tuple[Any, ...]]) -> Any:
    """A process body running `ops`: (op, file index, a, b)."""

    def body(sys: Any, rng: random.Random) -> Generator[Any, Any, None]:
        yield from sys.mkdir("/d", 0o755)
        fds: dict[int, int] = {}

        def fd_of(i: int, flags: int = 0) -> Generator[Any, Any, int]:
            if i not in fds:
                fd = yield from sys.open(FILES[i], O_RDWR | O_CREAT | flags, 0o644)
                if fd < 0:
                    return fd
                fds[i] = fd
            return fds[i]

        for op, i, a, b in ops:
            if op == "sleep":
                yield from sys.nanosleep(a * 1_000_000)
                continue
            if op in ("unlink", "rename"):
                if i in fds:
                    yield from sys.close(fds.pop(i))
                if op == "unlink":
                    yield from sys.unlink(FILES[i])
                else:
                    if b in fds:
                        yield from sys.close(fds.pop(b))
                    yield from sys.rename(FILES[i], FILES[b])
                continue
            if op == "trunc_open":
                if i in fds:
                    yield from sys.close(fds.pop(i))
                yield from fd_of(i, O_TRUNC)
                continue
            if op == "osync_write":
                if i in fds:
                    yield from sys.close(fds.pop(i))
                fd = yield from fd_of(i, O_SYNC)
                if fd >= 0:
                    yield from sys.pwrite(fd, b * PAGE, a * PAGE)
                    yield from sys.close(fds.pop(i))
                continue
            fd = yield from fd_of(i)
            if fd < 0:
                continue
            if op == "write":
                yield from sys.pwrite(fd, b * PAGE - (a % 3) * 100, a * PAGE + (a % 2) * 17)
            elif op == "fsync":
                yield from sys.fsync(fd)
            elif op == "fdatasync":
                yield from sys.fdatasync(fd)
            elif op == "truncate":
                yield from sys.ftruncate(fd, a * PAGE + 5)
        for fd in fds.values():
            yield from sys.close(fd)

    return body


def scenario_of(ops: list[list[tuple[Any, ...]]], duration_s: float,
                kernel: dict[str, Any] | None = None) -> Scenario:
    procs = [ProcessSpec(f"p{n}", body_of(o)) for n, o in enumerate(ops)]
    return Scenario("ops", "generated crash-test workload", procs, duration_s=duration_s,
                    kernel=dict(SMALL, **(kernel or {})))


def crash_many(cfg: RunConfig, fractions: list[float], tear: bool = True,
               mount: bool = False) -> tuple[Any, list[Any]]:
    """Record a run and crash it at the given fractions of its busy part: until the policy's
    bound has passed since the workload's last write, fsync, truncate or unlink, so that data
    (and the metadata that makes it reachable) written late by the policy is crashed too."""
    res = recorded_run(cfg)
    t0 = res.t0_ns
    last = max((e[0] for e in res.kernel.journal.events), default=t0)
    pol = res.kernel.policy
    tail = int((pol.window_s() + 2 * pol.period_s()) * NS)
    span = min(res.kernel.m.now, last + tail) - t0
    cutter = Cutter(res.kernel.disk.log)
    state = JournalState(res.kernel.journal)
    rng = random.Random(1)
    outs = [crash_at(res, cutter, state, t0 + int(f * span), tear, rng, mount, True)
            for f in sorted(fractions)]
    return res, outs
