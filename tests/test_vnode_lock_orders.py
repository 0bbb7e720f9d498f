"""The vnode lock orders 2.0's code keeps, declared where it takes them (kern/vnode.py's
VNL_* nesting subclasses, lockdep's annotation), and the locks #15's audit added as 2.0 took
them: getnewvnode's vfs_busy, the genfs node's g_glock, and no lock at all on the device
vnode (specdev.h: spec_lock is genfs_nolock)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sysharness import run_body

from vfslab.kern.fcntl import O_CREAT, O_RDONLY, O_RDWR
from vfslab.kern.kern_proc import ProcSyscalls
from vfslab.kern.lock import LK_EXCLUSIVE
from vfslab.kern.vnode_if import PGO_FREE, PGO_SYNCIO, VOP_PUTPAGES
from vfslab.runner import RunConfig, RunResult, run_scenario

KiB = 1024


def _checked() -> RunResult:
    # protocol: mkdir, create, rename, unlink, and vnodes recycled (maxvnodes 64)
    res = run_scenario(RunConfig(scenario="protocol", protocol="netbsd-2.0", check=True,
                                 duration_s=12.0))
    assert res.panic is None, res.panic.report()
    assert res.checker is not None
    return res


def test_two_vnode_locks_are_held_only_in_the_orders_2_0_declares() -> None:
    res = _checked()
    chk = res.checker
    assert chk is not None
    bad = [f for f in chk.findings() if f.kind in ("recursive-lock", "lock-order-cycle")]
    assert bad == [], [f"{f.kind} {f.subject}" for f in bad]
    edges = chk.edges
    # a new inode's vnode under its directory (or a lookup's child), the inactive or
    # recycled vnode's lock under a held vnode, rename's source under the target
    assert ("vnlock", "vnlock/child") in edges
    assert ("vnlock", "vnlock/unreferenced") in edges
    assert "ufs_rename" in edges[("vnlock", "vnlock/rename-source")]


def test_getnewvnode_keeps_the_mount_busy_while_it_recycles_a_vnode() -> None:
    """vfs_subr.c 1.222: vfs_busy(mp, LK_RECURSEFAIL) at entry, so an unmount waits until
    the vnode is on the mount's list; recycling (vgonel's drain of an unreferenced vnode's
    lock) happens with mnt_lock held shared."""
    res = _checked()
    assert res.kernel.vfs.nrecycled > 0
    edges = res.checker.edges  # type: ignore[union-attr]
    creating = edges[("vnlock", "mnt_lock")]
    assert "getnewvnode" in creating and "vfs_busy" in creating
    recycling = edges[("mnt_lock", "vnlock/unreferenced")]
    assert "getcleanvnode" in recycling and "vgonel" in recycling
    for mp in res.kernel.mounts:
        assert mp.mnt_lock.lk_sharecount == 0 and mp.mnt_lock.lk_exclusivecount == 0


def test_lookup_leaves_the_vnode_it_returns_a_plain_vnode_lock() -> None:
    """Lock coupling down /a/b/c: each child is locked as VNL_CHILD under its directory and
    reset once the directory is released, so the caller holds an unannotated lock (a child
    left annotated would make the next lookup under it look like two children at once)."""
    out: dict[str, Any] = {}

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        for d in ("/a", "/a/b", "/a/b/c"):
            assert (yield from sys.mkdir(d)) == 0
        fd = yield from sys.open("/a/b/c/f", O_RDWR | O_CREAT)
        assert fd >= 0
        yield from sys.close(fd)
        from vfslab.kern.vfs_lookup import LOCKLEAF, LOOKUP, NDINIT, namei

        k.namecache.entries.clear()
        nd = NDINIT(LOOKUP, LOCKLEAF, "/a/b/c/f")
        assert (yield from namei(k, nd)) == 0
        me = k.m.cur
        vp = nd.ni_vp
        out["held"] = vp.v_lock in me.held
        out["nested"] = dict(me.nested)
        yield from k.vfs.vput(vp)
        out["after"] = dict(me.nested)

    run_body(body)
    assert out["held"]
    assert out["nested"] == {} and out["after"] == {}


def test_the_device_vnode_has_no_lock_as_spec_lock_is_genfs_nolock() -> None:
    out: dict[str, Any] = {}

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        devvp = k.mounts[0].fs.devvp
        me = k.m.cur
        err = yield from k.vfs.vn_lock(devvp, LK_EXCLUSIVE)
        out["err"] = err
        out["held"] = devvp.v_lock in me.held
        out["count"] = devvp.v_lock.lk_exclusivecount
        yield from k.vfs.vn_unlock(devvp)

    run_body(body)
    assert out == {"err": 0, "held": False, "count": 0}


def _sample_glock(sys: ProcSyscalls, vp: Any, seen: list[tuple[int, int]],
                  period_ns: int = 20_000, n: int = 5_000) -> None:
    """A kernel thread that notes the file's g_glock (sharers, exclusive holds) every
    `period_ns` while the process works."""
    m = sys.k.m

    def watch() -> Generator[Any, Any, None]:
        for _ in range(n):
            lk = vp.g_glock
            seen.append((lk.lk_sharecount, lk.lk_exclusivecount))
            yield from m.tsleep(("glock-watch", id(seen)), "watch", period_ns)

    m.spawn("glock-watch", watch())


def test_a_read_from_disk_holds_the_files_g_glock_shared_until_its_data_is_in() -> None:
    """genfs_getpages (genfs_vnops.c 1.101): lockmgr(&gp->g_glock, LK_SHARED) around the
    block mapping and the reads, so that no GOP_ALLOC moves a block under them."""
    seen: list[tuple[int, int]] = []
    out: dict[str, int] = {}

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        fd = yield from sys.open("/f", O_RDWR | O_CREAT)
        assert (yield from sys.pwrite(fd, 256 * KiB, 0)) == 256 * KiB
        assert (yield from sys.fsync(fd)) == 0
        vp = sys.fdp.fd_ofiles[fd].f_vp
        # the pages go, so that the read below goes to the disk
        assert (yield from VOP_PUTPAGES(vp, 0, 0, PGO_FREE | PGO_SYNCIO)) == 0
        yield from sys.close(fd)
        fd = yield from sys.open("/f", O_RDONLY)
        _sample_glock(sys, vp, seen)
        assert (yield from sys.pread(fd, 128 * KiB, 64 * KiB)) == 128 * KiB
        out["after"] = vp.g_glock.lk_sharecount
        yield from sys.close(fd)

    run_body(body, disk="hdd")
    assert (1, 0) in seen                 # shared while the read was at the disk
    assert all(x == 0 for _, x in seen)   # never exclusive: nothing allocated
    assert out["after"] == 0


def test_a_write_that_allocates_holds_the_files_g_glock_exclusive_meanwhile() -> None:
    """ffs_write (ufs_readwrite.c 1.32.2.2): GOP_ALLOC under g_glock, exclusive; a write
    past the direct blocks writes its new indirect block with wait, and keeps the lock
    while it does."""
    seen: list[tuple[int, int]] = []

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        fd = yield from sys.open("/g", O_RDWR | O_CREAT)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        _sample_glock(sys, vp, seen)
        assert (yield from sys.pwrite(fd, 64 * KiB, 1024 * KiB)) == 64 * KiB
        yield from sys.close(fd)

    run_body(body, disk="hdd")
    assert (0, 1) in seen
    assert all(s == 0 for s, _ in seen)


def test_split_interlock_recycles_no_free_vnode_that_a_buffer_holds() -> None:
    """split-interlock moves no vnode between the free and hold lists (holdrele runs from
    biodone, and the lists' lock is not taken at splbio there), so a vnode on the free list
    can gain a hold when a buffer is attached to it. getnewvnode must pass it over on the
    free list as on the hold list; it took it, and its check panicked "free vnode isn't"
    (found by `vfslab hunt --protocol split-interlock`, schedule 352)."""
    from vfslab.fs.ufs_layout import BSIZE

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        fd = yield from sys.open("/f", O_RDWR | O_CREAT, 0o644)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        yield from sys.close(fd)
        on_free = vp in k.vfs.vnode_free_list
        bp = yield from k.bio.bget(vp, 0, BSIZE)      # a buffer attached: bgetvp's vhold
        k.bio.brelse(bp)
        held = vp.v_holdcnt
        opened = []
        for i in range(8):                  # more files than vnodes: recycling
            g = yield from sys.open(f"/g{i}", O_RDONLY | O_CREAT, 0o644)
            opened.append(g >= 0)
            yield from sys.close(g)
        return on_free, held, opened, vp in k.vfs.vnode_free_list, vp.v_data is not None

    k, (on_free, held, opened, still_free, kept) = run_body(
        body, protocol="split-interlock", maxvnodes=6)
    assert on_free and held > 0
    assert all(opened)
    assert still_free and kept, "a held vnode was recycled"
    assert k.vfs.nrecycled > 0
