"""Assemble and boot one emulated machine: engine, kernel subsystems, disk, file system, and
the kernel threads (aiodoned, the page daemon, the writeback policy's daemons).

`boot` returns the Kernel with an init thread scheduled; running the engine mounts the file
system, runs the setup steps, and then starts the workload processes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from typing import Any

from vfslab.kern.init_main import Kernel, KernelConfig
from vfslab.kern.vnode import VBLK
from vfslab.sim.callout import periodic

NS = 1_000_000_000


def attach(k: Kernel, store: dict[int, Any] | None = None) -> None:
    """Build the subsystems and attach the disk (mkfs'ing a fresh image unless `store`)."""
    from vfslab.dev import make_disk
    from vfslab.fs.ufs_layout import mkfs
    from vfslab.kern.genfs_vnops import Genfs
    from vfslab.kern.uvm_bio import Ubc
    from vfslab.kern.uvm_pager import AioDone
    from vfslab.kern.uvm_pdaemon import PageDaemon
    from vfslab.kern.vfs_syscalls import Syscalls
    from vfslab.metrics.collector import Metrics
    from vfslab.policy import make_policy

    cfg = k.cfg
    k.genfs = Genfs(k)
    k.ubc = Ubc(k)
    k.aiodone = AioDone(k)
    k.pdaemon = PageDaemon(k)
    k.syscalls = Syscalls(k)
    k.metrics = Metrics(k)
    k.policy = make_policy(cfg.policy, k, cfg.policy_options)
    disk = make_disk(k.m, kind=cfg.disk, iodone=k.bio.biodone, queue=cfg.disk_queue,
                     intr_cpu=cfg.intr_cpu, nblocks=cfg.fs_blocks, **cfg.disk_options)
    if store is None:
        mkfs(disk.store, cfg.fs_blocks, cfg.fs_inodes)
    else:
        disk.store = store
    k.disk = disk
    k.bio.strategy = disk.strategy
    if cfg.invariants:
        from vfslab.kern.diagnostic import Invariants

        k.invariants = Invariants(k)


def mount_root(k: Kernel) -> Generator[Any, Any, int]:
    """Create the device vnode and mount the file system on it (in a thread)."""
    from vfslab.fs.ufs import FFS

    devvp = yield from k.vfs.getnewvnode("spec", None)
    devvp.v_type = VBLK
    fs = FFS(k, devvp, k.cfg.fs_blocks)
    err: int = yield from fs.mount(k.cfg.mount_async)
    if err:
        return err
    k.rootfs = fs
    return 0


def start_daemons(k: Kernel) -> None:
    k.aiodone.start()
    k.pdaemon.start()
    k.policy.start()
    periodic(k.m, NS, lambda _: k.m.wakeup(k.lbolt), name="lbolt")
    periodic(k.m, NS // 10, lambda _: roundrobin(k), name="roundrobin")


def roundrobin(k: Kernel) -> None:
    """hardclock's roundrobin(): every 100 ms, a CPU-bound process yields to runnable ones at
    its next return to user mode."""
    if k.m.runq:
        for cpu in k.m.cpus:
            if cpu.running is not None:
                cpu.want_resched = True


def boot(cfg: KernelConfig, store: dict[int, Any] | None = None,
         then: Callable[[Kernel], Generator[Any, Any, Any]] | None = None) -> Kernel:
    """Boot a machine; `then(k)` runs in the init thread once the root is mounted."""
    k = Kernel(cfg)
    attach(k, store)
    start_init(k, then)
    return k


def start_init(k: Kernel, then: Callable[[Kernel], Generator[Any, Any, Any]] | None) -> None:
    """Schedule the init thread: mount root, start the daemons, then `then(k)`."""

    k.proto.start()         # biodoned must run before the first I/O completes

    def init() -> Generator[Any, Any, None]:
        err = yield from mount_root(k)
        if err:
            raise k.vfs.panic(f"cannot mount root: error {err}")
        start_daemons(k)
        if then is not None:
            yield from then(k)

    k.m.spawn("init", init())


def rng_for(k: Kernel, name: str) -> random.Random:
    return k.m.random(f"proc:{name}")
