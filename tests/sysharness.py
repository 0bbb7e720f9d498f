"""Boot a whole machine (disk, file system, daemons) and run a process body against the
system-call interface, for tests of the storage stack end to end."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from typing import Any

from vfslab.kern.init_main import Kernel, KernelConfig, vfs_unmountall
from vfslab.kern.kern_proc import Proc, ProcSyscalls
from vfslab.machine import boot

NS = 1_000_000_000


def run_body(body: Callable[[ProcSyscalls], Generator[Any, Any, Any]],
             store: dict[int, Any] | None = None, until_s: float = 600.0,
             **cfg: Any) -> tuple[Kernel, Any]:
    """Boot (mkfs'ing unless `store`), run `body(sys)` in a process, then unmount cleanly."""
    cfg.setdefault("fs_blocks", 1 << 14)
    cfg.setdefault("fs_inodes", 1024)
    cfg.setdefault("disk", "ssd")
    out: dict[str, Any] = {}

    def then(k: Kernel) -> Generator[Any, Any, None]:
        proc = Proc(1, "test")
        k.procs.append(proc)
        sys = ProcSyscalls(k, proc)
        out["rv"] = yield from body(sys)
        yield from k.syscalls.close_all(proc.p_fd)
        out["umount"] = yield from vfs_unmountall(k)
        out["done"] = True

    k = boot(KernelConfig(**cfg), store=store, then=then)
    k.m.run(until=int(until_s * NS))
    assert out.get("done"), "the test process did not finish"
    assert out["umount"] == 0
    return k, out["rv"]


def stamps_of(sys: ProcSyscalls, fd: int, size: int) -> Generator[Any, Any, list[int]]:
    """The version stamps of a file's pages, read through the page cache."""
    k = sys.k
    vp = sys.fdp.fd_ofiles[fd].f_vp
    got: list[int] = yield from k.ubc.stamps(vp, 0, size)
    return got


def rng() -> random.Random:
    return random.Random(0)


def stat_size(k: Kernel, path: str) -> int:
    """stat(2) of `path` on a machine whose run has ended: the size, or a negative errno."""
    out: dict[str, int] = {}
    sysc = ProcSyscalls(k, Proc(999, "stat"))

    def body() -> Generator[Any, Any, None]:
        out["size"] = yield from sysc.stat(path)

    k.m.spawn("stat", body())
    k.m.run(until=k.m.now + 10**9)
    return out["size"]
