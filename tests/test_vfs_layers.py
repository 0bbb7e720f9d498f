"""The VFS layers as NetBSD's: functions where NetBSD's file names put them, the file system
reached only through v_op, the file layer's offset and O_APPEND under the vnode lock, namei's
lock coupling and the name cache apart from the directory scan."""

from __future__ import annotations

import importlib
from collections.abc import Generator
from typing import Any

import pytest
from sysharness import run_body

from vfslab.kern.fcntl import ENOENT, O_APPEND, O_CREAT, O_RDONLY, O_SYNC, O_WRONLY
from vfslab.kern.kern_proc import ProcSyscalls, spawn_process

# NetBSD function -> the module its NetBSD source file names (sys/kern/vfs_bio.c ->
# vfslab.kern.vfs_bio, sys/ufs/ffs/ffs_balloc.c -> vfslab.fs.ffs_balloc, ...)
WHERE = {
    "getblk": "kern.vfs_bio", "bread": "kern.vfs_bio", "bwrite": "kern.vfs_bio",
    "bdwrite": "kern.vfs_bio", "brelse": "kern.vfs_bio", "biodone": "kern.vfs_bio",
    "getnewvnode": "kern.vfs_subr", "vget": "kern.vfs_subr", "vrele": "kern.vfs_subr",
    "vgonel": "kern.vfs_subr", "brelvp": "kern.vfs_subr", "reassignbuf": "kern.vfs_subr",
    "vinvalbuf": "kern.vfs_subr", "vtruncbuf": "kern.vfs_subr", "holdrele": "kern.vfs_subr",
    "sched_sync": "kern.vfs_syncer", "vn_syncer_add_to_worklist": "kern.vfs_syncer",
    "namei": "kern.vfs_lookup", "lookup": "kern.vfs_lookup", "relookup": "kern.vfs_lookup",
    "cache_lookup": "kern.vfs_cache", "cache_enter": "kern.vfs_cache",
    "cache_purge": "kern.vfs_cache",
    "vn_open": "kern.vfs_vnops", "vn_read": "kern.vfs_vnops", "vn_write": "kern.vfs_vnops",
    "vn_close": "kern.vfs_vnops", "vn_lock": "kern.vfs_vnops",
    "dofilewrite": "kern.sys_generic", "dofileread": "kern.sys_generic",
    "sys_write": "kern.sys_generic", "sys_read": "kern.sys_generic",
    "sys_close": "kern.kern_descrip", "closef": "kern.kern_descrip",
    "sys_open": "kern.vfs_syscalls", "sys_rename": "kern.vfs_syscalls",
    "uiomove": "kern.kern_subr",
    "VOP_LOOKUP": "kern.vnode_if", "VOP_WRITE": "kern.vnode_if", "VOP_BMAP": "kern.vnode_if",
    "VOP_STRATEGY": "kern.vnode_if", "VOP_PUTPAGES": "kern.vnode_if",
    "VOP_GETPAGES": "kern.vnode_if", "genfs_getpages": "kern.genfs_vnops",
    "genfs_putpages": "kern.genfs_vnops", "genfs_lock": "kern.vfs_subr",
    "spec_vnodeop": "kern.spec_vnops",
    "ffs_mountfs": "fs.ffs_vfsops", "ffs_unmount": "fs.ffs_vfsops", "ffs_sync": "fs.ffs_vfsops",
    "ffs_vget": "fs.ffs_vfsops", "ffs_sbupdate": "fs.ffs_vfsops", "ffs_statfs": "fs.ffs_vfsops",
    "ffs_alloc": "fs.ffs_alloc", "ffs_valloc": "fs.ffs_alloc", "ffs_blkfree": "fs.ffs_alloc",
    "ffs_vfree": "fs.ffs_alloc", "ffs_balloc": "fs.ffs_balloc",
    "ffs_update": "fs.ffs_inode", "ffs_truncate": "fs.ffs_inode",
    "ffs_fsync": "fs.ffs_vnops", "ffs_reclaim": "fs.ffs_vnops", "ffs_vnodeop": "fs.ffs_vnops",
    "ufs_bmap": "fs.ufs_bmap", "ufs_lookup": "fs.ufs_lookup", "ufs_direnter": "fs.ufs_lookup",
    "ufs_dirremove": "fs.ufs_lookup", "ufs_dirrewrite": "fs.ufs_lookup",
    "ufs_create": "fs.ufs_vnops", "ufs_makeinode": "fs.ufs_vnops", "ufs_remove": "fs.ufs_vnops",
    "ufs_link": "fs.ufs_vnops", "ufs_rename": "fs.ufs_vnops", "ufs_mkdir": "fs.ufs_vnops",
    "ufs_rmdir": "fs.ufs_vnops", "ufs_strategy": "fs.ufs_vnops",
    "ufs_inactive": "fs.ufs_inode", "ufs_reclaim": "fs.ufs_inode",
    "ffs_read": "fs.ufs_readwrite", "ffs_write": "fs.ufs_readwrite",
}


@pytest.mark.parametrize("func", sorted(WHERE))
def test_each_netbsd_function_is_in_the_module_its_source_file_names(func: str) -> None:
    mod = importlib.import_module(f"vfslab.{WHERE[func]}")
    found = hasattr(mod, func) or any(
        hasattr(obj, func) for obj in vars(mod).values() if isinstance(obj, type))
    assert found, f"{func} not in vfslab.{WHERE[func]}"


def test_two_appenders_never_write_at_the_same_offset() -> None:
    """O_APPEND takes the size under the vnode lock (ffs_write with IO_APPEND): with O_SYNC
    each writer sleeps holding the lock, so the other is always waiting with a stale size
    in hand if the size is read outside it."""
    n, size = 40, 4096

    def appender(sys: ProcSyscalls, _rng: Any) -> Generator[Any, Any, None]:
        fd = yield from sys.open("/log", O_WRONLY | O_CREAT | O_APPEND | O_SYNC)
        for _ in range(n):
            assert (yield from sys.write(fd, size)) == size
        yield from sys.close(fd)

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        procs = [spawn_process(k, f"a{i}", appender, k.m.random(f"a{i}")) for i in range(2)]
        while not all(p.exited for p in procs):
            yield from sys.nanosleep(10_000_000)
        fd = yield from sys.open("/log", O_RDONLY)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        st = yield from k.ubc.stamps(vp, 0, 2 * n * size)
        yield from sys.close(fd)
        return vp.v_size, st

    _, (vsize, stamps) = run_body(body)
    assert vsize == 2 * n * size
    assert len(stamps) == 2 * n and len(set(stamps)) == 2 * n and 0 not in stamps


def test_lookup_holds_each_directory_locked_until_the_child_is_locked() -> None:
    """namei's lock coupling: VOP_LOOKUP is entered with the directory locked; the child is
    locked before the directory is unlocked; the child comes back locked and the directory
    still locked unless VOP_LOOKUP says PDIRUNLOCK; for '..' the child is unlocked first."""
    from vfslab.kern.vfs_lookup import PDIRUNLOCK

    seen: list[tuple[str, bool, bool, bool]] = []
    events: list[tuple[str, int]] = []

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        assert (yield from sys.mkdir("/d")) == 0
        assert (yield from sys.mkdir("/d/e")) == 0
        fd = yield from sys.open("/d/e/f", O_WRONLY | O_CREAT)
        yield from sys.close(fd)
        ops = k.rootvnode.v_op
        real, real_lock, real_unlock = ops.vop_lookup, ops.vop_lock, ops.vop_unlock

        def checked(dvp: Any, cnp: Any) -> Generator[Any, Any, Any]:
            me = k.m.cur
            assert dvp.v_lock.holder is me, "VOP_LOOKUP entered with the directory unlocked"
            err, vp = yield from real(dvp, cnp)
            if not err and vp is not None and vp is not dvp:
                seen.append((cnp.cn_nameptr, vp.v_lock.holder is me,
                             dvp.v_lock.holder is me, bool(cnp.cn_flags & PDIRUNLOCK)))
            return err, vp

        def lock(vp: Any, flags: int) -> Generator[Any, Any, int]:
            err = yield from real_lock(vp, flags)
            events.append(("lock", vp.v_data.ino))
            return err

        def unlock(vp: Any, flags: int = 0) -> Generator[Any, Any, int]:
            events.append(("unlock", vp.v_data.ino))
            return (yield from real_unlock(vp, flags))

        ops.vop_lookup, ops.vop_lock, ops.vop_unlock = checked, lock, unlock
        k.namecache.entries.clear()           # make every step scan, not hit the cache
        r1 = yield from sys.stat("/d/e/f")
        n1 = len(events)
        r2 = yield from sys.stat("/d/e/../e/f")
        ops.vop_lookup, ops.vop_lock, ops.vop_unlock = real, real_lock, real_unlock
        inos = {}
        for name in ("/d", "/d/e", "/d/e/f"):
            fd = yield from sys.open(name, O_RDONLY)
            inos[name] = sys.fdp.fd_ofiles[fd].f_vp.v_data.ino
            yield from sys.close(fd)
        return r1, r2, n1, inos

    _, (r1, r2, n1, inos) = run_body(body)
    assert r1 == 0 and r2 == 0
    names = [s[0] for s in seen]
    assert names[:3] == ["d", "e", "f"] and ".." in names
    for _name, child_locked, parent_locked, unlocked_flag in seen:
        assert child_locked                                  # the child comes back locked
        assert parent_locked != unlocked_flag                # PDIRUNLOCK says which
    walk = events[:n1]
    for parent, child in ((2, inos["/d"]), (inos["/d"], inos["/d/e"]),
                          (inos["/d/e"], inos["/d/e/f"])):
        assert walk.index(("lock", child)) < walk.index(("unlock", parent)), walk
    # '..': the child directory is unlocked before its parent is locked
    dotdot = events[n1:]
    e, d = inos["/d/e"], inos["/d"]
    unl = [i for i, ev in enumerate(dotdot) if ev == ("unlock", e)]
    lk = [i for i, ev in enumerate(dotdot) if ev == ("lock", d)]
    assert unl and lk and any(u < x for u in unl for x in lk if x > dotdot.index(("lock", e)))


def test_the_name_cache_answers_repeated_and_negative_lookups_and_forgets_removed_names(
) -> None:
    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        st = k.namecache.stats
        assert (yield from sys.mkdir("/d")) == 0
        fd = yield from sys.open("/d/f", O_WRONLY | O_CREAT)
        yield from sys.close(fd)
        yield from sys.stat("/d/f")
        hits0 = st.goodhits
        yield from sys.stat("/d/f")
        hits1 = st.goodhits
        miss = yield from sys.stat("/d/nothere")
        neg0 = st.neghits
        miss2 = yield from sys.stat("/d/nothere")
        neg1 = st.neghits
        assert (yield from sys.rename("/d/f", "/d/g")) == 0
        old = yield from sys.stat("/d/f")
        new = yield from sys.stat("/d/g")
        fd = yield from sys.open("/d/nothere", O_WRONLY | O_CREAT)   # a negative entry
        yield from sys.close(fd)
        now = yield from sys.stat("/d/nothere")
        return hits1 - hits0, miss, miss2, neg1 - neg0, old, new, now

    _, (hits, miss, miss2, negs, old, new, now) = run_body(body)
    assert hits >= 2                      # "d" and "f" both from the cache
    assert miss == miss2 == -ENOENT and negs == 1
    assert old == -ENOENT and new == 0 and now == 0


def test_the_kernel_reaches_the_file_system_only_through_v_op() -> None:
    """Replace one entry of FFS's vector: the syncer's lazy fsync and fsync(2) go through
    it."""
    from vfslab.kern.vnode_if import FSYNC_LAZY

    calls: list[int] = []

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        ops = k.rootvnode.v_op
        real = ops.vop_fsync

        def counted(vp: Any, flags: int, start: int = 0, end: int = 0
                    ) -> Generator[Any, Any, int]:
            calls.append(flags)
            return (yield from real(vp, flags, start, end))

        ops.vop_fsync = counted
        fd = yield from sys.open("/a", O_WRONLY | O_CREAT)
        yield from sys.write(fd, 8192)
        yield from sys.fsync(fd)
        yield from sys.write(fd, 8192)
        yield from sys.nanosleep(40 * 1_000_000_000)        # the syncer's turn
        yield from sys.close(fd)
        ops.vop_fsync = real

    run_body(body)
    assert any(not f & FSYNC_LAZY for f in calls) and any(f & FSYNC_LAZY for f in calls)


def test_a_process_resolves_relative_paths_against_its_current_directory() -> None:
    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        assert (yield from sys.mkdir("/w")) == 0
        assert (yield from sys.chdir("/w")) == 0
        fd = yield from sys.open("tmp", O_WRONLY | O_CREAT)
        yield from sys.write(fd, 100)
        yield from sys.close(fd)
        r = yield from sys.rename("tmp", "final")
        a = yield from sys.stat("/w/final")
        b = yield from sys.stat("final")
        c = yield from sys.stat("../w/final")
        lk = yield from sys.link("final", "/w/second")
        d = yield from sys.stat("/w/second")
        return r, a, b, c, lk, d

    _, (r, a, b, c, lk, d) = run_body(body)
    assert r == 0 and a == b == c == d == 100 and lk == 0


def test_rename_refuses_a_directory_into_its_own_subtree_and_moves_one_cleanly() -> None:
    """ufs_checkpath walks '..' up from the target: a directory cannot move under itself; a
    directory that changes parent gets its '..' rewritten and the link counts moved, and
    fsck finds the image clean."""
    from vfslab.fs.fsck import fsck_image

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        for d in ("/a", "/a/b", "/a/b/c", "/z"):
            assert (yield from sys.mkdir(d)) == 0
        into_self = yield from sys.rename("/a", "/a/b/c/a")
        moved = yield from sys.rename("/a/b", "/z/b")
        gone = yield from sys.stat("/a/b")
        up = yield from sys.stat("/z/b/c/../../b")
        rmdir_a = yield from sys.rmdir("/a")
        return into_self, moved, gone, up, rmdir_a

    k, (into_self, moved, gone, up, rmdir_a) = run_body(body)
    assert into_self == -22 and moved == 0 and gone == -ENOENT and up >= 0 and rmdir_a == 0
    assert fsck_image(k.disk.store) == []


def test_vnodes_held_by_their_buffers_are_recycled_not_waited_for() -> None:
    """Closed 64 KiB files keep an indirect block's buffer, which holds their vnode: on the
    hold list. With the free list empty, 2.0's getnewvnode recycles from the hold list
    (vgonel flushes and invalidates): the creator makes all its files, it does not stall."""
    from vfslab.runner import RunConfig, run_scenario
    from vfslab.scenario import ProcessSpec, Scenario
    from vfslab.scenarios.patterns import smallfiles

    n = 600
    sc = Scenario("held", "many 64 KiB files, few vnodes",
                  [ProcessSpec("c", smallfiles("/s", n, [64 * 1024]))], duration_s=1.5,
                  kernel={"disk": "ssd", "maxvnodes": 64, "physmem_mb": 64})
    res = run_scenario(RunConfig(scenario=sc))
    s = res.summary
    assert s["syscall_errors_total"] == 0
    assert s["bytes_written"] >= n * 64 * 1024
    assert res.kernel.vfs.nrecycled > n // 2


def test_a_full_vnode_table_is_enfile_not_a_hang() -> None:
    from vfslab.kern.fcntl import ENFILE

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        results = []
        for i in range(40):
            results.append((yield from sys.open(f"/f{i}", O_WRONLY | O_CREAT)))
        return results

    k, results = run_body(body, maxvnodes=16)
    assert -ENFILE in results and k.vfs.stats_enfile > 0
    assert all(r >= 0 for r in results[:5])


def test_symbolic_links_are_made_read_and_followed_and_fsck_knows_them() -> None:
    from vfslab.fs.fsck import fsck_image

    out: dict[str, int] = {}

    def body(sys: Any) -> Generator[Any, Any, None]:
        yield from sys.mkdir("/d", 0o755)
        fd = yield from sys.open("/d/real", O_WRONLY | O_CREAT)
        yield from sys.write(fd, 10_000)
        yield from sys.close(fd)
        out["symlink"] = yield from sys.symlink("real", "/d/link")
        out["abs"] = yield from sys.symlink("/d", "/dirlink")
        out["stat"] = yield from sys.stat("/d/link")              # followed
        out["lstat"] = yield from sys.lstat("/d/link")            # the link: 4 bytes
        out["readlink"] = yield from sys.readlink("/d/link", 100)
        out["readlink_file"] = yield from sys.readlink("/d/real", 100)
        fd = yield from sys.open("/dirlink/link", O_RDONLY)      # through two links
        out["read"] = yield from sys.read(fd, 20_000)
        yield from sys.close(fd)
        yield from sys.symlink("loop2", "/loop1")
        yield from sys.symlink("loop1", "/loop2")
        out["loop"] = yield from sys.stat("/loop1")
        yield from sys.symlink("new", "/d/dangling")
        fd = yield from sys.open("/d/dangling", O_WRONLY | O_CREAT)  # creates the target
        yield from sys.write(fd, 5)
        yield from sys.close(fd)
        out["target"] = yield from sys.stat("/d/new")
        out["unlink"] = yield from sys.unlink("/d/link")             # the link, not the file
        out["after"] = yield from sys.stat("/d/real")
        out["exists"] = yield from sys.symlink("x", "/d/real")

    k, _ = run_body(body)
    assert out == {"symlink": 0, "abs": 0, "stat": 10_000, "lstat": 4, "readlink": 4,
                   "readlink_file": -22, "read": 10_000, "loop": -62, "target": 5,
                   "unlink": 0, "after": 10_000, "exists": -17}
    assert fsck_image(k.disk.store, k.cfg.fs_blocks) == []
