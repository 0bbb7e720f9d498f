"""The mount's locks and its syncer vnode, as 2.0 had them: insmntque and ffs_sync's walk
under mntvnode_slock, vfs_busy's mnt_lock taken by the syncer vnode's lazy sync in
syncer_lock -> vfs_busy order, dounmount's drain, vput inactivating with the lock it
holds, and the open file's f_slock around each call on a descriptor."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sysharness import run_body

from vfslab.kern.buf import B_READ, buf
from vfslab.kern.fcntl import O_CREAT, O_RDWR
from vfslab.kern.kern_proc import ProcSyscalls
from vfslab.kern.lock import LK_RELEASE
from vfslab.kern.notify import KernelObserver
from vfslab.runner import RunConfig, run_scenario

KiB = 1024


def _checked(**kernel: Any) -> Any:
    res = run_scenario(RunConfig(scenario="protocol", protocol="netbsd-2.0", check=True,
                                 duration_s=12.0, kernel=kernel))
    assert res.panic is None, res.panic.report()
    return res


def test_the_lazy_sync_takes_mnt_lock_under_syncer_lock_and_walks_the_vnodes_under_mntvnode_slock(
        ) -> None:
    """sched_sync (syncer_lock held) -> the syncer vnode's sync_fsync -> vfs_busy (mnt_lock,
    mountlist_slock handed over) -> ffs_sync: mntvnode_slock, then each vnode's v_interlock."""
    chk = _checked().checker
    edges = chk.edges
    assert "sync_fsync" in edges[("synclk", "mnt_lock")]
    assert "vfs_busy" in edges[("mountlist_slock", "mnt_lock.lk_interlock")]
    walk = edges[("mntvnode_slock", "v_interlock")]
    assert "ffs_sync" in walk and "sync_fsync" in walk


def test_every_mount_list_change_is_made_under_mntvnode_slock() -> None:
    """getnewvnode and vgonel move vnodes on and off mnt_vnodelist with insmntque: after a
    run that recycles vnodes (maxvnodes 64, 200 files) each vnode is on the list of the
    mount it names, and only there."""
    res = _checked()
    k = res.kernel
    assert k.vfs.nrecycled > 0
    for vp in k.vfs.all_vnodes:
        for mp in k.mounts:
            assert (vp in mp.mnt_vnodelist) == (vp.v_mount is mp)
    assert "mntvnode_slock" in res.checker.classes


class _SuperblockWrites(KernelObserver):
    def __init__(self, k: Any) -> None:
        self.k = k
        self.times: list[int] = []
        self.end = 0

    def io_started(self, bp: buf) -> None:
        if not bp.b_flags & B_READ and bp.b_blkno == 0 and bp.b_vp is not None \
                and bp.b_vp.v_specmountpoint is not None:
            self.times.append(self.k.m.time())


def _superblock_writes(mount_async: bool) -> tuple[Any, list[int]]:
    seen: dict[str, _SuperblockWrites] = {}

    def body(sys: ProcSyscalls) -> Generator[Any, Any, None]:
        obs = seen["obs"] = _SuperblockWrites(sys.k)
        sys.k.notify.attach(obs)
        for i in range(40):                       # allocate blocks now and then: fs_fmod
            fd = yield from sys.open(f"/f{i}", O_RDWR | O_CREAT, 0o644)
            yield from sys.pwrite(fd, 8 * KiB, 0)
            yield from sys.close(fd)
            yield from sys.nanosleep(1_000_000_000)
        seen["obs"].end = sys.k.m.time()

    k, _ = run_body(body, mount_async=mount_async)
    obs = seen["obs"]
    return k, [t for t in obs.times if t < obs.end]      # not the unmount's


def test_the_syncer_vnode_writes_a_changed_superblock_and_an_async_mount_has_none() -> None:
    """Each syncdelay (30 s) the syncer vnode comes round and its lazy ffs_sync writes the
    superblock if the allocator changed it; an MNT_ASYNC mount gets no syncer vnode, and its
    superblock is written only by the unmount. (The 40 s body sees the syncer vnode's first
    turn at least, its slot scattered over the wheel by vfs_allocate_syncvnode.)"""
    k, lazy = _superblock_writes(False)
    assert len(lazy) >= 1 and k.syncer.stats.vnodes_synced > 0
    k2, lazy2 = _superblock_writes(True)
    assert lazy2 == []


def test_vput_of_the_last_reference_inactivates_with_the_lock_it_holds() -> None:
    """2.0's vput never unlocks and locks again: VOP_INACTIVE runs with the caller's lock,
    which ufs_inactive releases: one lockmgr call on the vnode's lock, the release."""
    ops: list[int] = []

    def body(sys: ProcSyscalls) -> Generator[Any, Any, None]:
        k = sys.k
        fd = yield from sys.open("/v", O_RDWR | O_CREAT, 0o644)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        yield from sys.close(fd)                  # the file's reference goes: usecount 1
        err = yield from k.vfs.vget(vp, 0x02)     # LK_EXCLUSIVE: usecount 1, locked
        assert err == 0 and vp.v_usecount == 1
        real = k.locks.lockmgr

        def spy(lkp: Any, flags: int, interlkp: Any = None) -> Any:
            if lkp is vp.v_lock:
                ops.append(flags & 0x0F)
            return real(lkp, flags, interlkp)

        k.locks.lockmgr = spy                     # type: ignore[method-assign]
        yield from k.vfs.vput(vp)
        k.locks.lockmgr = real                    # type: ignore[method-assign]
        assert vp.v_usecount == 0

    run_body(body)
    assert ops == [LK_RELEASE]


def test_each_call_on_a_descriptor_uses_the_file_under_f_slock_and_gives_it_back() -> None:
    """fd_getfile takes f_slock, FILE_USE counts the call in and drops it, FILE_UNUSE counts
    it out under f_slock again (sys/file.h of 2.0): during a write the file is in use once,
    after every call of a checked run no file is, and f_usecount is never touched unlocked."""
    during: list[int] = []

    class Watch(KernelObserver):
        def __init__(self, fp: Any) -> None:
            self.fp = fp

        def data_written(self, vp: Any, stamp: int, first: int, last: int, dirtied: int,
                         now: int) -> None:
            during.append(self.fp.f_usecount)

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        fd = yield from sys.open("/u", O_RDWR | O_CREAT, 0o644)
        fp = sys.fdp.fd_ofiles[fd]
        sys.k.notify.attach(Watch(fp))
        yield from sys.pwrite(fd, 8 * KiB, 0)
        yield from sys.pread(fd, 8 * KiB, 0)
        yield from sys.fsync(fd)
        yield from sys.close(fd)
        return fp

    _, fp = run_body(body)
    assert during and set(during) == {1} and fp.f_usecount == 0
    res = _checked()
    assert "f_slock" in res.checker.classes
    assert not [f for f in res.checker.findings() if "f_usecount" in f.subject]


def test_an_unmount_that_fails_puts_the_mount_back_and_it_goes_on_working() -> None:
    """dounmount without MNT_FORCE on a mount in use: vflush says EBUSY and 2.0 puts
    everything back: the syncer vnode is made again (getnewvnode's vfs_busy gives the
    unmounter EDEADLK, not a sleep on its own unmount), IMNT_UNMOUNT is cleared and the
    drained mnt_lock is released with LK_REENABLE. The file system then works as before
    and unmounts cleanly at the end. (Until the error tests found it, the unmounter slept in
    vfs_busy for ever.)"""
    from vfslab.kern.init_main import dounmount

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        mp = k.mounts[0]
        fd = yield from sys.open("/f", O_RDWR | O_CREAT, 0o644)
        err = yield from dounmount(k, mp, False)
        syncer_back = mp.mnt_syncer is not None
        assert (yield from sys.write(fd, 16 * KiB)) == 16 * KiB
        assert (yield from sys.fsync(fd)) == 0
        yield from sys.close(fd)
        return err, syncer_back, mp.unmounting, mp in k.mounts

    _k, (err, syncer_back, unmounting, mounted) = run_body(body)
    assert err == 16                                      # EBUSY
    assert syncer_back and not unmounting and mounted
