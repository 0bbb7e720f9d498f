"""genfs_putpages as the netbsd-2-0 branch has it: clusters built around a dirty page even
outside the range, one cluster in flight for a synchronous flush, busy pages waited for by an
asynchronous flush too, the genput2 wait for all of the vnode's output, a master and child
buffers per cluster, and PR kern/24596's problem 2 arising from the walk itself."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from kharness import make_kernel, new_vnode, run_thread

from vfslab.kern.buf import buf
from vfslab.kern.uvm_page import PG_BUSY, PG_CLEAN
from vfslab.kern.vnode import VONWORKLST, VREG

PG = 4096
MS = 1_000_000


def _depth_probe(disk: Any) -> list[int]:
    """The disk's queue depth (waiting + in service) each time a request arrives."""
    depths: list[int] = []
    strategy = disk.strategy

    def probe(bp: Any) -> None:
        depths.append(len(disk.queue) + int(disk.busy) + 1)
        strategy(bp)

    disk.k.bio.bdev_strategy = probe
    return depths


def test_a_flush_of_one_page_clusters_8_back_and_16_in_all_outside_its_range() -> None:
    k, disk = make_kernel()

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 32 * PG
        yield from k.ubc.write(vp, 0, 32 * PG, stamp=1)
        err = yield from k.genfs.putpages(vp, 10 * PG, 11 * PG, clean=True, sync=True)
        return vp, err

    vp, err = run_thread(k, body)
    assert err == 0
    clean = sorted(pg.offset for pg in vp.v_uobj.memq.values() if pg.flags & PG_CLEAN)
    assert clean == list(range(2, 18))          # pages 2..9 before, 10, then 11..17
    assert [e[3] for e in disk.log if e[1] == "W"] == [16]


def test_a_synchronous_flush_keeps_one_cluster_in_flight_and_an_async_one_all() -> None:
    def flush(sync: bool) -> list[int]:
        k, disk = make_kernel()
        depths = _depth_probe(disk)

        def body() -> Generator[Any, Any, Any]:
            vp = yield from new_vnode(k, VREG)
            vp.v_size = 48 * PG
            yield from k.ubc.write(vp, 0, 48 * PG, stamp=1)
            return (yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=sync))

        assert run_thread(k, body) == 0
        return depths

    assert flush(sync=True) == [1, 1, 1]
    assert flush(sync=False) == [1, 2, 3]


def test_an_asynchronous_flush_waits_for_a_busy_page_and_then_writes_it() -> None:
    k, disk = make_kernel()
    out: dict[str, int] = {}

    def holder(vp: Any) -> Generator[Any, Any, None]:
        # another thread holds page 3 busy (as a read or a write in progress would) for 20 ms
        pg = vp.v_uobj.memq[3]
        pg.flags |= PG_BUSY
        yield from k.m.tsleep("hold", "hold", 20 * MS)
        pg.flags &= ~PG_BUSY
        k.m.wakeup(pg)

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 8 * PG
        yield from k.ubc.write(vp, 0, 8 * PG, stamp=1)
        k.m.spawn("holder", holder(vp))
        yield from k.m.tsleep("go", "go", 1 * MS)
        t0 = k.m.time()
        yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=False)
        out["waited"] = k.m.time() - t0
        return vp

    vp = run_thread(k, body)
    assert out["waited"] >= 19 * MS             # "genput": 2.0 waits, asynchronous or not
    assert all(pg.flags & PG_CLEAN for pg in vp.v_uobj.memq.values())
    assert k.genfs.stats.clusters == 2          # pages 0-2 before the wait, 3-7 after it


def _sync_flush_beside_other_output(missed_wakeup: bool) -> tuple[int, int, int]:
    """A synchronous flush that writes one page while another write of the vnode (someone
    else's) stays in flight for 30 ms; with `missed_wakeup` that write's completion
    forgets the wakeup (the race the genput2 loop's timeout is for)."""
    k, disk = make_kernel()

    def other(vp: Any) -> Generator[Any, Any, None]:
        s = k.m.splbio()
        k.proto.numoutput_add(k.vfs, vp, 1)
        k.m.splx(s)
        yield from k.m.tsleep("io", "io", 30 * MS)
        s = k.m.splbio()
        if missed_wakeup:
            vp.v_numoutput -= 1
        else:
            bp = buf()
            bp.b_vp = vp
            k.vfs.vwakeup(bp)
        k.m.splx(s)

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 64 * PG
        yield from k.ubc.write(vp, 40 * PG, PG, stamp=2)
        k.m.spawn("other", other(vp))
        yield from k.m.tsleep("go", "go", 1 * MS)
        t0 = k.m.time()
        err = yield from k.genfs.putpages(vp, 40 * PG, 41 * PG, clean=True, sync=True)
        return err, vp.v_numoutput, k.m.time() - t0

    out: tuple[int, int, int] = run_thread(k, body)
    return out


def test_a_synchronous_flush_that_wrote_waits_for_all_the_vnodes_output() -> None:
    err, pending, took = _sync_flush_beside_other_output(missed_wakeup=False)
    # its own cluster was biowaited; the other write only the genput2 loop waits for
    assert err == 0 and pending == 0 and 28 * MS <= took < 40 * MS


def test_the_genput2_wait_recovers_from_a_missed_wakeup_within_a_second() -> None:
    err, pending, took = _sync_flush_beside_other_output(missed_wakeup=True)
    assert err == 0 and pending == 0
    assert 900 * MS <= took <= 1_100 * MS      # "recover from missed wakeups with a timeout"


def test_a_cluster_over_two_extents_is_a_master_with_two_children() -> None:
    k, disk = make_kernel()

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 16 * PG
        yield from k.ubc.write(vp, 0, 16 * PG, stamp=5)
        vp.v_data = {"extent_break": 6}          # MiniFS: blocks 0-5 and 6-15 not adjacent
        err = yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=True)
        return err, vp

    err, vp = run_thread(k, body)
    assert err == 0
    assert [e[3] for e in disk.log if e[1] == "W"] == [6, 10]
    assert k.genfs.stats.clusters == 1 and k.genfs.stats.child_bufs == 2
    assert vp.v_numoutput == 0 and k.uvm.npageout == 0


def test_pages_dirtied_while_the_syncers_flush_sleeps_are_left_on_no_list() -> None:
    """PR kern/24596, problems 2 and 3, from the walk alone: a whole-file flush cleans the
    pages without write-protecting them; the syncer's next flush finds the file clean but
    waits for a busy page; meanwhile a write to a page it has passed goes through the UBC
    window still mapped from before (no fault: only the pmap's modified bit, and the vnode
    is still on the worklist anyway); the flush ends 'clean' and takes the vnode off the
    worklist. The page is then dirty, unknown to the kernel, and on no list. With
    genfs.pr24596_fix the flush that found the file clean write-protected each page, so the
    write faults, the dirty generation moves and the vnode stays on the worklist."""
    def run(fix: bool) -> tuple[int, int, bool]:
        k, disk = make_kernel(sysctl={"genfs.pr24596_fix": fix})

        def holder(vp: Any) -> Generator[Any, Any, None]:
            pg = vp.v_uobj.memq[6]
            pg.flags |= PG_BUSY                   # being read in, say
            yield from k.m.tsleep("hold", "hold", 20 * MS)
            pg.flags &= ~PG_BUSY
            k.m.wakeup(pg)

        def writer(vp: Any) -> Generator[Any, Any, None]:
            yield from k.m.tsleep("w", "w", 5 * MS)
            yield from k.ubc.write(vp, PG, 100, stamp=9)     # page 1: already passed

        def body() -> Generator[Any, Any, Any]:
            vp = yield from new_vnode(k, VREG)
            vp.v_size = 8 * PG
            yield from k.ubc.write(vp, 0, 8 * PG, stamp=1)
            yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=True)     # all clean
            assert vp.v_flag & VONWORKLST
            k.m.spawn("holder", holder(vp))
            k.m.spawn("writer", writer(vp))
            yield from k.m.tsleep("go", "go", 1 * MS)
            yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=False)    # the syncer's
            return (len(vp.v_uobj.dirtyq), len(k.pmap.unknown),
                    bool(vp.v_flag & VONWORKLST))

        out: tuple[int, int, bool] = run_thread(k, body)
        return out

    assert run(fix=False) == (0, 1, False)    # dirty, the kernel unaware, and on no list
    assert run(fix=True) == (1, 0, True)      # the write faulted: dirty, listed
