"""Booting the emulated kernel (sys/kern/init_main.c): build the subsystems of one machine,
attach the disk, mount the file system and start the kernel threads.

`Kernel` is the one object that knows every subsystem; each subsystem keeps a reference to it
(`self.k`) and reaches the others through it, as NetBSD code reaches globals.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vfslab.kern.lock import LockOps
from vfslab.kern.notify import Notify
from vfslab.kern.vnode import vnode
from vfslab.sim.costs import CostModel
from vfslab.sim.engine import Engine

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.diagnostic import Invariants


class DiskStats(Protocol):
    bytes_read: int
    bytes_written: int
    reads: int
    writes: int


class BlockDevice(Protocol):
    """What the kernel needs of a disk driver (bdevsw): a strategy routine whose completion
    interrupt calls biodone, and its counters."""

    stats: DiskStats
    store: dict[int, Any]

    def strategy(self, bp: buf) -> None: ...


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


class VfsOps(Protocol):
    """struct vfsops, as much of it as mounting the root needs: VFS_MOUNTROOT."""

    def mountroot(self, k: Kernel, devvp: vnode, async_: bool) -> Any: ...


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
        self.notify = Notify()        # the observers' vector (bioops): policies, journal, metrics
        self.nthrottled = 0           # writers paused at their throttle point now
        self.vfs = VfsSubr(self, cfg.maxvnodes)
        self.proto = make_protocol(cfg.protocol, self)
        physmem_pages = cfg.physmem_mb * 256
        self.uvm = Uvm(self, physmem_pages)
        self.bio = BufCache(self, physmem_pages, cfg.bufcache_pct)
        self.syncer = Syncer(self, cfg.syncdelay, cfg.filedelay, cfg.dirdelay, cfg.metadelay)
        # attached by vfslab.machine (the kernel calls none of the observers among them: it
        # reaches them through self.notify; they are kept here for whoever assembled them)
        self.disk: Any = None         # the BlockDevice; the kernel uses only bio.bdev_strategy
        self.invariants: Invariants | None = None
        self.policy: Any = None       # the writeback policy (an observer; vfslab.policy)
        self.metrics: Any = None      # the run's measurements (an observer; vfslab.metrics)
        self.journal: Any = None      # crash tests: what was written and promised (an observer)
        self.rootfs: Any = None
        self.mounts: list[mount] = []
        # the file systems this kernel knows (vfs_init.c's vfs_list), by name
        self.vfs_list: dict[str, VfsOps] = {}
        self.rootfstype = "ffs"
        # kernel threads the assembly adds to main()'s kthread_create list (policy daemons)
        self.boot_kthreads: list[Callable[[], None]] = []
        self._stamp = 0
        self.procs: list[Any] = []
        from vfslab.kern.genfs_vnops import Genfs
        from vfslab.kern.uvm_bio import Ubc
        from vfslab.kern.uvm_pager import AioDone
        from vfslab.kern.uvm_pdaemon import PageDaemon
        from vfslab.kern.vfs_syscalls import Syscalls

        self.genfs = Genfs(self)
        self.ubc = Ubc(self)
        self.aiodone = AioDone(self)
        self.pdaemon = PageDaemon(self)
        self.syscalls = Syscalls(self)
        if cfg.invariants:
            from vfslab.kern.diagnostic import Invariants

            self.invariants = Invariants(self)

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


NS = 1_000_000_000


def kernel_main(k: Kernel, then: Callable[[Kernel], Generator[Any, Any, Any]] | None) -> None:
    """main() of init_main.c, from the point the machine is attached: start the protocol's
    own threads, then an init thread that mounts the root (vfs_mountroot), starts the kernel
    threads and runs `then(k)`."""
    from vfslab.sim.callout import periodic

    k.proto.start()         # biodoned must run before the first I/O completes

    def init() -> Generator[Any, Any, None]:
        err = yield from vfs_mountroot(k)
        if err:
            raise k.vfs.panic(f"cannot mount root: error {err}")
        k.aiodone.start()
        k.pdaemon.start()
        for start in k.boot_kthreads:
            start()
        periodic(k.m, NS, lambda _: k.m.wakeup(k.lbolt), name="lbolt")
        periodic(k.m, NS // 10, lambda _: roundrobin(k), name="roundrobin")
        if then is not None:
            yield from then(k)

    k.m.spawn("init", init())


def vfs_mountroot(k: Kernel) -> Generator[Any, Any, int]:
    """Create the root device's vnode (bdevvp) and mount the root file system on it
    (vfs_mountroot, kern/vfs_subr.c 1.218: each vfsops' mountroot in turn; here the one named
    by `rootfstype`)."""
    from vfslab.kern.vnode import VBLK

    ops = k.vfs_list.get(k.rootfstype)
    if ops is None:
        raise k.vfs.panic(f"vfs_mountroot: no file system {k.rootfstype!r} configured")
    devvp = yield from k.vfs.getnewvnode("spec", None)
    devvp.v_type = VBLK
    err, fs = yield from ops.mountroot(k, devvp, k.cfg.mount_async)
    if err:
        return int(err)
    k.rootfs = fs
    return 0


def roundrobin(k: Kernel) -> None:
    """hardclock's roundrobin(): every 100 ms, a CPU-bound process yields to runnable ones at
    its next return to user mode."""
    if k.m.runq:
        for cpu in k.m.cpus:
            if cpu.running is not None:
                cpu.want_resched = True
