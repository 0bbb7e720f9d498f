"""The page cache: UBC writes and reads, putpages clustering, aiodoned, memory exhaustion and
the page daemon, and write errors kept for fsync."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from kharness import make_kernel, new_vnode, run_thread

from vfslab.kern.uvm_page import PG_CLEAN
from vfslab.kern.uvm_pdaemon import PageDaemon
from vfslab.kern.vnode import VREG
from vfslab.kern.vnode_if import FSYNC_WAIT, VOP_FSYNC

PG = 4096


def test_write_dirties_pages_and_fsync_writes_them_in_clusters() -> None:
    k, disk = make_kernel()

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 32 * PG
        err = yield from k.ubc.write(vp, 0, 32 * PG, stamp=7)
        assert err == 0
        assert len(vp.v_uobj.dirtyq) == 32 and k.uvm.ndirty == 32
        err = yield from VOP_FSYNC(vp, FSYNC_WAIT)
        return vp, err

    vp, err = run_thread(k, body)
    assert err == 0
    writes = [e for e in disk.log if e[1] == "W"]
    assert [w[3] for w in writes] == [16, 16]          # MAXPHYS clusters of 16 pages
    assert k.uvm.ndirty == 0 and not vp.v_uobj.dirtyq
    assert all(pg.flags & PG_CLEAN for pg in vp.v_uobj.memq.values())
    base = vp.v_id * 100_000
    assert all(disk.store[base + i] == 7 for i in range(32))
    assert vp.v_numoutput == 0


def test_read_misses_go_to_disk_and_hits_do_not() -> None:
    k, disk = make_kernel()

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        base = vp.v_id * 100_000
        for i in range(8):
            disk.store[base + i] = 100 + i
        vp.v_size = 8 * PG
        _, n1 = yield from k.ubc.read(vp, 0, 8 * PG)
        reads1 = len([e for e in disk.log if e[1] == "R"])
        _, n2 = yield from k.ubc.read(vp, PG, 2 * PG)
        reads2 = len([e for e in disk.log if e[1] == "R"])
        stamps = [vp.v_uobj.memq[i].stamp for i in range(8)]
        return n1, n2, reads1, reads2, stamps

    n1, n2, r1, r2, stamps = run_thread(k, body)
    assert (n1, n2) == (8 * PG, 2 * PG)
    assert r1 == 1 and r2 == 1
    assert stamps == [100 + i for i in range(8)]


def test_partial_page_write_reads_the_rest_first() -> None:
    k, disk = make_kernel()

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        disk.store[vp.v_id * 100_000] = 5
        vp.v_size = PG
        yield from k.ubc.write(vp, 100, 10, stamp=9)
        return vp

    vp = run_thread(k, body)
    assert [e[1] for e in disk.log] == ["R"]
    assert vp.v_uobj.memq[0].stamp == 9


def test_writers_wait_for_memory_and_the_pagedaemon_frees_it() -> None:
    k, disk = make_kernel(physmem_mb=1)          # 256 pages
    pd = PageDaemon(k)
    pd.start()

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 1024 * PG
        for i in range(0, 1024, 16):
            err = yield from k.ubc.write(vp, i * PG, 16 * PG, stamp=i + 1)
            assert err == 0
        return vp

    run_thread(k, body, until_s=200)
    assert k.uvm.stats.waits > 0                   # the writer had to wait for memory
    assert pd.pageouts > 0 and k.uvm.free >= 0
    assert k.uvm.npages - k.uvm.free <= k.uvm.npages
    written = {e[2] for e in disk.log if e[1] == "W"}
    assert len(written) > 0


def _failed_async_write(**kw: Any) -> tuple[int, int, int, int, Any]:
    k, disk = make_kernel(**kw)

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 4 * PG
        disk.fail_blocks.add(vp.v_id * 100_000 + 1)
        yield from k.ubc.write(vp, 0, 4 * PG, stamp=3)
        yield from k.genfs.putpages(vp, 0, 0, clean=True, sync=False)
        yield from k.m.tsleep("x", "x", 50_000_000)      # the async write fails meanwhile
        dirty_after = len(vp.v_uobj.dirtyq)
        disk.fail_blocks.clear()
        written = sum(1 for e in disk.log if e[1] == "W")
        err1 = yield from VOP_FSYNC(vp, FSYNC_WAIT)
        err2 = yield from VOP_FSYNC(vp, FSYNC_WAIT)
        rewritten = sum(1 for e in disk.log if e[1] == "W") - written
        return dirty_after, err1, err2, rewritten, k

    out: tuple[int, int, int, int, Any] = run_thread(k, body)
    return out


def test_a_failed_async_page_write_loses_its_data_and_its_error_as_in_2_0() -> None:
    # uvm_aio_aiodone: "for all other write errors ... the data in the page is lost. bummer."
    dirty_after, err1, err2, rewritten, k = _failed_async_write()
    assert dirty_after == 0 and k.aiodone.pages_dropped == 4
    assert (err1, err2) == (0, 0)    # no fsync ever hears of it
    assert rewritten == 0            # and the pages, clean, are never written again


def test_with_write_error_redirty_the_error_is_kept_for_the_next_fsync() -> None:
    dirty_after, err1, err2, rewritten, k = _failed_async_write(
        sysctl={"uvm.write_error": "redirty"})
    assert dirty_after == 4          # re-dirtied by aiodoned: nothing lost from the accounting
    assert err1 == 5 and err2 == 0   # reported once, at the next fsync
    assert rewritten > 0 and k.aiodone.pages_dropped == 0
