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
from vfslab.tunable import Tunable

if TYPE_CHECKING:
    # types of what the assembly attaches (not imported at run time: the kernel calls none)
    from vfslab.crash.journal import Journal
    from vfslab.kern.buf import buf
    from vfslab.kern.diagnostic import Invariants
    from vfslab.metrics.collector import Metrics
    from vfslab.policy.base import WritebackPolicy
    from vfslab.sim.context import Context


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
    irq_stress_mode: str = "next"    # sim/interrupts.py: "next" or "locked"
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
    # the syncer's delays: NetBSD's sync_subr.c (FreeBSD's are 29 and 28)
    syncdelay: int = 30
    filedelay: int = 30
    dirdelay: int = 15
    metadelay: int = 10
    # declared kernel settings by "scope.name" (vfslab.tunable.SETTINGS: ffs.write_behind, ...)
    sysctl: dict[str, Any] = field(default_factory=dict)


class VfsOps(Protocol):
    """struct vfsops: what the kernel asks of a file-system type (VFS_MOUNTROOT, VFS_ROOT,
    VFS_SYNC, VFS_UNMOUNT; VFS_VGET is the file system's own business here)."""

    def mountroot(self, k: Kernel, devvp: vnode, async_: bool
                  ) -> Generator[Any, Any, tuple[int, mount | None]]: ...

    def root(self, mp: mount) -> Generator[Any, Any, tuple[int, vnode | None]]: ...

    def sync(self, mp: mount, wait: bool, lazy: bool = False) -> Generator[Any, Any, int]: ...

    def unmount(self, mp: mount, force: bool = False) -> Generator[Any, Any, int]: ...


# The ranges of the machine's settings (`--set machine.NAME`, a scenario's [machine] table, a
# sweep's grid: all checked here, by vfslab.runner.kernel_config). Each says why its bound is.
MACHINE_SETTINGS: dict[str, Tunable] = {t.name: t for t in (
    Tunable("hz", int, 100, "clock interrupts a second (HZ)", unit="1/s", min=1, max=10_000),
    Tunable("physmem_mb", int, 256, "page-cache memory (uvmexp.npages)", unit="MiB", min=4,
            max=65_536),
    Tunable("bufcache_pct", int, 15, "buffer-cache high-water mark, percent of memory (2.0's "
            "BUFCACHE)", unit="%", min=1, max=95),
    Tunable("maxvnodes", int, 2048, "vnodes (desiredvnodes)", min=16, max=10_000_000),
    Tunable("disk", str, "hdd", "disk model: hdd (a 2004 7200 rpm ATA disk) or ssd"),
    Tunable("disk_queue", str, "disksort", "the driver's queue: disksort (2.0's C-LOOK), fifo, "
            "or mq-deadline (Linux's default for a rotating disk; tunables mq_deadline.*)"),
    Tunable("intr_cpu", int, 0, "the CPU the disk interrupts", min=0, max=63),
    Tunable("irq_stress_mode", str, "next", "with --irq-stress: next (the next posted "
            "interrupt arrives early at an interrupt point) or locked (inside a spin lock's "
            "critical section, the first interrupt due on this CPU arrives there: `vfslab "
            "hunt`'s strategy)", choices=("next", "locked")),
    # 32-bit block pointers in the dinode; the layout needs room for its metadata (runner)
    Tunable("fs_blocks", int, 1 << 20, "file-system blocks of 4 KiB", min=64,
            max=(1 << 32) - 1),
    # version stamps carry the inode number in 24 bits (Kernel.next_stamp)
    Tunable("fs_inodes", int, 65536, "inodes", min=32, max=(1 << 24) - 1),
    Tunable("mount_async", bool, False, "mount MNT_ASYNC (write-behind off, metadata delayed)"),
    Tunable("invariants", bool, False, "check the stack's invariants as it runs"),
    # vn_syncer_add_to_worklist clamps a delay to syncer_maxdelay - 2 = 30
    Tunable("syncdelay", int, 30, "seconds before a synced vnode is synced again", unit="s",
            min=0, max=30),
    Tunable("filedelay", int, 30, "seconds a dirty file waits on the wheel", unit="s", min=0,
            max=30),
    Tunable("dirdelay", int, 15, "seconds a dirty directory waits", unit="s", min=0, max=30),
    Tunable("metadelay", int, 10, "seconds the device vnode's metadata waits", unit="s",
            min=0, max=30),
)}
DISKS = ("hdd", "ssd")
QUEUES = ("disksort", "fifo", "mq-deadline")   # vfslab.dev.queues.NAMES


class mount:  # noqa: N801  (struct mount)
    """struct mount (sys/mount.h, 2.0): one mounted file system; `fs` is its private data
    (mnt_data: for FFS the ufsmount), `mnt_op` its type's vfsops. `mnt_vnodelist` (a LIST,
    insertion at the head: walked newest first) is guarded by mntvnode_slock; `mnt_lock` is
    vfs_busy's lock ("vfslock": shared while busy, drained by dounmount); `mnt_syncer` the
    mount's syncer vnode (miscfs/syncfs/sync_vnops.c)."""

    def __init__(self, fs: Any, async_: bool, mnt_op: VfsOps | None = None) -> None:
        from vfslab.kern.lock import lock

        self.fs = fs
        self.async_ = async_          # MNT_ASYNC
        self.mnt_op: Any = mnt_op
        self.mnt_vnodelist: dict[vnode, None] = {}
        self.mnt_lock = lock("mnt_lock", "vfslock")
        self.mnt_syncer: vnode | None = None
        self.unmounting = False       # IMNT_UNMOUNT
        self.unmounter: Context | None = None   # mnt_unmounter: the thread unmounting it


class Kernel:
    """One emulated machine's kernel."""

    @property
    def write_faults(self) -> bool:
        """Does the writeback policy need every store to fault (WritebackPolicy.write_faults)?"""
        pol = getattr(self, "policy", None)
        return bool(getattr(pol, "write_faults", False))

    @property
    def keeps_write_errors(self) -> bool:
        """Is a write error kept for the file's next fsync (bio.write_error=report or
        redirty, uvm.write_error=redirty; 2.0 keeps none)?"""
        return self.bio.report_errors or self.aiodone.redirty

    def __init__(self, cfg: KernelConfig) -> None:
        from vfslab.kern.pmap import Pmap
        from vfslab.kern.protocols import make_protocol
        from vfslab.kern.uvm_page import Uvm
        from vfslab.kern.vfs_bio import BufCache
        from vfslab.kern.vfs_subr import VfsSubr
        from vfslab.kern.vfs_syncer import Syncer

        self.cfg = cfg
        self.m = Engine(ncpus=cfg.ncpus, seed=cfg.seed, costs=cfg.costs,
                        irq_stress=cfg.irq_stress, hz=cfg.hz,
                        irq_stress_mode=cfg.irq_stress_mode)
        self.locks = LockOps(self.m)
        self.lbolt = object()         # &lbolt: woken once a second by the clock
        self.notify = Notify()        # the observers' vector (bioops): policies, journal, metrics
        self.nthrottled = 0           # writers paused at their throttle point now
        self.vfs = VfsSubr(self, cfg.maxvnodes)
        self.proto = make_protocol(cfg.protocol, self)
        physmem_pages = cfg.physmem_mb * 256
        self.uvm = Uvm(self, physmem_pages)
        self.pmap = Pmap(self)
        self.bio = BufCache(self, physmem_pages, cfg.bufcache_pct)
        from vfslab.kern.spec_vnops import spec_vnodeop
        from vfslab.kern.vfs_cache import NameCache

        self.namecache = NameCache(self, cfg.maxvnodes)
        self.spec_vnodeop = spec_vnodeop(self)
        self.rootvnode: vnode | None = None   # rootvnode: the root directory, referenced
        self.syncer = Syncer(self, cfg.syncdelay, cfg.filedelay, cfg.dirdelay, cfg.metadelay)
        from vfslab.kern.sync_vnops import SyncVnops

        self.syncvnops = SyncVnops(self)
        # attached by vfslab.machine (the kernel calls none of the observers among them: it
        # reaches them through self.notify; they are kept here for whoever assembled them)
        self.disk: Any = None         # the BlockDevice; the kernel uses only bio.bdev_strategy
        self.invariants: Invariants | None = None
        self.policy: WritebackPolicy    # the writeback policy (an observer)
        self.metrics: Metrics           # the run's measurements (an observer)
        self.journal: Journal | None = None   # crash tests: what was written and promised
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
    (vfs_mountroot, kern/vfs_subr.c of the netbsd-2-0 branch: each vfsops' mountroot in turn;
    here the one named by `rootfstype`)."""
    from vfslab.kern.vnode import VBLK

    ops = k.vfs_list.get(k.rootfstype)
    if ops is None:
        raise k.vfs.panic(f"vfs_mountroot: no file system {k.rootfstype!r} configured")
    _err, devvp = yield from k.vfs.getnewvnode("spec", None, k.spec_vnodeop)
    if devvp is None:
        raise k.vfs.panic("vfs_mountroot: no vnode for the root device")
    devvp.v_type = VBLK
    err, mp = yield from ops.mountroot(k, devvp, k.cfg.mount_async)
    if err or mp is None:
        return int(err) or 22
    err = yield from mount_syncer(k, mp)
    if err:
        return err
    return (yield from set_rootvnode(k, mp))


def mount_syncer(k: Kernel, mp: mount) -> Generator[Any, Any, int]:
    """A writable mount that is not MNT_ASYNC gets its syncer vnode (sys_mount, vfs_syscalls.c,
    2.0: `if ((mp->mnt_flag & (MNT_RDONLY | MNT_ASYNC)) == 0) vfs_allocate_syncvnode(mp)`;
    2.0 mounts the root read-only and rc's `mount -uw /` makes it writable, which allocates
    it: vfslab mounts the root writable at once)."""
    if mp.async_:
        return 0
    err: int = yield from k.syncvnops.vfs_allocate_syncvnode(mp)
    return err


def dounmount(k: Kernel, mp: mount, force: bool) -> Generator[Any, Any, int]:
    """Unmount (dounmount, vfs_syscalls.c, netbsd-2-0 branch): syncer_lock first ("the
    syncer itself acquires locks in syncer_lock -> vfs_busy order"), kept only if the mount
    has a syncer vnode; IMNT_UNMOUNT set and mnt_lock drained (LK_DRAIN, mountlist_slock
    handed over), so that vfs_busy fails or waits; MNT_ASYNC off; the syncer vnode dropped;
    VFS_SYNC(MNT_WAIT) and, if that worked or `force` (MNT_FORCE), VFS_UNMOUNT. A failed
    unmount puts everything back."""
    from vfslab.kern.lock import LK_DRAIN, LK_EXCLUSIVE, LK_INTERLOCK, LK_REENABLE, LK_RELEASE

    L = k.locks
    vfs = k.vfs
    yield from L.lockmgr(k.syncer.syncer_lock, LK_EXCLUSIVE)
    L.simple_lock(vfs.mountlist_slock)
    used_syncer = mp.mnt_syncer is not None
    if not used_syncer:
        yield from L.lockmgr(k.syncer.syncer_lock, LK_RELEASE)
    mp.unmounting = True
    mp.unmounter = k.m.cur
    yield from L.lockmgr(mp.mnt_lock, LK_DRAIN | LK_INTERLOCK, vfs.mountlist_slock)
    async_ = mp.async_
    mp.async_ = False
    if mp.mnt_syncer is not None:
        yield from k.syncvnops.vfs_deallocate_syncvnode(mp)
    err = yield from mp.mnt_op.sync(mp, True)
    if err == 0 or force:
        err = yield from mp.mnt_op.unmount(mp, force)
    if err:
        mp.async_ = async_
        if mp.mnt_syncer is None:
            yield from mount_syncer(k, mp)
    mp.unmounting = False
    mp.unmounter = None
    L.simple_lock(vfs.mountlist_slock)
    # a failed unmount's mount lives on: 2.0 releases the drained lock with LK_REENABLE
    # (found by the error tests: the next vfs_busy used a decommissioned mnt_lock)
    yield from L.lockmgr(mp.mnt_lock, LK_RELEASE | LK_INTERLOCK | (LK_REENABLE if err else 0),
                         vfs.mountlist_slock)
    k.m.wakeup(mp)                          # vfs_busy's waiters (IMNT_MWAIT)
    if used_syncer:
        yield from L.lockmgr(k.syncer.syncer_lock, LK_RELEASE)
    return int(err)


def set_rootvnode(k: Kernel, mp: mount) -> Generator[Any, Any, int]:
    """After the root mount: rootvnode = VFS_ROOT, referenced and unlocked (main())."""
    err, vp = yield from mp.mnt_op.root(mp)
    if err or vp is None:
        return int(err) or 22
    yield from k.vfs.vn_unlock(vp)
    k.rootvnode = vp
    k.rootfs = mp.fs
    return 0


def release_rootvnode(k: Kernel) -> Generator[Any, Any, None]:
    """Drop rootvnode's reference (before the root is unmounted)."""
    vp = k.rootvnode
    k.rootvnode = None
    if vp is not None:
        yield from k.vfs.vrele(vp)


def roundrobin(k: Kernel) -> None:
    """hardclock's roundrobin(): every 100 ms, a CPU-bound process yields to runnable ones at
    its next return to user mode."""
    if k.m.runq:
        for cpu in k.m.cpus:
            if cpu.running is not None:
                cpu.want_resched = True


def vfs_unmountall(k: Kernel) -> Generator[Any, Any, int]:
    """Unmount every file system, the root last (vfs_subr.c's vfs_unmountall, at shutdown):
    rootvnode's reference is dropped first."""
    yield from release_rootvnode(k)
    err = 0
    for mp in reversed(list(k.mounts)):
        e = yield from dounmount(k, mp, True)       # MNT_FORCE, as 2.0's vfs_unmountall
        err = err or e
    return int(err)


def vfs_remountroot(k: Kernel) -> Generator[Any, Any, int]:
    """Unmount the root and mount it again on the same device vnode: the page and buffer
    caches start cold on a clean file system (the runner's step after setting up files)."""
    root = k.rootvnode
    if root is None or root.v_mount is None:
        return 22
    mp = root.v_mount
    devvp = mp.fs.devvp
    ops = mp.mnt_op
    yield from release_rootvnode(k)
    err = yield from dounmount(k, mp, False)
    if err:
        return int(err)
    err, nmp = yield from ops.mountroot(k, devvp, k.cfg.mount_async)
    if err or nmp is None:
        return int(err) or 22
    err = yield from mount_syncer(k, nmp)
    if err:
        return int(err)
    return (yield from set_rootvnode(k, nmp))
