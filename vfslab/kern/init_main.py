"""Booting the emulated kernel (sys/kern/init_main.c): build the subsystems of one machine,
attach the disk, mount the file system and start the kernel threads.

`Kernel` is the one object that knows every subsystem; each subsystem keeps a reference to it
(`self.k`) and reaches the others through it, as NetBSD code reaches globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vfslab.kern.lock import LockOps
from vfslab.kern.vnode import vnode
from vfslab.sim.costs import CostModel
from vfslab.sim.engine import Engine


@dataclass
class KernelConfig:
    """Everything that shapes one emulated machine. Scenario files and `--set` fill it."""

    ncpus: int = 1
    seed: int = 0
    hz: int = 100
    irq_stress: float = 0.0
    protocol: str = "netbsd-2.0"
    policy: str = "syncer"
    policy_options: dict[str, Any] = field(default_factory=dict)
    physmem_mb: int = 256           # page-cache memory (uvmexp.npages)
    bufcache_pct: int = 15          # buffer cache high-water mark, % of physmem (2.0 default)
    maxvnodes: int = 2048
    disk: str = "hdd"
    disk_options: dict[str, Any] = field(default_factory=dict)
    disk_queue: str = "disksort"
    intr_cpu: int = 0
    fs_blocks: int = 1 << 20        # 4 GiB of 4 KiB blocks
    fs_inodes: int = 65536
    mount_async: bool = False
    invariants: bool = False        # DIAGNOSTIC: check the stack's invariants as it runs
    costs: CostModel = field(default_factory=CostModel)
    syncdelay: int = 30
    filedelay: int = 30
    dirdelay: int = 29
    metadelay: int = 28


class mount:  # noqa: N801  (struct mount)
    """struct mount: one mounted file system."""

    def __init__(self, fs: Any, async_: bool) -> None:
        self.fs = fs
        self.async_ = async_          # MNT_ASYNC
        self.mnt_vnodelist: dict[vnode, None] = {}


class Kernel:
    """One emulated machine's kernel."""

    def __init__(self, cfg: KernelConfig) -> None:
        from vfslab.kern.protocols import make_protocol
        from vfslab.kern.uvm_page import Uvm
        from vfslab.kern.vfs_bio import BufCache
        from vfslab.kern.vfs_subr import VfsSubr
        from vfslab.kern.vfs_syncer import Syncer

        self.cfg = cfg
        self.m = Engine(ncpus=cfg.ncpus, seed=cfg.seed, costs=cfg.costs,
                        irq_stress=cfg.irq_stress, hz=cfg.hz)
        self.locks = LockOps(self.m)
        self.lbolt = object()         # &lbolt: woken once a second by the clock
        self.vfs = VfsSubr(self, cfg.maxvnodes)
        self.proto = make_protocol(cfg.protocol, self)
        physmem_pages = cfg.physmem_mb * 256
        self.uvm = Uvm(self, physmem_pages)
        self.bio = BufCache(self, physmem_pages, cfg.bufcache_pct)
        self.syncer = Syncer(self, cfg.syncdelay, cfg.filedelay, cfg.dirdelay, cfg.metadelay)
        # attached by machine.attach():
        self.policy: Any = None
        self.disk: Any = None
        self.genfs: Any = None
        self.ubc: Any = None
        self.aiodone: Any = None
        self.pdaemon: Any = None
        self.syscalls: Any = None
        self.metrics: Any = None
        self.invariants: Any = None
        self.journal: Any = None      # crash tests: what the workload wrote and fsync'd
        self.rootfs: Any = None
        self.mounts: list[mount] = []
        self._stamp = 0
        self.procs: list[Any] = []

    def fs_of(self, vp: vnode) -> Any:
        """The file system whose vnode operations serve vp (spec_fsync for the device vnode
        is the mounted file system's fsync of a VBLK vnode)."""
        mp = vp.v_mount if vp.v_mount is not None else vp.v_specmountpoint
        return mp.fs if mp is not None else None

    def next_stamp(self, ino: int) -> int:
        """A version stamp for data written now: unique, increasing, tagged with the inode so
        a block read back after a crash tells whose data it holds."""
        self._stamp += 1
        return (self._stamp << 24) | (ino & 0xFFFFFF)

    @staticmethod
    def stamp_ino(stamp: int) -> int:
        return stamp & 0xFFFFFF

    @staticmethod
    def stamp_seq(stamp: int) -> int:
        return stamp >> 24
