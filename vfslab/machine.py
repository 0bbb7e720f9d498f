"""Assemble and boot one emulated machine: which disk, which file system, which writeback
policy and which observers. This is the only place that knows all of them; the kernel
(`vfslab.kern`) is handed a block device, a file-system type in its vfs list, and observers on
its notification vector, and calls none of them by name.

`boot` returns the Kernel with an init thread scheduled; running the engine mounts the file
system, runs the setup steps, and then starts the workload processes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from typing import Any

from vfslab.dev import make_disk
from vfslab.fs import ffs_vnops  # noqa: F401  (FFS's vector; its modules declare ffs.*)
from vfslab.fs.ffs_vfsops import ffs_vfsops
from vfslab.fs.ufs_layout import mkfs
from vfslab.kern import genfs_vnops, uvm_pager, vfs_bio  # noqa: F401  (they declare genfs.*, uvm.*, bio.*)
from vfslab.kern.init_main import Kernel, KernelConfig, kernel_main
from vfslab.metrics.collector import Metrics
from vfslab.policy import make_policy
from vfslab.sim import stack

# emulated code outside vfslab.kern whose functions appear in call chains
stack.register_kernel_modules("vfslab.fs", "vfslab.dev", "vfslab.policy", "vfslab.workload",
                              "vfslab.scenario")
# a workload's code is the program's, not the kernel's; the disk's interrupt routine is where
# an interrupt context begins
stack.mark_modules("program", "vfslab.workload", "vfslab.scenario")
stack.mark_frames("context", "Disk.intr")


def attach(k: Kernel, store: dict[int, Any] | None = None) -> None:
    """Build the machine around a kernel: the disk (mkfs'ing a fresh image unless `store`),
    the file system type, the policy and the metrics (observers of the kernel)."""
    cfg = k.cfg
    k.metrics = Metrics(k)
    k.notify.attach(k.metrics)
    k.policy = make_policy(cfg.policy, k, cfg.policy_options)
    k.notify.attach(k.policy)
    k.boot_kthreads.append(k.policy.start)
    disk = make_disk(k.m, kind=cfg.disk, iodone=k.bio.biodone, queue=cfg.disk_queue,
                     intr_cpu=cfg.intr_cpu, nblocks=cfg.fs_blocks, queue_settings=cfg.sysctl,
                     **cfg.disk_options)
    if store is None:
        mkfs(disk.store, cfg.fs_blocks, cfg.fs_inodes)
    else:
        disk.store = store
    k.disk = disk
    k.bio.bdev_strategy = disk.strategy
    k.vfs_list["ffs"] = ffs_vfsops


def boot(cfg: KernelConfig, store: dict[int, Any] | None = None,
         then: Callable[[Kernel], Generator[Any, Any, Any]] | None = None) -> Kernel:
    """Boot a machine; `then(k)` runs in the init thread once the root is mounted."""
    k = Kernel(cfg)
    attach(k, store)
    start_init(k, then)
    return k


def start_init(k: Kernel, then: Callable[[Kernel], Generator[Any, Any, Any]] | None) -> None:
    """Schedule the init thread (kern/init_main.c's main, then init)."""
    kernel_main(k, then)


def rng_for(k: Kernel, name: str) -> random.Random:
    return k.m.random(f"proc:{name}")
